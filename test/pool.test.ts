import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../src/app.js';
import { photo, testConfig } from './helpers.js';

let app: FastifyInstance;
beforeAll(async () => {
  app = await buildApp(testConfig({ MODELS: 'mobilenet_v2_1.0_224', POOL_SIZE: '1', MAX_QUEUE: '2' }));
  await app.modelsLoaded;
});
afterAll(() => app.close());

const classify = () =>
  app.inject({ method: 'POST', url: '/v1/classify?topk=1', payload: photo('parrot.jpg'), headers: { 'content-type': 'image/jpeg' } });

describe('worker pool', () => {
  it('fails fast with 503 and Retry-After when the queue is full, and serves everything it accepted', async () => {
    const responses = await Promise.all(Array.from({ length: 24 }, classify));
    const accepted = responses.filter((r) => r.statusCode === 200);
    const refused = responses.filter((r) => r.statusCode === 503);
    expect(accepted.length + refused.length).toBe(responses.length);
    expect(refused.length).toBeGreaterThan(0);
    expect(accepted.length).toBeGreaterThanOrEqual(3);
    for (const r of refused) {
      expect(r.json().error.code).toBe('queue_full');
      expect(Number(r.headers['retry-after'])).toBeGreaterThanOrEqual(1);
    }
    for (const r of accepted) expect(r.json().predictions[0].label).toBe('macaw');
    // After the burst, the service is back to normal.
    expect((await classify()).statusCode).toBe(200);
    expect(app.pool.queueDepth).toBe(0);
  });

  it('reports queue time separately from inference time: a request behind a 1 s task waits most of it', async () => {
    // One worker: the first request's task is held 1000 ms in the worker before it runs; the
    // second, sent 100 ms later, waits in the queue for the rest (less its own decode, < 200 ms).
    app.pool.injectFault({ kind: 'delay', ms: 1000 });
    const first = classify();
    await new Promise((resolve) => setTimeout(resolve, 100));
    const second = classify();
    const [a, b] = (await Promise.all([first, second])).map((r) => r.json().timings);
    expect(a.queueMs).toBeLessThan(100);
    // The delay is outside the model run: inference time stays what one image takes.
    expect(a.inferenceMs).toBeLessThan(500);
    expect(b.queueMs).toBeGreaterThanOrEqual(1000 - 100 - 200);
    expect(b.inferenceMs).toBeLessThan(500);
    expect(b.totalMs).toBeGreaterThanOrEqual(b.queueMs + b.inferenceMs);
  });
});
