// Which workers hold which models under WORKER_MEMORY_MB: the rule on hand-made sizes, then the
// service with two workers that can each hold one of two classifiers.
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../src/app.js';
import { costOf } from '../src/model/cost.js';
import { mobileNetV2Classifier } from '../src/model/mobilenet-v2.js';
import { placeModels, placeOne } from '../src/pipeline/placement.js';
import { photo, testConfig } from './helpers.js';
import { thirdPartyRepository, writeVersion } from './repository-fixtures.js';

const MB = 2 ** 20;

describe('placing models on workers', () => {
  it('puts every model everywhere without a budget', () => {
    expect(placeModels([{ name: 'a', bytes: 5 }, { name: 'b', bytes: 7 }], 3, undefined)).toEqual([['a', 'b'], ['a', 'b'], ['a', 'b']]);
  });

  it('gives each model the roomiest worker, largest first, then copies where they fit', () => {
    // Budget 10: c (6) on worker 0, b (5) on worker 1 (the roomiest), a (3) on worker 1 (5 left there, 4 on 0);
    // then copies: a fits worker 0 too (4 left); b and c fit nowhere else.
    const models = [{ name: 'a', bytes: 3 }, { name: 'b', bytes: 5 }, { name: 'c', bytes: 6 }];
    expect(placeModels(models, 2, 10)).toEqual([['a', 'c'], ['a', 'b']]);
    // Room for everything twice over: copies everywhere.
    expect(placeModels(models, 2, 14)).toEqual([['a', 'b', 'c'], ['a', 'b', 'c']]);
  });

  it('refuses a model no worker can hold, naming its size and the budget', () => {
    expect(() => placeModels([{ name: 'big', bytes: 30 * MB }], 2, 20 * MB)).toThrow(/model big needs 30\.0 MB .* WORKER_MEMORY_MB=20\.0 MB/);
    expect(() => placeOne({ name: 'new', bytes: 8 * MB }, [['a'], ['b']], new Map([['a', 15 * MB], ['b', 13 * MB]]), 20 * MB)).toThrow(/no worker has that much .* free \(most free: 7\.0 MB\)/);
    expect(placeOne({ name: 'new', bytes: 6 * MB }, [['a'], ['b']], new Map([['a', 15 * MB], ['b', 13 * MB]]), 20 * MB)).toEqual([1]);
    // A new version of a model takes the place of the old one.
    expect(placeOne({ name: 'a', bytes: 16 * MB }, [['a'], ['b']], new Map([['a', 15 * MB], ['b', 13 * MB]]), 20 * MB)).toEqual([0]);
  });
});

describe('a service whose workers hold one classifier each', () => {
  // 1.0/224: 3,489,097 float32 parameters and the cost model's peak activations, about 19.1 MB.
  const cost = costOf(mobileNetV2Classifier({ alpha: 1, resolution: 224 }).graph);
  const bytes = 4 * cost.params + cost.peakActivationBytes;
  const repository = thirdPartyRepository();
  for (const [name, file] of [['first', 'mobilenet_v2_1.0_224_quant.tflite'], ['second', 'tf2_mobilenet_v2_1.0_224_ptq.tflite']]) {
    writeVersion(repository, name!, 1, { config: { task: 'classification', format: 'tflite', weights: `@models/${file}`, labels: '@models/labels/imagenet_labels.txt' } });
  }
  let app: FastifyInstance;
  beforeAll(async () => {
    app = await buildApp(testConfig({ MODEL_REPOSITORY: repository, MODELS: 'first,second', POOL_SIZE: '2', WORKER_MEMORY_MB: String(Math.floor((1.5 * bytes) / MB)), ADMIN_TOKEN: 't' }));
    await app.modelsLoaded;
  });
  afterAll(() => app.close());

  it('loads each on one worker and serves both', async () => {
    const listing = (await app.inject('/v1/models')).json() as { models: { name: string; workers: number; memoryBytes: number }[] };
    expect(listing.models.map((m) => [m.name, m.workers, m.memoryBytes])).toEqual([['first', 1, bytes], ['second', 1, bytes]]);
    const answers = await Promise.all(Array.from({ length: 8 }, (_, i) =>
      app.inject({ method: 'POST', url: `/v1/classify?topk=1&model=${i % 2 ? 'second' : 'first'}`, payload: photo('parrot.jpg') })));
    expect(answers.map((a) => a.statusCode)).toEqual(Array(8).fill(200));
    expect(answers.map((a) => a.json().predictions[0].label)).toEqual(Array(8).fill('macaw'));
  });

  it('refuses to load a model no worker has room for, and keeps serving', async () => {
    const response = await app.inject({ method: 'POST', url: '/v2/repository/models/nsfwjs/load', headers: { authorization: 'Bearer t' } });
    expect([response.statusCode, response.json().error.code]).toEqual([400, 'load_failed']);
    expect(response.json().error.message).toMatch(/model nsfwjs needs \d+\.\d MB .* no worker has that much of WORKER_MEMORY_MB=\d+\.\d MB free/);
    expect((await app.inject({ method: 'POST', url: '/v1/classify?model=first', payload: photo('parrot.jpg') })).statusCode).toBe(200);
  });

  it('refuses at start a model bigger than a worker may hold', async () => {
    await expect(buildApp(testConfig({ MODEL_REPOSITORY: repository, MODELS: 'first', POOL_SIZE: '1', WORKER_MEMORY_MB: '10' }))).rejects.toThrow(/model first needs 19\.\d MB .* WORKER_MEMORY_MB=10\.0 MB/);
  });
});
