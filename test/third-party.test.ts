// Models made by others, served with nothing but a config: each answers as its own runtime does.
// Oracles: TensorFlow.js itself (tf.loadLayersModel) for the nsfwjs layers model, ONNX Runtime
// running the original file for the torchvision exports; both on the same decoded pixels.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as tfl from '@tensorflow/tfjs-layers';
import * as ort from 'onnxruntime-node';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../src/app.js';
import { loadWeights, repositoryEntries, type ClassifierEntry } from '../src/catalog/catalog.js';
import { decodeImage } from '../src/decode/decode.js';
import { ENGINE_NAMES, type Engine } from '../src/engine/engine.js';
import { loadEngine } from '../src/engine/load.js';
import { tf, useTfjsBackend } from '../src/engine/tfjs/backend.js';
import { costOf } from '../src/model/cost.js';
import { normalize } from '../src/worker/normalize.js';
import { MODEL_DIR, photo, testConfig } from './helpers.js';
import { NSFW_CLASSES, thirdPartyRepository, TORCHVISION_FILES, TORCHVISION_MEAN, TORCHVISION_STD } from './repository-fixtures.js';

const PHOTOS = ['cat.png', 'chelsea.png', 'grace_hopper.png', 'astronaut.png', 'burger.jpg', 'sunflower.png', 'parrot.jpg', 'pets.jpg', 'kite_and_cold.jpg', 'camera.png', 'coffee.png', 'rocket.jpg'];
const repository = thirdPartyRepository();
const entries = repositoryEntries(repository, MODEL_DIR) as ClassifierEntry[];
const entry = (name: string) => entries.find((e) => e.name === name)!;
const pixelsOf = async (name: string, resolution: number) =>
  (await decodeImage(photo(name), resolution, { maxPixels: 5e7, minSide: 1 })).pixels;
const maxDifference = (a: ArrayLike<number>, b: ArrayLike<number>) => Array.from(a).reduce((max, v, i) => Math.max(max, Math.abs(v - b[i]!)), 0);
const argmax = (values: ArrayLike<number>) => Array.from(values).reduce((best, v, i, all) => (v > all[best]! ? i : best), 0);

/** Our engine on the model's logits (the graph output before softmax) or its probabilities. */
async function ourEngine(model: ReturnType<ClassifierEntry['build']>, weights: Map<string, Float32Array>, engine: (typeof ENGINE_NAMES)[number], output: string): Promise<Engine> {
  return loadEngine(engine, { ...model.graph, outputs: [output] }, weights, { threads: 1, tfjsBackend: 'wasm' });
}

describe('nsfwjs: a fine-tuned Keras MobileNetV2 saved as a TensorFlow.js layers model', () => {
  const nsfw = entry('nsfwjs');
  const { model, weights, normalization } = loadWeights(nsfw);
  let reference: tfl.LayersModel;

  beforeAll(async () => {
    await useTfjsBackend('wasm');
    const dir = join(MODEL_DIR, 'third-party/nsfwjs_mobilenet_v2');
    const json = JSON.parse(readFileSync(join(dir, 'model.json'), 'utf8'));
    const shards = Buffer.concat(json.weightsManifest.flatMap((g: { paths: string[] }) => g.paths).map((p: string) => readFileSync(join(dir, p))));
    reference = await tfl.loadLayersModel({
      load: async () => ({
        modelTopology: json.modelTopology,
        weightSpecs: json.weightsManifest.flatMap((g: { weights: unknown[] }) => g.weights),
        weightData: shards.buffer.slice(shards.byteOffset, shards.byteOffset + shards.length),
      }),
    });
  });

  it('reads its architecture from the file: width 1.0, 224x224, a three-layer head, 5 classes', () => {
    expect(nsfw.alpha).toBe(1);
    expect(model.input.shape).toEqual([3, 224, 224]);
    expect(model.head.map((t) => t.shape[0])).toEqual([256, 128, 5]);
    // The backbone of 1.0/224 (the paper's 300.8M less the 1280 x 1001 ImageNet classifier) plus the head's in x out.
    expect(costOf(model.graph).multiplyAdds).toBe(300_775_552 - 1280 * 1001 + 1280 * 256 + 256 * 128 + 128 * 5);
  });

  it.each(ENGINE_NAMES)('gives TensorFlow.js\'s top-1 and probabilities within 1e-3 on every photo (%s engine)', async (name) => {
    const engine = await ourEngine(model, weights, name, model.probabilities.name);
    const differences: Record<string, number> = {};
    try {
      for (const file of PHOTOS) {
        const pixels = await pixelsOf(file, 224);
        const input = tf.tidy(() => tf.div(tf.tensor(Float32Array.from(pixels), [1, 224, 224, 3]), 255));
        const output = reference.predict(input) as tf.Tensor;
        const expected = await output.data();
        tf.dispose([input, output]);
        const ours = (await engine.run({ data: normalize(pixels, normalization), batch: 1 })).get(model.probabilities.name)!;
        expect(argmax(ours), file).toBe(argmax(expected));
        differences[file] = maxDifference(ours, expected);
      }
    } finally {
      await engine.dispose();
    }
    console.log(`nsfwjs, ${name} engine: max |p - p_tfjs| per photo`, differences);
    expect(Math.max(...Object.values(differences))).toBeLessThan(1e-3);
  });
});

