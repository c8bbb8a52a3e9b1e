import { describe, expect, it } from 'vitest';
import { costOf } from '../src/model/cost.js';
import { GraphBuilder, samePadding, type Conv2dOp, type Node } from '../src/model/graph.js';
import { makeDivisible, mobileNetV2Classifier } from '../src/model/mobilenet-v2.js';
import { RELEASE_TABLE, releaseConventionParams } from '../src/model/release-table.js';

const convs = (alpha: number, resolution = 224) =>
  mobileNetV2Classifier({ alpha, resolution }).graph.nodes.filter((n): n is Node<Conv2dOp> => n.kind === 'conv2d');
const node = (alpha: number, name: string) => convs(alpha).find((n) => n.name === name)!;

describe('MobileNetV2 architecture', () => {
  it('follows the paper table at width 1.0', () => {
    const graph = mobileNetV2Classifier({ alpha: 1, resolution: 224 }).graph;
    const shapes = Object.fromEntries(graph.nodes.map((n) => [n.name, n.shape]));
    expect(shapes.Conv1).toEqual([32, 112, 112]);
    expect(shapes.expanded_conv_project).toEqual([16, 112, 112]);
    expect(shapes.block_2_project).toEqual([24, 56, 56]);
    expect(shapes.block_5_project).toEqual([32, 28, 28]);
    expect(shapes.block_9_project).toEqual([64, 14, 14]);
    expect(shapes.block_12_project).toEqual([96, 14, 14]);
    expect(shapes.block_15_project).toEqual([160, 7, 7]);
    expect(shapes.block_16_project).toEqual([320, 7, 7]);
    expect(shapes.out_relu).toEqual([1280, 7, 7]);
    expect(shapes.Logits).toEqual([1001, 1, 1]);
    expect(shapes.predictions).toEqual([1001]);
    expect(graph.nodes.filter((n) => n.kind === 'conv2d')).toHaveLength(52 + 1);
  });

  it('has no expansion when t = 1 and a shortcut only where stride is 1 and channels match', () => {
    const names = mobileNetV2Classifier({ alpha: 1, resolution: 224 }).graph.nodes.map((n) => n.name);
    expect(names).not.toContain('expanded_conv_expand');
    const adds = names.filter((n) => n.endsWith('_add'));
    expect(adds).toEqual(['block_2_add', 'block_4_add', 'block_5_add', 'block_7_add', 'block_8_add', 'block_9_add', 'block_11_add', 'block_12_add', 'block_14_add', 'block_15_add']);
  });

  it('puts ReLU6 after expansion and depthwise and nothing after the projection', () => {
    for (const conv of convs(1)) {
      const expected = conv.name.endsWith('_project') || conv.name === 'Logits' ? 'none' : 'relu6';
      expect([conv.name, conv.activation]).toEqual([conv.name, expected]);
    }
    expect(node(1, 'block_3_depthwise')).toMatchObject({ groups: 144, kernel: 3, stride: 2 });
  });

  it('rounds channels to multiples of 8, never more than 10% down', () => {
    expect(makeDivisible(32 * 0.35)).toBe(16);
    expect(makeDivisible(16 * 0.35)).toBe(8);
    expect(makeDivisible(24 * 1.4)).toBe(32);
    expect(makeDivisible(96 * 0.75)).toBe(72);
    for (let v = 4; v < 2000; v += 0.7) {
      const r = makeDivisible(v);
      expect(r % 8).toBe(0);
      expect(r).toBeGreaterThanOrEqual(0.9 * v);
    }
    for (const alpha of [0.35, 0.5, 0.75, 1, 1.3, 1.4]) {
      for (const conv of convs(alpha).filter((c) => c.name !== 'Logits')) expect(conv.weight.shape[0]! % 8).toBe(0);
    }
  });

  it('scales the 1280-channel layer only above width 1', () => {
    expect(node(0.35, 'out_relu').weight.shape[0]).toBe(1280);
    expect(node(1, 'out_relu').weight.shape[0]).toBe(1280);
    expect(node(1.4, 'out_relu').weight.shape[0]).toBe(1792);
    expect(node(0.35, 'Conv1').weight.shape[0]).toBe(16);
  });

  it('uses TensorFlow SAME padding for any resolution from 32 up', () => {
    expect(samePadding(224, 3, 2, 1)).toEqual([0, 1]);
    expect(samePadding(225, 3, 2, 1)).toEqual([1, 1]);
    expect(samePadding(14, 3, 1, 2)).toEqual([2, 2]);
    const odd = mobileNetV2Classifier({ alpha: 1, resolution: 225 }).graph;
    expect(odd.nodes.find((n) => n.name === 'out_relu')!.shape).toEqual([1280, 8, 8]);
    expect(mobileNetV2Classifier({ alpha: 0.5, resolution: 32 }).graph.nodes.at(-3)!.shape).toEqual([1280, 1, 1]);
  });

  it('rejects bad configurations with the valid values in the message', () => {
    expect(() => mobileNetV2Classifier({ alpha: 0.6, resolution: 224 }).graph).toThrow(/0.35, 0.5, 0.75, 1, 1.3, 1.4/);
    expect(() => mobileNetV2Classifier({ alpha: 1, resolution: 31 }).graph).toThrow(/at least 32.*96, 128, 160, 192, 224/);
  });
});

