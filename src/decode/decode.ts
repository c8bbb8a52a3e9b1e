// Decode -> orient -> sRGB RGB -> crop -> model resolution. Runs on libuv's threads through sharp,
// so the event loop stays free; the result is raw HWC uint8 pixels ready to send to a worker.
import sharp, { type Metadata, type Sharp } from 'sharp';
import { DEFAULT_CENTRAL_FRACTION, WHOLE_PHOTO, type Preprocess } from './preprocess.js';

// libvips' operation cache keeps recent results for reuse; every request brings a new image, so
// it only costs memory and the time to fill it (measured 1-6% of a decode).
sharp.cache(false);

/**
 * Why an image was refused: no bytes, not a supported format, too many pixels, a side too short,
 * more decoding work than allowed (scans of a progressive JPEG, or time), or bytes that do not decode.
 */
export type ImageProblem = 'empty' | 'unsupported' | 'too_large' | 'too_small' | 'too_complex' | 'undecodable';

export class ImageError extends Error {
  constructor(readonly problem: ImageProblem, message: string) {
    super(message);
  }
}

export type ImageFormat = 'jpeg' | 'png' | 'webp' | 'gif' | 'tiff' | 'avif';

export interface DecodeLimits {
  /** Largest width x height accepted, checked from the header before any pixel is decoded. */
  maxPixels: number;
  /** Smallest side accepted. */
  minSide: number;
  /**
   * A progressive JPEG is decoded one pass over its pixels per scan: scans x width x height is
   * the work it asks for, checked from its markers before decoding (a few KB can hold thousands
   * of scans). Absent: no limit.
   */
  maxJpegScanPixels?: number;
  /** Most time the pixel decode may take; libvips stops it there. Absent: no limit. */
  timeoutMs?: number;
}

/** What the header says, checked against the limits: enough to budget the decode before it starts. */
export interface InspectedImage {
  format: ImageFormat;
  /** Size after EXIF orientation, as the user sees the photo. */
  width: number;
  height: number;
  /** Memory the fully decoded image takes: width x height x channels x bytes per sample. */
  decodedBytes: number;
  /** The pipeline the header was read with, which the decode continues: the bytes are handed to libvips once. */
  source: Sharp;
}

/** A region of the photo, in its pixels. */
export interface PhotoRegion {
  x: number;
  y: number;
  width: number;
  height: number;
}

export interface DecodedImage {
  format: ImageFormat;
  /** Size after EXIF orientation, as the user sees the photo. */
  width: number;
  height: number;
  /** The part of the photo the model input shows (all of it unless cropped): model coordinates map onto it. */
  view: PhotoRegion;
  /** resolution x resolution x 3 RGB bytes. */
  pixels: Uint8Array;
}

/** tf.image.central_crop's window: the same start on both ends of each side, rounded down. */
export function centralCrop(width: number, height: number, fraction: number): PhotoRegion {
  if (!(fraction > 0 && fraction <= 1)) throw new RangeError(`central crop fraction ${fraction} must be in (0, 1]`);
  const x = Math.floor((width - width * fraction) / 2);
  const y = Math.floor((height - height * fraction) / 2);
  return { x, y, width: width - 2 * x, height: height - 2 * y };
}

/** A whole-pixel region of an RGB image, copied row by row. */
function cutOut(rgb: Uint8Array, stride: number, region: PhotoRegion): Uint8Array {
  const rowBytes = 3 * region.width;
  const out = new Uint8Array(rowBytes * region.height);
  for (let y = 0; y < region.height; y++) {
    const from = (region.y + y) * stride + 3 * region.x;
    out.set(rgb.subarray(from, from + rowBytes), rowBytes * y);
  }
  return out;
}

/**
 * TensorFlow's resize_bilinear (legacy coordinates: input = output x in / out, clamped at the
 * last row and column, no antialiasing) of a region of an RGB image to size x size, read in place.
 * On the event loop: 1.3 ms for 224 x 224 here, a third of what libvips' affine took on its
 * threads (4.5 ms, a per-output-pixel interpolator whatever the input size), and CPU is what bounds
 * throughput under load.
 */
