// What every weight importer shares: the error it raises, what it returns, the TF-slim scope of
// a Keras-named backbone layer, and the move of a filter from its file's layout to ours.
import { isDepthwise, type Conv2dOp, type Node } from '../model/graph.js';

export class WeightImportError extends Error {}

/** How the file expects pixels: value = scale * (pixel - zeroPoint). */
export interface InputQuantization {
  scale: number;
  zeroPoint: number;
}

/** The channel order a model takes its input in. */
export type ChannelOrder = 'RGB' | 'BGR';
export const CHANNEL_ORDERS: readonly ChannelOrder[] = ['RGB', 'BGR'];

/**
 * How pixels become the model's input: value[c] = scale[c] * (pixel[c] - zeroPoint[c]), with c
 * counted in `channels` order (the decoder gives RGB). A quantized input's {scale, zeroPoint} is the
 * one-scale case; per-channel mean and std (in [0, 1] units after dividing by 255, as torchvision
 * states them) are scale = 1 / (255 std), zeroPoint = 255 mean.
 */
export interface InputNormalization {
  scale: readonly [number, number, number];
  zeroPoint: readonly [number, number, number];
  channels: ChannelOrder;
}

/** The normalization a per-tensor quantization describes, on RGB input. */
export function normalizationOf({ scale, zeroPoint }: InputQuantization): InputNormalization {
  return { scale: [scale, scale, scale], zeroPoint: [zeroPoint, zeroPoint, zeroPoint], channels: 'RGB' };
}

export interface ImportedWeights {
  weights: Map<string, Float32Array>;
  input: InputQuantization;
}

/** Weights of a file that may not say how its input expects pixels (a float input): the model's config must. */
export interface FileWeights {
  weights: Map<string, Float32Array>;
  input?: InputQuantization;
}

/**
 * The TF-slim scope under `prefix` of a backbone layer named the Keras way (Conv1 -> Conv,
 * block_3_expand -> expanded_conv_3/expand, out_relu -> Conv_1), which TF-slim checkpoints and
 * the files converted from them use; undefined for a layer outside the backbone.
 */
export function slimBackboneScope(layer: string, prefix: string): string | undefined {
  if (layer === 'Conv1') return `${prefix}/Conv`;
  if (layer === 'out_relu') return `${prefix}/Conv_1`;
  const block = /^(?:expanded_conv|block_(\d+))_(expand|depthwise|project)$/.exec(layer);
  return block ? `${prefix}/expanded_conv${block[1] ? `_${block[1]}` : ''}/${block[2]}` : undefined;
}

/**
 * How a file stores a convolution filter, as the order of its axes: O(ut), I(n per group),
 * H(eight), W(idth). TFLite: OHWI, depthwise IHWO (I = 1); TensorFlow: HWIO, depthwise HWOI;
 * ONNX: OIHW, ours.
 */
export type FilterLayout = 'OHWI' | 'IHWO' | 'HWIO' | 'HWOI' | 'OIHW';

/** The layout TensorFlow (graph models, checkpoints) stores the node's filter in. */
export const tensorflowLayout = (node: Node<Conv2dOp>): FilterLayout => (isDepthwise(node) ? 'HWOI' : 'HWIO');
/** The layout a TFLite file stores the node's filter in. */
export const tfliteLayout = (node: Node<Conv2dOp>): FilterLayout => (isDepthwise(node) ? 'IHWO' : 'OHWI');

/** The shape a filter for `node` has in `layout`. */
export function filterShape(node: Node<Conv2dOp>, layout: FilterLayout): number[] {
  const [o, i, h, w] = node.weight.shape as [number, number, number, number];
  const size = { O: o, I: i, H: h, W: w };
  return [...layout].map((axis) => size[axis as keyof typeof size]);
}

/**
 * A filter stored in `layout` as our [out, in/groups, kh, kw] (OIHW), each output channel
 * multiplied by `scale` when given (a batch norm folded in). The caller has checked the shape.
 */
export function toOIHW(node: Node<Conv2dOp>, values: ArrayLike<number>, layout: FilterLayout, scale?: ArrayLike<number>): Float32Array {
  const [out, inPerGroup, kh, kw] = node.weight.shape as [number, number, number, number];
  const dims = filterShape(node, layout);
  // Stride of each of our axes in the source: the product of the source dimensions after it.
  const strideOf = (axis: string) => {
    const at = layout.indexOf(axis);
    return dims.slice(at + 1).reduce((a, b) => a * b, 1);
  };
  const [so, si, sh, sw] = ['O', 'I', 'H', 'W'].map(strideOf) as [number, number, number, number];
  const result = new Float32Array(out * inPerGroup * kh * kw);
  let target = 0;
  for (let o = 0; o < out; o++) {
    const factor = scale?.[o] ?? 1;
    for (let i = 0; i < inPerGroup; i++) {
      for (let y = 0; y < kh; y++) {
        for (let x = 0; x < kw; x++) result[target++] = values[o * so + i * si + y * sh + x * sw]! * factor;
      }
    }
  }
  return result;
}
