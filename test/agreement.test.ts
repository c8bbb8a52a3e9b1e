// The two engines are independent executors of the same graph description and weights: ONNX
// Runtime on the emitted ONNX model, TensorFlow.js (wasm backend here and in CI) op by op. On real
// photos they must agree for every task the catalog serves.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildWithWeights, findEntry } from '../src/catalog/catalog.js';
import { decodeImage } from '../src/decode/decode.js';
import { type Engine } from '../src/engine/engine.js';
import { loadEngine } from '../src/engine/load.js';
import type { BuiltGraph } from '../src/model/graph.js';
import type { ClassifierGraph } from '../src/model/mobilenet-v2.js';
import { ssdAnchors, type SsdGraph } from '../src/model/ssdlite.js';
import type { Detection } from '../src/tasks.js';
import { topK } from '../src/worker/classify.js';
import { decodeBoxes, iou, selectDetections } from '../src/worker/detect.js';
import { l2Normalized, normalize } from '../src/worker/normalize.js';
import { MODEL_DIR, photo } from './helpers.js';

const PHOTOS = ['grace_hopper.png', 'cat.png', 'pets.jpg', 'kite_and_cold.jpg', 'parrot.jpg', 'multi_objects.jpg', 'dog_segmentation.png', 'bird.png'];

/** Both engines on one catalog model, and its outputs for a photo from each. */
function pairOf(model: string) {
  let built: BuiltGraph;
  let engines: Engine[] = [];
  let input: { scale: number; zeroPoint: number };
  beforeAll(async () => {
    const { model: m, imported } = buildWithWeights(findEntry(model), MODEL_DIR);
    built = m;
    input = imported.input;
    engines = [
      await loadEngine('onnx', built.graph, imported.weights, { threads: 1 }),
      await loadEngine('tfjs', built.graph, imported.weights, { threads: 1, tfjsBackend: 'wasm' }),
    ];
  });
  afterAll(() => Promise.all(engines.map((e) => e.dispose())));
  return {
    model: () => built,
    outputs: async (name: string): Promise<[Float32Array, Float32Array][]> => {
      const { pixels } = await decodeImage(photo(name), built.input.shape[1]!, { maxPixels: 5e7, minSide: 1 });
      const data = normalize(pixels, input);
      const [onnx, tfjs] = await Promise.all(engines.map((e) => e.run({ data, batch: 1 })));
      return built.graph.outputs.map((o) => [onnx!.get(o)!, tfjs!.get(o)!]);
    },
  };
}

const maxDiff = (a: Float32Array, b: Float32Array) => a.reduce((worst, v, i) => Math.max(worst, Math.abs(v - b[i]!)), 0);
const worst: Record<string, number> = {};
const note = (key: string, value: number) => (worst[key] = Math.max(worst[key] ?? 0, value));
afterAll(() => console.info('largest ONNX Runtime / TensorFlow.js differences:', worst));

describe.each(['mobilenet_v2_1.0_224', 'mobilenet_v2_1.0_224_tf2'])('classification, %s: ONNX Runtime and TensorFlow.js', (model) => {
  const pair = pairOf(model);
  it.each(PHOTOS)('agree on %s: probabilities within 1e-3, same top-5', async (name) => {
    const [onnx, tfjs] = (await pair.outputs(name))[0]!;
    expect(tfjs.length).toBe(1001);
    const diff = maxDiff(onnx, tfjs);
    note(`classification ${model}`, diff);
    expect(diff).toBeLessThan(1e-3);
    expect(topK(tfjs, 5).map((c) => c.index)).toEqual(topK(onnx, 5).map((c) => c.index));
  });

  it.each(PHOTOS)('agree on %s: the unit-length embedding within 1e-4', async (name) => {
    const outputs = await pair.outputs(name);
    const features = pair.model().graph.outputs.indexOf((pair.model() as ClassifierGraph).features.name);
    const [onnx, tfjs] = outputs[features]!.map(l2Normalized) as [Float32Array, Float32Array];
    expect(tfjs.length).toBe(1280);
    const diff = maxDiff(onnx, tfjs);
    note(`embedding ${model}`, diff);
    expect(diff).toBeLessThan(1e-4);
  });
});

describe('detection, ssdlite_mobilenet_v2_coco: ONNX Runtime and TensorFlow.js', () => {
  const pair = pairOf('ssdlite_mobilenet_v2_coco');
  const request = { task: 'detection', minScore: 0.3, maxDetections: 100, iouThreshold: 0.6 } as const;
  const boxIou = (a: Detection, b: Detection) =>
    iou(Float32Array.of(a.box.ymin, a.box.xmin, a.box.ymax, a.box.xmax, b.box.ymin, b.box.xmin, b.box.ymax, b.box.xmax), 0, 1);
  /** Each detection of `from` has one in `to` of its class, IoU >= 0.95, score within 1e-3 (a score that close to the threshold may fall either side). */
  const expectMatched = (from: Detection[], to: Detection[], label: string) => {
    for (const d of from) {
      const match = to.find((o) => o.classId === d.classId && boxIou(o, d) >= 0.95);
      if (!match && d.score < request.minScore + 1e-3) continue;
      expect(match, `${label}: class ${d.classId} at ${JSON.stringify(d.box)}`).toBeDefined();
      note('detection score', Math.abs(match!.score - d.score));
      note('detection 1 - IoU', 1 - boxIou(match!, d));
      expect(Math.abs(match!.score - d.score)).toBeLessThan(1e-3);
    }
  };

  it.each(PHOTOS)('agree on %s: detections matched with IoU >= 0.95 and scores within 1e-3', async (name) => {
    const [[boxesOnnx, boxesTfjs], [scoresOnnx, scoresTfjs]] = (await pair.outputs(name)) as [[Float32Array, Float32Array], [Float32Array, Float32Array]];
    note('detection raw box encodings', maxDiff(boxesOnnx, boxesTfjs));
    const anchors = ssdAnchors((pair.model() as SsdGraph).featureMaps);
    const onnx = selectDetections(decodeBoxes(boxesOnnx, anchors), scoresOnnx, request);
    const tfjs = selectDetections(decodeBoxes(boxesTfjs, anchors), scoresTfjs, request);
    expect(onnx.length).toBeGreaterThan(0);
    expectMatched(onnx, tfjs, `${name}, ONNX detection missing from TensorFlow.js`);
    expectMatched(tfjs, onnx, `${name}, TensorFlow.js detection missing from ONNX`);
  });
});

describe.each([
  ['deeplabv3_mobilenet_v2_0.5_257', PHOTOS],
  ['deeplabv3_mobilenet_v2_1.0_513', ['dog_segmentation.png', 'pets.jpg']],
] as const)('segmentation, %s: ONNX Runtime and TensorFlow.js', (model, photos) => {
  const pair = pairOf(model);
  it.each(photos)('agree on %s: class maps equal on >= 99.5% of pixels', async (name) => {
    const [onnx, tfjs] = (await pair.outputs(name))[0]!;
    expect(tfjs.length).toBe(onnx.length);
    const equal = onnx.reduce((n, v, i) => n + (v === tfjs[i] ? 1 : 0), 0) / onnx.length;
    note(`segmentation ${model} pixels differing`, 1 - equal);
    expect(new Set(onnx).size).toBeGreaterThan(1);
    expect(equal).toBeGreaterThanOrEqual(0.995);
  });
});