export function resizeBilinear(rgb: Uint8Array, stride: number, region: PhotoRegion, size: number): Uint8Array {
  const left = new Int32Array(size);
  const right = new Int32Array(size);
  const across = new Float64Array(size);
  for (let x = 0; x < size; x++) {
    const at = (x * region.width) / size;
    const column = Math.floor(at);
    left[x] = 3 * (region.x + column);
    right[x] = 3 * (region.x + Math.min(column + 1, region.width - 1));
    across[x] = at - column;
  }
  const out = new Uint8Array(3 * size * size);
  let o = 0;
  for (let y = 0; y < size; y++) {
    const at = (y * region.height) / size;
    const row = Math.floor(at);
    const down = at - row;
    const upper = (region.y + row) * stride;
    const lower = (region.y + Math.min(row + 1, region.height - 1)) * stride;
    for (let x = 0; x < size; x++) {
      const [l, r, w] = [left[x]!, right[x]!, across[x]!];
      for (let c = 0; c < 3; c++) {
        const top = rgb[upper + l + c]! + (rgb[upper + r + c]! - rgb[upper + l + c]!) * w;
        const bottom = rgb[lower + l + c]! + (rgb[lower + r + c]! - rgb[lower + l + c]!) * w;
        out[o++] = Math.round(top + (bottom - top) * down);
      }
    }
  }
  return out;
}

const ascii = (bytes: Uint8Array, start: number, end: number) => String.fromCharCode(...bytes.subarray(start, end));

/** The format from the file's magic bytes; the client's Content-Type is not trusted. */
export function sniffFormat(bytes: Uint8Array): ImageFormat | undefined {
  if (bytes[0] === 0xff && bytes[1] === 0xd8 && bytes[2] === 0xff) return 'jpeg';
  if (ascii(bytes, 0, 8) === '\x89PNG\r\n\x1a\n') return 'png';
  if (ascii(bytes, 0, 4) === 'RIFF' && ascii(bytes, 8, 12) === 'WEBP') return 'webp';
  if (ascii(bytes, 0, 6) === 'GIF87a' || ascii(bytes, 0, 6) === 'GIF89a') return 'gif';
  if (ascii(bytes, 0, 4) === 'II*\0' || ascii(bytes, 0, 4) === 'MM\0*') return 'tiff';
  if (ascii(bytes, 4, 8) === 'ftyp' && ['avif', 'avis'].includes(ascii(bytes, 8, 12))) return 'avif';
  return undefined;
}

function describeBytes(bytes: Uint8Array): string {
  if (ascii(bytes, 0, 2) === 'BM') return 'BMP images are not supported';
  return 'the body is not a supported image';
}

export const SUPPORTED_FORMATS: readonly ImageFormat[] = ['jpeg', 'png', 'webp', 'gif', 'tiff', 'avif'];

const SAMPLE_BYTES: Record<string, number> = { uchar: 1, char: 1, ushort: 2, short: 2, uint: 4, int: 4, float: 4, complex: 8, double: 8, dpcomplex: 16 };

/**
 * The scans of a JPEG, counted from its markers without decoding anything: segments are skipped
 * by their lengths, each scan's entropy-coded data up to the next marker (T.81, B.1.1.2-B.1.1.5).
 */
