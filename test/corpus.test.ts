// A malformed-input corpus generated here, sent through the whole image path: every answer is
// 200 with a right result or a documented 4xx with its documented code; never a 500, never a
// dead worker, and a valid request afterwards still gets the right answer.
import { crc32 } from 'node:zlib';
import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../src/app.js';
import { ERROR_CODES, type ErrorCode } from '../src/http/errors.js';
import { photo, random, testConfig } from './helpers.js';

const MIN_SIDE = 32;

const randomBytes = (next: () => number, length: number) => Buffer.from(Array.from({ length }, () => Math.floor(next() * 256)));

/** Rewrites the frame size of a JPEG's first SOF marker. */
function jpegClaiming(jpeg: Buffer, width: number, height: number): Buffer {
  const out = Buffer.from(jpeg);
  for (let i = 2; i < out.length - 9; ) {
    const marker = out[i + 1]!;
    if (out[i] !== 0xff) throw new Error('not a JPEG marker');
    if (marker >= 0xc0 && marker <= 0xc3) {
      out.writeUInt16BE(height, i + 5);
      out.writeUInt16BE(width, i + 7);
      return out;
    }
    i += 2 + out.readUInt16BE(i + 2);
  }
  throw new Error('no SOF marker');
}

/** Rewrites a PNG's IHDR size and its CRC, so only the size is wrong. */
function pngClaimingSize(png: Buffer, width: number, height: number): Buffer {
  const out = Buffer.from(png);
  out.writeUInt32BE(width, 16);
  out.writeUInt32BE(height, 20);
  out.writeUInt32BE(crc32(out.subarray(12, 29)), 29);
  return out;
}

/** Rewrites a GIF's logical screen and first image descriptor (no global colour table assumed absent). */
function gifClaiming(gif: Buffer, width: number, height: number): Buffer {
  const out = Buffer.from(gif);
  out.writeUInt16LE(width, 6);
  out.writeUInt16LE(height, 8);
  return out;
}

interface Case {
  name: string;
  body: Buffer;
  /** What this case must get; undefined: any documented answer. */
  expect?: { status: number; code?: string; label?: string };
}

let app: FastifyInstance;
const cases: Case[] = [];

beforeAll(async () => {
  app = await buildApp(testConfig({ MODELS: 'mobilenet_v2_1.0_224', POOL_SIZE: '1', MIN_IMAGE_SIDE: String(MIN_SIDE) }));
  const parrot = sharp(photo('parrot.jpg'));
  const small = parrot.clone().resize(128);
  const [jpeg, png, gif] = await Promise.all([small.clone().jpeg().toBuffer(), small.clone().png().toBuffer(), small.clone().gif().toBuffer()]);
  const next = random(5);

  for (let i = 0; i < 12; i++) cases.push({ name: `random bytes #${i}`, body: randomBytes(next, 1 + Math.floor(next() * 4000)) });
  const magics = { jpeg: [0xff, 0xd8, 0xff], png: [...png.subarray(0, 8)], gif: [...Buffer.from('GIF89a')], tiff: [...Buffer.from('II*\0')] };
  for (const [format, magic] of Object.entries(magics)) {
    cases.push({ name: `${format} magic then random bytes`, body: Buffer.concat([Buffer.from(magic), randomBytes(next, 2000)]), expect: { status: 422, code: 'invalid_image' } });
  }

  for (const [format, bytes] of [['JPEG', jpeg], ['PNG', png]] as const) {
    const offsets = new Set([1, 2, 3, 8, 16, 33, 64, 100, 200, 400]);
    for (let k = 1; k < 16; k++) offsets.add(Math.floor((bytes.length * k) / 16));
    offsets.add(bytes.length - 2);
    offsets.add(bytes.length - 1);
    for (const offset of offsets) cases.push({ name: `${format} truncated at ${offset}/${bytes.length}`, body: bytes.subarray(0, offset) });
    for (let i = 0; i < 16; i++) {
      const flipped = Buffer.from(bytes);
      const at = Math.floor(next() * Math.min(300, bytes.length));
      flipped[at]! ^= 1 << Math.floor(next() * 8);
      cases.push({ name: `${format} with a bit flipped at byte ${at}`, body: flipped });
    }
  }

  const solid = (width: number, height: number) => sharp({ create: { width, height, channels: 3, background: '#808080' } }).png().toBuffer();
  cases.push({ name: 'a 1x1 image', body: await solid(1, 1), expect: { status: 422, code: 'image_too_small' } });
  cases.push({ name: `a ${MIN_SIDE - 1}x200 image`, body: await solid(MIN_SIDE - 1, 200), expect: { status: 422, code: 'image_too_small' } });
  cases.push({ name: `a ${MIN_SIDE}x${MIN_SIDE} image`, body: await solid(MIN_SIDE, MIN_SIDE), expect: { status: 200 } });

  cases.push({ name: 'a JPEG header claiming 65000x65000', body: jpegClaiming(jpeg, 65_000, 65_000), expect: { status: 413, code: 'image_too_large' } });
  cases.push({ name: 'a PNG header claiming 100000x100000', body: pngClaimingSize(png, 100_000, 100_000), expect: { status: 413, code: 'image_too_large' } });
  cases.push({ name: 'a GIF header claiming 65535x65535', body: gifClaiming(gif, 65_535, 65_535) });

  const macaw = { status: 200, label: 'macaw' };
  cases.push({ name: 'a CMYK JPEG', body: await small.clone().toColourspace('cmyk').jpeg().toBuffer(), expect: macaw });
  cases.push({ name: 'a 16-bit PNG', body: await small.clone().toColourspace('rgb16').png().toBuffer(), expect: macaw });
  // Turned on its side, with the EXIF tag that turns it back.
  cases.push({ name: 'an EXIF-rotated JPEG', body: await small.clone().rotate(-90).withMetadata({ orientation: 6 }).jpeg().toBuffer(), expect: macaw });
  const frames = await Promise.all(['parrot.jpg', 'burger.jpg'].map((name) => sharp(photo(name)).resize(128, 128, { fit: 'fill' }).raw().toBuffer()));
  const animated = await sharp(Buffer.concat(frames), { raw: { width: 128, height: 256, channels: 3, pageHeight: 128 } } as never).gif({ loop: 0 }).toBuffer();
  cases.push({ name: 'an animated GIF (parrot, then burger)', body: animated, expect: macaw });
  await app.modelsLoaded;
});
afterAll(() => app?.close());

