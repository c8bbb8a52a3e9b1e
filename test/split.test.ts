// Memory-efficient inference: the split rewrite keeps every output (within float rounding) on
// both engines, lowers the computed and the measured peak memory, and the cost model reproduces
// the paper's Table 3. Also the service end to end with ENGINE=tfjs and MEMORY_SPLIT.
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../src/app.js';
import { buildWithWeights, findEntry } from '../src/catalog/catalog.js';
import { ConfigError, loadConfig } from '../src/config.js';
import { type EngineName } from '../src/engine/engine.js';
import { loadEngine } from '../src/engine/load.js';
import { tf } from '../src/engine/tfjs/backend.js';
import { costOf } from '../src/model/cost.js';
import { GraphBuilder, type Graph, type Weights } from '../src/model/graph.js';
import { memoryTable, PAPER_TABLE3 } from '../src/model/memory-table.js';
import { mobileNetV2Classifier } from '../src/model/mobilenet-v2.js';
import { sliceRanges, splitGraph, splittableBlocks, splitWeights } from '../src/model/split.js';
import { decodeImage } from '../src/decode/decode.js';
import { normalize } from '../src/worker/normalize.js';
import { MODEL_DIR, photo, testConfig } from './helpers.js';

const maxDiff = (a: Float32Array, b: Float32Array) => a.reduce((worst, v, i) => Math.max(worst, Math.abs(v - b[i]!)), 0);

async function outputs(engine: EngineName, graph: Graph, weights: Weights, data: Float32Array) {
  const e = await loadEngine(engine, graph, weights, { threads: 1, tfjsBackend: 'wasm' });
  try {
    const result = await e.run({ data, batch: 1 });
    return graph.outputs.map((o) => result.get(o)!);
  } finally {
    await e.dispose();
  }
}

describe('the split rewrite', () => {
  const mobilenet = mobileNetV2Classifier({ alpha: 1, resolution: 224 }).graph;

  it('finds every inverted-residual block, the first layer included, and leaves the rest alone', () => {
    const blocks = splittableBlocks(mobilenet);
    expect(blocks.map((b) => b.project.name)).toEqual(['expanded_conv_project', ...Array.from({ length: 16 }, (_, i) => `block_${i + 1}_project`)]);
    expect(blocks[0]!.expand.name).toBe('Conv1');
    expect(splitGraph(mobilenet, 1)).toBe(mobilenet);
    const split = splitGraph(mobilenet, 4);
    expect(split.outputs).toEqual(mobilenet.outputs);
    expect(split.nodes.map((n) => n.name)).toContain('block_5_project/slice3');
    // Whatever read a projection reads the last partial sum, named as the projection was.
    expect(split.nodes.find((n) => n.name === 'block_5_add')!.inputs).toEqual(['block_4_add', 'block_5_project']);
    expect(split.nodes.find((n) => n.name === 'block_5_project')!.kind).toBe('add');
    expect(costOf(split).multiplyAdds).toBe(costOf(mobilenet).multiplyAdds);
  });

  it('keeps an expansion that is also a feature map whole (SSDLite reads block_13_expand)', () => {
    const ssd = findEntry('ssdlite_mobilenet_v2_coco').build().graph;
    const names = splittableBlocks(ssd).map((b) => b.expand.name);
    expect(names).toContain('block_12_expand');
    expect(names).not.toContain('block_13_expand');
    expect(splitGraph(ssd, 2).nodes.some((n) => n.name === 'block_13_expand')).toBe(true);
  });

  it('refuses factors it cannot honour', () => {
    expect(() => splitGraph(mobilenet, 0)).toThrow(/positive integer/);
    expect(() => splitGraph(mobilenet, 97)).toThrow(/exceeds the 32 expanded channels of Conv1/);
    expect(sliceRanges(10, 4)).toEqual([[0, 2], [2, 5], [5, 7], [7, 10]]);
  });

  it('adds the projection bias once: a toy block equals its unsplit self', async () => {
    const g = new GraphBuilder('toy');
    const x = g.input('x', [3, 5, 5]);
    const e = g.conv2d('e', x, { out: 7, activation: 'relu6' });
    const d = g.conv2d('d', e, { out: 7, kernel: 3, stride: 2, groups: 'depthwise', activation: 'relu6' });
    const graph = g.build([g.conv2d('p', d, { out: 4 })]);
    const weights = new Map([
      ['e/weight', Float32Array.from({ length: 21 }, (_, i) => Math.sin(i))],
      ['e/bias', Float32Array.from({ length: 7 }, (_, i) => i / 7)],
      ['d/weight', Float32Array.from({ length: 63 }, (_, i) => Math.cos(i))],
      ['d/bias', Float32Array.from({ length: 7 }, (_, i) => -i / 9)],
      ['p/weight', Float32Array.from({ length: 28 }, (_, i) => Math.sin(3 * i))],
      ['p/bias', Float32Array.of(10, 20, 30, 40)],
    ]);
    const data = Float32Array.from({ length: 75 }, (_, i) => Math.cos(i / 3));
    const [plain] = await outputs('onnx', graph, weights, data);
    for (const k of [2, 3, 7]) {
      const [split] = await outputs('onnx', splitGraph(graph, k), splitWeights(graph, weights, k), data);
      expect(maxDiff(plain!, split!), `k=${k}`).toBeLessThan(1e-5);
    }
  });
});

