import * as tf from '@tensorflow/tfjs-core';
import sharp from 'sharp';
import { beforeAll, describe, expect, it } from 'vitest';
import { findEntry } from '../src/catalog/catalog.js';
import { decodeImage, ImageError, sniffFormat } from '../src/decode/decode.js';
import type { Preprocess } from '../src/decode/preprocess.js';
import { useTfjsBackend } from '../src/engine/tfjs/backend.js';
import { ModelConfigError } from '../src/catalog/config.js';
import { describeModel } from '../src/pipeline/models.js';
import { photo } from './helpers.js';

const LIMITS = { maxPixels: 50_000_000, minSide: 1 };
let reference: Uint8Array;

/** Mean absolute difference of two pixel buffers, in grey levels (another photo gives 40+). */
const meanDifference = (a: Uint8Array, b: Uint8Array) => a.reduce((sum, v, i) => sum + Math.abs(v - b[i]!), 0) / a.length;

beforeAll(async () => {
  reference = (await decodeImage(photo('cat.png'), 224, LIMITS)).pixels;
});

/** The JPEG with its ICC profile segments (APP2 'ICC_PROFILE') cut out, found by walking the markers. */
function withoutIccProfile(jpeg: Buffer): Buffer {
  const kept = [jpeg.subarray(0, 2)];
  let at = 2;
  while (jpeg[at] === 0xff && jpeg[at + 1] !== 0xda) {
    const length = jpeg.readUInt16BE(at + 2);
    const isIcc = jpeg[at + 1] === 0xe2 && jpeg.toString('latin1', at + 4, at + 15) === 'ICC_PROFILE';
    if (!isIcc) kept.push(jpeg.subarray(at, at + 2 + length));
    at += 2 + length;
  }
  return Buffer.concat([...kept, jpeg.subarray(at)]);
}

describe('decodeImage', () => {
  const source = () => sharp(photo('cat.png'));
  const variants: [string, () => Promise<Buffer>, string, number][] = [
    ['JPEG', () => source().jpeg({ quality: 95 }).toBuffer(), 'jpeg', 4],
    ['WebP', () => source().webp({ quality: 95 }).toBuffer(), 'webp', 4],
    ['GIF', () => source().gif().toBuffer(), 'gif', 12],
    ['TIFF', () => source().tiff().toBuffer(), 'tiff', 2],
    ['AVIF', () => source().avif({ quality: 90 }).toBuffer(), 'avif', 6],
    ['CMYK JPEG', () => source().toColourspace('cmyk').jpeg({ quality: 95 }).toBuffer(), 'jpeg', 12],
    ['16-bit PNG', () => source().toColourspace('rgb16').png().toBuffer(), 'png', 1],
    ['PNG with alpha', () => source().ensureAlpha(0.5).png().toBuffer(), 'png', 2],
  ];

  it.each(variants)('reads %s into the same RGB pixels', async (_name, make, format, tolerance) => {
    const image = await decodeImage(await make(), 224, LIMITS);
    expect(image).toMatchObject({ format, width: 512, height: 341 });
    expect(image.pixels.length).toBe(224 * 224 * 3);
    expect(meanDifference(image.pixels, reference)).toBeLessThan(tolerance);
  });

  it('ignores an embedded ICC profile: the pixels are the stored values, as without the profile', async () => {
    const tagged = await source().jpeg({ quality: 95 }).withIccProfile('p3').toBuffer();
    const untagged = withoutIccProfile(tagged);
    expect(untagged.length).toBeLessThan(tagged.length);
    const [a, b] = await Promise.all([decodeImage(tagged, 224, LIMITS), decodeImage(untagged, 224, LIMITS)]);
    expect(Buffer.from(a.pixels).equals(Buffer.from(b.pixels))).toBe(true);
    // Not vacuous: converting with the profile gives other values.
    const managed = await sharp(tagged).resize(224, 224, { fit: 'fill' }).toColourspace('srgb').raw().toBuffer();
    expect(meanDifference(managed, b.pixels)).toBeGreaterThan(1);
  });

  it('turns greyscale into three equal channels', async () => {
    const grey = await decodeImage(photo('camera.png'), 224, LIMITS);
    expect(grey.pixels.length).toBe(224 * 224 * 3);
    for (let i = 0; i < grey.pixels.length; i += 3 * 997) {
      expect(grey.pixels[i]).toBe(grey.pixels[i + 1]);
      expect(grey.pixels[i]).toBe(grey.pixels[i + 2]);
    }
  });

  it('applies EXIF orientation before resizing', async () => {
    // Store the photo turned on its side with an EXIF tag that says to turn it back.
    const sideways = await source().rotate(-90).withMetadata({ orientation: 6 }).jpeg({ quality: 95 }).toBuffer();
    const image = await decodeImage(sideways, 224, LIMITS);
    expect([image.width, image.height]).toEqual([512, 341]);
    expect(meanDifference(image.pixels, reference)).toBeLessThan(4);
  });

  it('takes the first frame of an animated GIF', async () => {
    const frames = await Promise.all(['cat.png', 'parrot.jpg'].map((name) => sharp(photo(name)).resize(64, 64, { fit: 'fill' }).raw().toBuffer()));
    const animated = await sharp(Buffer.concat(frames), { raw: { width: 64, height: 128, channels: 3, pageHeight: 64 } } as never)
      .gif({ loop: 0 })
      .toBuffer();
    const first = await sharp(frames[0]!, { raw: { width: 64, height: 64, channels: 3 } }).gif().toBuffer();
    const [a, b] = await Promise.all([decodeImage(animated, 32, LIMITS), decodeImage(first, 32, LIMITS)]);
    expect(a.height).toBe(64);
    expect(meanDifference(a.pixels, b.pixels)).toBeLessThan(2);
  });

  it('refuses images over the pixel limit or under the minimum side', async () => {
    // cat.png is 512 x 341 (file header): 174,592 pixels, a short side of 341.
    await expect(decodeImage(photo('cat.png'), 224, { maxPixels: 174_591, minSide: 1 })).rejects.toMatchObject({ problem: 'too_large', message: expect.stringContaining('512x341') });
    await expect(decodeImage(photo('cat.png'), 224, { maxPixels: 174_592, minSide: 341 })).resolves.toMatchObject({ width: 512, height: 341 });
    await expect(decodeImage(photo('cat.png'), 224, { maxPixels: 1e9, minSide: 342 })).rejects.toMatchObject({ problem: 'too_small' });
    await expect(decodeImage(Buffer.from('GIF89a broken'), 224, LIMITS)).rejects.toBeInstanceOf(ImageError);
    await expect(decodeImage(Buffer.from('GIF89a broken'), 224, LIMITS)).rejects.toMatchObject({ problem: 'undecodable' });
  });
});

