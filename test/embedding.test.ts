// POST /v1/embed: the classifier's pooled features as an image embedding. The oracle for
// similarity is the photos' identity: a resized, recompressed copy of a photo must be nearer to
// it than to any other shared photo. Costs come from a hand count of the classifier head.
import { readdirSync } from 'node:fs';
import sharp from 'sharp';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../src/app.js';
import { mobileNetV2Classifier } from '../src/model/mobilenet-v2.js';
import { IMAGES_DIR, photo, testConfig } from './helpers.js';

/** Every shared photo: the label maps (masks, golden outputs) and the truncated file are not photos. */
const PHOTOS = readdirSync(IMAGES_DIR).filter((f) => /\.(png|jpg)$/.test(f) && !/mask|golden|truncated/.test(f)).sort();

interface Embedding {
  embedding: number[];
  dimensions: number;
  normalized: boolean;
  model: { name: string; task: string };
  multiplyAdds: number;
  image: { format: string; width: number; height: number };
}

let app: FastifyInstance;
beforeAll(async () => {
  app = await buildApp(testConfig({ MODELS: 'mobilenet_v2_1.0_224,ssdlite_mobilenet_v2_coco' }));
  await app.modelsLoaded;
});
afterAll(() => app.close());

const post = (url: string, payload: Buffer) => app.inject({ method: 'POST', url, payload, headers: { 'content-type': 'application/octet-stream' } });

async function embed(payload: Buffer, query = 'normalize=true'): Promise<Embedding> {
  const response = await post(`/v1/embed?${query}`, payload);
  expect(response.statusCode, response.body).toBe(200);
  return response.json<Embedding>();
}

const dot = (a: number[], b: number[]) => a.reduce((sum, v, i) => sum + v * b[i]!, 0);
const norm = (a: number[]) => Math.sqrt(dot(a, a));

/** binary16 bits to a number, by the format's definition (not by the encoder under test). */
function fromFloat16(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const exponent = (bits >> 10) & 0x1f;
  const fraction = bits & 0x3ff;
  if (exponent === 0) return sign * fraction * 2 ** -24;
  if (exponent === 31) return fraction ? NaN : sign * Infinity;
  return sign * (1 + fraction / 1024) * 2 ** (exponent - 15);
}

