import type { GraphModel } from '@tensorflow/tfjs-converter';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildWithWeights, findEntry } from '../src/catalog/catalog.js';
import { decodeImage } from '../src/decode/decode.js';
import { type Engine } from '../src/engine/engine.js';
import { loadEngine } from '../src/engine/load.js';
import { costOf } from '../src/model/cost.js';
import { ssdAnchors, ssdMobileNetV2, type SsdGraph } from '../src/model/ssdlite.js';
import type { Detection } from '../src/tasks.js';
import { decodeBoxes, selectDetections } from '../src/worker/detect.js';
import type { InputQuantization } from '../src/weights/common.js';
import { WeightImportError } from '../src/weights/common.js';
import { readTfjsGraphModel } from '../src/weights/tfjs/graph-model.js';
import { importSsdWeights } from '../src/weights/tfjs/import-ssd.js';
import { MODEL_DIR, photo, random } from './helpers.js';
import { loadReferenceModel, runReference, tensorflowDetections, type ReferenceDetection } from './tfjs-reference.js';
import { normalize } from '../src/worker/normalize.js';
import { useTfjsBackend } from '../src/engine/tfjs/backend.js';

const SSD_DIR = `${MODEL_DIR}ssdlite_mobilenet_v2_coco`;
const PHOTOS = ['grace_hopper.png', 'cat.png', 'pets.jpg', 'kite_and_cold.jpg', 'astronaut.png', 'coffee.png', 'motorcycle_left.png', 'multi_objects.jpg'];

describe('SSDLite anchors', () => {
  it('equal the anchor constant stored in the graph model to 1e-5', () => {
    const stored = readTfjsGraphModel(SSD_DIR).tensors.get('Postprocessor/ExpandDims')!;
    expect(stored.shape).toEqual([1, 1917, 4]);
    const anchors = ssdAnchors(ssdMobileNetV2({ alpha: 1, resolution: 300, classes: 91, predictor: 'separable' }).featureMaps);
    expect(anchors.length).toBe(1917 * 4);
    let worst = 0;
    for (let i = 0; i < anchors.length; i += 4) {
      // Stored as corners [ymin, xmin, ymax, xmax]; ours are [yc, xc, h, w].
      const [yc, xc, h, w] = anchors.subarray(i, i + 4) as unknown as number[];
      const corners = [yc! - h! / 2, xc! - w! / 2, yc! + h! / 2, xc! + w! / 2];
      corners.forEach((v, k) => (worst = Math.max(worst, Math.abs(v - stored.values[i + k]!))));
    }
    expect(worst).toBeLessThan(1e-5);
  });

  it('follow the feature maps: 19, 10, 5, 3, 2, 1 at 300 and three anchors per cell on the lowest', () => {
    const ssd = ssdMobileNetV2({ alpha: 1, resolution: 300, classes: 91, predictor: 'separable' });
    const { graph } = ssd;
    expect(ssd.featureMaps.map((m) => m.shape.slice(1))).toEqual([[19, 19], [10, 10], [5, 5], [3, 3], [2, 2], [1, 1]]);
    // The first map is the expansion of block 13 (the paper's 15th layer), found by its stride.
    expect(ssd.featureMaps[0]!.name).toBe('block_13_expand');
    expect(graph.nodes.find((n) => n.name === 'block_13_expand')!.shape).toEqual([576, 19, 19]);
    expect(graph.nodes.find((n) => n.name === 'box_encodings')!.shape).toEqual([1917, 4]);
  });
});

