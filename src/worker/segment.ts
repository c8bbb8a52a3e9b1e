// Semantic segmentation in the worker: one run of the network, or the paper's multi-scale +
// flip strategy (several runs whose logits are averaged), down to one class id per pixel at the
// model's resolution. Only that compact map (side x side bytes) goes back to the main thread.
import { inferenceRuns, type DeepLabVariant, type Strategy } from '../model/deeplab.js';
import type { OutputStride } from '../model/mobilenet-v2.js';

export interface SegmentationRequest {
  task: 'segmentation';
  outputStride: OutputStride;
  strategy: Strategy;
}

export interface SegmentationOutput {
  task: 'segmentation';
  /** Class id of each pixel of the side x side model input, row-major. */
  classMap: Uint8Array;
  side: number;
}

/** Runs a graph of the model built for `variant` on an NHWC input; outputs in graph order. */
export type RunVariant = (variant: DeepLabVariant, input: Float32Array) => Promise<readonly Float32Array[]>;

/** The graph's own output, float32 class ids from its argmax, as bytes (21 classes fit). */
export function classMapOutput(classes: Float32Array): SegmentationOutput {
  return { task: 'segmentation', classMap: Uint8Array.from(classes), side: Math.round(Math.sqrt(classes.length)) };
}

export async function segment(request: SegmentationRequest, input: Float32Array, run: RunVariant): Promise<SegmentationOutput> {
  const { outputStride, strategy } = request;
  if (strategy === 'single') {
    const [classes] = await run({ outputStride, scale: 1, output: 'classes' }, input);
    return classMapOutput(classes!);
  }
  const side = Math.round(Math.sqrt(input.length / 3));
  const mirrored = mirrorNhwc(input, side, 3);
  let sum: Float32Array | undefined;
  for (const { scale, flip } of inferenceRuns(strategy)) {
    // Each scale's graph resizes the input itself and its logits back to side x side.
    const [logits] = await run({ outputStride, scale, output: 'logits' }, flip ? mirrored : input);
    const aligned = flip ? mirrorChw(logits!, side) : logits!;
    if (!sum) sum = Float32Array.from(aligned);
    else for (let i = 0; i < sum.length; i++) sum[i]! += aligned[i]!;
  }
  // The mean and the sum have the same argmax.
  return { task: 'segmentation', classMap: argmaxChannels(sum!, side), side };
}

/** Left-right mirror of a side x side image with `channels` interleaved values per pixel. */
export function mirrorNhwc(data: Float32Array, side: number, channels: number): Float32Array {
  const out = new Float32Array(data.length);
  for (let y = 0; y < side; y++) {
    for (let x = 0; x < side; x++) {
      const from = (y * side + x) * channels;
      const to = (y * side + side - 1 - x) * channels;
      for (let c = 0; c < channels; c++) out[to + c] = data[from + c]!;
    }
  }
  return out;
}

/** Left-right mirror of [channels, side, side] planes. */
function mirrorChw(data: Float32Array, side: number): Float32Array {
  const out = new Float32Array(data.length);
  for (let row = 0; row < data.length; row += side) {
    for (let x = 0; x < side; x++) out[row + side - 1 - x] = data[row + x]!;
  }
  return out;
}

/** Index of the largest of the [channels, side, side] planes at each pixel; ties keep the lower id. */
export function argmaxChannels(planes: Float32Array, side: number): Uint8Array {
  const pixels = side * side;
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
