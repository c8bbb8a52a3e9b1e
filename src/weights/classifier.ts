// A MobileNetV2 classifier as a weight file describes it, in the same terms whatever the format
// (each format's reader produces it), and the two things done with it: reading the architecture
// (width, resolution, padding convention, head, classes) from the layers, and mapping the layers
// onto our graph with every shape, stride, padding and activation checked.
import { elementCount, isDepthwise, paddingOf, type Activation, type Conv2dOp, type Graph, type Node, type Padding } from '../model/graph.js';
import {
  firstConvChannels, lastConvChannels, mobileNetV2Classifier, PADDING_CONVENTIONS, WIDTH_MULTIPLIERS,
  type DenseLayer, type PaddingConvention,
} from '../model/mobilenet-v2.js';
import { filterShape, toOIHW, WeightImportError, type FileWeights, type FilterLayout, type InputQuantization } from './common.js';

/** [top, left, bottom, right], ONNX's order. */
export type Pads = readonly [number, number, number, number];

/** One convolution or dense layer (a 1x1 filter) of the file, batch norm already folded in by the reader. */
export interface FileLayer {
  /** What the file calls it, for messages: a layer, a node or a tensor, with the filter's stored shape. */
  source: string;
  depthwise: boolean;
  /** The filter's shape as stored, in `layout`. */
  filterShape: readonly number[];
  layout: FilterLayout;
  stride: number;
  dilation: number;
  /** As the file states it: a mode, or pads (e.g. a ZeroPadding2D before a 'valid' convolution). */
  padding: Padding | Pads;
  activation: Activation;
  /** The stored filter, a per-output-channel factor (a folded batch norm), and the biases; read on demand. */
  values(): { filter: ArrayLike<number>; scale?: ArrayLike<number>; bias: ArrayLike<number> };
}

/** A batch norm as the per-channel factor and shift it applies: y = x * scale + shift. */
export interface FoldedNorm {
  scale: Float32Array;
  shift: Float32Array;
}

/** A convolution's values with its own bias (if any) and then a batch norm (if any) folded in. */
export function foldedValues(filter: ArrayLike<number>, bias: ArrayLike<number> | undefined, norm: FoldedNorm | undefined, channels: number): ReturnType<FileLayer['values']> {
  if (!norm) return { filter, bias: bias ?? new Float32Array(channels) };
  return { filter, scale: norm.scale, bias: norm.shift.map((shift, c) => shift + (bias?.[c] ?? 0) * norm.scale[c]!) };
}

export interface FileClassifier {
  /** Input [height, width], absent where the file leaves it open (a fully convolutional file). */
  inputSize?: readonly [number, number];
  /** The convolutions before the global pool, in execution order. */
  backbone: readonly FileLayer[];
  /** The dense layers after it, the class layer last. */
  head: readonly FileLayer[];
  /** Whether the file ends with a softmax (a torchvision export ends with the logits). */
  softmax: boolean;
  /** Residual additions. */
  adds: number;
  /** Learned tensors no layer took. */
  unused: readonly string[];
  /** How the input expects pixels, when the file says (a quantized input). */
  input?: InputQuantization;
}

/** What the layers fix of the network; the rest of a classifier's config cannot come from the file. */
export interface ClassifierArchitecture {
  alpha: number;
  resolution: number;
  classes: number;
  hidden: DenseLayer[];
  padding: PaddingConvention;
}

export type StatedArchitecture = Partial<Pick<ClassifierArchitecture, 'alpha' | 'resolution' | 'classes'>>;

/** Stored filter axis sizes. */
function sizes(layer: FileLayer): { O: number; I: number; H: number; W: number } {
  const size = { O: 0, I: 0, H: 0, W: 0 };
  [...layer.layout].forEach((axis, i) => (size[axis as keyof typeof size] = layer.filterShape[i]!));
  return size;
}

const HEAD_ACTIVATIONS: readonly Activation[] = ['none', 'relu', 'relu6'];

