// The management API: who may use it, loading a new version under load with no request failing,
// broken versions refused while the old one keeps serving, unloading, and polling the repository.
import { copyFileSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import onnxProto from 'onnx-proto';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../src/app.js';
import { MODEL_DIR, photo, testConfig } from './helpers.js';
import { until } from './http-client.js';
import { TORCHVISION_MEAN, TORCHVISION_STD, writeVersion } from './repository-fixtures.js';

const TOKEN = 'correct horse battery staple';
const auth = { authorization: `Bearer ${TOKEN}` };
const imagenet = { task: 'classification', format: 'tflite', labels: '@models/labels/imagenet_labels.txt' };

function repositoryWith(versions: Record<number, string>): string {
  const repository = mkdtempSync(join(tmpdir(), 'managed-'));
  for (const [version, weights] of Object.entries(versions)) writeVersion(repository, 'cls', Number(version), { config: { ...imagenet, weights } });
  return repository;
}

async function classify(app: FastifyInstance, model = 'cls') {
  return app.inject({ method: 'POST', url: `/v1/classify?model=${model}&topk=1`, payload: photo('parrot.jpg') });
}

describe('management API access', () => {
  it('is off without ADMIN_TOKEN: 403 for every route', async () => {
    const app = await buildApp(testConfig({ MODELS: 'mobilenet_v2_1.0_224', POOL_SIZE: '1' }));
    try {
      for (const url of ['/v2/repository/index', '/v2/repository/models/mobilenet_v2_1.0_224/load', '/v2/repository/models/mobilenet_v2_1.0_224/unload']) {
        const response = await app.inject({ method: 'POST', url, headers: auth });
        expect([response.statusCode, response.json().error.code], url).toEqual([403, 'forbidden']);
      }
      await app.modelsLoaded;
    } finally {
      await app.close();
    }
  });

  it('with ADMIN_TOKEN: 401 without a token, 403 with a wrong one, 200 with the right one', async () => {
    const app = await buildApp(testConfig({ MODELS: 'mobilenet_v2_1.0_224', POOL_SIZE: '1', ADMIN_TOKEN: TOKEN }));
    try {
      await app.modelsLoaded;
      const index = (headers: Record<string, string>) => app.inject({ method: 'POST', url: '/v2/repository/index', headers, payload: '{}' });
      const none = await index({});
      expect([none.statusCode, none.json().error.code, none.headers['www-authenticate']]).toEqual([401, 'unauthorized', 'Bearer']);
      expect((await index({ authorization: TOKEN })).statusCode).toBe(401);
      for (const wrong of ['Bearer wrong', `Bearer ${TOKEN}x`, `Bearer ${TOKEN.slice(0, -1)}`]) {
        const response = await index({ authorization: wrong });
        expect([response.statusCode, response.json().error.code], wrong).toEqual([403, 'forbidden']);
      }
      const right = await index(auth);
      expect(right.statusCode).toBe(200);
      const rows = right.json() as { name: string; version: string; state: string }[];
      expect(rows.find((r) => r.name === 'mobilenet_v2_1.0_224')).toMatchObject({ version: '1', state: 'READY' });
      expect(rows.find((r) => r.name === 'ssdlite_mobilenet_v2_coco')).toMatchObject({ version: '1', state: 'UNAVAILABLE' });
      const ready = (await app.inject({ method: 'POST', url: '/v2/repository/index', headers: auth, payload: '{"ready": true}' })).json() as { name: string }[];
      expect(ready.map((r) => r.name)).toEqual(['mobilenet_v2_1.0_224']);
    } finally {
      await app.close();
    }
  });
});

describe('loading and unloading', () => {
  const repository = repositoryWith({ 1: '@models/mobilenet_v2_1.0_224_quant.tflite' });
  let app: FastifyInstance;
  const load = (version?: number) => app.inject({
    method: 'POST', url: '/v2/repository/models/cls/load', headers: auth,
    payload: version === undefined ? '' : JSON.stringify({ parameters: { version: String(version) } }),
  });

  beforeAll(async () => {
    app = await buildApp(testConfig({ MODEL_REPOSITORY: repository, MODELS: 'cls', POOL_SIZE: '2', ADMIN_TOKEN: TOKEN, MAX_QUEUE: '256' }));
    await app.modelsLoaded;
  });
  afterAll(() => app.close());

  it('swaps to a new version under load with no request failing', async () => {
    const first = (await classify(app)).json();
    expect(first.model).toMatchObject({ name: 'cls', version: 1 });
    writeVersion(repository, 'cls', 2, { config: { ...imagenet, weights: '@models/tf2_mobilenet_v2_1.0_224_ptq.tflite' } });
    const answers: { status: number; version?: number }[] = [];
    let loading = true;
    const client = async () => {
      while (loading) {
        const response = await classify(app);
        answers.push({ status: response.statusCode, version: response.statusCode === 200 ? response.json().model.version : undefined });
      }
    };
    const clients = Array.from({ length: 4 }, client);
    await until(() => answers.length >= 8, 30_000, 'requests before the reload');
    const loaded = await load();
    expect(loaded.statusCode, loaded.body).toBe(200);
    expect(loaded.json()).toEqual({ name: 'cls', version: '2' });
    const swappedAt = answers.length;
    await until(() => answers.length >= swappedAt + 8, 30_000, 'requests after the reload');
    loading = false;
    await Promise.all(clients);
    const failed = answers.filter((a) => a.status !== 200);
    console.log(`reload under load: ${answers.length} requests sent, ${failed.length} failed; versions seen: ${[...new Set(answers.map((a) => a.version))].join(', ')}`);
    expect(failed).toEqual([]);
    expect(answers.slice(0, 4).every((a) => a.version === 1)).toBe(true);
    expect(answers.slice(-4).every((a) => a.version === 2)).toBe(true);
    expect((await classify(app)).json().model.version).toBe(2);
  });

  it('refuses broken versions with the reason while the loaded version keeps serving', async () => {
    const tflite = readFileSync(join(MODEL_DIR, 'mobilenet_v2_1.0_224_quant.tflite'));
    // Truncated weights.
    writeVersion(repository, 'cls', 3, { config: { ...imagenet, weights: 'model.tflite' }, files: { 'model.tflite': tflite.subarray(0, tflite.length / 2) } });
    // Wrong shapes: a torchvision file whose one 1x1 projection was stored as [in, out] instead of [out, in].
    const { onnx } = onnxProto;
    const model = onnx.ModelProto.decode(readFileSync(join(MODEL_DIR, 'third-party/torchvision/tv_mobilenet_v2_0.5_160_random.onnx')));
    const project = model.graph!.node!.filter((n) => n.opType === 'Conv')[2]!;
    const weight = model.graph!.initializer!.find((t) => t.name === project.input![1])!;
    weight.dims = [weight.dims![1]!, weight.dims![0]!, 1, 1];
    writeVersion(repository, 'cls', 4, {
      config: { task: 'classification', format: 'onnx', weights: 'model.onnx', labels: 'labels.txt', preprocessing: { mean: TORCHVISION_MEAN, std: TORCHVISION_STD } },
      files: { 'model.onnx': Buffer.from(onnx.ModelProto.encode(model).finish()), 'labels.txt': Array.from({ length: 1000 }, (_, i) => `c${i}`).join('\n') },
    });
    // A bad config.
    writeVersion(repository, 'cls', 5, { config: { ...imagenet, format: 'caffe', weights: '@models/mobilenet_v2_1.0_224_quant.tflite' } });

    const reasons: Record<number, RegExp> = {
      3: /version 3 did not load \(the loaded version keeps serving\): .*(subgraph|TFLite|flatbuffer|offset|bounds)/i,
      4: /version 4 did not load.*expects \[\d+,\d+,1,1\] but node '.*Conv' \(Conv\) weight \[\d+,\d+,1,1\] does not match/,
      5: /version 5 did not load.*config\.yaml: format is "caffe"; valid values: tflite, tfjs-layers, tfjs-graph, onnx/,
    };
    for (const [version, reason] of Object.entries(reasons)) {
      const response = await load(Number(version));
      expect(response.statusCode, response.body).toBe(400);
      expect(response.json().error.code).toBe('load_failed');
      expect(response.json().error.message).toMatch(reason);
      const answer = await classify(app);
      expect([answer.statusCode, answer.json().model.version], `after version ${version}`).toEqual([200, 2]);
    }
    const index = (await app.inject({ method: 'POST', url: '/v2/repository/index', headers: auth })).json() as { version: string; state: string; reason: string }[];
    expect(index.find((r) => r.version === '2')).toMatchObject({ state: 'READY' });
    for (const version of ['3', '4', '5']) expect(index.find((r) => r.version === version)).toMatchObject({ state: 'UNAVAILABLE', reason: expect.stringMatching(/^load failed: /) });
    const metrics = (await app.inject('/metrics')).body;
    expect(metrics).toMatch(/vision_model_loaded\{model="cls",version="2",task="classification"\} 1/);
    expect(metrics).not.toMatch(/vision_model_loaded\{model="cls",version="1"/);
  });

  it('unloads: the model answers 503 model_not_loaded until it is loaded again', async () => {
    const unloaded = await app.inject({ method: 'POST', url: '/v2/repository/models/cls/unload', headers: auth });
    expect(unloaded.statusCode, unloaded.body).toBe(200);
    const refused = await classify(app);
    expect([refused.statusCode, refused.json().error.code]).toEqual([503, 'model_not_loaded']);
    expect(refused.json().error.message).toMatch(/'cls' is in the repository but not loaded: version 2 was unloaded/);
    expect((await classify(app, 'no_such_model')).json().error.code).toBe('unknown_model');
    const unknown = await app.inject({ method: 'POST', url: '/v2/repository/models/no_such_model/load', headers: auth });
    expect([unknown.statusCode, unknown.json().error.code]).toEqual([400, 'unknown_model']);
    expect((await load(2)).statusCode).toBe(200);
    expect((await classify(app)).json().model.version).toBe(2);
  });
});

describe('polling the repository (MODEL_REPOSITORY_POLL_S)', () => {
  it('loads a new version put in the repository without being asked', async () => {
    const repository = repositoryWith({ 1: '@models/mobilenet_v2_1.0_224_quant.tflite' });
    const app = await buildApp(testConfig({ MODEL_REPOSITORY: repository, MODELS: 'cls', POOL_SIZE: '1', MODEL_REPOSITORY_POLL_S: '1' }));
    try {
      await app.modelsLoaded;
      expect((await classify(app)).json().model.version).toBe(1);
      const dir = writeVersion(repository, 'cls', 7, { config: { ...imagenet, weights: 'model.tflite' } });
      copyFileSync(join(MODEL_DIR, 'tf2_mobilenet_v2_1.0_224_ptq.tflite'), join(dir, 'model.tflite'));
      await until(() => app.models.get('cls')?.version === 7, 20_000, 'version 7 served');
      expect((await classify(app)).json().model.version).toBe(7);
      // A pin in model.yaml wins over the newest version.
      writeFileSync(join(repository, 'cls', 'model.yaml'), 'version: 1\n');
      await until(() => app.models.get('cls')?.version === 1, 20_000, 'pinned version 1 served');
    } finally {
      await app.close();
    }
  });
});
