// MobileNetV2 (Sandler et al., 2018, Table 2) as data plus one loop, with Keras' layer names.
import { GraphBuilder, type Activation, type BuiltGraph, type Padding, type Tensor } from './graph.js';

/** One row of the paper's Table 2: expansion t, output channels c, repeats n, first stride s. */
export interface BottleneckRow {
  readonly t: number;
  readonly c: number;
  readonly n: number;
  readonly s: number;
}

export const BOTTLENECK_ROWS: readonly BottleneckRow[] = [
  { t: 1, c: 16, n: 1, s: 1 },
  { t: 6, c: 24, n: 2, s: 2 },
  { t: 6, c: 32, n: 3, s: 2 },
  { t: 6, c: 64, n: 4, s: 2 },
  { t: 6, c: 96, n: 3, s: 1 },
  { t: 6, c: 160, n: 3, s: 2 },
  { t: 6, c: 320, n: 1, s: 1 },
];

const FIRST_CONV_CHANNELS = 32;
const LAST_CONV_CHANNELS = 1280;
export const WIDTH_MULTIPLIERS = [0.35, 0.5, 0.75, 1.0, 1.3, 1.4] as const;
export const STANDARD_RESOLUTIONS = [96, 128, 160, 192, 224] as const;
export const MIN_RESOLUTION = 32;

/** A fully connected layer of a classifier head, between the pool and the class layer. */
export interface DenseLayer {
  readonly units: number;
  readonly activation: Activation;
}

/** How the convolutions pad: TensorFlow's 'same' (Keras, TF-slim, TFLite) or PyTorch's symmetric k // 2 (torchvision). */
export type PaddingConvention = Extract<Padding, 'same' | 'symmetric'>;
export const PADDING_CONVENTIONS: readonly PaddingConvention[] = ['same', 'symmetric'];

export interface MobileNetV2Config {
  /** Width multiplier α, one of WIDTH_MULTIPLIERS. */
  alpha: number;
  /** Square input side in pixels. */
  resolution: number;
  /** Classifier outputs; the released checkpoints have 1001 (index 0 = background). */
  classes?: number;
  /** Dense layers between the pool and the class layer (a fine-tuned head); none by default. */
  hidden?: readonly DenseLayer[];
  padding?: PaddingConvention;
}



/** Rounds channels to a multiple of `divisor` (at least `min`), never going more than 10% below `value`. */
export function makeDivisible(value: number, divisor = 8, min = divisor): number {
  const rounded = Math.max(min, Math.floor((value + divisor / 2) / divisor) * divisor);
  return rounded < 0.9 * value ? rounded + divisor : rounded;
}

export function validateConfig(config: MobileNetV2Config): Required<MobileNetV2Config> {
  const { alpha, resolution, classes = 1001, hidden = [], padding = 'same' } = config;
  if (!(WIDTH_MULTIPLIERS as readonly number[]).includes(alpha)) {
    throw new RangeError(`width multiplier ${alpha} is not one of ${WIDTH_MULTIPLIERS.join(', ')}`);
  }
  if (!Number.isInteger(resolution) || resolution < MIN_RESOLUTION) {
    throw new RangeError(
      `resolution ${resolution} must be an integer of at least ${MIN_RESOLUTION} (standard: ${STANDARD_RESOLUTIONS.join(', ')})`,
    );
  }
  if (!Number.isInteger(classes) || classes < 1) throw new RangeError(`classes ${classes} must be a positive integer`);
  for (const [i, layer] of hidden.entries()) {
    if (!Number.isInteger(layer.units) || layer.units < 1) throw new RangeError(`head layer ${i + 1}: units ${layer.units} must be a positive integer`);
  }
  if (!PADDING_CONVENTIONS.includes(padding)) throw new RangeError(`padding ${padding} is not one of ${PADDING_CONVENTIONS.join(', ')}`);
  return { alpha, resolution, classes, hidden, padding };
}

const scaledChannels = (channels: number, alpha: number, divisor = 8) => makeDivisible(channels * alpha, divisor, 8);

