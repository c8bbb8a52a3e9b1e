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
