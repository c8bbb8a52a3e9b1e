// The TensorFlow.js engine on its own: its layout bookkeeping (NHWC storage, transposes that only
// relabel axes) against ONNX Runtime on graphs that mix every op, its backend choice, and its
// memory hygiene.
import { describe, expect, it } from 'vitest';
import { type Engine } from '../src/engine/engine.js';
import { loadEngine } from '../src/engine/load.js';
import { tf, useTfjsBackend } from '../src/engine/tfjs/backend.js';
import { GraphBuilder, elementCount, paramsOf, type Graph } from '../src/model/graph.js';

/** Deterministic values in [-1, 1) (a linear congruential sequence), so a failure can be rerun. */
function values(count: number, seed: number): Float32Array {
  let state = seed >>> 0;
  return Float32Array.from({ length: count }, () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return state / 2 ** 31 - 1;
  });
}

function randomWeights(graph: Graph): Map<string, Float32Array> {
  return new Map(paramsOf(graph).map((p, i) => [p.name, values(elementCount(p.shape), i + 1)]));
}

async function bothEngines(graph: Graph, batch = 1): Promise<[Map<string, Float32Array>, Map<string, Float32Array>]> {
  const weights = randomWeights(graph);
  const [c, h, w] = graph.nodes[0]!.shape as [number, number, number];
  const input = { data: values(batch * c * h * w, 99), batch };
  const engines: Engine[] = [await loadEngine('onnx', graph, weights, { threads: 1 }), await loadEngine('tfjs', graph, weights, { threads: 1, tfjsBackend: 'wasm' })];
  try {
    return (await Promise.all(engines.map((e) => e.run(input)))) as [Map<string, Float32Array>, Map<string, Float32Array>];
  } finally {
    await Promise.all(engines.map((e) => e.dispose()));
  }
}

function expectSame(graph: Graph, [onnx, tfjs]: [Map<string, Float32Array>, Map<string, Float32Array>], tolerance = 1e-4): void {
  for (const name of graph.outputs) {
    const [a, b] = [onnx.get(name)!, tfjs.get(name)!];
    expect(b.length, name).toBe(a.length);
    const diff = a.reduce((worst, v, i) => Math.max(worst, Math.abs(v - b[i]!)), 0);
    expect(diff, `${name} differs by ${diff}`).toBeLessThan(tolerance);
  }
}

// First: the backend is chosen once per thread, by the first engine or call.
describe('TensorFlow.js backend', () => {
  it('takes tfjs-node when asked only if it loads, and falls back to wasm on auto', async () => {
    const strict = await useTfjsBackend('tensorflow').catch((err: Error) => err);
    if (strict instanceof Error) {
      expect(strict.message).toMatch(/@tensorflow\/tfjs-node does not load/);
      expect(await useTfjsBackend('auto')).toBe('wasm');
      expect(tf.getBackend()).toBe('wasm');
      await expect(useTfjsBackend('tensorflow')).rejects.toThrow(/already runs TensorFlow.js on 'wasm'/);
    } else {
      expect(strict).toBe('tensorflow');
    }
  });
});

describe('TensorFlow.js engine against ONNX Runtime', () => {
  it('convolutions: odd sizes with stride 2, groups, dilation, every activation', async () => {
    const g = new GraphBuilder('convs');
    const x = g.input('x', [4, 9, 7]);
    const a = g.conv2d('a', x, { out: 8, kernel: 3, stride: 2, activation: 'relu6' });
    const b = g.conv2d('b', a, { out: 8, kernel: 3, groups: 'depthwise', dilation: 2, activation: 'relu' });
    const c = g.conv2d('c', b, { out: 6, kernel: 3, groups: 2 });
    const d = g.conv2d('d', c, { out: 6, kernel: 3, stride: 2, groups: 'depthwise' });
    const graph = g.build([c, g.globalAvgPool('pool', d)]);
    expectSame(graph, await bothEngines(graph));
  });

  it('transposes that only relabel axes, then ops that need NHWC or row-major order', async () => {
    const g = new GraphBuilder('layouts');
    const x = g.input('x', [3, 4, 5]);
    const a = g.conv2d('a', x, { out: 6, kernel: 3 });
    // [c, h, w] -> [w, c, h]: a convolution now reads "channels" = w.
    const t = g.transpose('t', a, [2, 0, 1]);
    const s = g.sigmoid('s', t);
    const convOnT = g.conv2d('convOnT', s, { out: 2, kernel: 3 });
    const back = g.transpose('back', s, [1, 2, 0]);
    const sum = g.add('sum', a, back);
    const joined = g.concat('joined', [sum, g.transpose('t2', g.transpose('t1', sum, [0, 2, 1]), [0, 2, 1])], 1);
    const rows = g.reshape('rows', g.transpose('hwc', joined, [1, 2, 0]), [8 * 5, 6]);
    const classes = g.argmax('classes', g.transpose('wh', a, [0, 2, 1]));
    const up = g.resizeBilinear('up', t, [9, 7], 'half_pixel');
    const graph = g.build([convOnT, rows, classes, up, g.softmax('probs', sum)]);
    expectSame(graph, await bothEngines(graph, 2));
  });
});

describe('TensorFlow.js engine', () => {
  it('holds no tensor between runs: tf.memory().numTensors is flat across requests, failed ones too', async () => {
    const g = new GraphBuilder('leaks');
    const x = g.input('x', [3, 8, 8]);
    const a = g.conv2d('a', x, { out: 4, kernel: 3, stride: 2 });
    const graph = g.build([g.reshape('flat', g.transpose('t', a, [1, 2, 0]), [64]), g.softmax('p', a)]);
    const engine = await loadEngine('tfjs', graph, randomWeights(graph), { threads: 1 });
    const baseline = tf.memory().numTensors;
    const input = { data: values(3 * 8 * 8, 5), batch: 1 };
    for (let i = 0; i < 5; i++) await engine.run(input);
    expect(tf.memory().numTensors).toBe(baseline);
    await expect(engine.run({ data: new Float32Array(7), batch: 1 })).rejects.toThrow(/input has 7 values/);
    expect(tf.memory().numTensors).toBe(baseline);
    await engine.dispose();
    // Its weights (two per convolution) are gone too.
    expect(tf.memory().numTensors).toBe(baseline - 2);
  });

  it('names a missing parameter', async () => {
    const g = new GraphBuilder('missing');
    const graph = g.build([g.conv2d('a', g.input('x', [1, 2, 2]), { out: 1 })]);
    await expect(loadEngine('tfjs', graph, new Map(), { threads: 1 })).rejects.toThrow('no weights for a/weight');
  });
});
