// Semantic segmentation strategies in the worker: one run of the network, or the paper's
// multi-scale + flip (several runs whose class probabilities are averaged, as DeepLab's
// predict_labels_multi_scale does), down to one class id per pixel at the model's output size.
// Only that compact map goes back to the main thread.
import { inferenceRuns, type DeepLabVariant } from '../model/deeplab.js';
import type { Shape } from '../model/graph.js';
import type { SegmentationOutput, SegmentationRequest } from '../tasks.js';

/** One output of a graph: its values and the shape its handle gives. */
export interface GraphOutput {
  values: Float32Array;
  shape: Shape;
}

/** Runs the model's graph for `variant` on an NHWC input of the model's input shape. */
export type RunVariant = (variant: DeepLabVariant, input: Float32Array) => Promise<GraphOutput>;

/** `input` is NHWC float32 of [channels, height, width] `inputShape`. */
export async function segment(request: SegmentationRequest, input: Float32Array, inputShape: Shape, run: RunVariant): Promise<SegmentationOutput> {
  const { outputStride, strategy } = request;
  if (strategy === 'single') {
    const { values, shape } = await run({ outputStride, scale: 1, output: 'classes' }, input);
    const [height, width] = shape as [number, number];
    // Float32 class ids from the graph's argmax, as bytes (a class map has at most 256 classes).
    return { task: 'segmentation', classMap: Uint8Array.from(values), height, width };
  }
  const [channels, inHeight, inWidth] = inputShape as [number, number, number];
  const mirrored = mirrorNhwc(input, inHeight, inWidth, channels);
  let sum: Float32Array | undefined;
  let planes: Shape = [];
  for (const { scale, flip } of inferenceRuns(strategy)) {
    // Each scale's graph resizes the input itself, its logits back to the model's output size,
    // and ends in their softmax: probabilities, so a scale that is sure of a class outweighs one
    // that is not, as in DeepLab.
    const probabilities = await run({ outputStride, scale, output: 'probabilities' }, flip ? mirrored : input);
    planes = probabilities.shape;
    const aligned = flip ? mirrorChw(probabilities.values, planes[2]!) : probabilities.values;
    if (!sum) sum = Float32Array.from(aligned);
    else for (let i = 0; i < sum.length; i++) sum[i]! += aligned[i]!;
  }
  const [, height, width] = planes as [number, number, number];
  // The mean and the sum have the same argmax.
  return { task: 'segmentation', classMap: argmaxChannels(sum!, height * width), height, width };
}

/** Left-right mirror of a height x width image with `channels` interleaved values per pixel. */
export function mirrorNhwc(data: Float32Array, height: number, width: number, channels: number): Float32Array {
  const out = new Float32Array(data.length);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const from = (y * width + x) * channels;
      const to = (y * width + width - 1 - x) * channels;
      for (let c = 0; c < channels; c++) out[to + c] = data[from + c]!;
    }
  }
  return out;
}

/** Left-right mirror of [channels, height, width] planes, rows `width` long. */
function mirrorChw(data: Float32Array, width: number): Float32Array {
  const out = new Float32Array(data.length);
  for (let row = 0; row < data.length; row += width) {
    for (let x = 0; x < width; x++) out[row + width - 1 - x] = data[row + x]!;
  }
  return out;
}

/** Index of the largest of the [channels, pixels] planes at each pixel; ties keep the lower id. */
export function argmaxChannels(planes: Float32Array, pixels: number): Uint8Array {
  const channels = planes.length / pixels;
  const best = planes.slice(0, pixels);
  const ids = new Uint8Array(pixels);
  for (let c = 1; c < channels; c++) {
    const offset = c * pixels;
    for (let i = 0; i < pixels; i++) {
      if (planes[offset + i]! > best[i]!) {
        best[i] = planes[offset + i]!;
        ids[i] = c;
      }
    }
  }
  return ids;
}
