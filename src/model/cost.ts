// Parameters, multiply-adds and activation memory, derived from the graph description alone.
// Convention: batch norm is folded (a convolution has weight + bias, no separate BN parameters);
// multiply-adds count convolutions only (element-wise adds, pooling and softmax are not MACs).
import { elementCount, type Graph, type Node } from './graph.js';

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
  const layers = graph.nodes.map((node): LayerCost => ({
    name: node.name,
    kind: node.kind,
    shape: node.shape,
    params: paramsOfNode(node),
    biases: biasesOf(node),
    multiplyAdds: multiplyAddsOf(node),
    outputBytes: elementCount(node.shape) * bytesPerElement,
  }));
  return {
    layers,
    params: layers.reduce((sum, l) => sum + l.params, 0),
    biases: layers.reduce((sum, l) => sum + l.biases, 0),
    multiplyAdds: layers.reduce((sum, l) => sum + l.multiplyAdds, 0),
    peakActivationBytes: peakLiveBytes(graph, layers),
  };
}

function peakLiveBytes(graph: Graph, layers: readonly LayerCost[]): number {
  const lastUse = new Map<string, number>();
  graph.nodes.forEach((node, step) => node.inputs.forEach((input) => lastUse.set(input, step)));
  for (const output of graph.outputs) lastUse.set(output, graph.nodes.length);

  const live = new Map<string, number>();
  let peak = 0;
  graph.nodes.forEach((node, step) => {
    live.set(node.name, layers[step]!.outputBytes);
    peak = Math.max(peak, [...live.values()].reduce((a, b) => a + b, 0));
    for (const [name] of live) if ((lastUse.get(name) ?? -1) <= step && name !== node.name) live.delete(name);
    if ((lastUse.get(node.name) ?? -1) <= step) live.delete(node.name);
  });
  return peak;
}
