// The graph description: a typed, topologically ordered list of named nodes with static shapes
// and named parameters. Engines execute it, the cost model counts it, importers fill its
// parameters; nothing else describes a network.

/** Feature maps are [channels, height, width]; vectors are [length]. The batch dimension is implicit. */
export type Shape = readonly number[];

export type Activation = 'none' | 'relu' | 'relu6';

export interface ParamSpec {
  /** `${node}/weight` or `${node}/bias`: the key importers and engines share. */
  readonly name: string;
  readonly shape: Shape;
}

export interface InputOp {
  readonly kind: 'input';
}

/**
 * How a convolution pads its input. 'same' follows TensorFlow: output = ceil(input / stride), any
 * odd padding at the end. 'symmetric' pads (kernel - 1) / 2 x dilation on every side, as PyTorch's
 * padding = kernel // 2 does (and the ONNX files exported from it): at stride 2 on an even input
 * it pads one pixel more at the start than 'same', so the two see different pixels.
 */
export type Padding = 'same' | 'valid' | 'symmetric';

/**
 * 2-D convolution with batch norm folded into weight and bias, and its activation fused.
 * Weight layout is [out, in / groups, kh, kw]; depthwise is groups = in = out.
 */
export interface Conv2dOp {
  readonly kind: 'conv2d';
  readonly kernel: number;
  readonly stride: number;
  readonly dilation: number;
  readonly groups: number;
  readonly padding: Padding;
  readonly activation: Activation;
  readonly weight: ParamSpec;
  readonly bias: ParamSpec;
}

export interface AddOp {
  readonly kind: 'add';
}

export interface GlobalAvgPoolOp {
  readonly kind: 'globalAvgPool';
}

/** Softmax over all elements of each batch item, given as a vector. */
export interface SoftmaxOp {
  readonly kind: 'softmax';
}

/** Softmax over the channels at each pixel of a [c, h, w] map: class probabilities per pixel. */
export interface ChannelSoftmaxOp {
  readonly kind: 'channelSoftmax';
}

/** Element-wise logistic function. */
export interface SigmoidOp {
  readonly kind: 'sigmoid';
}

/** Joins inputs along `axis` (0 = channels of a [c, h, w] map). */
export interface ConcatOp {
  readonly kind: 'concat';
  readonly axis: number;
}

/** Permutes the non-batch axes. */
export interface TransposeOp {
  readonly kind: 'transpose';
  readonly perm: readonly number[];
}

/** Reinterprets the elements (in row-major order) as the node's shape. */
export interface ReshapeOp {
  readonly kind: 'reshape';
}

/**
 * Bilinear resize of a [c, h, w] map to the node's shape. `coordinates` is how output pixels map
 * back to input ones, as TensorFlow's flags say it: align_corners=True, half_pixel_centers=True,
 * or neither ('asymmetric', TensorFlow 1's default).
 */
export interface ResizeBilinearOp {
  readonly kind: 'resizeBilinear';
  readonly coordinates: 'align_corners' | 'half_pixel' | 'asymmetric';
}

/** Index of the largest channel at each pixel: [c, h, w] to [h, w], as float32 class ids. */
export interface ArgMaxOp {
  readonly kind: 'argmax';
}

export type Op =
  | InputOp | Conv2dOp | AddOp | GlobalAvgPoolOp | SoftmaxOp | ChannelSoftmaxOp
  | SigmoidOp | ConcatOp | TransposeOp | ReshapeOp | ResizeBilinearOp | ArgMaxOp;

export type Node<O extends Op = Op> = O & {
  readonly name: string;
  readonly inputs: readonly string[];
  readonly shape: Shape;
};

export interface Graph {
  readonly name: string;
  readonly nodes: readonly Node[];
  readonly inputs: readonly string[];
  readonly outputs: readonly string[];
}

export type Weights = ReadonlyMap<string, Float32Array>;

/** A handle on one node's output, as builders hand it to whoever needs that tensor. */
export interface Tensor {
  readonly name: string;
  readonly shape: Shape;
}

/** What every builder returns: the graph and its input. Task builders add their own handles. */
export interface BuiltGraph {
  readonly graph: Graph;
  readonly input: Tensor;
}

export function elementCount(shape: Shape): number {
  return shape.reduce((a, b) => a * b, 1);
}

/** TensorFlow 'SAME' padding along one axis: [before, after]. */
export function samePadding(input: number, kernel: number, stride: number, dilation: number): [number, number] {
  const effective = (kernel - 1) * dilation + 1;
  const output = Math.ceil(input / stride);
  const total = Math.max((output - 1) * stride + effective - input, 0);
  const before = Math.floor(total / 2);
  return [before, total - before];
}

