// Executes the graph description directly with TensorFlow.js ops, node by node in graph order.
//
// Layouts: TensorFlow.js convolutions, pooling and resizing take NHWC, while the graph describes
// feature maps as [c, h, w] and defines every other tensor (and every output) in row-major order.
// Each value therefore carries the order its logical axes are stored in: a transpose only
// relabels axes, and data moves only when an op needs another order (NHWC for convolutions,
// row-major for reshape, softmax and the outputs). Intermediate tensors are disposed as soon as
// their last reader has run, so the live set is what the cost model counts.
import { isDepthwise, lastReadSteps, type Conv2dOp, type Graph, type Node, type Weights } from '../../model/graph.js';
import type { Engine, EngineOptions, InputBatch, TfjsBackend } from '../engine.js';
import { tf, useTfjsBackend } from './backend.js';

/** A tensor of shape [batch, ...order.map((axis) => logicalShape[axis])]. */
interface Value {
  tensor: tf.Tensor;
  order: readonly number[];
}

const NHWC = [1, 2, 0] as const;
const rowMajor = (rank: number) => Array.from({ length: rank }, (_, i) => i);
const sameOrder = (a: readonly number[], b: readonly number[]) => a.length === b.length && a.every((v, i) => v === b[i]);

/** The value with its axes stored in `order`; the same tensor when they already are. */
function arrange(value: Value, order: readonly number[]): tf.Tensor {
  if (sameOrder(value.order, order)) return value.tensor;
  return tf.transpose(value.tensor, [0, ...order.map((axis) => value.order.indexOf(axis) + 1)]);
}

interface ConvParams {
  /** One filter per group: [kh, kw, in, out] for convolutions, [kh, kw, channels, 1] for depthwise. */
  filters: tf.Tensor4D[];
  biases: tf.Tensor1D[];
  depthwise: boolean;
}

/** [out, in/groups, kh, kw] (the graph's layout) to TensorFlow's [kh, kw, in, out] per group, or [kh, kw, channels, 1] for depthwise. */
function convParams(node: Node<Conv2dOp>, weights: Weights): ConvParams {
  const weight = weights.get(node.weight.name);
  const bias = weights.get(node.bias.name);
  if (!weight || !bias) throw new Error(`no weights for ${!weight ? node.weight.name : node.bias.name}`);
  const [out, inPerGroup, kh, kw] = node.weight.shape as [number, number, number, number];
  const depthwise = isDepthwise(node);
  return tf.tidy(() => {
    const oihw = tf.tensor4d(weight, [out, inPerGroup, kh, kw]);
    if (depthwise) return { filters: [tf.transpose(oihw, [2, 3, 0, 1])], biases: [tf.tensor1d(bias)], depthwise };
    const outPerGroup = out / node.groups;
    const groups = Array.from({ length: node.groups }, (_, g) => g);
    return {
      filters: groups.map((g) => tf.transpose(tf.slice(oihw, [g * outPerGroup, 0, 0, 0], [outPerGroup, -1, -1, -1]), [2, 3, 1, 0])),
      biases: groups.map((g) => tf.tensor1d(bias.subarray(g * outPerGroup, (g + 1) * outPerGroup))),
      depthwise,
    };
  });
}

function conv(node: Node<Conv2dOp>, params: ConvParams, x: tf.Tensor4D): tf.Tensor4D {
  const options = {
    strides: node.stride,
    // A number pads every side by it: symmetric padding.
    pad: node.padding === 'symmetric' ? ((node.kernel - 1) * node.dilation) / 2 : node.padding,
    dilations: node.dilation,
    activation: node.activation === 'none' ? ('linear' as const) : node.activation,
  };
  if (params.depthwise) return tf.fused.depthwiseConv2d({ x, filter: params.filters[0]!, bias: params.biases[0]!, ...options });
  const inputs: tf.Tensor4D[] = params.filters.length === 1 ? [x] : tf.split(x, params.filters.length, 3);
  const outputs = inputs.map((input, g) => tf.fused.conv2d({ x: input, filter: params.filters[g]!, bias: params.biases[g]!, ...options }));
  return outputs.length === 1 ? outputs[0]! : tf.concat(outputs, 3);
}

const RESIZE_FLAGS = {
  align_corners: [true, false],
  half_pixel: [false, true],
  asymmetric: [false, false],
} as const;

export class TfjsEngine implements Engine {
  readonly name = 'tfjs' as const;

  private constructor(
    private readonly graph: Graph,
    /** Which TensorFlow.js backend runs it: tfjs-node's 'tensorflow' or 'wasm'. */
    readonly backend: TfjsBackend,
    private readonly convs: Map<string, ConvParams>,
    /** Step after which nothing reads each node (graph outputs: after the run). */
    private readonly lastRead: Map<string, number>,
  ) {}

  /** `threads` does not apply: the wasm backend is single-threaded in Node, tfjs-node sizes its own pool. */
  static async load(graph: Graph, weights: Weights, options: EngineOptions): Promise<TfjsEngine> {
    if (graph.inputs.length !== 1) throw new Error(`graph ${graph.name}: the TensorFlow.js engine takes one input`);
    const active = await useTfjsBackend(options.tfjsBackend);
    const convs = new Map<string, ConvParams>();
    try {
      for (const node of graph.nodes) if (node.kind === 'conv2d') convs.set(node.name, convParams(node, weights));
    } catch (err) {
      disposeParams(convs);
      throw err;
    }
    return new TfjsEngine(graph, active, convs, lastReadSteps(graph));
  }

