// Refusals sent before a request's body has arrived must still reach the client: most clients
// (Node's fetch among them) write the whole body before they read, and a server that closes the
// connection with unread data makes the kernel answer with a reset, so they see EPIPE or
// ECONNRESET instead of the status. The service reads and discards the rest (bounded, as nginx's
// lingering close does) and then answers. Each case, 50 times, with Node's fetch (undici), against
// the real process (client and server in one process hide the race: measured before the fix,
// 28 of 50 raw 40 MB bodies and 10 of 50 two-file forms got EPIPE).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { photo } from './helpers.js';
import { startServer, type ServerProcess } from './server-process.js';

let server: ServerProcess;
let base: string;
const SEGMENTER = 'deeplabv3_mobilenet_v2_1.0_513';

beforeAll(async () => {
  server = await startServer({ MODELS: `mobilenet_v2_1.0_224,${SEGMENTER}`, POOL_SIZE: '1', MAX_QUEUE: '0', BODY_LIMIT_BYTES: String(20 * 2 ** 20), MAX_REQUEST_TIMEOUT_MS: '120000' });
  base = server.base;
}, 60_000);
afterAll(async () => {
  server?.child.kill('SIGTERM');
  await server?.exited;
});

const TRIES = 50;

/** Sends `send` TRIES times; returns the statuses and error codes the client saw. */
async function tally(send: () => Promise<Response>): Promise<{ statuses: Record<string, number>; errors: string[] }> {
  const statuses: Record<string, number> = {};
  const errors: string[] = [];
  for (let i = 0; i < TRIES; i++) {
    try {
      const response = await send();
      const body = (await response.json()) as { error?: { code: string } };
      const key = `${response.status} ${body.error?.code ?? 'ok'}`;
      statuses[key] = (statuses[key] ?? 0) + 1;
    } catch (err) {
      const cause = (err as { cause?: { code?: string } }).cause;
      errors.push(cause?.code ?? String(err));
    }
  }
  return { statuses, errors };
}

function form(parts: { name: string; data: Buffer }[]): FormData {
  const data = new FormData();
  for (const { name, data: bytes } of parts) data.append(name, new Blob([new Uint8Array(bytes)], { type: 'image/jpeg' }), `${name}.jpg`);
  return data;
}

describe('refusals reach a client that writes its whole body first (Node fetch, 50 tries each)', () => {
  const big = photo('parrot.jpg');
  const large = Buffer.concat(Array.from({ length: 12 }, () => big));

  it('a form with two files: 400 invalid_multipart, no reset', async () => {
    const result = await tally(() => fetch(`${base}/v1/classify`, { method: 'POST', body: form([{ name: 'image', data: large }, { name: 'image', data: large }]) }));
    expect(result.errors).toEqual([]);
    expect(result.statuses).toEqual({ '400 invalid_multipart': TRIES });
  });

  it('a multipart upload while the only worker is busy: 503 queue_full, no reset', async () => {
    // Multi-scale segmentation at output stride 8 holds the only worker (and, with no queue, the
    // whole capacity) for several seconds.
    const holder = fetch(`${base}/v1/segment?model=${SEGMENTER}&strategy=mf&outputStride=8`, {
      method: 'POST', body: new Uint8Array(photo('pets.jpg')), headers: { 'x-request-timeout-ms': '120000' },
    });
    for (;;) {
      const metrics = await (await fetch(`${base}/metrics`)).text();
      if (/^vision_queue_depth 0$/m.test(metrics) && (await fetch(`${base}/v1/classify`, { method: 'POST', body: new Uint8Array(big) })).status === 503) break;
      await new Promise((r) => setTimeout(r, 20));
    }
    const result = await tally(() => fetch(`${base}/v1/classify`, { method: 'POST', body: form([{ name: 'image', data: large }]) }));
    expect((await holder).status).toBe(200);
    expect(result.errors).toEqual([]);
    expect(result.statuses).toEqual({ '503 queue_full': TRIES });
  }, 120_000);

  it('a raw body of 40 MB, over the 20 MB limit: 413 body_too_large, no reset', async () => {
    const huge = new Uint8Array(40 * 2 ** 20);
    const result = await tally(() => fetch(`${base}/v1/classify`, { method: 'POST', body: huge }));
    expect(result.errors).toEqual([]);
    expect(result.statuses).toEqual({ '413 body_too_large': TRIES });
  });
});