describe.each(Object.entries(TORCHVISION_FILES))('torchvision export %s (ONNX, random weights)', (name, file) => {
  const tv = entry(name);
  const { model, weights, normalization } = loadWeights(tv);
  const resolution = model.input.shape[1]!;

  it('reads width and resolution from the file', () => {
    const [alpha, side] = name === 'tv_mobilenet_v2_1_0_224' ? [1, 224] : [0.5, 160];
    expect([tv.alpha, resolution, model.classes]).toEqual([alpha, side, 1000]);
    // torchvision pads k // 2 on every side, not TensorFlow's 'same'.
    expect(model.graph.nodes.find((n) => n.name === 'Conv1')).toMatchObject({ padding: 'symmetric', stride: 2 });
  });

  it.each(ENGINE_NAMES)('gives the logits ONNX Runtime gives on the original file, within 1e-4 (%s engine)', async (engineName) => {
    const session = await ort.InferenceSession.create(join(MODEL_DIR, file));
    const engine = await ourEngine(model, weights, engineName, model.logits.name);
    let worst = 0;
    try {
      for (const photoName of PHOTOS.slice(0, 6)) {
        const pixels = await pixelsOf(photoName, resolution);
        // torchvision's transform: to [0, 1], then per-channel (x - mean) / std, NCHW.
        const plane = resolution * resolution;
        const nchw = new Float32Array(3 * plane);
        for (let i = 0; i < plane; i++) for (let c = 0; c < 3; c++) nchw[c * plane + i] = (pixels[3 * i + c]! / 255 - TORCHVISION_MEAN[c]!) / TORCHVISION_STD[c]!;
        const expected = (await session.run({ input: new ort.Tensor('float32', nchw, [1, 3, resolution, resolution]) })).logits!.data as Float32Array;
        const ours = (await engine.run({ data: normalize(pixels, normalization), batch: 1 })).get(model.logits.name)!;
        expect(ours).toHaveLength(1000);
        worst = Math.max(worst, maxDifference(ours, expected));
      }
    } finally {
      await engine.dispose();
      await session.release();
    }
    console.log(`${name}, ${engineName} engine: max |logit - logit_ort| = ${worst.toExponential(2)}`);
    expect(worst).toBeLessThan(1e-4);
  });
});

describe('the third-party repository served', () => {
  let app: FastifyInstance;
  beforeAll(async () => {
    app = await buildApp(testConfig({ MODEL_REPOSITORY: repository, MODELS: 'nsfwjs,tv_mobilenet_v2_0_5_160', POOL_SIZE: '1' }));
    await app.modelsLoaded;
  });
  afterAll(() => app.close());

  it('classifies with the model\'s own labels and lists each model with its version and cost', async () => {
    const response = await app.inject({ method: 'POST', url: '/v1/classify?model=nsfwjs&topk=5', payload: photo('grace_hopper.png') });
    expect(response.statusCode, response.body).toBe(200);
    const body = response.json();
    expect(body.predictions.map((p: { label: string }) => p.label).sort()).toEqual([...NSFW_CLASSES].sort());
    expect(body.predictions[0].label).toBe('Neutral');
    expect(body.model).toMatchObject({ name: 'nsfwjs', version: 1, alpha: 1, resolution: 224 });
    const listing = (await app.inject('/v1/models')).json();
    const nsfw = listing.models.find((m: { name: string }) => m.name === 'nsfwjs');
    expect(nsfw).toMatchObject({ version: 1, classes: 5, format: 'tfjs-layers', multiplyAdds: costOf(entry('nsfwjs').build().graph).multiplyAdds });
    expect(listing.models.find((m: { name: string }) => m.name === 'tv_mobilenet_v2_0_5_160')).toMatchObject({ alpha: 0.5, resolution: 160, classes: 1000, format: 'onnx' });
  });
});
