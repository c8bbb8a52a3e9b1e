// DeepLabv3 on the MobileNetV2 backbone (the paper's Section 6.3), with Keras-style names for
// the head as keras-deeplab-v3-plus gives them. The head reads the last bottleneck (320 x alpha
// channels, "the second-last feature map"), not the 1x1 conv to 1280.
import { costOf } from './cost.js';
import { GraphBuilder, type BuiltGraph, type Graph, type ResizeBilinearOp, type Tensor } from './graph.js';
import { addBackbone, OUTPUT_STRIDES, WIDTH_MULTIPLIERS, type OutputStride } from './mobilenet-v2.js';

/**
 * 'lite': image pooling + one 1x1 branch, the paper's efficient head and the one every released
 * file has. 'aspp': the same plus three 3x3 atrous branches (atrous spatial pyramid pooling).
 */
export const DEEPLAB_HEADS = ['lite', 'aspp'] as const;
export type DeepLabHead = (typeof DEEPLAB_HEADS)[number];

/**
 * Inference strategies: 'single' runs the network once on the input; 'mf' is the paper's
 * multi-scale + flip evaluation, the class probabilities (softmax of the logits) averaged over six
 * input scales and their mirror images, as DeepLab's predict_labels_multi_scale averages them.
 */
export const STRATEGIES = ['single', 'mf'] as const;
export type Strategy = (typeof STRATEGIES)[number];
export const MF_SCALES = [0.5, 0.75, 1.0, 1.25, 1.5, 1.75] as const;

/** One run of the network a strategy makes: the input scale and whether the input is mirrored. */
export interface InferenceRun {
  scale: number;
  flip: boolean;
}

export function inferenceRuns(strategy: Strategy): InferenceRun[] {
  if (strategy === 'single') return [{ scale: 1, flip: false }];
  return MF_SCALES.flatMap((scale) => [{ scale, flip: false }, { scale, flip: true }]);
}

export const PASCAL_VOC_CLASSES = 21;
const HEAD_CHANNELS = 256;
/** ASPP rates at output stride 16; they scale inversely with the output stride (12, 24, 36 at 8). */
const ASPP_RATES_OS16 = [6, 12, 18] as const;
/** Every resize in the released files sets align_corners (DeepLab's convention). */
const COORDINATES: ResizeBilinearOp['coordinates'] = 'align_corners';

export interface DeepLabConfig {
  alpha: number;
  /** Side of the square input the graph takes. */
  resolution: number;
  outputStride: OutputStride;
  head: DeepLabHead;
  classes?: number;
  /** 'classes': the argmax class id of each pixel, [h, w]; 'logits' or their softmax 'probabilities': [classes, h, w]. */
  output?: DeepLabOutput;
  /**
   * Multi-scale inference: the network runs on the input resized by this factor and its logits
   * are resized back to `resolution`. 1 runs it on the input as it is.
   */
  scale?: number;
}

/**
 * DeepLab's size for a scaled input: (side - 1) x scale + 1, which keeps a 16k+1 side (513, 257)
 * of that form, so align_corners resizes land on whole feature-map pixels.
 */
export function scaledSide(side: number, scale: number): number {
  return Math.floor((side - 1) * scale + 1);
}

/** Side of the head's feature map for an input side: TensorFlow 'SAME' convolutions round up. */
export function featureSide(side: number, outputStride: OutputStride): number {
  return Math.ceil(side / outputStride);
}

export type DeepLabOutput = 'classes' | 'logits' | 'probabilities';

/** What a request may change in a segmentation graph without other weights. */
export interface DeepLabVariant {
  outputStride: OutputStride;
  scale: number;
  output: DeepLabOutput;
}

/**
 * Multiply-adds of one image under a strategy: the sum over its runs (a mirrored run costs the
 * same). `logitsAt` is the model's logits graph at an input scale, as a DeepLab config or any
 * builder of the same network gives it; `count` is our convention unless a caller counts another way.
 */
export function strategyMultiplyAdds(
  logitsAt: Omit<DeepLabConfig, 'scale' | 'output'> | ((scale: number) => Graph),
  strategy: Strategy,
  count: (graph: Graph) => number = (graph) => costOf(graph).multiplyAdds,
): number {
  const graphAt = typeof logitsAt === 'function' ? logitsAt : (scale: number) => deepLabV3({ ...logitsAt, scale, output: 'logits' }).graph;
  const runsPerScale = new Map<number, number>();
  for (const { scale } of inferenceRuns(strategy)) runsPerScale.set(scale, (runsPerScale.get(scale) ?? 0) + 1);
  return [...runsPerScale].reduce((sum, [scale, runs]) => sum + runs * count(graphAt(scale)), 0);
}

export function asppRates(outputStride: OutputStride): number[] {
  return ASPP_RATES_OS16.map((r) => (r * 16) / outputStride);
}

