// Worker faults, injected through WorkerPool.injectFault (no HTTP path reaches it) or from
// outside (kill -9 of a worker's process): a worker that throws, exits, aborts in native code,
// is killed, or hangs past the watchdog is replaced; only the request it held fails; the requests
// queued behind it are served; the restart counter moves; readiness follows the pool. The test
// process itself is the server here: that it lives on is part of what is shown.
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../src/app.js';
import type { Fault } from '../src/pool/messages.js';
import { photo, testConfig } from './helpers.js';
import { sample, until } from './http-client.js';

const WATCHDOG_MS = 1500;

async function startApp(env: Record<string, string>): Promise<FastifyInstance> {
  const app = await buildApp(testConfig({ MODELS: 'mobilenet_v2_1.0_224', WORKER_TIMEOUT_MS: String(WATCHDOG_MS), ...env }));
  await app.modelsLoaded;
  return app;
}

const classify = (app: FastifyInstance) =>
  app.inject({ method: 'POST', url: '/v1/classify?topk=1', payload: photo('parrot.jpg'), headers: { 'content-type': 'image/jpeg' } });

const restartsOf = async (app: FastifyInstance, reason: string) =>
  sample((await app.inject('/metrics')).body, `vision_worker_restarts_total{reason="${reason}"}`);

describe('worker faults with two workers', () => {
  let app: FastifyInstance;
  beforeAll(async () => {
    app = await startApp({ POOL_SIZE: '2', MAX_QUEUE: '16' });
  });
  afterAll(() => app?.close());

  const faults: [Exclude<Fault['kind'], 'delay' | 'fail'>, string, RegExp][] = [
    ['throw', 'error', /stopped \(exit code 1\)/],
    ['exit', 'exit', /stopped \(exit code 70\)/],
    // process.abort(), as an assertion failing in native code does.
    ['abort', 'crash', /stopped \(signal SIGABRT\)/],
    ['hang', 'watchdog', new RegExp(`did not finish within ${WATCHDOG_MS} ms`)],
  ];

  it.each(faults)('replaces a worker that is made to %s mid-request; only its request fails', async (kind, reason, message) => {
    const before = await restartsOf(app, reason);
    const restarts = app.pool.restarts;
    app.pool.injectFault({ kind });
    const started = performance.now();
    const responses = await Promise.all(Array.from({ length: 6 }, () => classify(app)));
    const failed = responses.filter((r) => r.statusCode !== 200);
    expect(failed, responses.map((r) => r.statusCode).join()).toHaveLength(1);
    expect(failed[0]!.statusCode).toBe(503);
    expect(failed[0]!.json().error.code).toBe('worker_failed');
    expect(failed[0]!.json().error.message).toMatch(message);
    for (const r of responses.filter((r) => r.statusCode === 200)) expect(r.json().predictions[0].label).toBe('macaw');
    if (kind === 'hang') expect(performance.now() - started).toBeGreaterThanOrEqual(WATCHDOG_MS - 50);

    // The watchdog answers the request first, then terminates the worker; the restart follows.
    await until(() => app.pool.restarts === restarts + 1);
    expect(await restartsOf(app, reason)).toBe(before + 1);
    await until(() => app.pool.readyWorkers === 2);
    const after = await Promise.all(Array.from({ length: 4 }, () => classify(app)));
    expect(after.map((r) => r.statusCode)).toEqual([200, 200, 200, 200]);
  });

  it('replaces a worker killed from outside with kill -9 mid-request; only its request fails', async () => {
    const before = await restartsOf(app, 'crash');
    const restarts = app.pool.restarts;
    // Held in its worker long enough to be killed there.
    app.pool.injectFault({ kind: 'delay', ms: 2000 });
    const responses = Promise.all(Array.from({ length: 4 }, () => classify(app)));
    await until(() => app.pool.busyWorkers > 0);
    await new Promise((r) => setTimeout(r, 200));
    // The worker holding the delayed task (the others have answered by now).
    await until(() => app.pool.workers.filter((w) => w.busy).length === 1);
    const victim = app.pool.workers.find((w) => w.busy)!.pid;
    process.kill(victim, 'SIGKILL');
    const answers = await responses;
    const failed = answers.filter((r) => r.statusCode !== 200);
    expect(failed.map((r) => r.json().error.code)).toEqual(['worker_failed']);
    expect(failed[0]!.json().error.message).toMatch(/stopped \(signal SIGKILL\)/);
    await until(() => app.pool.restarts === restarts + 1);
    expect(await restartsOf(app, 'crash')).toBe(before + 1);
    await until(() => app.pool.readyWorkers === 2);
    expect(app.pool.workers.map((w) => w.pid)).not.toContain(victim);
    expect((await classify(app)).statusCode).toBe(200);
  });

  it('fails only the request whose task throws, and keeps the worker', async () => {
    const restarts = app.pool.restarts;
    app.pool.injectFault({ kind: 'fail' });
    const [first, second] = await Promise.all([classify(app), classify(app)]);
    expect([first!.statusCode, second!.statusCode].sort()).toEqual([200, 503]);
    expect([first, second].find((r) => r!.statusCode === 503)!.json().error.message).toMatch(/injected task failure/);
    expect(app.pool.restarts).toBe(restarts);
    expect(app.pool.readyWorkers).toBe(2);
  });
});

describe('worker faults with one worker', () => {
  let app: FastifyInstance;
  beforeAll(async () => {
    app = await startApp({ POOL_SIZE: '1', MAX_QUEUE: '4' });
  });
  afterAll(() => app?.close());

  it('is unready while its only worker is replaced, and serves what waited once it is back', async () => {
    app.pool.injectFault({ kind: 'exit' });
    const victim = await classify(app);
    expect(victim.statusCode).toBe(503);
    expect(victim.json().error.code).toBe('worker_failed');

    const ready = await app.inject('/readyz');
    expect(ready.statusCode).toBe(503);
    expect(ready.json().error.code).toBe('not_ready');
    // Sent while no worker is up: it waits in the queue instead of failing.
    const waiting = await classify(app);
    expect(waiting.statusCode).toBe(200);
    expect(waiting.json().predictions[0].label).toBe('macaw');
    expect((await app.inject('/readyz')).statusCode).toBe(200);
    expect((await app.inject('/metrics')).body).toMatch(/^vision_workers_ready 1$/m);
  });
});