export function jpegScans(bytes: Uint8Array): number {
  const buffer = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let scans = 0;
  let at = 2;
  while (at + 3 < buffer.length) {
    if (buffer[at] !== 0xff) return scans;
    const marker = buffer[at + 1]!;
    if (marker === 0xd9) return scans;
    // Fill bytes, TEM and restart markers stand alone.
    if (marker === 0xff || marker === 0x01 || (marker >= 0xd0 && marker <= 0xd7)) {
      at += marker === 0xff ? 1 : 2;
      continue;
    }
    at += 2 + buffer.readUInt16BE(at + 2);
    if (marker !== 0xda) continue;
    scans++;
    // Entropy-coded data: 0xFF is followed by 0 (a stuffed byte) or a restart marker inside it.
    for (;;) {
      at = buffer.indexOf(0xff, at);
      if (at < 0 || at + 1 >= buffer.length) return scans;
      const next = buffer[at + 1]!;
      if (next !== 0 && !(next >= 0xd0 && next <= 0xd7)) break;
      at += 2;
    }
  }
  return scans;
}

/**
 * The header's facts, checked against the limits before any pixel is decoded. Embedded ICC
 * profiles are ignored, as TensorFlow's and Pillow's decoders ignore them: the weights were
 * trained and evaluated on the stored values, and converting costs more than the decode (measured:
 * 24 ms instead of 10 for a 512x929 JPEG carrying a profile).
 */
export async function inspectImage(bytes: Uint8Array, limits: DecodeLimits): Promise<InspectedImage> {
  if (bytes.length === 0) throw new ImageError('empty', 'the request has no image');
  const format = sniffFormat(bytes);
  if (!format) {
    throw new ImageError('unsupported', `${describeBytes(bytes)}; send one of ${SUPPORTED_FORMATS.join(', ')}`);
  }
  // No pixel limit in libvips: the one below reads the same header and names the size.
  const source = sharp(bytes, { failOn: 'warning', limitInputPixels: false, ignoreIcc: true });
  let metadata: Metadata;
  try {
    metadata = await source.metadata();
  } catch (err) {
    throw new ImageError('undecodable', `the ${format} image cannot be read: ${firstLine(err)}`);
  }
  const { width = 0, height = 0 } = metadata.autoOrient ?? metadata;
  if (width * height > limits.maxPixels) {
    throw new ImageError('too_large', `the image is ${width}x${height} pixels; at most ${limits.maxPixels} pixels are accepted`);
  }
  if (Math.min(width, height) < limits.minSide) {
    throw new ImageError('too_small', `the image is ${width}x${height} pixels; each side must be at least ${limits.minSide}`);
  }
  if (format === 'jpeg' && limits.maxJpegScanPixels !== undefined) {
    const scans = jpegScans(bytes);
    if (scans * width * height > limits.maxJpegScanPixels) {
      throw new ImageError('too_complex', `the JPEG has ${scans} scans of ${width}x${height} pixels; at most ${limits.maxJpegScanPixels} scan-pixels (scans x width x height) are decoded`);
    }
  }
  const decodedBytes = width * height * (metadata.channels ?? 4) * (SAMPLE_BYTES[metadata.depth ?? 'uchar'] ?? 4);
  return { format, width, height, decodedBytes, source };
}

/**
 * Shrink on load: libjpeg decodes at 1/2, 1/4 or 1/8 and libwebp at any scale, for a fraction of
 * the work, when sharp resizes a JPEG or WebP by at least this much. sharp takes libjpeg's 1/2
 * only from a 3x reduction (and 1/4 from 5x, 1/8 from 9x), against libjpeg's rounding, and has no
 * option to ask for a scale itself.
 */
const SHRINK_ON_LOAD_FROM = 3;
/**
 * A photo far larger than the input is reduced first to this many times the input (on the view's
 * shorter side) before TensorFlow's bilinear resize, so that it can shrink on load. The bilinear
 * kernel reads 4 pixels per output pixel and nothing between them: on a 12-megapixel photo that
 * is aliasing the weights never saw, while ImageNet's photos, cropped, are about 1.4x the input.
 */
const BILINEAR_FROM_TIMES = 1.5;