describe('SSDLite cost', () => {
  const cost = (predictor: 'separable' | 'regular', classes: number, resolution = 320) => {
    const ssd = ssdMobileNetV2({ alpha: 1, resolution, classes, predictor });
    const c = costOf(ssd.graph);
    // The paper's "prediction layers": the four extra feature layers and the six box predictors,
    // which the Object Detection API names layer_19_* and BoxPredictor_*.
    const byName = c.layers.filter((l) => /^(layer_19|BoxPredictor_)/.test(l.name)).map((l) => l.name);
    expect(ssd.predictionLayers).toEqual(byName);
    const predictionLayers = new Set(ssd.predictionLayers);
    const head = c.layers.filter((l) => predictionLayers.has(l.name));
    return {
      params: c.params,
      multiplyAdds: c.multiplyAdds,
      headParams: head.reduce((s, l) => s + l.params, 0),
      headMultiplyAdds: head.reduce((s, l) => s + l.multiplyAdds, 0),
    };
  };
  const near = (value: number, paper: number, tolerance = 0.01) => expect(Math.abs(value / paper - 1)).toBeLessThan(tolerance);

  it('reproduces the paper for MobileNetV2 + SSDLite at 320 with 80 classes: 4.3M parameters, 0.8B multiply-adds', () => {
    const c = cost('separable', 81);
    near(c.params, 4.3e6);
    expect(Math.round(c.multiplyAdds / 1e8) / 10).toBe(0.8);
  });

  it('reproduces the prediction layers of SSD (14.8M, 1.25B) and the parameters of SSDLite (2.1M)', () => {
    const ssd = cost('regular', 81);
    near(ssd.headParams, 14.8e6);
    near(ssd.headMultiplyAdds, 1.25e9);
    const lite = cost('separable', 81);
    near(lite.headParams, 2.1e6);
    // The paper lists 0.35B for SSDLite's prediction layers; the layers it describes cost half of
    // that (docs/cost-model.md). We pin our figure so a change shows.
    expect(lite.headMultiplyAdds).toBe(177_617_344);
  });

  it('the served model (300x300, 91 logits) costs 0.75B multiply-adds', () => {
    expect(cost('separable', 91, 300).multiplyAdds).toBe(749_503_856);
  });
});

describe('SSDLite weights and engine against the graph model itself', () => {
  let engine: Engine;
  let model: SsdGraph;
  let input: InputQuantization;
  let reference: GraphModel;

  beforeAll(async () => {
    const { model: built, imported } = buildWithWeights(findEntry('ssdlite_mobilenet_v2_coco', 'detection'), MODEL_DIR);
    model = built;
    input = imported.input;
    engine = await loadEngine('onnx', model.graph, imported.weights, { threads: 1 });
    reference = await loadReferenceModel(SSD_DIR);
  });
  afterAll(async () => {
    await engine.dispose();
    reference.dispose();
  });

  it('reads the preprocessing the graph applies: 2/255 * pixel - 1', () => {
    expect(input.scale).toBeCloseTo(2 / 255, 7);
    expect(input.scale * (0 - input.zeroPoint)).toBeCloseTo(-1, 5);
  });

  it.each(PHOTOS)('matches the reference scores, boxes and detections on %s', async (name) => {
    const { pixels } = await decodeImage(photo(name), 300, { maxPixels: 5e7, minSide: 1 });
    const outputs = await engine.run({ data: normalize(pixels, input), batch: 1 });
    const [encodings, scores] = [outputs.get(model.boxEncodings.name)!, outputs.get(model.classScores.name)!];
    const [refScores, refBoxes] = await runReference(reference, pixels, 300, ['Postprocessor/Slice', 'Postprocessor/ExpandDims_1']);

    let scoreDiff = 0;
    for (let a = 0; a < 1917; a++) for (let c = 0; c < 90; c++) scoreDiff = Math.max(scoreDiff, Math.abs(scores[a * 91 + c + 1]! - refScores![a * 90 + c]!));
    const boxes = decodeBoxes(encodings, ssdAnchors(model.featureMaps));
    const boxDiff = boxes.reduce((worst, v, i) => Math.max(worst, Math.abs(v - refBoxes![i]!)), 0);
    expect(scoreDiff).toBeLessThan(1e-4);
    expect(boxDiff).toBeLessThan(1e-4);

    // Detections above 0.3, ours (our decoding and suppression on our outputs) and TensorFlow's
    // (its suppression on the reference's own outputs), pair up one to one.
    const request = { minScore: 0.3, maxDetections: 100, iouThreshold: 0.6 };
    const ours = selectDetections(boxes, scores, request);
    const theirs = await tensorflowDetections(refBoxes!, refScores!, 90, request);
    expect(ours.length).toBe(theirs.length);
    for (const d of theirs) {
      const match = ours.find((o) => o.classId === d.classId && boxIou(o, d) >= 0.9);
      expect(match, `${name}: class ${d.classId} at ${JSON.stringify(d.box)}`).toBeDefined();
      expect(Math.abs(match!.score - d.score)).toBeLessThan(1e-3);
    }
  });

  it('names the tensor when the graph does not fit the file', () => {
    const eighty = ssdMobileNetV2({ alpha: 1, resolution: 300, classes: 81, predictor: 'separable' }).graph;
    expect(() => importSsdWeights(eighty, SSD_DIR)).toThrow(WeightImportError);
    expect(() => importSsdWeights(eighty, SSD_DIR)).toThrow(/layer BoxPredictor_0\/ClassPredictor expects \[1,1,576,243\] but tensor 'BoxPredictor_0\/ClassPredictor\/weights' is \[1,1,576,273\]/);
    const narrow = ssdMobileNetV2({ alpha: 0.5, resolution: 300, classes: 91, predictor: 'separable' }).graph;
    expect(() => importSsdWeights(narrow, SSD_DIR)).toThrow(/layer Conv1 expects \[3,3,3,16\] but tensor 'FeatureExtractor\/MobilenetV2\/Conv\/Conv2D\/merged_input' is \[3,3,3,32\]/);
    expect(() => importSsdWeights(eighty, `${MODEL_DIR}nowhere`)).toThrow(/cannot read/);
  });
});

