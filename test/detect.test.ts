import sharp from 'sharp';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../src/app.js';
import { photo, testConfig } from './helpers.js';

interface DetectResponse {
  detections: { label: string; classId: number; score: number; box: { x: number; y: number; width: number; height: number } }[];
  model: { name: string; task: string };
  multiplyAdds: number;
  image: { width: number; height: number };
}

let app: FastifyInstance;
beforeAll(async () => {
  app = await buildApp(testConfig({ MODELS: 'ssdlite_mobilenet_v2_coco' }));
  await app.modelsLoaded;
});
afterAll(() => app.close());

const post = (body: Buffer, query = '', headers: Record<string, string> = {}) =>
  app.inject({ method: 'POST', url: `/v1/detect${query}`, payload: body, headers: { 'content-type': 'application/octet-stream', ...headers } });

async function detect(body: Buffer, query = ''): Promise<DetectResponse> {
  const response = await post(body, query);
  expect(response.statusCode, response.body).toBe(200);
  return response.json<DetectResponse>();
}

const count = (r: DetectResponse, label: string) => r.detections.filter((d) => d.label === label).length;

describe('POST /v1/detect', () => {
  it.each([
    ['grace_hopper.png', 'person', 1],
    ['cat.png', 'cat', 1],
    ['pets.jpg', 'dog', 2],
    ['kite_and_cold.jpg', 'kite', 2],
    ['kite_and_cold.jpg', 'person', 2],
    ['astronaut.png', 'person', 1],
    ['coffee.png', 'cup', 1],
    ['motorcycle_left.png', 'motorcycle', 1],
  ])('finds in %s at least one %s (%i)', async (name, label, atLeast) => {
    const result = await detect(photo(name));
    expect(count(result, label)).toBeGreaterThanOrEqual(atLeast);
    expect(result.model).toMatchObject({ name: 'ssdlite_mobilenet_v2_coco', task: 'detection' });
    expect(result.multiplyAdds).toBe(749_503_856);
    for (const d of result.detections) {
      expect(d.score).toBeGreaterThanOrEqual(0.5);
      expect(d.box.x).toBeGreaterThanOrEqual(0);
      expect(d.box.y).toBeGreaterThanOrEqual(0);
      expect(d.box.x + d.box.width).toBeLessThanOrEqual(result.image.width + 1e-6);
      expect(d.box.y + d.box.height).toBeLessThanOrEqual(result.image.height + 1e-6);
    }
  });

  it('puts boxes in pixels of the photo as seen, EXIF orientation applied', async () => {
    const upright = await detect(photo('pets.jpg'));
    const { width, height } = upright.image;
    // The same photo stored turned a quarter clockwise, with an EXIF tag saying to turn it back.
    const stored = await sharp(photo('pets.jpg')).rotate(-90).withMetadata({ orientation: 6 }).jpeg({ quality: 95 }).toBuffer();
    expect((await sharp(stored).metadata()).width).toBe(height);
    const rotated = await detect(stored);
    expect(rotated.image).toMatchObject({ width, height });
    expect(count(rotated, 'dog')).toBe(count(upright, 'dog'));
    for (const d of upright.detections) {
      const twin = rotated.detections.find((r) => r.label === d.label && Math.abs(r.box.x - d.box.x) < 0.03 * width && Math.abs(r.box.y - d.box.y) < 0.03 * height);
      expect(twin, JSON.stringify(d)).toBeDefined();
      expect(Math.abs(twin!.box.width - d.box.width)).toBeLessThan(0.03 * width);
    }
  });

  it('keeps only the requested classes, the requested number and the score threshold', async () => {
    const cats = await detect(photo('pets.jpg'), '?classes=cat');
    expect(count(cats, 'dog')).toBe(0);
    const people = await detect(photo('kite_and_cold.jpg'), '?classes=person,kite&minScore=0.2&maxDetections=3');
    expect(people.detections).toHaveLength(3);
    expect(people.detections.every((d) => ['person', 'kite'].includes(d.label) && d.score >= 0.2)).toBe(true);
    const loose = await detect(photo('kite_and_cold.jpg'), '?minScore=0.1&maxDetections=100');
    expect(loose.detections.length).toBeGreaterThan(people.detections.length);
  });

  it('draws the boxes on the photo for format=image or an image Accept header', async () => {
    const png = await post(photo('pets.jpg'), '?format=image');
    expect(png.statusCode).toBe(200);
    expect(png.headers['content-type']).toBe('image/png');
    const meta = await sharp(png.rawPayload).metadata();
    expect([meta.format, meta.width, meta.height]).toEqual(['png', 512, 430]);
    const original = await sharp(photo('pets.jpg')).raw().toBuffer();
    const drawn = await sharp(png.rawPayload).removeAlpha().raw().toBuffer();
    expect(drawn.equals(original)).toBe(false);

    const jpeg = await post(photo('pets.jpg'), '', { accept: 'image/jpeg' });
    expect(jpeg.headers['content-type']).toBe('image/jpeg');
    expect((await sharp(jpeg.rawPayload).metadata()).format).toBe('jpeg');
  });

  it.each([
    ['?minScore=1.5', 'minScore'],
    ['?minScore=-0.1', 'minScore'],
    ['?maxDetections=0', 'maxDetections'],
    ['?maxDetections=101', 'maxDetections'],
    ['?iouThreshold=2', 'iouThreshold'],
    ['?classes=unicorn', 'classes'],
    ['?classes=dog,n/a', 'classes'],
    ['?format=gif', 'format'],
  ])('refuses %s with a 400 naming %s', async (query, parameter) => {
    const response = await post(photo('cat.png'), query);
    expect(response.statusCode).toBe(400);
    expect(response.json().error.code).toBe('invalid_request');
    expect(response.json().error.message).toContain(parameter);
  });

  it('refuses bad images as every image route does', async () => {
    expect((await post(Buffer.alloc(0))).json().error.code).toBe('empty_body');
    expect((await post(photo('truncated.jpg'))).statusCode).toBe(422);
    expect((await post(Buffer.from('BM' + '\0'.repeat(64)))).statusCode).toBe(415);
    expect((await post(photo('cat.png'), '?model=mobilenet_v2_1.0_224')).json().error.code).toBe('unknown_model');
    expect(count(await detect(photo('cat.png')), 'cat')).toBe(1);
  });
});

