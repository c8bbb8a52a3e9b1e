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

  it('reports queue time separately from inference time', async () => {
    const responses = await Promise.all([classify(), classify(), classify()]);
    const timings = responses.map((r) => r.json().timings);
    expect(Math.max(...timings.map((t) => t.queueMs))).toBeGreaterThan(0);
  });
});
