// DeepLabv3 on MobileNetV2: the dilated backbone, the importer's checks against the three TFLite
// files, agreement with the reference outputs of those files, the strategies, the cost table.
import type { FastifyInstance } from 'fastify';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../src/app.js';
import { findEntry } from '../src/catalog/catalog.js';
import { decodeImage } from '../src/decode/decode.js';
import { costOf } from '../src/model/cost.js';
import { deepLabV3, featureSide, inferenceRuns, scaledSide, strategyMultiplyAdds } from '../src/model/deeplab.js';
import { PAPER_SEGMENTATION_TABLE, segmentationCostTable } from '../src/model/deeplab-table.js';
import { GraphBuilder, paramsOf, type Conv2dOp, type Graph, type Node } from '../src/model/graph.js';
import { addBackbone, mobileNetV2Classifier } from '../src/model/mobilenet-v2.js';
import { Labels } from '../src/render/labels.js';
import { classColour, legendOf, maskPng, scaleClassMap } from '../src/render/segmentation.js';
import type { SegmentationRequest } from '../src/tasks.js';
import { WeightImportError, type InputQuantization } from '../src/weights/common.js';
import { importDeepLabWeights } from '../src/weights/tflite/deeplab.js';
import { BuiltinOp, readTflite } from '../src/weights/tflite/reader.js';
import { loadModel, type LoadedModel } from '../src/worker/load.js';
import * as tf from '@tensorflow/tfjs-core';
import { useTfjsBackend } from '../src/engine/tfjs/backend.js';
import { argmaxChannels, mirrorNhwc, segment } from '../src/worker/segment.js';
import { variantCache, type SegmentationRunner, type VariantCache } from '../src/worker/segmentation-runner.js';
import { loadEngine } from '../src/engine/load.js';
import { MODEL_DIR, modelFile, photo, random, testConfig } from './helpers.js';

const FULL = 'deeplabv3_mobilenet_v2_1.0_513';
const FLOAT = 'deeplabv3_mobilenet_v2_0.5_257';
const HALF = 'deeplabv3_mobilenet_v2_0.5_513';

const convs = (graph: Graph) => new Map(graph.nodes.filter((n): n is Node<Conv2dOp> => n.kind === 'conv2d').map((n) => [n.name, n]));

/** Grey values of a single-channel image, row-major. */
async function grey(bytes: Buffer): Promise<{ data: Uint8Array; width: number; height: number }> {
  const { data, info } = await sharp(bytes).extractChannel(0).raw().toBuffer({ resolveWithObject: true });
  return { data, width: info.width, height: info.height };
}

const agreement = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  expect(a.length).toBe(b.length);
  let same = 0;
  for (let i = 0; i < a.length; i++) if (a[i] === b[i]) same++;
  return same / a.length;
};

describe('dilated backbone', () => {
  // TF-slim's rule written out by hand for MobileNetV2's strides (Conv1 and blocks 1, 3, 6, 13).
  const expected = {
    32: { block_6_depthwise: [2, 1], block_12_depthwise: [1, 1], block_13_depthwise: [2, 1], block_16_depthwise: [1, 1] },
    16: { block_6_depthwise: [2, 1], block_12_depthwise: [1, 1], block_13_depthwise: [1, 1], block_14_depthwise: [1, 2], block_16_depthwise: [1, 2] },
    8: { block_3_depthwise: [2, 1], block_6_depthwise: [1, 1], block_7_depthwise: [1, 2], block_12_depthwise: [1, 2], block_13_depthwise: [1, 2], block_14_depthwise: [1, 4], block_16_depthwise: [1, 4] },
  } as const;

  it.each([32, 16, 8] as const)('keeps the map at 1/%i of the input and dilates past it', (outputStride) => {
    const g = new GraphBuilder('backbone');
    const last = addBackbone(g, g.input('input', [3, 513, 513]), 1, { outputStride, lastConv: false });
    const graph = g.build([last.output.name]);
    expect(graph.nodes.at(-1)!.shape).toEqual([320, featureSide(513, outputStride), featureSide(513, outputStride)]);
    const layers = convs(graph);
    for (const [name, [stride, dilation]] of Object.entries(expected[outputStride])) {
      expect([layers.get(name)!.stride, layers.get(name)!.dilation], name).toEqual([stride, dilation]);
    }
    // Only depthwise 3x3 convolutions ever dilate.
    for (const node of layers.values()) if (node.dilation > 1) expect(node.groups, node.name).toBe(node.shape[0]);
  });

  it('leaves the classifier as it was', () => {
    expect(costOf(mobileNetV2Classifier({ alpha: 1, resolution: 224 }).graph).multiplyAdds).toBe(300_775_552);
    expect([...convs(mobileNetV2Classifier({ alpha: 1, resolution: 224 }).graph).values()].every((n) => n.dilation === 1)).toBe(true);
  });

  it('rounds narrow widths as DeepLab does (no multiple of 8 below width 1.0)', () => {
    const layers = convs(deepLabV3({ alpha: 0.5, resolution: 257, outputStride: 8, head: 'lite' }).graph);
    expect(layers.get('block_1_project')!.shape[0]).toBe(12);
    expect(layers.get('block_16_project')!.shape[0]).toBe(160);
    expect(convs(mobileNetV2Classifier({ alpha: 0.5, resolution: 224 }).graph).get('block_1_project')!.shape[0]).toBe(16);
  });

  it('refuses output strides other than 8, 16 and 32', () => {
    const g = new GraphBuilder('bad');
    expect(() => addBackbone(g, g.input('input', [3, 64, 64]), 1, { outputStride: 4 as 8 })).toThrow(/output stride 4/);
  });
});