describe('boxes of a detector whose input is a central crop', () => {
  let cropped: FastifyInstance;
  beforeAll(async () => {
    const config = testConfig({ MODELS: 'ssdlite_mobilenet_v2_coco', POOL_SIZE: '1' });
    cropped = await buildApp({ ...config, preprocess: { ssdlite_mobilenet_v2_coco: { crop: 'central', fraction: 0.875, kernel: 'lanczos3' } } });
    await cropped.modelsLoaded;
  });
  afterAll(() => cropped?.close());

  it('are still in pixels of the whole photo: the dogs of pets.jpg land where the uncropped model puts them', async () => {
    const whole = await detect(photo('pets.jpg'));
    const res = await cropped.inject({ method: 'POST', url: '/v1/detect', payload: photo('pets.jpg'), headers: { 'content-type': 'application/octet-stream' } });
    const crop = res.json<DetectResponse>();
    expect(crop.image).toEqual(whole.image);
    const { width, height } = whole.image;
    const dogs = (r: DetectResponse) => r.detections.filter((d) => d.label === 'dog');
    expect(dogs(crop).length).toBeGreaterThanOrEqual(1);
    for (const d of dogs(crop)) {
      // A box mapped as if the crop were the whole photo would be off by 6% of each side or more.
      const twin = dogs(whole).find((w) => Math.abs(w.box.x - d.box.x) < 0.03 * width && Math.abs(w.box.y - d.box.y) < 0.03 * height);
      expect(twin, JSON.stringify(d)).toBeDefined();
      expect(Math.abs(twin!.box.width - d.box.width)).toBeLessThan(0.06 * width);
    }
  });
});
