import type { TaskInput } from '../tasks.js';
import { normalizationOf, type InputNormalization, type InputQuantization } from '../weights/common.js';

/** RGB pixels to the values the imported weights were trained on, channel by channel (see InputNormalization). */
export function normalize(pixels: Uint8Array, input: InputNormalization | InputQuantization): Float32Array {
  const { scale, zeroPoint, channels } = 'channels' in input ? input : normalizationOf(input);
  const values = new Float32Array(pixels.length);
  const source = channels === 'BGR' ? [2, 1, 0] : [0, 1, 2];
  for (let i = 0; i < pixels.length; i += 3) {
    for (let c = 0; c < 3; c++) values[i + c] = scale[c]! * (pixels[i + source[c]!]! - zeroPoint[c]!);
  }
  return values;
}

/**
 * A task's input as the engine takes it, of `length` elements: pixels normalized here, or values
 * the client normalized (in the model's channel order, as its metadata describes the input).
 */
export function engineInput(input: TaskInput, normalization: InputNormalization | InputQuantization, length: number): Float32Array {
  const values = input.kind === 'pixels' ? normalize(input.pixels, normalization) : input.values;
  if (values.length !== length) throw new Error(`the input has ${values.length} values; the model takes ${length}`);
  return values;
}

/** `values` scaled to unit Euclidean length; all zeros stay zeros (no direction to keep). */
export function l2Normalized(values: Float32Array): Float32Array {
  let sumOfSquares = 0;
  for (const v of values) sumOfSquares += v * v;
  const norm = Math.sqrt(sumOfSquares);
  return norm === 0 ? values : values.map((v) => v / norm);
}
