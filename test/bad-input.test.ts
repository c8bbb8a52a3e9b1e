import { crc32 } from 'node:zlib';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../src/app.js';
import { multipart, photo, testConfig } from './helpers.js';

const BODY_LIMIT = 1024 * 1024;

function pngChunk(type: string, data: Buffer): Buffer {
  const length = Buffer.alloc(4);
  length.writeUInt32BE(data.length);
  const body = Buffer.concat([Buffer.from(type, 'latin1'), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(body));
  return Buffer.concat([length, body, crc]);
}

/** A valid, tiny PNG file whose header claims the given size. */
function pngClaiming(width: number, height: number): Buffer {
  const header = Buffer.alloc(13);
  header.writeUInt32BE(width, 0);
  header.writeUInt32BE(height, 4);
  header.set([8, 2, 0, 0, 0], 8);
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    pngChunk('IHDR', header),
    pngChunk('IDAT', Buffer.from([0x78, 0x9c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01])),
    pngChunk('IEND', Buffer.alloc(0)),
  ]);
}

let app: FastifyInstance;
beforeAll(async () => {
  app = await buildApp(testConfig({ MODELS: 'mobilenet_v2_1.0_224', BODY_LIMIT_BYTES: String(BODY_LIMIT) }));
  await app.modelsLoaded;
});
afterAll(() => app.close());

const post = (payload: Buffer | string, headers: Record<string, string> = { 'content-type': 'application/octet-stream' }) =>
  app.inject({ method: 'POST', url: '/v1/classify', payload, headers });

async function expectStillServing() {
  const response = await post(photo('parrot.jpg'));
  expect(response.statusCode).toBe(200);
  expect(response.json().predictions[0].label).toBe('macaw');
}

const cases: [string, () => ReturnType<typeof post>, number, string][] = [
  ['an empty body', () => post(Buffer.alloc(0)), 400, 'empty_body'],
  ['no body at all', () => app.inject({ method: 'POST', url: '/v1/classify' }), 400, 'empty_body'],
  ['text bytes', () => post('hello, this is not an image', { 'content-type': 'text/plain' }), 415, 'unsupported_media_type'],
  ['JSON', () => post('{"image": "cat.png"}', { 'content-type': 'application/json' }), 415, 'unsupported_media_type'],
  ['a BMP image', () => post(Buffer.concat([Buffer.from('BM'), Buffer.alloc(64)]), { 'content-type': 'image/bmp' }), 415, 'unsupported_media_type'],
  ['truncated.jpg', () => post(photo('truncated.jpg'), { 'content-type': 'image/jpeg' }), 422, 'invalid_image'],
  ['a JPEG cut in half', () => post(photo('burger.jpg').subarray(0, 8000)), 422, 'invalid_image'],
  ['a PNG header claiming 50000x50000 pixels', () => post(pngClaiming(50_000, 50_000), { 'content-type': 'image/png' }), 413, 'image_too_large'],
  ['a raw body over the size limit', () => post(Buffer.alloc(BODY_LIMIT + 1, 0xff)), 413, 'body_too_large'],
  ['a multipart file over the size limit', () => {
    const form = multipart([{ name: 'image', filename: 'big.jpg', data: Buffer.alloc(BODY_LIMIT + 1, 0xff) }]);
    return app.inject({ method: 'POST', url: '/v1/classify', ...form });
  }, 413, 'body_too_large'],
  ['a multipart form without the image field', () => {
    const form = multipart([{ name: 'picture', filename: 'cat.png', data: photo('cat.png') }]);
    return app.inject({ method: 'POST', url: '/v1/classify', ...form });
  }, 400, 'invalid_multipart'],
  ['a multipart form with two images', () => {
    const form = multipart([
      { name: 'image', filename: 'cat.png', data: photo('cat.png') },
      { name: 'image', filename: 'bird.png', data: photo('bird.png') },
    ]);
    return app.inject({ method: 'POST', url: '/v1/classify', ...form });
  }, 400, 'invalid_multipart'],
  ['a multipart form with an extra field', () => {
    const form = multipart([{ name: 'image', filename: 'cat.png', data: photo('cat.png') }, { name: 'note', data: 'hi' }]);
    return app.inject({ method: 'POST', url: '/v1/classify', ...form });
  }, 400, 'invalid_multipart'],
];

describe('bad input', () => {
  it.each(cases)('refuses %s with a precise JSON error and keeps serving', async (_what, send, status, code) => {
    const response = await send();
    expect(response.statusCode, response.body).toBe(status);
    expect(response.headers['content-type']).toMatch(/^application\/json/);
    const body = response.json();
    expect(body.error.code).toBe(code);
    expect(body.error.message).toEqual(expect.any(String));
    expect(body.error.message).not.toMatch(/\n\s+at /);
    await expectStillServing();
  });

  it('answers an unknown route with a JSON 404', async () => {
    const response = await app.inject('/v1/nothing');
    expect(response.statusCode).toBe(404);
    expect(response.json().error.code).toBe('not_found');
  });

  it('trusts the bytes, not the Content-Type', async () => {
    const response = await post(photo('cat.png'), { 'content-type': 'image/jpeg' });
    expect(response.statusCode).toBe(200);
    expect(response.json().image.format).toBe('png');
  });

  it('counts refusals by error code', async () => {
    await post(Buffer.alloc(0));
    expect((await app.inject('/metrics')).body).toMatch(/vision_errors_total\{code="empty_body"\} [1-9]/);
  });
});