describe('POST /v1/embed', () => {
  it('ranks each photo\'s resized, recompressed copy nearest to that photo among all shared photos', async () => {
    expect(PHOTOS.length).toBeGreaterThanOrEqual(20);
    const originals = await Promise.all(PHOTOS.map(async (name) => (await embed(photo(name))).embedding));
    const report: string[] = [];
    for (const [i, name] of PHOTOS.entries()) {
      const { width } = await sharp(photo(name)).metadata();
      // Half the width (aspect kept) and JPEG at quality 50: another file, the same picture.
      const copy = await sharp(photo(name)).resize({ width: Math.round(width! / 2) }).jpeg({ quality: 50 }).toBuffer();
      const query = (await embed(copy)).embedding;
      const similarities = originals.map((o) => dot(o, query));
      const rank = 1 + similarities.filter((s) => s > similarities[i]!).length;
      const nearestOther = Math.max(...similarities.filter((_, j) => j !== i));
      report.push(`${name}: rank ${rank}, cosine ${similarities[i]!.toFixed(3)} (nearest other ${nearestOther.toFixed(3)})`);
      expect(rank, report.at(-1)).toBe(1);
    }
    console.info(`embedding similarity, ${PHOTOS.length} photos and their copies:\n  ${report.join('\n  ')}`);
  });

  it('is the 1280 pooled features, unit length on request, costing the backbone: the classifier less its 1x1 head', async () => {
    const raw = await embed(photo('parrot.jpg'), '');
    const unit = await embed(photo('parrot.jpg'));
    expect([raw.dimensions, raw.embedding.length, raw.normalized, unit.normalized]).toEqual([1280, 1280, false, true]);
    expect(unit.model).toMatchObject({ name: 'mobilenet_v2_1.0_224', task: 'classification' });
    // After ReLU6 and an average: every feature is in [0, 6].
    expect(Math.min(...raw.embedding)).toBeGreaterThanOrEqual(0);
    expect(Math.max(...raw.embedding)).toBeLessThanOrEqual(6);
    expect(norm(unit.embedding)).toBeCloseTo(1, 5);
    const scaled = raw.embedding.map((v) => v / norm(raw.embedding));
    expect(Math.max(...scaled.map((v, i) => Math.abs(v - unit.embedding[i]!)))).toBeLessThan(1e-6);

    const classified = (await post('/v1/classify', photo('parrot.jpg'))).json<{ multiplyAdds: number }>();
    // The head is one 1x1 convolution from 1280 channels to 1001 classes on a 1x1 map.
    expect(unit.multiplyAdds).toBe(classified.multiplyAdds - 1280 * 1001);
  });

  it('answers float32 and float16 little-endian bytes equal to the JSON numbers', async () => {
    const json = await embed(photo('cat.png'));
    const f32 = await post('/v1/embed?normalize=true&format=float32', photo('cat.png'));
    expect(f32.statusCode).toBe(200);
    expect(f32.headers['content-type']).toBe('application/octet-stream');
    expect(f32.headers['x-embedding-dimensions']).toBe('1280');
    expect(f32.rawPayload.length).toBe(4 * 1280);
    const floats = Array.from({ length: 1280 }, (_, i) => f32.rawPayload.readFloatLE(4 * i));
    expect(floats).toEqual(json.embedding.map((v) => Math.fround(v)));

    const f16 = await post('/v1/embed?normalize=true&format=float16', photo('cat.png'));
    expect(f16.rawPayload.length).toBe(2 * 1280);
    const halves = Array.from({ length: 1280 }, (_, i) => fromFloat16(f16.rawPayload.readUInt16LE(2 * i)));
    // Rounded to nearest: within half a unit in the last place of binary16 (11 significant bits).
    halves.forEach((h, i) => {
      const v = json.embedding[i]!;
      const ulp = v === 0 ? 2 ** -24 : 2 ** (Math.floor(Math.log2(Math.abs(v))) - 10);
      expect(Math.abs(h - v), `element ${i}: ${v} as ${h}`).toBeLessThanOrEqual(Math.max(ulp, 2 ** -24) / 2);
    });
    expect(halves.some((h, i) => h !== json.embedding[i])).toBe(true);
  });

  it('refuses a model that is not a classifier and bad parameters', async () => {
    const detector = await post('/v1/embed?model=ssdlite_mobilenet_v2_coco', photo('cat.png'));
    expect([detector.statusCode, detector.json().error.code]).toEqual([400, 'unknown_model']);
    for (const query of ['normalize=maybe', 'format=float64', 'topk=3']) {
      const response = await post(`/v1/embed?${query}`, photo('cat.png'));
      expect([response.statusCode, response.json().error.code], query).toEqual([400, 'invalid_request']);
    }
    const text = await post('/v1/embed', Buffer.from('not an image'));
    expect([text.statusCode, text.json().error.code]).toEqual([415, 'unsupported_media_type']);
  });

  it('has as many channels as the last convolution at every width: 1280, and more above 1.0 (Keras: 1280 x alpha rounded to 8)', () => {
    for (const alpha of [0.35, 0.5, 0.75, 1.0]) expect(mobileNetV2Classifier({ alpha, resolution: 224 }).features.shape).toEqual([1280, 1, 1]);
    expect(mobileNetV2Classifier({ alpha: 1.3, resolution: 224 }).features.shape).toEqual([1664, 1, 1]);
    expect(mobileNetV2Classifier({ alpha: 1.4, resolution: 224 }).features.shape).toEqual([1792, 1, 1]);
  });
});
