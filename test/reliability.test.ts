// Deadlines, disconnects, overload and request ids, over real HTTP on loopback: work nobody will
// receive is dropped, every refusal is precise, and the service recovers after a burst.
import type { AddressInfo } from 'node:net';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../src/app.js';
import { multipart, photo, testConfig } from './helpers.js';
import { openPost, post, sample, until, within, type HttpAnswer } from './http-client.js';

let app: FastifyInstance;
let url: string;
const logs: string[] = [];
/** Resolvers waiting for the next request to reach its handler. */
const handlerWaiters: (() => void)[] = [];
const parrot = photo('parrot.jpg');

beforeAll(async () => {
  const config = testConfig({ MODELS: 'mobilenet_v2_1.0_224', POOL_SIZE: '1', MAX_QUEUE: '4', REQUEST_TIMEOUT_MS: '5000', MAX_REQUEST_TIMEOUT_MS: '8000' });
  app = await buildApp(config, { logger: { level: 'info', stream: { write: (line: string) => void logs.push(line) } } });
  app.addHook('preHandler', async () => handlerWaiters.shift()?.());
  await app.listen({ host: '127.0.0.1', port: 0 });
  url = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}/v1/classify?topk=1`;
  await app.modelsLoaded;
});
afterAll(() => app?.close());

const metric = async (series: string) => sample((await app.inject('/metrics')).body, series);
const stats = () => ({ ...app.pool.stats });

function expectRefused(res: HttpAnswer, status: number, code: string, message?: RegExp): void {
  expect(res.status, res.body).toBe(status);
  expect(res.json().error.code).toBe(code);
  if (message) expect(res.json().error.message).toMatch(message);
}

describe('request ids', () => {
  it('echoes a valid X-Request-Id, and logs the request under it', async () => {
    const res = await post(url, parrot, { 'x-request-id': 'rel-test-42' });
    expect(res.status).toBe(200);
    expect(res.headers['x-request-id']).toBe('rel-test-42');
    const line = logs.map((l) => JSON.parse(l)).find((l) => l.reqId === 'rel-test-42' && l.msg === 'request completed');
    expect(line?.res.statusCode).toBe(200);
  });

  it('replaces a missing or unusable id with a UUID, on errors too', async () => {
    const uuid = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
    expect((await post(url, parrot, { 'x-request-id': 'has spaces in it' })).headers['x-request-id']).toMatch(uuid);
    const refused = await post(url, Buffer.from('not an image'));
    expect(refused.status).toBe(415);
    expect(refused.headers['x-request-id']).toMatch(uuid);
  });
});

describe('deadlines', () => {
  it('refuses a malformed X-Request-Timeout-Ms and lowers one above the maximum', async () => {
    for (const bad of ['abc', '0', '-5', '1.5']) expectRefused(await post(url, parrot, { 'x-request-timeout-ms': bad }), 400, 'invalid_request', /x-request-timeout-ms/);
    expect((await post(url, parrot, { 'x-request-timeout-ms': '999999999' })).status).toBe(200);
    // Only the image routes read it.
    expect((await app.inject({ url: '/readyz', headers: { 'x-request-timeout-ms': 'abc' } })).statusCode).toBe(200);
  });

  it('stops waiting for a running task and drops a queued one when their deadlines pass', async () => {
    const [inference, queue, before] = [await metric('vision_deadline_exceeded_total{stage="inference"}'), await metric('vision_deadline_exceeded_total{stage="queue"}'), stats()];
    app.pool.injectFault({ kind: 'delay', ms: 1200 });
    const running = post(url, parrot, { 'x-request-timeout-ms': '300' });
    await until(() => app.pool.busyWorkers === 1);
    const queued = post(url, parrot, { 'x-request-timeout-ms': '450' });
    const patient = post(url, parrot);
    const [a, b, c] = await Promise.all([running, queued, patient]);

    expectRefused(a, 503, 'deadline_exceeded', /300 ms.*inference/);
    expect(a.ms).toBeLessThan(1000);
    expectRefused(b, 503, 'deadline_exceeded', /450 ms.*queue/);
    expect(c.status).toBe(200);
    expect(c.json().predictions[0].label).toBe('macaw');
    const after = stats();
    expect(after.started - before.started, 'only the first and the patient request reached the worker').toBe(2);
    expect(after.dropped - before.dropped).toBe(1);
    expect(after.abandoned - before.abandoned).toBe(1);
    expect(await metric('vision_deadline_exceeded_total{stage="inference"}')).toBe(inference + 1);
    expect(await metric('vision_deadline_exceeded_total{stage="queue"}')).toBe(queue + 1);
  });

  it('answers 503 deadline_exceeded to an upload still arriving at its deadline, raw or multipart, and closes the connection', async () => {
    const upload = await metric('vision_deadline_exceeded_total{stage="upload"}');
    const form = multipart([{ name: 'image', filename: 'parrot.jpg', data: parrot }]);
    const bodies = [
      { headers: { 'content-type': 'application/octet-stream', 'content-length': parrot.length }, payload: parrot },
      { headers: { ...form.headers, 'content-length': form.payload.length }, payload: form.payload },
    ];
    for (const { headers, payload } of bodies) {
      const { req, answer } = openPost(url, { ...headers, 'x-request-timeout-ms': 300 });
      req.write(payload.subarray(0, 2000));
      const res = await within(answer, 5000);
      req.destroy();
      expectRefused(res, 503, 'deadline_exceeded', /upload/);
      expect(res.headers.connection).toBe('close');
      expect(res.ms).toBeGreaterThanOrEqual(280);
      expect(res.ms).toBeLessThan(3000);
    }
    expect(await metric('vision_deadline_exceeded_total{stage="upload"}')).toBe(upload + 2);
  });
});

describe('clients that leave', () => {
  it('drops the queued work of a client that closes its connection', async () => {
    const [disconnects, before] = [await metric('vision_client_disconnects_total{stage="queue"}'), stats()];
    app.pool.injectFault({ kind: 'delay', ms: 500 });
    const first = post(url, parrot);
    await until(() => app.pool.busyWorkers === 1);
    const { req } = openPost(url, { 'content-type': 'image/jpeg', 'content-length': parrot.length });
    req.end(parrot);
    await until(() => app.pool.queueDepth === 1);
    req.destroy();
    await until(() => app.pool.stats.dropped === before.dropped + 1, 5000, 'queued work dropped');
    expect(app.pool.queueDepth).toBe(0);
    expect((await first).status).toBe(200);
    expect(app.pool.stats.started - before.started).toBe(1);
    expect(await metric('vision_client_disconnects_total{stage="queue"}')).toBe(disconnects + 1);
  });

  it('computes nothing for a client that leaves during its upload or its decode', async () => {
    for (const stage of ['upload', 'decode'] as const) {
      const series = `vision_client_disconnects_total{stage="${stage}"}`;
      const [disconnects, before] = [await metric(series), stats()];
      // A large photo, whose decode takes a while.
      const body = photo('kite_and_cold.jpg');
      const { req } = openPost(url, { 'content-type': 'image/jpeg', 'content-length': body.length });
      if (stage === 'upload') {
        req.write(body.subarray(0, 10_000));
        await new Promise((r) => setTimeout(r, 100));
      } else {
        const entered = new Promise<void>((resolve) => handlerWaiters.push(resolve));
        req.end(body);
        await entered;
      }
      req.destroy();
      await expect.poll(() => metric(series), { timeout: 5000 }).toBe(disconnects + 1);
      // Give a wrongly queued task time to show up before checking none did.
      await new Promise((r) => setTimeout(r, 300));
      expect(app.pool.stats.started, stage).toBe(before.started);
    }
    expect((await post(url, parrot)).status).toBe(200);
  });
});

describe('overload', () => {
  /** Requests per second for `count` requests sent by `concurrency` clients one after another. */
  async function throughput(count: number, concurrency: number): Promise<number> {
    let left = count;
    const started = performance.now();
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        while (left-- > 0) expect((await post(url, parrot)).status).toBe(200);
      }),
    );
    return count / ((performance.now() - started) / 1000);
  }

  it('refuses a burst far above capacity with 503 queue_full and Retry-After, serves what it accepts, and recovers', async () => {
    const baseline = await throughput(24, 2);
    const before = stats();
    const burst = await Promise.all(Array.from({ length: 48 }, () => post(url, parrot)));
    const accepted = burst.filter((r) => r.status === 200);
    const refused = burst.filter((r) => r.status !== 200);
    expect(accepted.length).toBeGreaterThanOrEqual(5);
    expect(refused.length).toBeGreaterThan(0);
    for (const r of accepted) expect(r.json().predictions[0].label).toBe('macaw');
    for (const r of refused) {
      expectRefused(r, 503, 'queue_full');
      expect(Number(r.headers['retry-after'])).toBeGreaterThanOrEqual(1);
    }
    // Everything accepted ran exactly once; nothing was lost or computed for nobody.
    expect(app.pool.stats.completed - before.completed).toBe(accepted.length);
    expect(app.pool.queueDepth).toBe(0);
    const after = await throughput(24, 2);
    console.info(`overload: burst of ${burst.length} -> ${accepted.length} x 200, ${refused.length} x 503 queue_full (Retry-After ${[...new Set(refused.map((r) => r.headers['retry-after']))].join('/')} s); throughput ${baseline.toFixed(1)} req/s before, ${after.toFixed(1)} after`);
    expect(after, `baseline ${baseline.toFixed(1)} req/s, after ${after.toFixed(1)} req/s`).toBeGreaterThan(baseline * 0.5);
  });
});
