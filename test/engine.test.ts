// The float model built from imported weights against the TFLite interpreter's own predictions
// (test/fixtures/tflite-reference.json, produced by the real TFLite runtime; see test/reference/).
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CATALOG, type ClassifierEntry } from '../src/catalog/catalog.js';
import { type Engine } from '../src/engine/engine.js';
import { loadEngine } from '../src/engine/load.js';
import { topK } from '../src/worker/classify.js';
import { decodeImage } from '../src/decode/decode.js';
import type { InputQuantization } from '../src/weights/common.js';
import { importTfliteWeights } from '../src/weights/tflite/import.js';
import { modelFile, photo } from './helpers.js';
import { normalize } from '../src/worker/normalize.js';

interface Reference {
  models: Record<string, Record<string, { top5: { index: number; score: number }[] }>>;
}
const reference = JSON.parse(readFileSync(new URL('./fixtures/tflite-reference.json', import.meta.url), 'utf8')) as Reference;
/** One step of the files' uint8 softmax output: scores one step apart may be a rounding tie. */
const OUTPUT_STEP = 1 / 256;

const classifiers = CATALOG.filter((e): e is ClassifierEntry => e.task === 'classification');
describe.each(classifiers.map((e) => [e.name, e] as const))('ONNX engine with %s', (_name, entry) => {
  let engine: Engine;
  let input: InputQuantization;

  beforeAll(async () => {
    const { graph } = entry.build();
    const imported = importTfliteWeights(graph, modelFile(entry.weights));
    input = imported.input;
    engine = await loadEngine('onnx', graph, imported.weights, { threads: 1 });
  });
  afterAll(() => engine.dispose());

  const classify = async (name: string) => {
    const { pixels } = await decodeImage(photo(name), 224, { maxPixels: 5e7, minSide: 1 });
    const data = normalize(pixels, input);
    return (await engine.run({ data, batch: 1 })).get('predictions')!;
  };

  it.each(Object.keys(reference.models[entry.weights]!))('agrees with the TFLite interpreter on %s', async (name) => {
    const [first, second] = reference.models[entry.weights]![name]!.top5;
    const probabilities = await classify(name);
    const ours = topK(probabilities, 3);
    if (first!.score - second!.score > 1.5 * OUTPUT_STEP) {
      expect(ours[0]!.index).toBe(first!.index);
    } else {
      // TFLite's 8-bit output cannot order these two; ours must still pick one of them.
      expect([first!.index, second!.index]).toContain(ours[0]!.index);
    }
    expect(ours.map((c) => c.index)).toContain(first!.index);
  });

  it('runs a batch with the same result as single images', async () => {
    const one = await classify('parrot.jpg');
    const two = await classify('cat.png');
    const data = new Float32Array(2 * 224 * 224 * 3);
    for (const [i, name] of ['parrot.jpg', 'cat.png'].entries()) {
      const { pixels } = await decodeImage(photo(name), 224, { maxPixels: 5e7, minSide: 1 });
      data.set(normalize(pixels, input), i * pixels.length);
    }
    const batch = (await engine.run({ data, batch: 2 })).get('predictions')!;
    expect(batch.length).toBe(2 * 1001);
    for (let i = 0; i < 1001; i++) {
      expect(batch[i]!).toBeCloseTo(one[i]!, 5);
      expect(batch[1001 + i]!).toBeCloseTo(two[i]!, 5);
    }
  });
});