/** Channels of the first convolution at width `alpha`: make_divisible(32 x alpha). */
export const firstConvChannels = (alpha: number, divisor = 8): number => scaledChannels(FIRST_CONV_CHANNELS, alpha, divisor);

/** Channels of the last 1x1 convolution: 1280, scaled only above width 1 (Keras, TF-slim and torchvision agree). */
export const lastConvChannels = (alpha: number): number => (alpha > 1 ? makeDivisible(LAST_CONV_CHANNELS * alpha) : LAST_CONV_CHANNELS);

/** Keras' prefix for bottleneck `id` (0-based over all repeats). */
export function blockPrefix(id: number): string {
  return id === 0 ? 'expanded_conv' : `block_${id}`;
}

/** Keras' name of the 1x1 conv to 1280 channels that ends the classifier's backbone. */
const LAST_CONV = 'out_relu';

/** Input side / feature map side at the end of the backbone. 32 is the paper's (and the classifier's) network. */
export const OUTPUT_STRIDES = [8, 16, 32] as const;
export type OutputStride = (typeof OUTPUT_STRIDES)[number];

export interface BackboneOptions {
  /**
   * Once the layers so far have reduced the input by this factor, later strides become 1 and the
   * depthwise convolutions dilate instead (atrous), with a rate multiplied by each stride skipped,
   * so the feature map keeps its resolution while every receptive field stays the same.
   */
  outputStride?: OutputStride;
  /** Whether to end with the 1x1 conv to 1280 channels; without it the last bottleneck (320 x alpha channels) ends the backbone. */
  lastConv?: boolean;
  /**
   * Layer widths are width x the paper's, rounded to a multiple of this (at least 8). 8 is Keras'
   * and the classifiers'; DeepLab's checkpoints below width 1.0 use 1 (24 x 0.5 stays 12).
   */
  channelDivisor?: number;
  /** Default 'same'. */
  padding?: PaddingConvention;
}

/** One inverted-residual block as built: its tensors, and where in the network it runs. */
export interface BottleneckBlock {
  readonly prefix: string;
  readonly input: Tensor;
  /** The 1x1 expansion; absent when the expansion factor is 1. */
  readonly expand?: Tensor;
  readonly depthwise: Tensor;
  readonly output: Tensor;
  /** How much the network has reduced the input where the block starts, and the block's own stride. */
  readonly inputStride: number;
  readonly stride: number;
}

/** Handles on the feature extractor, for the heads that attach to it. */
export interface Backbone {
  /** The last tensor: the conv to 1280 channels, or the last bottleneck without it. */
  readonly output: Tensor;
  readonly blocks: readonly BottleneckBlock[];
}

/** Adds the MobileNetV2 feature extractor (everything before pooling). */
export function addBackbone(g: GraphBuilder, input: string, alpha: number, options: BackboneOptions = {}): Backbone {
  const { outputStride = 32, lastConv = true, channelDivisor = 8, padding = 'same' } = options;
  const width = (channels: number) => scaledChannels(channels, alpha, channelDivisor);
  if (!(OUTPUT_STRIDES as readonly number[]).includes(outputStride)) {
    throw new RangeError(`output stride ${outputStride} is not one of ${OUTPUT_STRIDES.join(', ')}`);
  }
  // TF-slim's rule (mobilenet.py), which DeepLab's checkpoints were trained with: the layer that
  // would pass the output stride runs at stride 1 with the current rate, and the rate grows by
  // its stride for every later layer.
  let reached = 1;
  let rate = 1;
  const atrous = (stride: number) => {
    if (reached < outputStride) {
      reached *= stride;
      return { stride, dilation: 1 };
    }
    const dilation = rate;
    rate *= stride;
    return { stride: 1, dilation };
  };
  let x = g.conv2d('Conv1', input, {
    out: firstConvChannels(alpha, channelDivisor), kernel: 3, ...atrous(2), activation: 'relu6', padding,
  });
  const blocks: BottleneckBlock[] = [];
  for (const { t, c, n, s } of BOTTLENECK_ROWS) {
    const out = width(c);
    for (let i = 0; i < n; i++) {
      const inputStride = reached;
      const geometry = atrous(i === 0 ? s : 1);
      const block = addInvertedResidual(g, blockPrefix(blocks.length), x, { expansion: t, out, padding, ...geometry });
      blocks.push({ ...block, inputStride, stride: geometry.stride });
      x = block.output.name;
    }
  }
  if (!lastConv) return { output: g.tensor(x), blocks };
  return { output: g.tensor(g.conv2d(LAST_CONV, x, { out: lastConvChannels(alpha), activation: 'relu6' })), blocks };
}