  async run({ data, batch }: InputBatch): Promise<Map<string, Float32Array>> {
    const values = new Map<string, Value>();
    const results: tf.Tensor[] = [];
    try {
      this.graph.nodes.forEach((node, step) => {
        values.set(node.name, this.execute(node, values, data, batch));
        // Inputs read for the last time, and an output nothing reads, are released at once.
        for (const name of new Set([...node.inputs, node.name])) {
          if ((this.lastRead.get(name) ?? -1) <= step) {
            values.get(name)!.tensor.dispose();
            values.delete(name);
          }
        }
      });
      for (const name of this.graph.outputs) {
        const value = values.get(name)!;
        results.push(tf.tidy(() => tf.clone(arrange(value, rowMajor(value.order.length)))));
      }
      const arrays = await Promise.all(results.map((t) => t.data<'float32'>()));
      return new Map(this.graph.outputs.map((name, i) => [name, arrays[i]!]));
    } finally {
      tf.dispose(results);
      for (const value of values.values()) value.tensor.dispose();
    }
  }

  /** One node's output; every temporary it needed is released before it returns. */
  private execute(node: Node, values: Map<string, Value>, data: Float32Array, batch: number): Value {
    const inputs = node.inputs.map((name) => values.get(name)!);
    let order: readonly number[] = [];
    const tensor = tf.tidy(() => {
      const value = this.compute(node, inputs, data, batch);
      order = value.order;
      // Every node owns its tensor (disposed at its last read), even when an op only relabels axes.
      return inputs.some((i) => i.tensor === value.tensor) ? tf.clone(value.tensor) : value.tensor;
    });
    return { tensor, order };
  }

  private compute(node: Node, inputs: readonly Value[], data: Float32Array, batch: number): Value {
    const input = (i = 0) => inputs[i]!;
    switch (node.kind) {
      case 'input': {
        const [c, h, w] = node.shape as [number, number, number];
        if (data.length !== batch * h * w * c) throw new RangeError(`input has ${data.length} values, expected ${batch}x${h}x${w}x${c}`);
        return { tensor: tf.tensor4d(data, [batch, h, w, c]), order: NHWC };
      }
      case 'conv2d':
        return { tensor: conv(node, this.convs.get(node.name)!, arrange(input(), NHWC) as tf.Tensor4D), order: NHWC };
      case 'add': {
        const [a, b] = [input(0), input(1)];
        return { tensor: tf.add(a.tensor, arrange(b, a.order)), order: a.order };
      }
      case 'globalAvgPool':
        return { tensor: tf.mean(arrange(input(), NHWC), [1, 2], true), order: NHWC };
      case 'softmax': {
        const x = input();
        return { tensor: tf.softmax(tf.reshape(arrange(x, rowMajor(x.order.length)), [batch, -1])), order: [0] };
      }
      case 'channelSoftmax':
        // tf.softmax normalizes the last axis: channels of NHWC.
        return { tensor: tf.softmax(arrange(input(), NHWC)), order: NHWC };
      case 'sigmoid':
        return { tensor: tf.sigmoid(input().tensor), order: input().order };
      case 'concat': {
        const order = input(0).order;
        const parts = inputs.map((value) => arrange(value, order));
        return { tensor: tf.concat(parts, order.indexOf(node.axis) + 1), order };
      }
      case 'transpose': {
        // Output axis j is input axis perm[j]: the stored data already is the transposed tensor.
        const x = input();
        return { tensor: x.tensor, order: x.order.map((axis) => node.perm.indexOf(axis)) };
      }
      case 'reshape': {
        const x = input();
        return { tensor: tf.reshape(arrange(x, rowMajor(x.order.length)), [batch, ...node.shape]), order: rowMajor(node.shape.length) };
      }
      case 'resizeBilinear': {
        const [alignCorners, halfPixelCenters] = RESIZE_FLAGS[node.coordinates];
        const size = node.shape.slice(1) as [number, number];
        return { tensor: tf.image.resizeBilinear(arrange(input(), NHWC) as tf.Tensor4D, size, alignCorners, halfPixelCenters), order: NHWC };
      }
      case 'argmax': {
        const x = input();
        // The class axis goes; the others keep their stored order, renumbered for an [h, w] result.
        const ids = tf.argMax(x.tensor, x.order.indexOf(0) + 1);
        return { tensor: tf.cast(ids, 'float32'), order: x.order.filter((axis) => axis !== 0).map((axis) => axis - 1) };
      }
      default: {
        const unsupported: never = node;
        throw new Error(`the TensorFlow.js engine has no kernel for ${(unsupported as Node).kind}`);
      }
    }
  }

  async dispose(): Promise<void> {
    disposeParams(this.convs);
  }
}

function disposeParams(convs: Map<string, ConvParams>): void {
  for (const { filters, biases } of convs.values()) tf.dispose([...filters, ...biases]);
  convs.clear();
}