type ConvGeometry = Pick<Conv2dOp, 'kernel' | 'stride' | 'dilation' | 'padding'>;

/** [before, after] padding of one axis of `input` pixels. */
export function paddingOf(input: number, op: ConvGeometry): [number, number] {
  switch (op.padding) {
    case 'same': return samePadding(input, op.kernel, op.stride, op.dilation);
    case 'valid': return [0, 0];
    case 'symmetric': {
      const side = ((op.kernel - 1) * op.dilation) / 2;
      return [side, side];
    }
  }
}

export function convOutputSize(input: number, op: ConvGeometry): number {
  if (op.padding === 'same') return Math.ceil(input / op.stride);
  const [before, after] = paddingOf(input, op);
  return Math.floor((input + before + after - ((op.kernel - 1) * op.dilation + 1)) / op.stride) + 1;
}

/** Depthwise: one filter per channel, channels in = channels out = groups. */
export function isDepthwise(node: Node<Conv2dOp>): boolean {
  const [out, inPerGroup] = node.weight.shape as [number, number];
  return node.groups > 1 && inPerGroup === 1 && out === node.groups;
}

/** The steps (indices into graph.nodes) that read each node's output, in graph order. */
export function readerSteps(graph: Graph): Map<string, number[]> {
  const readers = new Map<string, number[]>();
  graph.nodes.forEach((node, step) => {
    for (const input of node.inputs) readers.set(input, [...(readers.get(input) ?? []), step]);
  });
  return readers;
}

/**
 * The last step that needs each node's output: its last reader, or graph.nodes.length for a
 * graph output (needed after the run). A tensor may be released once its step has run.
 */
export function lastReadSteps(graph: Graph): Map<string, number> {
  const last = new Map([...readerSteps(graph)].map(([name, steps]) => [name, steps.at(-1)!]));
  for (const output of graph.outputs) last.set(output, graph.nodes.length);
  return last;
}

/** The part of a graph that computes `outputs`: the nodes they depend on, in graph order (e.g. a classifier's backbone, up to its pooled features). */
export function subgraphTo(graph: Graph, outputs: readonly string[]): Graph {
  const byName = new Map(graph.nodes.map((n) => [n.name, n]));
  const needed = new Set<string>();
  const visit = (name: string) => {
    if (needed.has(name)) return;
    const node = byName.get(name);
    if (!node) throw new Error(`graph ${graph.name}: no node named ${name}`);
    needed.add(name);
    node.inputs.forEach(visit);
  };
  outputs.forEach(visit);
  return { name: graph.name, nodes: graph.nodes.filter((n) => needed.has(n.name)), inputs: graph.inputs.filter((i) => needed.has(i)), outputs: [...outputs] };
}

export function paramsOf(graph: Graph): ParamSpec[] {
  return graph.nodes.flatMap((n) => (n.kind === 'conv2d' ? [n.weight, n.bias] : []));
}

export interface ConvOptions {
  out: number;
  kernel?: number;
  stride?: number;
  dilation?: number;
  /** 'depthwise' sets groups = channels in = channels out. */
  groups?: number | 'depthwise';
  activation?: Activation;
  /** Default 'same'; 'symmetric' needs an odd kernel. */
  padding?: Padding;
}

/** Builds a graph node by node, checking shapes and names as it goes. */
export class GraphBuilder {
  private readonly nodes: Node[] = [];
  private readonly byName = new Map<string, Node>();
  private readonly graphInputs: string[] = [];

  constructor(private readonly name: string) {}

  shapeOf(name: string): Shape {
    const node = this.byName.get(name);
    if (!node) throw new Error(`graph ${this.name}: no node named ${name}`);
    return node.shape;
  }

  /** Nodes added so far. */
  get size(): number {
    return this.nodes.length;
  }

  /** The handle on a node's output. */
  tensor(name: string): Tensor {
    return { name, shape: this.shapeOf(name) };
  }

  private push<O extends Op>(node: Node<O>): string {
    if (this.byName.has(node.name)) throw new Error(`graph ${this.name}: duplicate node name ${node.name}`);
    for (const input of node.inputs) this.shapeOf(input);
    this.nodes.push(node);
    this.byName.set(node.name, node);
    return node.name;
  }

  input(name: string, shape: Shape): string {
    this.graphInputs.push(name);
    return this.push({ kind: 'input', name, inputs: [], shape });
  }

