// Requests that go wrong below the routes (malformed HTTP, undecodable URLs, unmet expectations)
// are answered like every other refusal: JSON `{error: {code, message}}` with an X-Request-Id and
// the security headers. Plus the small things a careful client notices.
import { connect } from 'node:net';
import type { AddressInfo } from 'node:net';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../src/app.js';
import { photo, testConfig } from './helpers.js';
import { post } from './http-client.js';

let app: FastifyInstance;
let port: number;

beforeAll(async () => {
  app = await buildApp(testConfig({ MODELS: 'mobilenet_v2_1.0_224,ssdlite_mobilenet_v2_coco', POOL_SIZE: '1' }));
  await app.listen({ host: '127.0.0.1', port: 0 });
  port = (app.server.address() as AddressInfo).port;
  await app.modelsLoaded;
});
afterAll(() => app?.close());

/** Sends raw bytes and collects what comes back until the server closes or goes quiet. */
function raw(bytes: string | Buffer, quietMs = 500): Promise<string> {
  return new Promise((resolve) => {
    let received = '';
    let timer: NodeJS.Timeout;
    const done = () => resolve(received);
    const socket = connect(port, '127.0.0.1', () => socket.write(bytes));
    const quiet = () => {
      clearTimeout(timer);
      timer = setTimeout(() => {
        socket.destroy();
        done();
      }, quietMs);
    };
    socket.on('data', (c: Buffer) => {
      received += c.toString('latin1');
      quiet();
    });
    socket.on('close', () => {
      clearTimeout(timer);
      done();
    });
    socket.on('error', () => {});
    quiet();
  });
}

interface Answer {
  status: number;
  headers: Record<string, string>;
  body: string;
}

/** The HTTP/1.1 answers in a byte stream, in order. */
function answers(stream: string): Answer[] {
  const out: Answer[] = [];
  let rest = stream;
  while (rest.startsWith('HTTP/1.1 ')) {
    const end = rest.indexOf('\r\n\r\n');
    const [statusLine, ...lines] = rest.slice(0, end).split('\r\n');
    const headers = Object.fromEntries(lines.map((l) => [l.slice(0, l.indexOf(':')).toLowerCase(), l.slice(l.indexOf(':') + 1).trim()]));
    const length = Number(headers['content-length'] ?? 0);
    out.push({ status: Number(statusLine!.split(' ')[1]), headers, body: rest.slice(end + 4, end + 4 + length) });
    rest = rest.slice(end + 4 + length);
  }
  return out;
}

function expectOurRefusal(answer: Answer | undefined, status: number, code: string, message?: RegExp): void {
  expect(answer, 'no answer').toBeDefined();
  expect(answer!.status).toBe(status);
  expect(answer!.headers['content-type']).toMatch(/^application\/json/);
  expect(answer!.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
  expect(answer!.headers['x-content-type-options']).toBe('nosniff');
  const body = JSON.parse(answer!.body) as { error: { code: string; message: string } };
  expect(body.error.code).toBe(code);
  if (message) expect(body.error.message).toMatch(message);
}

describe('malformed HTTP is refused in the service\'s own format', () => {
  it.each([
    ['a percent-encoding that does not decode', 'GET /v1/models%zz HTTP/1.1\r\nHost: t\r\n\r\n', /percent-encoding/],
    ['headers over 16 KB', `GET /healthz HTTP/1.1\r\nHost: t\r\nX-Big: ${'a'.repeat(17_000)}\r\n\r\n`, /16 KB/],
    ['10,000 query parameters', `GET /v1/models?${Array.from({ length: 10_000 }, (_, i) => `p${i}=1`).join('&')} HTTP/1.1\r\nHost: t\r\n\r\n`, /16 KB/],
    ['a chunk size that is not hexadecimal', 'POST /v1/classify HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n', /chunk size/],
    ['Content-Length and Transfer-Encoding together', 'POST /v1/classify HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n', /Content-Length and Transfer-Encoding/],
    ['no Host header in HTTP/1.1', 'GET /healthz HTTP/1.1\r\n\r\n', /Host/],
    ['an Expect other than 100-continue', 'POST /v1/classify HTTP/1.1\r\nHost: t\r\nExpect: 200-ok\r\nContent-Length: 3\r\n\r\nabc', /Expect: 200-ok/],
  ])('%s: 400 invalid_request', async (_case, bytes, message) => {
    expectOurRefusal(answers(await raw(bytes))[0], 400, 'invalid_request', message);
  });

  it('answers the request before a Content-Length that was too short, then refuses what follows', async () => {
    // The body says 10 bytes and sends 24: the first request is a complete (unusable) image;
    // the 14 bytes after it are not a request.
    const stream = answers(await raw('POST /v1/classify HTTP/1.1\r\nHost: t\r\nContent-Type: image/jpeg\r\nContent-Length: 10\r\n\r\n0123456789not a request\r\n'));
    expect(stream).toHaveLength(2);
    expectOurRefusal(stream[0], 415, 'unsupported_media_type');
    expectOurRefusal(stream[1], 400, 'invalid_request');
  });
});

describe('small things', () => {
  it('lowers an X-Request-Timeout-Ms of 11 digits to the maximum instead of refusing it', async () => {
    const res = await post(`http://127.0.0.1:${port}/v1/classify?topk=1`, photo('parrot.jpg'), { 'x-request-timeout-ms': '99999999999' });
    expect(res.status, res.body).toBe(200);
  });

  it('returns each detection once when a class is named twice, in any case', async () => {
    const url = `http://127.0.0.1:${port}/v1/detect`;
    const once = (await post(`${url}?classes=person`, photo('kite_and_cold.jpg'))).json();
    const thrice = (await post(`${url}?classes=person,person,PERSON`, photo('kite_and_cold.jpg'))).json();
    expect(once.detections.length).toBeGreaterThan(0);
    expect(thrice.detections).toEqual(once.detections);
  });

  it('sends nosniff everywhere, and a content security policy and no framing on the pages for people', async () => {
    for (const url of ['/healthz', '/v1/models', '/nowhere']) expect((await app.inject(url)).headers['x-content-type-options'], url).toBe('nosniff');
    for (const url of ['/', '/docs/']) {
      const page = await app.inject(url);
      expect(page.headers['content-type'], url).toMatch(/^text\/html/);
      expect(page.headers['content-security-policy'], url).toMatch(/default-src 'self'.*frame-ancestors 'none'/);
      expect(page.headers['x-frame-options'], url).toBe('DENY');
    }
  });

  it('does not copy the client\'s Host header into the served API document', async () => {
    const document = (await app.inject({ url: '/docs/json', headers: { host: 'evil.example:666' } })).json<{ servers: { url: string }[] }>();
    expect(document.servers[0]!.url).toBe('/');
    expect(JSON.stringify(document)).not.toContain('evil.example');
  });
});
