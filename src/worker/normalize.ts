import type { InputQuantization } from '../weights/common.js';

/** Pixels to the float values the imported weights were trained on: scale * (pixel - zeroPoint). */
export function normalize(pixels: Uint8Array, { scale, zeroPoint }: InputQuantization): Float32Array {
  const values = new Float32Array(pixels.length);
  for (let i = 0; i < pixels.length; i++) values[i] = scale * (pixels[i]! - zeroPoint);
  return values;
}