/** The graph's convolutions in order, for each the side of its input and whether it comes after the pool (the head). */
function convsOf(graph: Graph): { node: Node<Conv2dOp>; inputSide: number; head: boolean }[] {
  const shapes = new Map(graph.nodes.map((n) => [n.name, n.shape]));
  const pool = graph.nodes.findIndex((n) => n.kind === 'globalAvgPool');
  return graph.nodes.flatMap((node, step) => (node.kind === 'conv2d'
    ? [{ node, inputSide: shapes.get(node.inputs[0]!)![1] ?? 1, head: step > pool }]
    : []));
}

function padsOf(padding: Padding | Pads, side: number, node: Node<Conv2dOp>): Pads {
  if (typeof padding !== 'string') return padding;
  const [before, after] = paddingOf(side, { ...node, padding });
  return [before, before, after, after];
}

/** Why `layer` cannot be `node` (whose input has `side` pixels), or undefined when it can. */
function mismatch(node: Node<Conv2dOp>, side: number, layer: FileLayer): string | undefined {
  const kind = (depthwise: boolean) => (depthwise ? 'a depthwise' : 'a regular');
  if (layer.depthwise !== isDepthwise(node)) return `layer ${node.name} is ${kind(isDepthwise(node))} convolution but ${layer.source} is ${kind(layer.depthwise)} one`;
  const expected = filterShape(node, layer.layout);
  if (expected.join() !== layer.filterShape.join()) return `layer ${node.name} expects [${expected}] but ${layer.source} does not match`;
  const wanted = { stride: node.stride, dilation: node.dilation, pads: padsOf(node.padding, side, node), activation: node.activation };
  const found = { stride: layer.stride, dilation: layer.dilation, pads: padsOf(layer.padding, side, node), activation: layer.activation };
  if (JSON.stringify(wanted) !== JSON.stringify(found)) return `layer ${node.name} expects ${JSON.stringify(wanted)} but ${layer.source} has ${JSON.stringify(found)}`;
  return undefined;
}

/** The first reason the file's layers are not this graph's, and how many layers agreed before it; undefined when they all do. */
function firstMismatch(graph: Graph, file: FileClassifier): { why: string; agreed: number } | undefined {
  const convs = convsOf(graph);
  const layers = [...file.backbone, ...file.head];
  const head = convs.filter((c) => c.head).length;
  if (convs.length !== layers.length || head !== file.head.length) {
    return { agreed: -1, why: `graph ${graph.name} has ${convs.length - head} convolutions and ${head} head layers but the file has ${file.backbone.length} and ${file.head.length}` };
  }
  for (const [i, { node, inputSide }] of convs.entries()) {
    const why = mismatch(node, inputSide, layers[i]!);
    if (why) return { why, agreed: i };
  }
  const adds = graph.nodes.filter((n) => n.kind === 'add').length;
  if (adds !== file.adds) return { agreed: convs.length, why: `graph ${graph.name} has ${adds} residual additions but the file has ${file.adds}` };
  return undefined;
}

const fail = (where: string, message: string): never => {
  throw new WeightImportError(`${where}: ${message}`);
};

/**
 * The architecture the file's layers fix: resolution from the input, classes and head from the
 * dense layers, width from the channels (the first convolution has make_divisible(32 x width)
 * channels, the last one 1280 scaled above width 1, and every layer between must then agree), the
 * padding convention from the pads. A stated value the weights contradict fails with both named.
 */
