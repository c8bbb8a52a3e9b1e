// SIGTERM under load, on the real process: readiness and the listener go first, the requests in
// flight all finish with 200, the process exits 0 within the drain timeout; past the timeout, what
// is left is cut and the exit code says so.
import { connect, type AddressInfo } from 'node:net';
import { describe, expect, it } from 'vitest';
import { buildApp } from '../src/app.js';
import { photo, testConfig } from './helpers.js';
import { openPost, post, within, type HttpAnswer } from './http-client.js';
import { startServer } from './server-process.js';

const DRAIN_TIMEOUT_MS = 8000;

/** Resolves true when a new TCP connection is refused, false when it is accepted. */
function refused(base: string): Promise<boolean> {
  const { hostname, port } = new URL(base);
  return new Promise((resolve) => {
    const socket = connect(Number(port), hostname);
    socket.once('connect', () => {
      socket.destroy();
      resolve(false);
    });
    socket.once('error', (err: NodeJS.ErrnoException) => resolve(err.code === 'ECONNREFUSED'));
  });
}

const incoming = (log: string) => log.split('\n').filter((l) => l.includes('"incoming request"') && l.includes('/v1/classify')).length;

describe('graceful shutdown', () => {
  it('turns unready once close begins, finishes the request in flight, and closes its keep-alive connection', async () => {
    const app = await buildApp(testConfig({ MODELS: 'mobilenet_v2_1.0_224', POOL_SIZE: '1' }));
    await app.listen({ host: '127.0.0.1', port: 0 });
    await app.modelsLoaded;
    app.draining = true;
    expect((await app.inject('/readyz')).json().error).toEqual({ code: 'not_ready', message: 'the service is shutting down' });
    app.draining = false;

    app.pool.injectFault({ kind: 'delay', ms: 400 });
    const socket = connect((app.server.address() as AddressInfo).port, '127.0.0.1');
    const image = photo('parrot.jpg');
    socket.write(`POST /v1/classify?topk=1 HTTP/1.1\r\nHost: t\r\nConnection: keep-alive\r\nContent-Type: image/jpeg\r\nContent-Length: ${image.length}\r\n\r\n`);
    socket.write(image);
    let received = '';
    socket.on('data', (chunk: Buffer) => (received += chunk.toString('latin1')));
    const socketClosed = new Promise((resolve) => socket.once('close', resolve));
    while (app.pool.busyWorkers === 0) await new Promise((r) => setTimeout(r, 5));

    const closed = app.close();
    while (!app.draining) await new Promise((r) => setTimeout(r, 1));
    expect(received, 'the request is still in flight').toBe('');
    await within(closed, 3000, 'close');
    await within(socketClosed, 1000, 'connection close');
    expect(received).toMatch(/^HTTP\/1\.1 200 /);
    expect(received).toMatch(/^connection: close/im);
    expect(received).toMatch(/"label":"macaw"/);
  });

  it('finishes every in-flight request, refuses new connections, and exits 0 within the drain timeout', async () => {
    const server = await startServer({ POOL_SIZE: '1', MAX_QUEUE: '64', DRAIN_TIMEOUT_MS: String(DRAIN_TIMEOUT_MS) });
    const body = photo('kite_and_cold.jpg');
    const answers: (HttpAnswer & { at: number })[] = [];
    const inFlight = Array.from({ length: 16 }, () => post(`${server.base}/v1/classify?topk=1`, body).then((a) => answers.push({ ...a, at: performance.now() })));
    // Every request has reached the server before the signal.
    while (incoming(server.log()) < 16) await new Promise((r) => setTimeout(r, 5));

    const signalled = performance.now();
    server.child.kill('SIGTERM');
    let refusedAt: number | undefined;
    for (let i = 0; i < 100 && refusedAt === undefined; i++) {
      if (await refused(server.base)) refusedAt = performance.now();
      else await new Promise((r) => setTimeout(r, 10));
    }
    expect(refusedAt, 'the listener still accepted connections').toBeDefined();
    const answeredBeforeRefusal = answers.filter((a) => a.at <= refusedAt!).length;

    await within(Promise.all(inFlight), DRAIN_TIMEOUT_MS);
    expect(answers.map((a) => a.status)).toEqual(Array(16).fill(200));
    expect(answeredBeforeRefusal, 'requests were still in flight when the listener closed').toBeLessThan(16);
    expect(await within(server.exited, DRAIN_TIMEOUT_MS, 'exit')).toBe(0);
    const exitMs = performance.now() - signalled;
    expect(exitMs).toBeLessThan(DRAIN_TIMEOUT_MS);
    expect(server.log()).toMatch(/"cut":false/);
    console.info(`shutdown: listener closed ${(refusedAt! - signalled).toFixed(0)} ms after SIGTERM with ${16 - answeredBeforeRefusal} of 16 requests in flight; exit 0 after ${exitMs.toFixed(0)} ms`);
  });

  it('brings every request\'s deadline within the drain: a stalled upload is answered 503 before the drain timeout, and the process exits 0', async () => {
    const server = await startServer({ POOL_SIZE: '1', DRAIN_TIMEOUT_MS: '1000', REQUEST_TIMEOUT_MS: '60000' });
    // An upload that stalls after its first bytes, with a 60 s deadline: longer than the drain.
    const { req, answer } = openPost(`${server.base}/v1/classify`, { 'content-type': 'image/jpeg', 'content-length': 100_000 });
    req.write(photo('parrot.jpg').subarray(0, 1000));
    while (incoming(server.log()) < 1) await new Promise((r) => setTimeout(r, 5));
    const signalled = performance.now();
    server.child.kill('SIGTERM');
    const refused = await within(answer, 3000);
    expect(refused.status).toBe(503);
    expect(refused.json().error).toMatchObject({ code: 'deadline_exceeded', message: expect.stringMatching(/drain of 800 ms/) });
    expect(await within(server.exited, 5000, 'exit')).toBe(0);
    expect(performance.now() - signalled).toBeLessThan(1000);
    expect(server.log()).toMatch(/"cut":false/);
  });

  it('closes at once the connections that carry no request: idle keep-alive and a client still sending its headers', async () => {
    const server = await startServer({ POOL_SIZE: '1', DRAIN_TIMEOUT_MS: '20000' });
    const { port } = new URL(server.base);
    const open = (first: string) => new Promise<{ closed: Promise<number> }>((resolve) => {
      const socket = connect(Number(port), '127.0.0.1', () => {
        socket.write(first);
        // Read whatever comes, so that the end of the connection is seen.
        socket.resume();
        const started = performance.now();
        resolve({ closed: new Promise((done) => socket.once('close', () => done(performance.now() - started))) });
      });
      socket.on('error', () => {});
    });
    // A keep-alive connection, idle after its answer; a slowloris client, halfway through its headers.
    const idle = await open('GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n');
    const slowloris = await open('GET /healthz HTTP/1.1\r\nHost: t\r\nX-Slow');
    // A slow raw upload sent as multipart/mixed, its headers complete: it is bounded by its own deadline.
    const mixed = await open('POST /v1/classify HTTP/1.1\r\nHost: t\r\nContent-Type: multipart/mixed; boundary=x\r\nContent-Length: 100000\r\nX-Request-Timeout-Ms: 1500\r\n\r\nxx');
    while (incoming(server.log()) < 1) await new Promise((r) => setTimeout(r, 5));
    const signalled = performance.now();
    server.child.kill('SIGTERM');
    await within(Promise.all([idle.closed, slowloris.closed]), 1000, 'the idle and the slowloris connections closed');
    expect(await within(server.exited, 5000, 'exit')).toBe(0);
    expect(performance.now() - signalled).toBeLessThan(3000);
    await within(mixed.closed, 1000, 'the upload connection closed');
    expect(server.log()).toMatch(/"code":"deadline_exceeded"/);
  });
});
