// Each graph op through every engine against a plain reference written here.
import { beforeAll, describe, expect, it } from 'vitest';
import { ENGINE_NAMES, type EngineName } from '../src/engine/engine.js';
import { loadEngine } from '../src/engine/load.js';
import { GraphBuilder, type ResizeBilinearOp } from '../src/model/graph.js';

/** The engine under test: each describe block below sets it before its tests run. */
let engineName: EngineName = 'onnx';

/** Runs a one-input graph on a [c, h, w] array given in CHW order; returns the first output. */
async function run(build: (g: GraphBuilder, x: string) => string, chw: number[][][]): Promise<Float32Array> {
  const [c, h, w] = [chw.length, chw[0]!.length, chw[0]![0]!.length];
  const g = new GraphBuilder('ops');
  const x = g.input('x', [c, h, w]);
  const graph = g.build([build(g, x)]);
  const engine = await loadEngine(engineName, graph, new Map(), { threads: 1, tfjsBackend: 'wasm' });
  const nhwc = new Float32Array(c * h * w);
  chw.forEach((plane, ci) => plane.forEach((row, y) => row.forEach((v, xi) => (nhwc[(y * w + xi) * c + ci] = v))));
  try {
    return (await engine.run({ data: nhwc, batch: 1 })).values().next().value!;
  } finally {
    await engine.dispose();
  }
}

const ramp = (c: number, h: number, w: number) =>
  Array.from({ length: c }, (_, ci) => Array.from({ length: h }, (_, y) => Array.from({ length: w }, (_, x) => ci * 100 + y * 10 + x)));

function bilinearReference(plane: number[][], outH: number, outW: number, mode: ResizeBilinearOp['coordinates']): number[] {
  const [inH, inW] = [plane.length, plane[0]!.length];
  const source = (d: number, inSize: number, outSize: number) => {
    if (mode === 'align_corners') return outSize === 1 ? 0 : (d * (inSize - 1)) / (outSize - 1);
    if (mode === 'half_pixel') return Math.max(0, ((d + 0.5) * inSize) / outSize - 0.5);
    return (d * inSize) / outSize;
  };
  const out: number[] = [];
  for (let y = 0; y < outH; y++) {
    for (let x = 0; x < outW; x++) {
      const sy = Math.min(source(y, inH, outH), inH - 1);
      const sx = Math.min(source(x, inW, outW), inW - 1);
      const [y0, x0] = [Math.floor(sy), Math.floor(sx)];
      const [y1, x1] = [Math.min(y0 + 1, inH - 1), Math.min(x0 + 1, inW - 1)];
      const [fy, fx] = [sy - y0, sx - x0];
      const top = plane[y0]![x0]! * (1 - fx) + plane[y0]![x1]! * fx;
      const bottom = plane[y1]![x0]! * (1 - fx) + plane[y1]![x1]! * fx;
      out.push(top * (1 - fy) + bottom * fy);
    }
  }
  return out;
}

describe.each(ENGINE_NAMES)('graph ops on the %s engine', (name) => {
  beforeAll(() => {
    engineName = name;
  });

  it('sigmoid', async () => {
    const out = await run((g, x) => g.sigmoid('s', x), [[[-2, 0, 3]]]);
    expect([...out].map((v) => +v.toFixed(6))).toEqual([-2, 0, 3].map((v) => +(1 / (1 + Math.exp(-v))).toFixed(6)));
  });

  it('concat along channels', async () => {
    const out = await run((g, x) => g.concat('c', [x, g.sigmoid('s', x)]), [[[0, 1]], [[2, 3]]]);
    expect(out.length).toBe(8);
    expect([...out.slice(0, 4)]).toEqual([0, 1, 2, 3]);
    expect(out[4]).toBeCloseTo(0.5, 6);
  });

  it('transpose then reshape keeps TensorFlow row-major order', async () => {
    const input = ramp(2, 2, 3);
    const out = await run((g, x) => g.reshape('r', g.transpose('t', x, [1, 2, 0]), [6, 2]), input);
    // [c, h, w] -> [h, w, c]: each row of the result is one pixel's channels.
    const expected = [0, 1].flatMap((y) => [0, 1, 2].flatMap((x) => [0, 1].map((c) => input[c]![y]![x]!)));
    expect([...out]).toEqual(expected);
  });

  it.each(['align_corners', 'half_pixel', 'asymmetric'] as const)('bilinear resize with %s coordinates', async (mode) => {
    const input = ramp(2, 3, 4);
    const out = await run((g, x) => g.resizeBilinear('up', x, [7, 9], mode), input);
    const expected = input.flatMap((plane) => bilinearReference(plane, 7, 9, mode));
    expect(out.length).toBe(expected.length);
    out.forEach((v, i) => expect(v).toBeCloseTo(expected[i]!, 4));
  });

  it('softmax over channels at each pixel', async () => {
    const input = [[[1, -2], [0, 30]], [[3, 4], [0, 29]], [[-1, 0], [0, 0]]];
    const out = await run((g, x) => g.channelSoftmax('p', x), input);
    const pixels = [0, 1, 2, 3].map((p) => input.map((plane) => plane[p >> 1]![p & 1]!));
    const expected = [0, 1, 2].flatMap((c) => pixels.map((values) => Math.exp(values[c]!) / values.reduce((sum, v) => sum + Math.exp(v), 0)));
    expect(out.length).toBe(12);
    out.forEach((v, i) => expect(v).toBeCloseTo(expected[i]!, 6));
  });

  it('argmax over channels gives class ids', async () => {
    const out = await run((g, x) => g.argmax('a', x), [[[5, 0], [0, 0]], [[1, 9], [0, 2]], [[0, 0], [7, 1]]]);
    expect([...out]).toEqual([0, 1, 2, 1]);
  });

  it('rejects shapes that cannot work', () => {
    const g = new GraphBuilder('bad');
    const x = g.input('x', [2, 4, 4]);
    const y = g.input('y', [2, 3, 4]);
    expect(() => g.concat('c', [x, y])).toThrow(/cannot join/);
    expect(() => g.reshape('r', x, [5, 5])).toThrow(/cannot reshape/);
    expect(() => g.transpose('t', x, [0, 0, 1])).toThrow(/bad permutation/);
  });
});
