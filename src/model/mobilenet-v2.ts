// MobileNetV2 (Sandler et al., 2018, Table 2) as data plus one loop, with Keras' layer names.
import { GraphBuilder, type Graph } from './graph.js';

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

export interface MobileNetV2Config {
  /** Width multiplier α. */
  alpha: number;
  /** Square input side in pixels. */
  resolution: number;
  /** Classifier outputs; the released checkpoints have 1001 (index 0 = background). */
  classes?: number;
}

/** Rounds channels to a multiple of `divisor`, never going more than 10% below `value`. */
export function makeDivisible(value: number, divisor = 8): number {
  const rounded = Math.max(divisor, Math.floor((value + divisor / 2) / divisor) * divisor);
  return rounded < 0.9 * value ? rounded + divisor : rounded;
}

export function validateConfig(config: MobileNetV2Config): Required<MobileNetV2Config> {
  const { alpha, resolution, classes = 1001 } = config;
  if (!(WIDTH_MULTIPLIERS as readonly number[]).includes(alpha)) {
    throw new RangeError(`width multiplier ${alpha} is not one of ${WIDTH_MULTIPLIERS.join(', ')}`);
  }
  if (!Number.isInteger(resolution) || resolution < MIN_RESOLUTION) {
    throw new RangeError(
      `resolution ${resolution} must be an integer of at least ${MIN_RESOLUTION} (standard: ${STANDARD_RESOLUTIONS.join(', ')})`,
    );
  }
  if (!Number.isInteger(classes) || classes < 1) throw new RangeError(`classes ${classes} must be a positive integer`);
  return { alpha, resolution, classes };
}

/** Keras' prefix for bottleneck `id` (0-based over all repeats). */
export function blockPrefix(id: number): string {
  return id === 0 ? 'expanded_conv' : `block_${id}`;
}

/** Names of the nodes that end the backbone, for heads that attach to it. */
export const BACKBONE_OUTPUT = 'out_relu';

/** Adds the MobileNetV2 feature extractor (everything before pooling) and returns its last node. */
export function addBackbone(g: GraphBuilder, input: string, alpha: number): string {
  let x = g.conv2d('Conv1', input, {
    out: makeDivisible(FIRST_CONV_CHANNELS * alpha), kernel: 3, stride: 2, activation: 'relu6',
  });
  let id = 0;
  for (const { t, c, n, s } of BOTTLENECK_ROWS) {
    const out = makeDivisible(c * alpha);
    for (let i = 0; i < n; i++, id++) {
      x = addInvertedResidual(g, blockPrefix(id), x, { expansion: t, out, stride: i === 0 ? s : 1 });
    }
  }
  const last = alpha > 1 ? makeDivisible(LAST_CONV_CHANNELS * alpha) : LAST_CONV_CHANNELS;
  return g.conv2d(BACKBONE_OUTPUT, x, { out: last, activation: 'relu6' });
}

function addInvertedResidual(
  g: GraphBuilder,
  prefix: string,
  input: string,
  { expansion, out, stride }: { expansion: number; out: number; stride: number },
): string {
  const [inChannels] = g.shapeOf(input) as [number];
  const hidden = inChannels * expansion;
  const expanded = expansion === 1
    ? input
    : g.conv2d(`${prefix}_expand`, input, { out: hidden, activation: 'relu6' });
  const depthwise = g.conv2d(`${prefix}_depthwise`, expanded, {
    out: hidden, kernel: 3, stride, groups: 'depthwise', activation: 'relu6',
  });
  // Linear bottleneck: no activation after the projection.
  const projected = g.conv2d(`${prefix}_project`, depthwise, { out });
  return stride === 1 && inChannels === out ? g.add(`${prefix}_add`, input, projected) : projected;
}

/** The classification network: backbone, global average pool, 1x1 classifier, softmax. */
export function mobileNetV2Classifier(config: MobileNetV2Config): Graph {
  const { alpha, resolution, classes } = validateConfig(config);
  const g = new GraphBuilder(`mobilenet_v2_${alpha.toFixed(2)}_${resolution}`);
  const input = g.input('input', [3, resolution, resolution]);
  const features = addBackbone(g, input, alpha);
  const pooled = g.globalAvgPool('global_average_pooling2d', features);
  const logits = g.conv2d('Logits', pooled, { out: classes });
  return g.build([g.softmax('predictions', logits)]);
}