/** The decoded oriented photo at width x height (resized by sharp if that is not its size), raw RGB bytes. */
async function rawRgb(oriented: Sharp, width: number, height: number, resized: boolean): Promise<Uint8Array> {
  const pipeline = resized ? oriented.resize(width, height, { fit: 'fill', kernel: 'lanczos3' }) : oriented;
  const raw = await pipeline.removeAlpha().toColourspace('srgb').raw({ depth: 'uchar' }).toBuffer();
  if (raw.length !== width * height * 3) throw new Error(`decoded to ${raw.length} bytes instead of ${width * height * 3}`);
  return new Uint8Array(raw.buffer, raw.byteOffset, raw.length);
}

/**
 * Decodes an inspected image to the model's input as `preprocess` says: raw HWC uint8 RGB,
 * resolution x resolution. Animated images contribute their first frame. Every path resizes the
 * whole photo in sharp and crops afterwards, since a crop before the resize (or after an EXIF
 * rotation) stops sharp from shrinking on load.
 */
export async function decodePixels(image: InspectedImage, resolution: number, limits: DecodeLimits, preprocess: Preprocess = WHOLE_PHOTO): Promise<DecodedImage> {
  const { format, width, height } = image;
  const view = preprocess.crop === 'central' ? centralCrop(width, height, preprocess.fraction ?? DEFAULT_CENTRAL_FRACTION) : { x: 0, y: 0, width, height };
  // sharp counts whole seconds, from when libvips starts on the image.
  const source = limits.timeoutMs === undefined ? image.source : image.source.timeout({ seconds: Math.max(1, Math.ceil(limits.timeoutMs / 1000)) });
  // EXIF orientation first: the view is a region of the photo as seen.
  const oriented = source.rotate();
  try {
    let pixels: Uint8Array;
    if (preprocess.kernel === 'bilinear') {
      const reduction = Math.min(view.width, view.height) / (BILINEAR_FROM_TIMES * resolution);
      const shrinks = (format === 'jpeg' || format === 'webp') && reduction >= SHRINK_ON_LOAD_FROM;
      const [w, h] = shrinks ? [Math.round(width / reduction), Math.round(height / reduction)] : [width, height];
      const whole = await rawRgb(oriented, w, h, shrinks);
      // The view in the reduced photo, to whole pixels (a third of an output pixel at most).
      const [sx, sy] = [w / width, h / height];
      const [x, y] = [Math.round(view.x * sx), Math.round(view.y * sy)];
      const region = shrinks ? { x, y, width: Math.min(Math.round(view.width * sx), w - x), height: Math.min(Math.round(view.height * sy), h - y) } : view;
      pixels = resizeBilinear(whole, 3 * w, region, resolution);
    } else if (view.width === width && view.height === height) {
      pixels = await rawRgb(oriented, resolution, resolution, true);
    } else {
      // The photo resized so that the view becomes resolution x resolution, then the view cut out.
      const [w, h] = [Math.round((width * resolution) / view.width), Math.round((height * resolution) / view.height)];
      const whole = await rawRgb(oriented, w, h, true);
      const [x, y] = [Math.min(Math.round((view.x * w) / width), w - resolution), Math.min(Math.round((view.y * h) / height), h - resolution)];
      pixels = cutOut(whole, 3 * w, { x, y, width: resolution, height: resolution });
    }
    return { format, width, height, view, pixels };
  } catch (err) {
    if (/timeout/i.test(firstLine(err))) {
      throw new ImageError('too_complex', `the ${format} image took longer than the ${limits.timeoutMs} ms allowed to decode`);
    }
    throw new ImageError('undecodable', `the ${format} image cannot be decoded: ${firstLine(err)}`);
  }
}

/** inspectImage then decodePixels: the photo as `preprocess` makes it the model's input. */
export async function decodeImage(bytes: Uint8Array, resolution: number, limits: DecodeLimits, preprocess: Preprocess = WHOLE_PHOTO): Promise<DecodedImage> {
  return decodePixels(await inspectImage(bytes, limits), resolution, limits, preprocess);
}

function firstLine(err: unknown): string {
  return (err instanceof Error ? err.message : String(err)).split('\n')[0]!;
}
