import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../src/app.js';
import { multipart, photo, testConfig } from './helpers.js';

const CATS = ['Egyptian cat', 'tabby, tabby cat', 'tiger cat'];
const EXPECTED_TOP1: [string, string[]][] = [
  ['cat.png', CATS],
  ['chelsea.png', CATS],
  ['parrot.jpg', ['macaw']],
  ['grace_hopper.png', ['military uniform']],
  ['burger.jpg', ['cheeseburger']],
  ['hot_dog.jpg', ['hotdog, hot dog, red hot']],
  ['bird.png', ['chickadee']],
  ['dragonfly.png', ["dragonfly, darning needle, devil's darning needle, sewing needle, snake feeder, snake doctor, mosquito hawk, skeeter hawk"]],
];
const MODELS = ['mobilenet_v2_1.0_224', 'mobilenet_v2_1.0_224_tf2'];

interface Classification {
  predictions: { label: string; index: number; score: number }[];
  model: { name: string; alpha: number; resolution: number };
  multiplyAdds: number;
  image: { format: string; width: number; height: number };
  timings: Record<string, number>;
}

let app: FastifyInstance;
beforeAll(async () => {
  app = await buildApp(testConfig({ MODELS: MODELS.join(',') }));
  await app.modelsLoaded;
});
afterAll(() => app.close());

const classify = async (name: string, query = '') => {
  const response = await app.inject({ method: 'POST', url: `/v1/classify${query}`, payload: photo(name), headers: { 'content-type': 'application/octet-stream' } });
  expect(response.statusCode, response.body).toBe(200);
  return response.json<Classification>();
};

describe('POST /v1/classify', () => {
  describe.each(MODELS)('with %s', (model) => {
    it.each(EXPECTED_TOP1)('labels %s', async (name, labels) => {
      const result = await classify(name, `?model=${model}`);
      expect(labels).toContain(result.predictions[0]!.label);
      expect(result.model).toMatchObject({ name: model, alpha: 1, resolution: 224 });
    });

    it('has espresso in the top 3 for coffee.png', async () => {
      const result = await classify('coffee.png', `?model=${model}&topk=3`);
      expect(result.predictions.map((p) => p.label)).toContain('espresso');
    });
  });

  it('answers the same for a multipart upload as for a raw body', async () => {
    const form = multipart([{ name: 'image', filename: 'parrot.jpg', type: 'image/jpeg', data: photo('parrot.jpg') }]);
    const response = await app.inject({ method: 'POST', url: '/v1/classify', ...form });
    expect(response.statusCode, response.body).toBe(200);
    const raw = await classify('parrot.jpg');
    expect(response.json<Classification>().predictions).toEqual(raw.predictions);
  });

  it('returns top-k probabilities in order, with sizes after EXIF orientation, cost and timings', async () => {
    const result = await classify('parrot.jpg', '?topk=10');
    expect(result.predictions).toHaveLength(10);
    const scores = result.predictions.map((p) => p.score);
    expect([...scores].sort((a, b) => b - a)).toEqual(scores);
    expect(scores[0]).toBeGreaterThan(0.9);
    expect(result.predictions[0]).toMatchObject({ index: 89, label: 'macaw' });
    expect(result.image).toEqual({ format: 'jpeg', width: 512, height: 929 });
    expect(result.multiplyAdds).toBe(300_775_552);
    for (const key of ['decodeMs', 'queueMs', 'inferenceMs', 'totalMs']) expect(result.timings[key]).toBeGreaterThanOrEqual(0);
    expect(result.timings.totalMs).toBeGreaterThanOrEqual(result.timings.inferenceMs!);
    const all = await classify('parrot.jpg', '?topk=1001');
    expect(all.predictions).toHaveLength(1001);
    expect(all.predictions.reduce((sum, p) => sum + p.score, 0)).toBeCloseTo(1, 3);
  });

  it('refuses topk outside 1..1001 (the 1001 classes of the ImageNet files) and unknown models', async () => {
    const cases = [
      ['?topk=0', 'invalid_request'],
      ['?topk=1002', 'invalid_request'],
      ['?topk=abc', 'invalid_request'],
      ['?color=blue', 'invalid_request'],
      ['?model=resnet50', 'unknown_model'],
    ] as const;
    for (const [query, code] of cases) {
      const response = await app.inject({ method: 'POST', url: `/v1/classify${query}`, payload: photo('cat.png') });
      expect([response.statusCode, response.json().error.code], query).toEqual([400, code]);
    }
    const all = await app.inject({ method: 'POST', url: '/v1/classify?topk=1001', payload: photo('cat.png') });
    expect(all.json().predictions).toHaveLength(1001);
  });
});

describe('service routes', () => {
  it('lists the loaded models with their cost figures', async () => {
    const response = await app.inject('/v1/models');
    expect(response.statusCode).toBe(200);
    const body = response.json();
    expect(body.engine).toBe('onnx');
    expect(body.models.map((m: { name: string }) => m.name)).toEqual(MODELS);
    expect(body.models[0]).toMatchObject({ task: 'classification', alpha: 1, resolution: 224, classes: 1001, params: 3_489_097, multiplyAdds: 300_775_552 });
  });

  it('reports live and ready', async () => {
    expect((await app.inject('/healthz')).json()).toEqual({ status: 'ok' });
    expect((await app.inject('/readyz')).statusCode).toBe(200);
  });

  it('counts exactly the multiply-adds of the inferences it ran', async () => {
    const counter = async () => {
      const text = (await app.inject('/metrics')).body;
      const line = text.split('\n').find((l) => l.startsWith('vision_multiply_adds_total{model="mobilenet_v2_1.0_224_tf2",task="classification"}'));
      return Number(line?.split(' ')[1] ?? 0);
    };
    const before = await counter();
    await classify('cat.png', '?model=mobilenet_v2_1.0_224_tf2');
    await classify('bird.png', '?model=mobilenet_v2_1.0_224_tf2');
    expect((await counter()) - before).toBe(2 * 300_775_552);
    const metrics = (await app.inject('/metrics')).body;
    expect(metrics).toMatch(/http_request_duration_seconds_bucket\{le="[^"]+",method="POST",route="\/v1\/classify",status_code="200"\}/);
    expect(metrics).toMatch(/vision_inference_duration_seconds_count\{model="mobilenet_v2_1.0_224_tf2",engine="onnx"\} \d+/);
    expect(metrics).toMatch(/vision_images_processed_total\{model="mobilenet_v2_1.0_224",task="classification"\} \d+/);
    expect(metrics).toMatch(/vision_queue_depth 0/);
  });
});