  conv2d(name: string, input: string, options: ConvOptions): string {
    const [inChannels, height, width] = this.shapeOf(input) as [number, number, number];
    const groups = options.groups === 'depthwise' ? inChannels : (options.groups ?? 1);
    if (options.groups === 'depthwise' && options.out !== inChannels) {
      throw new Error(`graph ${this.name}: depthwise ${name} must keep ${inChannels} channels`);
    }
    if (inChannels % groups !== 0 || options.out % groups !== 0) {
      throw new Error(`graph ${this.name}: ${name} channels ${inChannels}->${options.out} not divisible by groups ${groups}`);
    }
    const kernel = options.kernel ?? 1;
    const padding = options.padding ?? 'same';
    if (padding === 'symmetric' && kernel % 2 === 0) throw new Error(`graph ${this.name}: ${name} cannot pad a ${kernel}x${kernel} kernel symmetrically`);
    const geometry = { kernel, stride: options.stride ?? 1, dilation: options.dilation ?? 1, padding };
    return this.push({
      kind: 'conv2d',
      name,
      inputs: [input],
      shape: [options.out, convOutputSize(height, geometry), convOutputSize(width, geometry)],
      ...geometry,
      groups,
      activation: options.activation ?? 'none',
      weight: { name: `${name}/weight`, shape: [options.out, inChannels / groups, kernel, kernel] },
      bias: { name: `${name}/bias`, shape: [options.out] },
    });
  }

  add(name: string, a: string, b: string): string {
    const shape = this.shapeOf(a);
    if (shape.join() !== this.shapeOf(b).join()) {
      throw new Error(`graph ${this.name}: ${name} adds ${shape} to ${this.shapeOf(b)}`);
    }
    return this.push({ kind: 'add', name, inputs: [a, b], shape });
  }

  globalAvgPool(name: string, input: string): string {
    const [channels] = this.shapeOf(input) as [number];
    return this.push({ kind: 'globalAvgPool', name, inputs: [input], shape: [channels, 1, 1] });
  }

  softmax(name: string, input: string): string {
    return this.push({ kind: 'softmax', name, inputs: [input], shape: [elementCount(this.shapeOf(input))] });
  }

  channelSoftmax(name: string, input: string): string {
    if (this.shapeOf(input).length !== 3) throw new Error(`graph ${this.name}: ${name} needs a [c, h, w] map, not [${this.shapeOf(input)}]`);
    return this.push({ kind: 'channelSoftmax', name, inputs: [input], shape: this.shapeOf(input) });
  }

  sigmoid(name: string, input: string): string {
    return this.push({ kind: 'sigmoid', name, inputs: [input], shape: this.shapeOf(input) });
  }

  concat(name: string, inputs: readonly string[], axis = 0): string {
    const shapes = inputs.map((i) => this.shapeOf(i));
    const first = shapes[0]!;
    const agrees = (s: Shape) => s.length === first.length && s.every((d, i) => i === axis || d === first[i]);
    if (!shapes.every(agrees)) throw new Error(`graph ${this.name}: ${name} cannot join ${shapes.map((s) => `[${s}]`).join(', ')} on axis ${axis}`);
    const shape = first.map((d, i) => (i === axis ? shapes.reduce((sum, s) => sum + s[i]!, 0) : d));
    return this.push({ kind: 'concat', name, inputs: [...inputs], shape, axis });
  }

  transpose(name: string, input: string, perm: readonly number[]): string {
    const shape = this.shapeOf(input);
    if ([...perm].sort().join() !== shape.map((_, i) => i).join()) throw new Error(`graph ${this.name}: ${name} has a bad permutation ${perm}`);
    return this.push({ kind: 'transpose', name, inputs: [input], shape: perm.map((p) => shape[p]!), perm });
  }

  reshape(name: string, input: string, shape: Shape): string {
    if (elementCount(shape) !== elementCount(this.shapeOf(input))) {
      throw new Error(`graph ${this.name}: ${name} cannot reshape [${this.shapeOf(input)}] to [${shape}]`);
    }
    return this.push({ kind: 'reshape', name, inputs: [input], shape });
  }

  resizeBilinear(name: string, input: string, size: readonly [number, number], coordinates: ResizeBilinearOp['coordinates']): string {
    const [channels] = this.shapeOf(input) as [number];
    return this.push({ kind: 'resizeBilinear', name, inputs: [input], shape: [channels, ...size], coordinates });
  }

  argmax(name: string, input: string): string {
    const [, height, width] = this.shapeOf(input) as [number, number, number];
    return this.push({ kind: 'argmax', name, inputs: [input], shape: [height, width] });
  }

  build(outputs: readonly string[]): Graph {
    for (const output of outputs) this.shapeOf(output);
    return { name: this.name, nodes: [...this.nodes], inputs: [...this.graphInputs], outputs: [...outputs] };
  }
}
