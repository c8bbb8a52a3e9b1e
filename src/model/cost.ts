// Parameters, multiply-adds and activation memory, derived from the graph description alone.
// Convention: batch norm is folded (a convolution has weight + bias, no separate BN parameters);
// multiply-adds count convolutions only (element-wise adds, pooling and softmax are not MACs).
import { elementCount, lastReadSteps, type Graph, type Node } from './graph.js';
import { splittableBlocks } from './split.js';

export interface LayerCost {
  name: string;
  kind: Node['kind'];
  shape: readonly number[];
  /** Weights plus biases; `biases` says how many of them are biases (folded batch norm). */
  params: number;
  biases: number;
  multiplyAdds: number;
  /** Bytes of this layer's output at the chosen element size. */
  outputBytes: number;
  /**
   * Bytes live while this layer runs, nodes running one at a time in graph order: its inputs, its
   * output and every earlier tensor still waiting for a reader.
   */
  liveBytes: number;
}

export interface GraphCost {
  layers: LayerCost[];
  params: number;
  biases: number;
  multiplyAdds: number;
  /** Largest sum of simultaneously live tensors when nodes run one at a time in graph order. */
  peakActivationBytes: number;
}

function multiplyAddsOf(node: Node): number {
  if (node.kind !== 'conv2d') return 0;
  const [inPerGroup, kh, kw] = node.weight.shape.slice(1) as [number, number, number];
  return elementCount(node.shape) * inPerGroup * kh * kw;
}

function biasesOf(node: Node): number {
  return node.kind === 'conv2d' ? elementCount(node.bias.shape) : 0;
}

function paramsOfNode(node: Node): number {
  return node.kind === 'conv2d' ? elementCount(node.weight.shape) + biasesOf(node) : 0;
}

export function costOf(graph: Graph, bytesPerElement = 4): GraphCost {
  const outputBytes = graph.nodes.map((node) => elementCount(node.shape) * bytesPerElement);
  const live = liveBytesByStep(graph, outputBytes);
  const layers = graph.nodes.map((node, step): LayerCost => ({
    name: node.name,
    kind: node.kind,
    shape: node.shape,
    params: paramsOfNode(node),
    biases: biasesOf(node),
    multiplyAdds: multiplyAddsOf(node),
    outputBytes: outputBytes[step]!,
    liveBytes: live[step]!,
  }));
  return {
    layers,
    params: layers.reduce((sum, l) => sum + l.params, 0),
    biases: layers.reduce((sum, l) => sum + l.biases, 0),
    multiplyAdds: layers.reduce((sum, l) => sum + l.multiplyAdds, 0),
    peakActivationBytes: Math.max(0, ...live),
  };
}

function liveBytesByStep(graph: Graph, outputBytes: readonly number[]): number[] {
  const lastUse = lastReadSteps(graph);
  const live = new Map<string, number>();
  return graph.nodes.map((node, step) => {
    live.set(node.name, outputBytes[step]!);
    const total = [...live.values()].reduce((a, b) => a + b, 0);
    for (const [name] of live) if ((lastUse.get(name) ?? -1) <= step && name !== node.name) live.delete(name);
    if ((lastUse.get(node.name) ?? -1) <= step) live.delete(node.name);
    return total;
  });
}

/** What one spatial resolution costs in memory (MobileNetV2 paper, Table 3). */
export interface ResolutionMemory {
  /** Side of the feature maps; vectors count as 1. */
  side: number;
  /** Largest live set while a layer whose output has this side runs, and that layer. */
  liveBytes: number;
  liveLayer: string;
  /**
   * Largest bottleneck tensor of this side (0 if none): the input or output of an
   * inverted-residual block (src/model/split.ts), which even a fully split schedule holds whole,
   * while the expanded tensors inside exist a slice at a time. The paper's Table 3 counts these.
   */
  bottleneckBytes: number;
  bottleneck: string;
}

const sideOf = (shape: readonly number[]) => (shape.length === 3 ? shape[1]! : 1);

/** Memory per spatial resolution, largest side first, from a cost computed with costOf(graph). */
export function memoryByResolution(graph: Graph, cost: GraphCost): ResolutionMemory[] {
  const bottlenecks = new Set(splittableBlocks(graph).flatMap((b) => [b.expand.inputs[0]!, b.project.name]));
  const bySide = new Map<number, ResolutionMemory>();
  for (const layer of cost.layers) {
    const side = sideOf(layer.shape);
    const entry = bySide.get(side) ?? { side, liveBytes: 0, liveLayer: '', bottleneckBytes: 0, bottleneck: '' };
    if (layer.liveBytes > entry.liveBytes) Object.assign(entry, { liveBytes: layer.liveBytes, liveLayer: layer.name });
    if (bottlenecks.has(layer.name) && layer.outputBytes > entry.bottleneckBytes) Object.assign(entry, { bottleneckBytes: layer.outputBytes, bottleneck: layer.name });
    bySide.set(side, entry);
  }
  return [...bySide.values()].sort((a, b) => b.side - a.side);
}