const classify = (payload: Buffer) =>
  app.inject({ method: 'POST', url: '/v1/classify?topk=3', payload, headers: { 'content-type': 'application/octet-stream' } });

/** A documented answer: 200 with a well-formed result, or an error whose code comes with exactly this status. */
function expectDocumented(name: string, res: LightMyRequestResponse): void {
  expect(res.statusCode, `${name}: ${res.body.slice(0, 200)}`).not.toBe(500);
  expect([200, 400, 413, 415, 422], `${name}: ${res.body.slice(0, 200)}`).toContain(res.statusCode);
  expect(res.headers['content-type'], name).toMatch(/^application\/json/);
  const body = res.json();
  if (res.statusCode === 200) {
    expect(body.predictions, name).toHaveLength(3);
    for (const p of body.predictions) expect(p.score, name).toBeGreaterThanOrEqual(0);
  } else {
    expect(ERROR_CODES[body.error.code as ErrorCode], `${name}: ${body.error.code}`).toBe(res.statusCode);
    expect(body.error.message, name).not.toMatch(/\n\s+at /);
  }
}

describe('a generated malformed-input corpus', () => {
  it('gets a documented answer for every case, the expected one where it is known', async () => {
    expect(cases.length).toBeGreaterThan(100);
    const seen = new Map<string, number>();
    for (const { name, body, expect: wanted } of cases) {
      const res = await classify(body);
      expectDocumented(name, res);
      const code = res.statusCode === 200 ? '200' : `${res.statusCode} ${res.json().error.code}`;
      seen.set(code, (seen.get(code) ?? 0) + 1);
      if (!wanted) continue;
      expect(res.statusCode, `${name}: ${res.body.slice(0, 200)}`).toBe(wanted.status);
      if (wanted.code) expect(res.json().error.code, name).toBe(wanted.code);
      if (wanted.label) expect(res.json().predictions[0].label, name).toBe(wanted.label);
    }
    // The corpus reaches every layer: format sniffing, header checks and the decoder.
    for (const answer of ['200', '415 unsupported_media_type', '422 invalid_image', '413 image_too_large', '422 image_too_small']) {
      expect(seen.get(answer), `${answer} in ${JSON.stringify([...seen])}`).toBeGreaterThan(0);
    }
  });

  it('drops alpha from a greyscale image and classifies it like the same image without alpha', async () => {
    const grey = sharp(photo('parrot.jpg')).greyscale();
    const [plain, withAlpha] = await Promise.all([grey.clone().png().toBuffer(), grey.clone().ensureAlpha(0.6).png().toBuffer()]);
    const [a, b] = (await Promise.all([classify(plain), classify(withAlpha)])).map((r) => r.json().predictions[0]);
    expect(b.label).toBe(a.label);
    expect(Math.abs(b.score - a.score)).toBeLessThan(0.05);
  });

  it('reports an EXIF-rotated photo at the size it is seen', async () => {
    const sideways = await sharp(photo('parrot.jpg')).rotate(-90).withMetadata({ orientation: 6 }).jpeg().toBuffer();
    expect((await sharp(sideways).metadata()).width).toBe(929);
    expect((await classify(sideways)).json().image).toMatchObject({ width: 512, height: 929 });
  });

  it('kept every worker alive and still answers a valid request right', async () => {
    expect(app.pool.restarts).toBe(0);
    expect(app.pool.readyWorkers).toBe(1);
    expect(app.pool.stats.failed).toBe(0);
    const res = await classify(photo('parrot.jpg'));
    expect(res.statusCode).toBe(200);
    expect(res.json().predictions[0].label).toBe('macaw');
    expect((await app.inject('/metrics')).body).toMatch(/vision_errors_total\{code="invalid_image"\} [1-9]/);
  });
});