describe.each([
  ['mobilenet_v2_1.0_224', 'parrot.jpg'],
  ['ssdlite_mobilenet_v2_coco', 'kite_and_cold.jpg'],
  ['deeplabv3_mobilenet_v2_0.5_257', 'dog_segmentation.png'],
])('%s split 2, 4 and 6 equals the unsplit model within 1e-4', (model, image) => {
  const entry = findEntry(model);
  // Segmentation is compared on its logits, before the argmax hides any difference.
  const graph = entry.task === 'segmentation' ? entry.variant({ outputStride: entry.outputStride, scale: 1, output: 'logits' }).graph : entry.build().graph;
  let weights: Weights;
  let data: Float32Array;
  let plain: Float32Array[];
  beforeAll(async () => {
    const { model: built, imported } = buildWithWeights(entry, MODEL_DIR);
    weights = imported.weights;
    const { pixels } = await decodeImage(photo(image), built.input.shape[1]!, { maxPixels: 5e7, minSide: 1 });
    data = normalize(pixels, imported.input);
    plain = await outputs('onnx', graph, weights, data);
  });

  it.each(['onnx', 'tfjs'] as const)('on %s', async (engine) => {
    for (const k of [2, 4, 6]) {
      const split = await outputs(engine, splitGraph(graph, k), splitWeights(graph, weights, k), data);
      // Both engines' own rounding differs by up to ~5e-5 on SSDLite's raw box encodings (agreement.test.ts).
      split.forEach((values, i) => expect(maxDiff(plain[i]!, values), `k=${k}, ${graph.outputs[i]}`).toBeLessThan(1e-4));
    }
  });
});

describe('activation memory of the split schedule', () => {
  it('gives the paper\'s Table 3 figures where its tensors are the graph\'s, and Table 2\'s widths at every side', () => {
    const table = memoryTable(1, 224, [1]);
    const row = (side: number) => table.rows.find((r) => r.side === side)!;
    // Table 2 (t, c, n, s) by hand: the widest block input or output at each side, in 16-bit bytes.
    const widths = { 112: 16, 56: 24, 28: 32, 14: 96, 7: 320 };
    for (const [side, channels] of Object.entries(widths).map(([s, c]) => [Number(s), c] as const)) {
      expect(row(side).bottleneck, `${side}x${side}`).toMatchObject({ channels, bytes: channels * side * side * 2 });
    }
    expect(row(112).bottleneck!.name).toBe('expanded_conv_project');
    expect(row(7).bottleneck!.name).toBe('block_16_project');
    // Table 3 prints thousands of bytes, rounded: 400K for 16 x 112², 32K for 320 x 7². Its 56, 28
    // and 14 rows list the next row's width (32, 64, 160 channels), which no tensor at that side has.
    for (const side of [112, 7]) {
      const paper = PAPER_TABLE3.find((p) => p.side === side)!;
      expect(paper.channels).toBe(widths[side as 112 | 7]);
      expect(Math.abs(row(side).bottleneck!.bytes / 1000 / paper.kilobytes - 1), `${side}x${side}`).toBeLessThan(0.025);
    }
  });

  it('halves the computed peak at split 4 (float32: 6.02 MB plain, 3.01 MB split)', () => {
    const { peaks } = memoryTable(1, 224, [1, 2, 4, 6], 4);
    expect(peaks).toEqual([6_021_120, 3_813_376, 3_010_560, 3_010_560]);
  });

  it('lowers the peak TensorFlow.js measures for a forward pass', async () => {
    const { model: { graph }, imported: { weights } } = buildWithWeights(findEntry('mobilenet_v2_1.0_224'), MODEL_DIR);
    const measured: number[] = [];
    for (const k of [1, 4]) {
      const engine = await loadEngine('tfjs', splitGraph(graph, k), splitWeights(graph, weights, k), { threads: 1, tfjsBackend: 'wasm' });
      const data = new Float32Array(224 * 224 * 3).fill(0.5);
      const before = tf.memory().numBytes;
      const profile = await tf.profile(async () => {
        await engine.run({ data, batch: 1 });
      });
      measured.push(profile.peakBytes - before);
      await engine.dispose();
    }
    // Measured: every live tensor counts, as in the cost model (plus a transposed output copy).
    expect(measured[0]!).toBeGreaterThanOrEqual(6_021_120);
    expect(measured[1]!).toBeLessThan(0.6 * measured[0]!);
  });
});