describe('per-class suppression against tf.image.nonMaxSuppression', () => {
  beforeAll(() => useTfjsBackend('wasm'));

  /** Boxes [anchors, 4] and scores [anchors, classes + 1] (background first) as ours takes them, and the same scores without background as TensorFlow's. */
  function layout(boxes: number[][], scores: number[][]) {
    const classes = scores[0]!.length;
    return {
      boxes: Float32Array.from(boxes.flat()),
      ours: Float32Array.from(scores.flatMap((row) => [0, ...row])),
      theirs: Float32Array.from(scores.flat()),
      classes,
    };
  }
  const agree = async (boxes: number[][], scores: number[][], request: { minScore: number; iouThreshold: number; maxDetections: number }) => {
    const l = layout(boxes, scores);
    const ours = selectDetections(l.boxes, l.ours, request);
    const theirs = await tensorflowDetections(l.boxes, l.theirs, l.classes, request);
    expect(ours.map((d) => [d.classId, d.score, d.box])).toEqual(theirs.map((d) => [d.classId, d.score, d.box]));
    return ours;
  };

  it('100 near-duplicates of one object and one separate box: 2 detections, the cap applies after suppression', async () => {
    const boxes = Array.from({ length: 100 }, (_, i) => [0.1 + i * 1e-4, 0.1, 0.5, 0.5]);
    boxes.push([0.6, 0.6, 0.9, 0.9]);
    const scores = boxes.map((_, i) => [i < 100 ? 0.9 - i * 1e-3 : 0.5]);
    const detections = await agree(boxes, scores, { minScore: 0.3, iouThreshold: 0.6, maxDetections: 100 });
    expect(detections).toHaveLength(2);
  });

  it('a seeded random scene of clustered boxes in three classes gives TensorFlow\'s detections, at low and high thresholds', async () => {
    const rand = random(7);
    const boxes: number[][] = [];
    for (let cluster = 0; cluster < 40; cluster++) {
      const [y, x, h, w] = [rand() * 0.8, rand() * 0.8, 0.05 + rand() * 0.2, 0.05 + rand() * 0.2];
      for (let k = 0; k < 30; k++) boxes.push([y + rand() * 0.03, x + rand() * 0.03, y + h + rand() * 0.03, x + w + rand() * 0.03]);
    }
    const scores = boxes.map(() => [rand(), rand() ** 3, rand() ** 8]);
    for (const request of [{ minScore: 1e-3, iouThreshold: 0.6, maxDetections: 100 }, { minScore: 0.5, iouThreshold: 0.3, maxDetections: 20 }]) {
      expect((await agree(boxes, scores, request)).length).toBeGreaterThan(10);
    }
  });
});

function boxIou(a: Detection | ReferenceDetection, b: Detection | ReferenceDetection): number {
  const ih = Math.max(0, Math.min(a.box.ymax, b.box.ymax) - Math.max(a.box.ymin, b.box.ymin));
  const iw = Math.max(0, Math.min(a.box.xmax, b.box.xmax) - Math.max(a.box.xmin, b.box.xmin));
  const area = (d: Detection) => (d.box.ymax - d.box.ymin) * (d.box.xmax - d.box.xmin);
  return (ih * iw) / (area(a) + area(b) - ih * iw);
}
