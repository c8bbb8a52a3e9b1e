// Faults inside native code and at awkward moments, on the real process as npm start runs it:
// the watchdog killing a worker in the middle of ONNX Runtime's work (a real multi-scale run, not
// a JavaScript loop), SIGTERM during start-up, and SIGTERM while abandoned work still runs. The
// server stays up, or exits 0 when told to stop; only the requests a dead worker held fail.
import { describe, expect, it } from 'vitest';
import { photo } from './helpers.js';
import { post, within } from './http-client.js';
import { spawnServer, startServer, type ServerProcess } from './server-process.js';

const MODEL = 'deeplabv3_mobilenet_v2_1.0_513';
const MF = `/v1/segment?model=${MODEL}&strategy=mf&outputStride=8`;
const SINGLE = `/v1/segment?model=${MODEL}`;

const crashed = (server: ServerProcess) => /SIGABRT|terminate called|Napi::Error|core dumped/.test(server.log());

async function stop(server: ServerProcess): Promise<number | null> {
  server.child.kill('SIGTERM');
  return within(server.exited, 30_000, 'exit');
}

describe('the watchdog kills a worker inside ONNX Runtime', () => {
  it('fails only the held request, serves the queued ones from the replacement, three times over, and the server lives', async () => {
    // MF at output stride 8 on the 513 model takes seconds of native work: sessions built, 12 runs.
    const server = await startServer({ MODELS: MODEL, POOL_SIZE: '1', MAX_QUEUE: '8', WORKER_TIMEOUT_MS: '800', MAX_REQUEST_TIMEOUT_MS: '60000' });
    try {
      const image = photo('pets.jpg');
      for (let round = 0; round < 3; round++) {
        const held = post(`${server.base}${MF}`, image, { 'x-request-timeout-ms': 60000 });
        await new Promise((r) => setTimeout(r, 50));
        const queued = Array.from({ length: 2 }, () => post(`${server.base}${SINGLE}`, image, { 'x-request-timeout-ms': 60000 }));
        const killed = await within(held, 20_000);
        expect(killed.status, killed.body).toBe(503);
        expect(killed.json().error).toMatchObject({ code: 'worker_failed', message: expect.stringMatching(/did not finish within 800 ms/) });
        for (const answer of await Promise.all(queued.map((q) => within(q, 30_000)))) {
          expect(answer.status, answer.body).toBe(200);
          expect(answer.json().legend.map((l: { label: string }) => l.label)).toContain('dog');
        }
      }
      expect((await fetch(`${server.base}/healthz`)).status).toBe(200);
      const metrics = await (await fetch(`${server.base}/metrics`)).text();
      expect(metrics).toMatch(/^vision_worker_restarts_total\{reason="watchdog"\} 3$/m);
      expect(crashed(server), server.log()).toBe(false);
    } finally {
      expect(await stop(server)).toBe(0);
    }
  }, 180_000);
});

describe('SIGTERM at any moment exits 0', () => {
  it.each([0, 300, 900])('during start-up, %i ms after the server listens, with its workers loading', async (delayMs) => {
    const server = await spawnServer({ MODELS: `mobilenet_v2_1.0_224,${MODEL}`, POOL_SIZE: '2' });
    await new Promise((r) => setTimeout(r, delayMs));
    expect(await stop(server), server.log()).toBe(0);
    expect(crashed(server), server.log()).toBe(false);
  }, 60_000);

  it('while abandoned work still runs: the worker stops between runs, and a request behind it is served meanwhile', async () => {
    const server = await startServer({ MODELS: MODEL, POOL_SIZE: '2', MAX_QUEUE: '8' });
    const image = photo('pets.jpg');
    // Two MF requests whose deadlines pass during their first runs: one per worker.
    const abandoned = await Promise.all([0, 1].map(() => post(`${server.base}${MF}`, image, { 'x-request-timeout-ms': 300 })));
    for (const answer of abandoned) expect(answer.json().error.code).toBe('deadline_exceeded');
    // Abandoned MF stops at its next run instead of holding both workers for its twelve.
    const started = performance.now();
    const next = await within(post(`${server.base}${SINGLE}`, image), 10_000);
    expect(next.status, next.body).toBe(200);
    const waited = performance.now() - started;
    console.info(`a request behind two abandoned MF requests was answered after ${waited.toFixed(0)} ms`);
    expect(waited).toBeLessThan(4000);

    // And once more, with SIGTERM while they run.
    await Promise.all([0, 1].map(() => post(`${server.base}${MF}`, image, { 'x-request-timeout-ms': 300 })));
    const stopping = performance.now();
    expect(await stop(server), server.log()).toBe(0);
    expect(performance.now() - stopping).toBeLessThan(8000);
    expect(crashed(server), server.log()).toBe(false);
  }, 120_000);
});