describe('configuration', () => {
  it('reads MEMORY_SPLIT as one factor for every model or model=factor pairs', () => {
    expect(loadConfig({ MODELS: 'mobilenet_v2_1.0_224,ssdlite_mobilenet_v2_coco', MEMORY_SPLIT: '4' }).split).toEqual({ 'mobilenet_v2_1.0_224': 4, ssdlite_mobilenet_v2_coco: 4 });
    expect(loadConfig({ MODELS: 'mobilenet_v2_1.0_224,ssdlite_mobilenet_v2_coco', MEMORY_SPLIT: 'ssdlite_mobilenet_v2_coco=2' }).split).toEqual({ ssdlite_mobilenet_v2_coco: 2 });
    expect(loadConfig({}).split).toEqual({});
    expect(() => loadConfig({ MEMORY_SPLIT: '0' })).toThrow(ConfigError);
    expect(() => loadConfig({ MODELS: 'mobilenet_v2_1.0_224', MEMORY_SPLIT: 'ssdlite_mobilenet_v2_coco=2' })).toThrow(/must name a model of MODELS/);
    expect(loadConfig({ ENGINE: 'tfjs' })).toMatchObject({ engine: 'tfjs', tfjsBackend: 'auto' });
    expect(() => loadConfig({ TFJS_BACKEND: 'webgl' })).toThrow(/TFJS_BACKEND=webgl/);
  });
});

describe('the service with ENGINE=tfjs and MEMORY_SPLIT=4 (wasm in worker threads)', () => {
  let app: FastifyInstance;
  beforeAll(async () => {
    app = await buildApp(testConfig({ MODELS: 'mobilenet_v2_1.0_224', ENGINE: 'tfjs', TFJS_BACKEND: 'wasm', MEMORY_SPLIT: '4', POOL_SIZE: '1' }));
    await app.modelsLoaded;
  });
  afterAll(() => app.close());

  it('classifies, and says which engine and split ran', async () => {
    const response = await app.inject({ method: 'POST', url: '/v1/classify?topk=1', payload: photo('parrot.jpg'), headers: { 'content-type': 'application/octet-stream' } });
    expect(response.statusCode, response.body).toBe(200);
    const body = response.json<{ predictions: { label: string }[]; model: { engine: string; split: number } }>();
    expect(body.predictions[0]!.label).toBe('macaw');
    expect(body.model).toMatchObject({ engine: 'tfjs', split: 4 });
    const models = (await app.inject({ method: 'GET', url: '/v1/models' })).json<{ engine: string; models: { split: number; peakActivationBytes: number }[] }>();
    expect(models.engine).toBe('tfjs');
    expect(models.models[0]).toMatchObject({ split: 4, peakActivationBytes: 3_010_560 });
    const metrics = (await app.inject({ method: 'GET', url: '/metrics' })).body;
    expect(metrics).toMatch(/vision_inference_duration_seconds_count\{model="mobilenet_v2_1.0_224",engine="tfjs"\} 1/);
  });
});
