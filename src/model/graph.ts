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
 * 2-D convolution with batch norm folded into weight and bias, and its activation fused.
 * Weight layout is [out, in / groups, kh, kw]; depthwise is groups = in = out.
 * 'same' padding follows TensorFlow: output = ceil(input / stride), any odd padding at the end.
 */
export interface Conv2dOp {
  readonly kind: 'conv2d';
  readonly kernel: number;
  readonly stride: number;
  readonly dilation: number;
  readonly groups: number;
  readonly padding: 'same' | 'valid';
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

/** Softmax over the channel axis of a vector. */
export interface SoftmaxOp {
  readonly kind: 'softmax';
}

export type Op = InputOp | Conv2dOp | AddOp | GlobalAvgPoolOp | SoftmaxOp;

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

export function convOutputSize(input: number, op: Pick<Conv2dOp, 'kernel' | 'stride' | 'dilation' | 'padding'>): number {
  if (op.padding === 'same') return Math.ceil(input / op.stride);
  return Math.floor((input - ((op.kernel - 1) * op.dilation + 1)) / op.stride) + 1;
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
    const geometry = { kernel, stride: options.stride ?? 1, dilation: options.dilation ?? 1, padding: 'same' as const };
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

  build(outputs: readonly string[]): Graph {
    for (const output of outputs) this.shapeOf(output);
    return { name: this.name, nodes: [...this.nodes], inputs: [...this.graphInputs], outputs: [...outputs] };
  }
}