describe('DeepLabv3 heads', () => {
  it('lite: image pooling and a 1x1 branch of 256, projection, 21 logits, bilinear back to the input', () => {
    const graph = deepLabV3({ alpha: 1, resolution: 513, outputStride: 16, head: 'lite' }).graph;
    const concat = graph.nodes.find((n) => n.kind === 'concat')!;
    expect(concat.inputs).toEqual(['image_pooling_upsample', 'aspp0']);
    expect(concat.shape).toEqual([512, 33, 33]);
    expect(graph.nodes.at(-1)).toMatchObject({ kind: 'argmax', shape: [513, 513] });
  });

  it('ASPP: three 3x3 atrous branches at rates 6, 12, 18 at output stride 16, doubled at 8', () => {
    for (const [outputStride, rates] of [[16, [6, 12, 18]], [8, [12, 24, 36]]] as const) {
      const layers = convs(deepLabV3({ alpha: 1, resolution: 513, outputStride, head: 'aspp' }).graph);
      expect([1, 2, 3].map((i) => layers.get(`aspp${i}`)).map((n) => [n!.kernel, n!.dilation, n!.shape[0]])).toEqual(rates.map((r) => [3, r, 256]));
    }
  });

  it('scales the input as DeepLab does for multi-scale inference and returns logits at the input size', () => {
    expect([0.5, 0.75, 1.25, 1.75].map((s) => scaledSide(513, s))).toEqual([257, 385, 641, 897]);
    const graph = deepLabV3({ alpha: 0.5, resolution: 257, outputStride: 8, head: 'lite', scale: 1.75, output: 'logits' }).graph;
    expect(graph.nodes.find((n) => n.name === 'input_scaled')!.shape).toEqual([3, 449, 449]);
    expect(graph.nodes.at(-1)!.shape).toEqual([21, 257, 257]);
    expect(inferenceRuns('mf')).toHaveLength(12);
    expect(inferenceRuns('mf').filter((r) => r.flip).map((r) => r.scale)).toEqual([0.5, 0.75, 1, 1.25, 1.5, 1.75]);
  });
});

