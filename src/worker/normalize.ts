import type { TaskInput } from '../tasks.js';
import type { InputQuantization } from '../weights/common.js';

/** Pixels to the float values the imported weights were trained on: scale * (pixel - zeroPoint). */
export function normalize(pixels: Uint8Array, { scale, zeroPoint }: InputQuantization): Float32Array {
  const values = new Float32Array(pixels.length);
  for (let i = 0; i < pixels.length; i++) values[i] = scale * (pixels[i]! - zeroPoint);
  return values;
}

/** A task's input as the engine takes it: pixels normalized here, or values the client normalized, of `length` elements. */
export function engineInput(input: TaskInput, quantization: InputQuantization, length: number): Float32Array {
  const values = input.kind === 'pixels' ? normalize(input.pixels, quantization) : input.values;
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