function addInvertedResidual(
  g: GraphBuilder,
  prefix: string,
  input: string,
  { expansion, out, stride, dilation, padding }: { expansion: number; out: number; stride: number; dilation: number; padding: PaddingConvention },
): Pick<BottleneckBlock, 'prefix' | 'input' | 'expand' | 'depthwise' | 'output'> {
  const [inChannels] = g.shapeOf(input) as [number];
  // A multiple of 8 already whenever the widths are; TF-slim rounds it for narrower ones.
  const hidden = makeDivisible(inChannels * expansion);
  const expanded = expansion === 1
    ? input
    : g.conv2d(`${prefix}_expand`, input, { out: hidden, activation: 'relu6' });
  const depthwise = g.conv2d(`${prefix}_depthwise`, expanded, {
    out: hidden, kernel: 3, stride, dilation, groups: 'depthwise', activation: 'relu6', padding,
  });
  // Linear bottleneck: no activation after the projection.
  const projected = g.conv2d(`${prefix}_project`, depthwise, { out });
  const output = stride === 1 && inChannels === out ? g.add(`${prefix}_add`, input, projected) : projected;
  return {
    prefix,
    input: g.tensor(input),
    expand: expansion === 1 ? undefined : g.tensor(expanded),
    depthwise: g.tensor(depthwise),
    output: g.tensor(output),
  };
}

/** The classifier with the handles its users need: class count, the logits, the probabilities, the pooled features. */
export interface ClassifierGraph extends BuiltGraph {
  readonly classes: number;
  /** The class layer's output before softmax, [classes, 1, 1]. */
  readonly logits: Tensor;
  /** Softmax over the classes, [classes]. */
  readonly probabilities: Tensor;
  /** The dense layers of the head, the class layer last: 1x1 convolutions on the pooled [c, 1, 1] map. */
  readonly head: readonly Tensor[];
  /**
   * The backbone's globally pooled features, [channels, 1, 1] (1280 at width 1.0 and below): the
   * image embedding. A graph output too, so one run gives both.
   */
  readonly features: Tensor;
}

/** The name of hidden head layer `i` (0-based); the class layer is Logits. */
export const headLayerName = (i: number): string => `head_${i + 1}`;

/**
 * The classification network: backbone, global average pool, the head's dense layers, then the
 * class layer and softmax. A dense layer on the pooled vector is a 1x1 convolution on the
 * [c, 1, 1] map (in x out multiply-adds), so every engine, the cost model and the split rewrite
 * already know it.
 */
export function mobileNetV2Classifier(config: MobileNetV2Config): ClassifierGraph {
  const { alpha, resolution, classes, hidden, padding } = validateConfig(config);
  const g = new GraphBuilder(`mobilenet_v2_${alpha.toFixed(2)}_${resolution}`);
  const input = g.input('input', [3, resolution, resolution]);
  const features = addBackbone(g, input, alpha, { padding });
  const pooled = g.globalAvgPool('global_average_pooling2d', features.output.name);
  let x = pooled;
  const head: string[] = [];
  hidden.forEach(({ units, activation }, i) => head.push(x = g.conv2d(headLayerName(i), x, { out: units, activation })));
  const logits = g.conv2d('Logits', x, { out: classes });
  const probabilities = g.softmax('predictions', logits);
  return {
    graph: g.build([probabilities, pooled]),
    input: g.tensor(input),
    classes,
    logits: g.tensor(logits),
    probabilities: g.tensor(probabilities),
    head: [...head, logits].map((name) => g.tensor(name)),
    features: g.tensor(pooled),
  };
}