export function classifierArchitecture(file: FileClassifier, stated: StatedArchitecture, where: string): ClassifierArchitecture {
  const [height, width] = file.inputSize ?? [];
  if (height !== width) fail(where, `the input is ${height}x${width}; only square inputs are supported`);
  if (height !== undefined && stated.resolution !== undefined && stated.resolution !== height) {
    fail(where, `architecture.resolution is ${stated.resolution} but the weights' input is ${height}x${width}`);
  }
  const resolution = height ?? stated.resolution ?? fail(where, 'the file leaves the input size open: give architecture.resolution');
  const classLayer = file.head.at(-1) ?? fail(where, 'the file has no dense layer after the global pool');
  const classes = sizes(classLayer).O;
  if (stated.classes !== undefined && stated.classes !== classes) fail(where, `architecture.classes is ${stated.classes} but the weights' class layer ${classLayer.source} has ${classes} outputs`);
  if (classLayer.activation !== 'none') fail(where, `the class layer ${classLayer.source} ends in ${classLayer.activation}; a classifier ends in its logits or a softmax`);
  const hidden = file.head.slice(0, -1).map((layer): DenseLayer => {
    if (!HEAD_ACTIVATIONS.includes(layer.activation)) fail(where, `head layer ${layer.source} has activation ${layer.activation}, not one of ${HEAD_ACTIVATIONS.join(', ')}`);
    return { units: sizes(layer).O, activation: layer.activation };
  });
  const first = file.backbone[0] ? sizes(file.backbone[0]).O : fail(where, 'the file has no convolution');
  const last = sizes(file.backbone.at(-1)!).O;
  const attempts = (alphas: readonly number[]) => alphas.flatMap((alpha) => PADDING_CONVENTIONS.map((padding) => {
    const architecture = { alpha, resolution, classes, hidden, padding };
    return { architecture, mismatch: firstMismatch(mobileNetV2Classifier(architecture).graph, file) };
  }));
  /** The attempt that got furthest, to say which layer disagrees. */
  const closest = (tried: ReturnType<typeof attempts>) => tried.reduce((best, t) => ((t.mismatch?.agreed ?? 0) > (best.mismatch?.agreed ?? 0) ? t : best));
  const candidates = attempts(WIDTH_MULTIPLIERS.filter((a) => firstConvChannels(a) === first && lastConvChannels(a) === last));
  const found = candidates.find((t) => !t.mismatch)?.architecture;
  if (stated.alpha !== undefined && stated.alpha !== found?.alpha) {
    fail(where, `architecture.alpha is ${stated.alpha} but ${found ? `the weights have width ${found.alpha}` : 'the weights fit no width'}` +
      ` (Conv1 has ${first} channels, width ${stated.alpha} gives ${firstConvChannels(stated.alpha)}; ${closest(attempts([stated.alpha])).mismatch!.why})`);
  }
  if (!found) {
    const near = candidates.length ? closest(candidates) : undefined;
    fail(where, `the layers fit no MobileNetV2 width (${WIDTH_MULTIPLIERS.join(', ')}): the first convolution has ${first} channels and the last ${last}` +
      `${near ? `; at width ${near.architecture.alpha} with ${near.architecture.padding} padding: ${near.mismatch!.why}` : ''}`);
  }
  return found!;
}

/** The file's weights under the graph's parameter names, every layer checked against its node. */
export function importClassifier(graph: Graph, file: FileClassifier): FileWeights {
  const refuse = (message: string): never => {
    throw new WeightImportError(message);
  };
  const mismatched = firstMismatch(graph, file);
  if (mismatched) refuse(mismatched.why);
  if (file.unused.length) refuse(`tensors no layer of graph ${graph.name} uses: ${file.unused.slice(0, 5).join(', ')}${file.unused.length > 5 ? ', ...' : ''}`);
  const weights = new Map<string, Float32Array>();
  const layers = [...file.backbone, ...file.head];
  convsOf(graph).forEach(({ node }, i) => {
    const layer = layers[i]!;
    const { filter, scale, bias } = layer.values();
    if (filter.length !== elementCount(node.weight.shape) || bias.length !== node.bias.shape[0]) {
      refuse(`layer ${node.name}: ${layer.source} holds ${filter.length} weights and ${bias.length} biases, not ${elementCount(node.weight.shape)} and ${node.bias.shape[0]}`);
    }
    weights.set(node.weight.name, toOIHW(node, filter, layer.layout, scale));
    weights.set(node.bias.name, Float32Array.from(bias));
  });
  return { weights, input: file.input };
}