describe('DeepLab weight import', () => {
  const FLOAT_INPUT: InputQuantization = { scale: 1 / 127.5, zeroPoint: 127.5 };
  const cases = [
    ['deeplabv3_mnv2_pascal_quant.tflite', { alpha: 1, resolution: 513, outputStride: 16 }],
    ['deeplabv3_mnv2_dm05_pascal_quant.tflite', { alpha: 0.5, resolution: 513, outputStride: 16 }],
    ['deeplabv3_257_mv_gpu.tflite', { alpha: 0.5, resolution: 257, outputStride: 8 }],
  ] as const;

  it.each(cases)('fills every parameter from %s', (file, architecture) => {
    const model = deepLabV3({ ...architecture, head: 'lite' });
    const { graph } = model;
    const { weights, input } = importDeepLabWeights(model, modelFile(file), FLOAT_INPUT);
    for (const spec of paramsOf(graph)) {
      expect(weights.get(spec.name)?.length, spec.name).toBe(spec.shape.reduce((a, b) => a * b, 1));
      expect(weights.get(spec.name)!.every(Number.isFinite), spec.name).toBe(true);
    }
    expect(weights.size).toBe(paramsOf(graph).length);
    expect(input.scale * (255 - input.zeroPoint)).toBeCloseTo(1, 1);
    expect(input.scale * (0 - input.zeroPoint)).toBeCloseTo(-1, 1);
  });

  it('names the layer and the tensor when the graph does not match the file', () => {
    const file = modelFile('deeplabv3_mnv2_pascal_quant.tflite');
    const attempt = (config: Parameters<typeof deepLabV3>[0]) => () => importDeepLabWeights(deepLabV3(config), file);
    const base = { alpha: 1, resolution: 513, outputStride: 16, head: 'lite' } as const;
    expect(attempt({ ...base, alpha: 0.5 })).toThrow(/layer Conv1 expects \[16,3,3,3\] but tensor \d+ 'MobilenetV2\/Conv\/Conv2D_Fold' \[32,3,3,3\]/);
    expect(attempt({ ...base, outputStride: 8 })).toThrow(/layer block_6_depthwise expects .*"stride":1.*'MobilenetV2\/expanded_conv_6\/depthwise\/depthwise_Fold'.*"stride":2/);
    expect(attempt({ ...base, head: 'aspp' })).toThrow(/layer aspp1: the file has no convolution 'aspp1'/);
    expect(attempt({ ...base, resolution: 257 })).toThrow(/takes \[1,257,257,3\] but the file's input tensor 0 'MobilenetV2\/MobilenetV2\/input' \[1,513,513,3\]/);
    expect(attempt({ ...base, classes: 20 })).toThrow(WeightImportError);
  });

  it('checks the head beyond the convolutions: resize modes and the order of the joined branches', () => {
    const file = modelFile('deeplabv3_mnv2_pascal_quant.tflite');
    const model = deepLabV3({ alpha: 1, resolution: 513, outputStride: 16, head: 'lite' });
    const edit = (change: (n: Node) => Node) => ({ ...model, graph: { ...model.graph, nodes: model.graph.nodes.map(change) } });
    const halfPixel = edit((n) => (n.name === 'logits_upsample' ? { ...n, coordinates: 'half_pixel' } as Node : n));
    expect(() => importDeepLabWeights(halfPixel, file)).toThrow(/logits_upsample resizes to .*half_pixel.* but operator \d+ \(tensor \d+ 'ResizeBilinear_2'.*align_corners/);
    const swapped = edit((n) => (n.kind === 'concat' ? { ...n, inputs: [...n.inputs].reverse() } : n));
    expect(() => importDeepLabWeights(swapped, file)).toThrow(/concat joins \["aspp0","image_pooling"\] on channels but operator \d+ joins \["image_pooling","aspp0"\]/);
  });

  it('reads the options of the head\'s operators: resize coordinates, pool window, concatenation axis', () => {
    const model = readTflite(modelFile('deeplabv3_257_mv_gpu.tflite'));
    const resizes = model.operators.filter((op) => op.builtinCode === BuiltinOp.RESIZE_BILINEAR);
    expect(resizes.map((op) => op.resize)).toEqual(Array(3).fill({ alignCorners: true, halfPixelCenters: false }));
    const [pool] = model.operators.filter((op) => op.builtinCode === BuiltinOp.AVERAGE_POOL_2D);
    expect(pool!.pool).toMatchObject({ padding: 'valid', filterH: 33, filterW: 33 });
    expect(model.operators.filter((op) => op.builtinCode === BuiltinOp.CONCATENATION).map((op) => op.concatAxis)).toEqual([3]);
    // The depthwise convolutions past output stride 8 carry their dilation.
    expect(model.operators.filter((op) => op.conv && op.conv.dilationH > 1).map((op) => op.conv!.dilationH)).toEqual([...Array(7).fill(2), 4, 4, 4]);
  });

  it('refuses a float file without a documented input normalization', () => {
    const model = deepLabV3({ alpha: 0.5, resolution: 257, outputStride: 8, head: 'lite' });
    expect(() => importDeepLabWeights(model, modelFile('deeplabv3_257_mv_gpu.tflite'))).toThrow(/input tensor .* is float32/);
  });
});

/** A catalog model loaded as a worker loads it, without the pool. */
async function load(name: string): Promise<{ runner: SegmentationRunner; loaded: LoadedModel; variants: VariantCache; resolution: number }> {
  const entry = findEntry(name, 'segmentation');
  const config = { modelDir: MODEL_DIR, models: [name], engine: 'onnx' as const, threads: 2, variantBudgetBytes: 2 ** 31 };
  const variants = variantCache(config.variantBudgetBytes);
  const loaded = await loadModel(entry, config, variants);
  return { runner: loaded.runners[0] as SegmentationRunner, loaded, variants, resolution: entry.build().input.shape[1]! };
}

async function segmentPhoto(model: Awaited<ReturnType<typeof load>>, file: string, request: Omit<SegmentationRequest, 'task'>) {
  const { pixels } = await decodeImage(photo(file), model.resolution, { maxPixels: 50e6, minSide: 1 });
  return model.runner.run({ task: 'segmentation', ...request }, { kind: 'pixels', pixels });
}

describe('agreement with the reference outputs of the TFLite files', () => {
  const loaded: Awaited<ReturnType<typeof load>>[] = [];
  afterAll(async () => {
    for (const model of loaded) {
      await model.variants.clear();
      await model.loaded.dispose();
    }
  });

  it('bird_segmentation.png through the full-width model: at least 95% of pixels as deeplabv3_mnv2_pascal_quant.tflite', async () => {
    const model = await load(FULL);
    loaded.push(model);
    const output = await segmentPhoto(model, 'bird_segmentation.png', { outputStride: 16, strategy: 'single' });
    const reference = await grey(photo('bird_segmentation_mask.png'));
    expect([output.width, output.height]).toEqual([reference.width, reference.height]);
    const share = agreement(output.classMap, reference.data);
    console.log(`bird_segmentation.png, ${FULL}: ${(100 * share).toFixed(2)}% of pixels as the TFLite reference`);
    expect(share).toBeGreaterThanOrEqual(0.95);
    // Not vacuous: the bird (class 3) is a large part of the picture in both.
    expect(output.classMap.filter((c) => c === 3).length).toBeGreaterThan(0.15 * output.classMap.length);
  });

  it('segmentation_input_rotation0.jpg through the 257 float model: at least 95% of pixels as segmentation_golden_rotation0.png', async () => {
    const model = await load(FLOAT);
    loaded.push(model);
    const output = await segmentPhoto(model, 'segmentation_input_rotation0.jpg', { outputStride: 8, strategy: 'single' });
    const golden = await grey(photo('segmentation_golden_rotation0.png'));
    const share = agreement(output.classMap, golden.data.map((v) => v / 10));
    console.log(`segmentation_input_rotation0.jpg, ${FLOAT}: ${(100 * share).toFixed(2)}% of pixels as the golden mask`);
    expect(share).toBeGreaterThanOrEqual(0.95);
    expect(new Set(output.classMap)).toEqual(new Set([0, 13, 15])); // background, horse, person
  });

  it('the half-width 513 model finds the bird too', async () => {
    const model = await load(HALF);
    loaded.push(model);
    const output = await segmentPhoto(model, 'bird_segmentation.png', { outputStride: 16, strategy: 'single' });
    expect(agreement(output.classMap, (await grey(photo('bird_segmentation_mask.png'))).data)).toBeGreaterThan(0.9);
  });

  it('other output strides and MF run from the same weights and agree with the single-scale map', async () => {
    const model = loaded[1] ?? (await load(FLOAT));
    const single = await segmentPhoto(model, 'segmentation_input_rotation0.jpg', { outputStride: 8, strategy: 'single' });
    for (const request of [{ outputStride: 16, strategy: 'single' }, { outputStride: 8, strategy: 'mf' }] as const) {
      const other = await segmentPhoto(model, 'segmentation_input_rotation0.jpg', request);
      expect([other.width, other.height]).toEqual([257, 257]);
      expect(agreement(other.classMap, single.classMap), JSON.stringify(request)).toBeGreaterThan(0.9);
    }
  });
});

describe('multi-scale + flip averages probabilities, as DeepLab does', () => {
  beforeAll(() => useTfjsBackend('wasm'));

  /**
   * MF through segment() with the given logits [classes, height, width] for each of its 12 runs,
   * in inferenceRuns order: each run's graph is its logits fed to the channel softmax that ends
   * the model's MF graphs, on ONNX Runtime.
   */
  const mf = async (runs: Float32Array[], classes: number, height: number, width: number) => {
    const g = new GraphBuilder('softmax');
    const graph = g.build([g.channelSoftmax('probabilities', g.input('logits', [classes, height, width]))]);
    const engine = await loadEngine('onnx', graph, new Map(), { threads: 1 });
    let call = 0;
    try {
      return await segment({ task: 'segmentation', outputStride: 16, strategy: 'mf' }, new Float32Array(3 * height * width), [3, height, width], async (variant) => {
        expect(variant.output).toBe('probabilities');
        const chw = runs[call++]!;
        const nhwc = new Float32Array(chw.length);
        for (let c = 0; c < classes; c++) for (let p = 0; p < height * width; p++) nhwc[p * classes + c] = chw[c * height * width + p]!;
        return { values: (await engine.run({ data: nhwc, batch: 1 })).get('probabilities')!, shape: [classes, height, width] };
      });
    } finally {
      await engine.dispose();
    }
  };

  it('logits [10, 9, 0] and [0, 9, 10.5]: their probabilities choose class 2, where averaged logits would choose 1', async () => {
    const runs = inferenceRuns('mf').map((_, i) => (i % 2 ? Float32Array.of(0, 9, 10.5) : Float32Array.of(10, 9, 0)));
    expect([...(await mf(runs, 3, 1, 1)).classMap]).toEqual([2]);
  });

  it('equals TensorFlow.js softmax, mirror and mean on random logits', async () => {
    const [classes, height, width] = [21, 5, 7];
    const rand = random(3);
    const runs = inferenceRuns('mf').map(() => Float32Array.from({ length: classes * height * width }, () => (rand() - 0.5) * 12));
    const ours = await mf(runs, classes, height, width);
    // The reference: each run's logits as [h, w, classes], flipped runs mirrored back, softmax, mean, argmax.
    const expected = tf.tidy(() => {
      const probabilities = inferenceRuns('mf').map(({ flip }, i) => {
        const hwc = tf.transpose(tf.tensor3d(runs[i]!, [classes, height, width]), [1, 2, 0]);
        return tf.softmax(flip ? tf.reverse(hwc, 1) : hwc);
      });
      return tf.argMax(tf.mean(tf.stack(probabilities), 0), -1).dataSync();
    });
    expect([...ours.classMap]).toEqual([...expected]);
    // Not vacuous: averaging logits would give another map here.
    const logitMean = tf.tidy(() => tf.argMax(tf.mean(tf.stack(inferenceRuns('mf').map(({ flip }, i) => {
      const hwc = tf.transpose(tf.tensor3d(runs[i]!, [classes, height, width]), [1, 2, 0]);
      return flip ? tf.reverse(hwc, 1) : hwc;
    })), 0), -1).dataSync());
    expect([...logitMean]).not.toEqual([...expected]);
  });
});

describe('strategy and post-processing helpers', () => {
  it('mirrors pixels and takes the argmax over channels (ties to the lower id)', () => {
    expect([...mirrorNhwc(Float32Array.of(1, 2, 3, 4, 5, 6, 7, 8), 2, 2, 2)]).toEqual([3, 4, 1, 2, 7, 8, 5, 6]);
    // Two rows of three pixels, one channel.
    expect([...mirrorNhwc(Float32Array.of(1, 2, 3, 4, 5, 6), 2, 3, 1)]).toEqual([3, 2, 1, 6, 5, 4]);
    // Two channels of a 2x2 map.
    expect([...argmaxChannels(Float32Array.of(1, 5, 0, 2, 3, 5, 0, 1), 4)]).toEqual([1, 0, 0, 0]);
  });

  it('scales the class map by nearest neighbour and counts the legend as the scaled map has it', async () => {
    // A 5 wide, 4 high model map: rows and columns scale independently.
    const map = { classMap: Uint8Array.from({ length: 5 * 4 }, (_, i) => (i * 7) % 4), width: 5, height: 4 };
    for (const [width, height] of [[13, 7], [3, 11], [5, 4], [1, 1]] as const) {
      const scaled = scaleClassMap(map, width, height);
      const counted = new Map<number, number>();
      for (const c of scaled) counted.set(c, (counted.get(c) ?? 0) + 1);
      const legend = legendOf(map, width, height, new Labels(['a', 'b', 'c', 'd']));
      expect(new Map(legend.map((l) => [l.classId, l.pixels]))).toEqual(counted);
      expect(legend.reduce((s, l) => s + l.fraction, 0)).toBeCloseTo(1, 10);
      // The PNG holds the same bytes.
      const png = await grey(await maskPng(scaled, width, height));
      expect([png.width, png.height]).toEqual([width, height]);
      expect(Buffer.from(png.data).equals(Buffer.from(scaled))).toBe(true);
    }
    // One output row: its centre lies on the boundary of the two source rows and takes the lower one.
    const square = { classMap: Uint8Array.of(1, 2, 3, 4), width: 2, height: 2 };
    expect([...scaleClassMap(square, 4, 1)]).toEqual([3, 3, 4, 4]);
    expect([...scaleClassMap(square, 1, 3)]).toEqual([2, 4, 4]);
  });

  it('colours classes with the PASCAL VOC colour map', () => {
    expect([0, 1, 3, 15, 20].map(classColour)).toEqual([[0, 0, 0], [128, 0, 0], [128, 128, 0], [192, 128, 128], [0, 64, 128]]);
  });
});

describe('cost model against the paper (Table 7)', () => {
  const rows = segmentationCostTable();
  const row = (outputStride: number, head: string, strategy: string) => rows.find((r) => r.outputStride === outputStride && r.head === head && r.strategy === strategy)!;

  it('reproduces every paper row with TensorFlow\'s conventions at 513x513', () => {
    for (const paper of PAPER_SEGMENTATION_TABLE) {
      const ours = row(paper.outputStride, paper.head, paper.strategy);
      expect(Math.round(ours.trainableParams / 1e4) / 100, JSON.stringify(paper)).toBe(paper.paramsM);
      // Within half a percent: 5.823B vs 5.8B, 387.5B vs 387B, 2.742B vs 2.75B, 152.5B vs 152.6B.
      expect(Math.abs(ours.spaceToBatchMultiplyAdds513 / 1e9 / paper.multiplyAddsB - 1), JSON.stringify(paper)).toBeLessThan(0.005);
    }
  });

  it('counts MF as the sum of twelve runs and ASPP as the difference the head makes', () => {
    const config = { alpha: 1, resolution: 513, outputStride: 16, head: 'lite' } as const;
    const single = costOf(deepLabV3(config).graph).multiplyAdds;
    expect(strategyMultiplyAdds(config, 'single')).toBe(single);
    const mf = strategyMultiplyAdds(config, 'mf');
    expect(mf / single).toBeGreaterThan(2 * (0.25 + 0.5625 + 1 + 1.5625 + 2.25 + 3.0625) * 0.97);
    expect(row(16, 'aspp', 'single').params - row(16, 'lite', 'single').params).toBe(3 * (3 * 3 * 320 * 256 + 256) + 3 * 256 * 256);
    // Our own convention at 512x512, as docs/cost-model.md states it.
    expect([row(16, 'lite', 'single').multiplyAdds512, row(16, 'aspp', 'single').multiplyAdds512]).toEqual([2_603_958_272, 5_070_209_024]);
  });
});

describe('POST /v1/segment', () => {
  let app: FastifyInstance;

  beforeAll(async () => {
    app = await buildApp(testConfig({ MODELS: `${FULL},${FLOAT}`, POOL_SIZE: '1', ENGINE_THREADS: '2', LOG_LEVEL: 'warn' }));
    await app.ready();
    await app.modelsLoaded;
  });
  afterAll(async () => {
    await app?.close();
  });

  const post = (url: string, payload: Buffer, headers: Record<string, string> = {}) => app.inject({ method: 'POST', url, payload, headers });
  interface Answer {
    legend: { label: string; classId: number; pixels: number; fraction: number }[];
    mask: { mediaType: string; width: number; height: number; data: string };
    model: { name: string };
    multiplyAdds: number;
    image: { width: number; height: number };
  }

  it.each([
    ['grace_hopper.png', ['person']],
    ['astronaut.png', ['person']],
    ['pets.jpg', ['dog', 'cat']],
    ['kite_and_cold.jpg', ['person']],
  ])('finds %s\'s subject, with a mask of the photo\'s size whose pixels the legend counts', async (file, subjects) => {
    const res = await post('/v1/segment', photo(file));
    expect(res.statusCode, res.body).toBe(200);
    const answer = res.json() as Answer;
    const labels = answer.legend.map((l) => l.label);
    expect(labels.some((l) => subjects.includes(l)), `${file}: ${labels.join(', ')}`).toBe(true);
    expect(answer.model.name).toBe(FULL);
    const { width, height } = await sharp(photo(file)).metadata();
    const mask = await grey(Buffer.from(answer.mask.data, 'base64'));
    expect([mask.width, mask.height, answer.mask.width, answer.mask.height]).toEqual([width, height, width, height]);
    const counted = new Map<number, number>();
    for (const id of mask.data) counted.set(id, (counted.get(id) ?? 0) + 1);
    expect(new Map(answer.legend.map((l) => [l.classId, l.pixels]))).toEqual(counted);
  });

  it('sizes the mask as the photo is seen, after EXIF orientation', async () => {
    const rotated = await sharp(photo('pets.jpg')).jpeg().withMetadata({ orientation: 6 }).toBuffer();
    const res = await post('/v1/segment?format=mask', rotated);
    expect(res.headers['content-type']).toBe('image/png');
    const { width, height } = await sharp(res.rawPayload).metadata();
    expect([width, height]).toEqual([430, 512]);
  });

  it('runs MF and other output strides, reporting and counting their multiply-adds', async () => {
    const before = await app.metrics.multiplyAdds.get();
    const counted = () => before.values.find((v) => v.labels.model === FLOAT)?.value ?? 0;
    const base = counted();
    const single = (await post(`/v1/segment?model=${FLOAT}`, photo('pets.jpg'))).json() as Answer;
    const mf = await post(`/v1/segment?model=${FLOAT}&strategy=mf&outputStride=16`, photo('pets.jpg'), { 'x-request-timeout-ms': '60000' });
    expect(mf.statusCode, mf.body).toBe(200);
    const answer = mf.json() as Answer;
    expect(answer.legend.map((l) => l.label)).toContain('dog');
    // What the cost model counts for the file's architecture (width 0.5, 257, lite head) under each setting.
    const architecture = { alpha: 0.5, resolution: 257, head: 'lite' } as const;
    expect(single.multiplyAdds).toBe(strategyMultiplyAdds({ ...architecture, outputStride: 8 }, 'single'));
    expect(answer.multiplyAdds).toBe(strategyMultiplyAdds({ ...architecture, outputStride: 16 }, 'mf'));
    expect(answer.multiplyAdds).toBeGreaterThan(5 * single.multiplyAdds);
    const after = (await app.metrics.multiplyAdds.get()).values.find((v) => v.labels.model === FLOAT)!.value;
    expect(after - base).toBe(single.multiplyAdds + answer.multiplyAdds);
  });

  it('refuses bad parameters and bad images with precise 4xx codes', async () => {
    const cases: [string, Buffer, number, string][] = [
      ['/v1/segment?outputStride=4', photo('pets.jpg'), 400, 'invalid_request'],
      ['/v1/segment?strategy=multi', photo('pets.jpg'), 400, 'invalid_request'],
      ['/v1/segment?format=gif', photo('pets.jpg'), 400, 'invalid_request'],
      ['/v1/segment?model=deeplabv3_mobilenet_v2_0.5_513', photo('pets.jpg'), 400, 'unknown_model'],
      ['/v1/segment?model=mobilenet_v2_1.0_224', photo('pets.jpg'), 400, 'unknown_model'],
      ['/v1/segment', Buffer.alloc(0), 400, 'empty_body'],
      ['/v1/segment', Buffer.concat([Buffer.from('BM'), Buffer.alloc(64)]), 415, 'unsupported_media_type'],
      ['/v1/segment', photo('truncated.jpg'), 422, 'invalid_image'],
    ];
    for (const [url, payload, status, code] of cases) {
      const res = await post(url, payload, { 'content-type': 'application/octet-stream' });
      expect([res.statusCode, (res.json() as { error: { code: string } }).error.code], url).toEqual([status, code]);
    }
  });
});