describe('cost model', () => {
  const cost = (alpha: number, resolution = 224) => costOf(mobileNetV2Classifier({ alpha, resolution }).graph);

  it('reproduces the paper: 1.0/224 = 300M multiply-adds and 3.4M parameters', () => {
    const c = cost(1);
    expect(c.multiplyAdds).toBe(300_775_552);
    expect(Math.abs(c.multiplyAdds / 300e6 - 1)).toBeLessThan(0.01);
    // The paper's 3.4M is the release table's 3.47M cut to one decimal; under the release
    // convention (conv weights + classifier bias) we are within 1% of 3.47M.
    expect(Math.abs(releaseConventionParams(c, 1001) / 3.47e6 - 1)).toBeLessThan(0.01);
    expect(Math.floor(releaseConventionParams(c, 1001) / 1e5) / 10).toBe(3.4);
    expect(c.params).toBe(3_489_097);
  });

  it('reproduces the paper and the release table for width 1.4', () => {
    const c = cost(1.4);
    expect(Math.abs(c.multiplyAdds / 585e6 - 1)).toBeLessThan(0.01);
    expect(Math.floor(c.multiplyAdds / 1e6)).toBe(582);
    expect(Math.abs(releaseConventionParams(c, 1001) / 6.06e6 - 1)).toBeLessThan(0.01);
  });

  it('matches all 22 rows of the official release table', () => {
    expect(RELEASE_TABLE).toHaveLength(22);
    for (const row of RELEASE_TABLE) {
      const c = cost(row.alpha, row.resolution);
      expect([row.alpha, row.resolution, Math.floor(c.multiplyAdds / 1e6)]).toEqual([row.alpha, row.resolution, row.multiplyAddsM]);
      expect(Math.round(releaseConventionParams(c, 1001) / 1e4) / 100).toBe(row.paramsM);
    }
  });

  it('counts multiply-adds per layer as output pixels x channels x kernel x inputs per group', () => {
    const c = cost(1);
    const layer = (name: string) => c.layers.find((l) => l.name === name)!;
    expect(layer('Conv1').multiplyAdds).toBe(112 * 112 * 32 * 3 * 3 * 3);
    expect(layer('block_1_depthwise').multiplyAdds).toBe(56 * 56 * 96 * 9);
    expect(layer('Logits')).toMatchObject({ multiplyAdds: 1280 * 1001, params: 1280 * 1001 + 1001 });
    expect(layer('block_2_add').multiplyAdds).toBe(0);
  });

  it('computes peak activation memory from tensor lifetimes', () => {
    const g = new GraphBuilder('toy');
    const x = g.input('x', [1, 4, 4]);
    const a = g.conv2d('a', x, { out: 2 });
    const b = g.conv2d('b', a, { out: 2 });
    const graph = g.build([g.add('sum', a, b)]);
    // While b runs, x is dead but a must stay alive for the add: a + b = 2 x 32 bytes x 4.
    expect(costOf(graph, 4).peakActivationBytes).toBe(3 * 32 * 4);
    expect(costOf(graph, 4).layers.map((l) => l.outputBytes)).toEqual([64, 128, 128, 128]);
  });
});