describe('preprocessing: crop and resize kernel', () => {
  const CENTRAL: Preprocess = { crop: 'central', fraction: 0.875, kernel: 'bilinear' };
  beforeAll(() => useTfjsBackend('wasm'));

  /** cat.png decoded whole, as a [h, w, 3] float tensor, for TensorFlow's own crop and resize. */
  const whole = async () => {
    const { data, info } = await sharp(photo('cat.png')).removeAlpha().raw().toBuffer({ resolveWithObject: true });
    return tf.tensor3d(Float32Array.from(data), [info.height, info.width, 3]);
  };
  const largestDifference = (ours: Uint8Array, theirs: Float32Array) => ours.reduce((worst, v, i) => Math.max(worst, Math.abs(v - theirs[i]!)), 0);
  /** Rounding to a byte; TensorFlow computes coordinates and weights in float32, we in float64. */
  const ROUNDING = 0.5 + 5e-3;

  it('bilinear is TensorFlow\'s resize_bilinear (align_corners and half_pixel_centers false), to the rounding of a byte', async () => {
    const ours = await decodeImage(photo('cat.png'), 224, LIMITS, { crop: 'none', kernel: 'bilinear' });
    const image = await whole();
    const theirs = tf.image.resizeBilinear(image, [224, 224], false, false);
    expect(largestDifference(ours.pixels, theirs.dataSync() as Float32Array)).toBeLessThanOrEqual(ROUNDING);
    // Not the antialiased default: that differs by far more than rounding.
    expect(largestDifference(reference, theirs.dataSync() as Float32Array)).toBeGreaterThan(10);
    tf.dispose([image, theirs]);
  });

  it('bilinear enlarges a photo smaller than the input as TensorFlow does, edges included', async () => {
    const small = await sharp(photo('cat.png')).resize(150, 100, { fit: 'fill' }).png().toBuffer();
    const ours = await decodeImage(small, 224, LIMITS, { crop: 'none', kernel: 'bilinear' });
    const { data } = await sharp(small).removeAlpha().raw().toBuffer({ resolveWithObject: true });
    const theirs = tf.image.resizeBilinear(tf.tensor3d(Float32Array.from(data), [100, 150, 3]), [224, 224], false, false);
    expect(largestDifference(ours.pixels, theirs.dataSync() as Float32Array)).toBeLessThanOrEqual(ROUNDING);
    tf.dispose(theirs);
  });

  it('central crops 87.5% of each side as tf.image.central_crop does, then resizes; the photo keeps its size', async () => {
    const ours = await decodeImage(photo('cat.png'), 224, LIMITS, CENTRAL);
    // By hand for 512 x 341: starts floor((512 - 448) / 2) = 32 and floor((341 - 298.375) / 2) = 21, the same at both ends.
    expect(ours.view).toEqual({ x: 32, y: 21, width: 448, height: 299 });
    expect([ours.width, ours.height]).toEqual([512, 341]);
    const image = await whole();
    const theirs = tf.image.resizeBilinear(tf.slice(image, [21, 32, 0], [299, 448, 3]), [224, 224], false, false);
    expect(largestDifference(ours.pixels, theirs.dataSync() as Float32Array)).toBeLessThanOrEqual(ROUNDING);
    tf.dispose([image, theirs]);
  });

  it('a JPEG far larger than the input shrinks on load, then shows what TensorFlow\'s crop and resize of the whole decode would', async () => {
    // 7x cat.png, smooth enough that reducing it first changes little; its view is 3136 x 2089, 9x the input.
    const big = await sharp(photo('cat.png')).resize(3584, 2387, { fit: 'fill' }).jpeg({ quality: 90 }).toBuffer();
    const ours = await decodeImage(big, 224, LIMITS, CENTRAL);
    const { data, info } = await sharp(big).raw().toBuffer({ resolveWithObject: true });
    const image = tf.tensor3d(Float32Array.from(data), [info.height, info.width, 3]);
    const { x, y, width, height } = ours.view;
    const theirs = tf.image.resizeBilinear(tf.slice(image, [y, x, 0], [height, width, 3]), [224, 224], false, false);
    const exact = Uint8Array.from(theirs.dataSync() as Float32Array, Math.round);
    // Reduced to 1.5x the input first (antialiased), it differs from the aliased exact resize by
    // 2.05 grey levels on average (deterministic: libvips and libjpeg give the same bytes each run).
    expect(meanDifference(ours.pixels, exact)).toBeLessThan(2.5);
    // Not vacuous: a crop misplaced by 40 of its 3136 pixels shows far more.
    const shifted = Uint8Array.from(tf.image.resizeBilinear(tf.slice(image, [y + 40, x + 40, 0], [height, width, 3]), [224, 224], false, false).dataSync() as Float32Array, Math.round);
    expect(meanDifference(shifted, exact)).toBeGreaterThan(2 * meanDifference(ours.pixels, exact));
    tf.dispose([image, theirs]);
  });

  it('lanczos3 with a central crop resizes the whole photo and cuts the view out, as close as cutting first', async () => {
    const ours = await decodeImage(photo('parrot.jpg'), 224, LIMITS, { ...CENTRAL, kernel: 'lanczos3' });
    const { x, y, width, height } = ours.view;
    const cutFirst = await sharp(photo('parrot.jpg'), { ignoreIcc: true }).extract({ left: x, top: y, width, height }).resize(224, 224, { fit: 'fill' }).raw().toBuffer();
    expect(meanDifference(ours.pixels, cutFirst)).toBeLessThan(1.5);
    expect(meanDifference((await decodeImage(photo('parrot.jpg'), 224, LIMITS)).pixels, cutFirst)).toBeGreaterThan(5);
  });

  it('crops the photo as seen: EXIF orientation first, with either kernel', async () => {
    const sideways = await sharp(photo('cat.png')).rotate(-90).withMetadata({ orientation: 6 }).jpeg({ quality: 95 }).toBuffer();
    const upright = await sharp(photo('cat.png')).jpeg({ quality: 95 }).toBuffer();
    for (const kernel of ['bilinear', 'lanczos3'] as const) {
      const [a, b] = await Promise.all([decodeImage(sideways, 224, LIMITS, { ...CENTRAL, kernel }), decodeImage(upright, 224, LIMITS, { ...CENTRAL, kernel })]);
      expect(a.view).toEqual(b.view);
      expect(meanDifference(a.pixels, b.pixels), kernel).toBeLessThan(3);
      // Not vacuous: the uncropped photo is another picture.
      expect(meanDifference(a.pixels, reference), kernel).toBeGreaterThan(5);
    }
  });

  it("the built-in classifiers' configs crop; a segmentation model may not, since its map covers the whole photo", () => {
    expect(findEntry('mobilenet_v2_1.0_224').preprocess).toEqual(CENTRAL);
    const segmenter = findEntry('deeplabv3_mobilenet_v2_0.5_257');
    expect(() => describeModel(segmenter, { engine: 'onnx', preprocess: CENTRAL })).toThrow(ModelConfigError);
    expect(describeModel(segmenter).preprocess).toEqual({ crop: 'none', kernel: 'lanczos3' });
  });
});

describe('sniffFormat', () => {
  it('recognises formats by their bytes and nothing else', () => {
    expect(sniffFormat(photo('parrot.jpg'))).toBe('jpeg');
    expect(sniffFormat(photo('cat.png'))).toBe('png');
    expect(sniffFormat(Buffer.from('BM\0\0\0\0'))).toBeUndefined();
    expect(sniffFormat(Buffer.from('<svg xmlns="http://www.w3.org/2000/svg"/>'))).toBeUndefined();
    expect(sniffFormat(Buffer.alloc(0))).toBeUndefined();
  });
});