export function deepLabName({ alpha, resolution, outputStride, head }: Pick<DeepLabConfig, 'alpha' | 'resolution' | 'outputStride' | 'head'>): string {
  return `deeplabv3_mobilenet_v2_${alpha.toFixed(1)}_${resolution}_os${outputStride}${head === 'aspp' ? '_aspp' : ''}`;
}

function validate(config: DeepLabConfig): Required<DeepLabConfig> {
  const { alpha, resolution, outputStride, head, classes = PASCAL_VOC_CLASSES, output = 'classes', scale = 1 } = config;
  if (!(WIDTH_MULTIPLIERS as readonly number[]).includes(alpha)) {
    throw new RangeError(`width multiplier ${alpha} is not one of ${WIDTH_MULTIPLIERS.join(', ')}`);
  }
  if (!(OUTPUT_STRIDES as readonly number[]).includes(outputStride)) {
    throw new RangeError(`output stride ${outputStride} is not one of ${OUTPUT_STRIDES.join(', ')}`);
  }
  if (!(DEEPLAB_HEADS as readonly string[]).includes(head)) throw new RangeError(`head ${head} is not one of ${DEEPLAB_HEADS.join(', ')}`);
  if (!Number.isInteger(resolution) || resolution < 2 * outputStride) {
    throw new RangeError(`resolution ${resolution} must be an integer of at least ${2 * outputStride} at output stride ${outputStride}`);
  }
  if (!(scale > 0) || scaledSide(resolution, scale) < 2 * outputStride) throw new RangeError(`scale ${scale} is too small for resolution ${resolution}`);
  if (!Number.isInteger(classes) || classes < 1) throw new RangeError(`classes ${classes} must be a positive integer`);
  return { alpha, resolution, outputStride, head, classes, output, scale };
}

/** The segmentation network with the handles its users need. */
export interface DeepLabGraph extends BuiltGraph {
  readonly classes: number;
  /** The graph's one output: class ids [h, w] or logits [classes, h, w], at the input's size. */
  readonly output: Tensor;
  readonly outputKind: DeepLabOutput;
  /** The in-graph resize of the input for multi-scale inference; absent at scale 1. */
  readonly inputResize?: Tensor;
  /** The head's bilinear resizes, in graph order (image pooling back over the map, logits to the input). */
  readonly headResizes: readonly Tensor[];
}

/** DeepLabv3 + MobileNetV2: dilated backbone, image pooling and 1x1 (and 3x3 atrous) branches, logits upsampled to the input. */
export function deepLabV3(config: DeepLabConfig): DeepLabGraph {
  const { alpha, resolution, outputStride, head, classes, output, scale } = validate(config);
  const suffix = scale === 1 ? '' : `_scale${scale}`;
  const g = new GraphBuilder(`${deepLabName({ alpha, resolution, outputStride, head })}${suffix}`);
  const input = g.input('input', [3, resolution, resolution]);
  const side = scaledSide(resolution, scale);
  const inputResize = scale === 1 ? undefined : g.resizeBilinear('input_scaled', input, [side, side], COORDINATES);
  // DeepLab builds its narrower backbones without rounding widths to multiples of 8.
  const backbone = addBackbone(g, inputResize ?? input, alpha, { outputStride, lastConv: false, channelDivisor: alpha === 1 ? 8 : 1 });
  const features = backbone.output.name;
  const [, height, width] = backbone.output.shape as [number, number, number];

  // Image-level features: one 256-vector for the whole image, spread back over the map.
  const pooled = g.globalAvgPool('image_pooling_pool', features);
  const imageFeatures = g.conv2d('image_pooling', pooled, { out: HEAD_CHANNELS, activation: 'relu' });
  const poolingUpsample = g.resizeBilinear('image_pooling_upsample', imageFeatures, [height, width], COORDINATES);
  const branches = [poolingUpsample, g.conv2d('aspp0', features, { out: HEAD_CHANNELS, activation: 'relu' })];
  if (head === 'aspp') {
    asppRates(outputStride).forEach((rate, i) => {
      branches.push(g.conv2d(`aspp${i + 1}`, features, { out: HEAD_CHANNELS, kernel: 3, dilation: rate, activation: 'relu' }));
    });
  }
  const joined = g.concat('concat', branches);
  const projected = g.conv2d('concat_projection', joined, { out: HEAD_CHANNELS, activation: 'relu' });
  const logits = g.conv2d('logits_semantic', projected, { out: classes });
  const upsampled = g.resizeBilinear('logits_upsample', logits, [resolution, resolution], COORDINATES);
  const result = output === 'classes' ? g.argmax('class_map', upsampled) : output === 'probabilities' ? g.channelSoftmax('probabilities', upsampled) : upsampled;
  return {
    graph: g.build([result]),
    input: g.tensor(input),
    classes,
    output: g.tensor(result),
    outputKind: output,
    inputResize: inputResize === undefined ? undefined : g.tensor(inputResize),
    headResizes: [g.tensor(poolingUpsample), g.tensor(upsampled)],
  };
}
