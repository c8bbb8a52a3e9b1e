// Decode -> orient -> sRGB RGB -> crop -> model resolution. Runs on libuv's threads through sharp,
// so the event loop stays free; the result is raw HWC uint8 pixels ready to send to a worker.
import sharp, { type Metadata } from 'sharp';
import { DEFAULT_CENTRAL_FRACTION, WHOLE_PHOTO, type Preprocess } from './preprocess.js';

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

/** TensorFlow's resize_bilinear (legacy coordinates) of an RGB region to size x size, rounded to bytes. */
export function resizeBilinear(rgb: Uint8Array, stride: number, region: PhotoRegion, size: number): Uint8Array {
  const out = new Uint8Array(size * size * 3);
  const [sy, sx] = [region.height / size, region.width / size];
  const x0s = new Int32Array(size);
  const x1s = new Int32Array(size);
  const dxs = new Float32Array(size);
  for (let x = 0; x < size; x++) {
    const inX = x * sx;
    x0s[x] = Math.floor(inX);
    x1s[x] = Math.min(x0s[x]! + 1, region.width - 1);
    dxs[x] = inX - x0s[x]!;
  }
  for (let y = 0; y < size; y++) {
    const inY = y * sy;
    const y0 = Math.floor(inY);
    const y1 = Math.min(y0 + 1, region.height - 1);
    const dy = inY - y0;
    const top = (region.y + y0) * stride;
    const bottom = (region.y + y1) * stride;
    for (let x = 0; x < size; x++) {
      const a = 3 * (region.x + x0s[x]!);
      const b = 3 * (region.x + x1s[x]!);
      const dx = dxs[x]!;
      for (let c = 0; c < 3; c++) {
        const t = rgb[top + a + c]! + (rgb[top + b + c]! - rgb[top + a + c]!) * dx;
        const u = rgb[bottom + a + c]! + (rgb[bottom + b + c]! - rgb[bottom + a + c]!) * dx;
        out[(y * size + x) * 3 + c] = Math.round(t + (u - t) * dy);
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

/** The header's facts, checked against the limits before any pixel is decoded. */
export async function inspectImage(bytes: Uint8Array, limits: DecodeLimits): Promise<InspectedImage> {
  if (bytes.length === 0) throw new ImageError('empty', 'the request has no image');
  const format = sniffFormat(bytes);
  if (!format) {
    throw new ImageError('unsupported', `${describeBytes(bytes)}; send one of ${SUPPORTED_FORMATS.join(', ')}`);
  }
  let metadata: Metadata;
  try {
    // Header only: the pixel limit is checked below, with a message that names the size.
    metadata = await sharp(bytes, { failOn: 'warning', limitInputPixels: false }).metadata();
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
  return { format, width, height, decodedBytes };
}

/**
 * Decodes an inspected image to the model's input as `preprocess` says: raw HWC uint8 RGB,
 * resolution x resolution. Animated images contribute their first frame.
 */
export async function decodePixels(bytes: Uint8Array, image: InspectedImage, resolution: number, limits: DecodeLimits, preprocess: Preprocess = WHOLE_PHOTO): Promise<DecodedImage> {
  const { format, width, height } = image;
  const view = preprocess.crop === 'central' ? centralCrop(width, height, preprocess.fraction ?? DEFAULT_CENTRAL_FRACTION) : { x: 0, y: 0, width, height };
  let decoder = sharp(bytes, { limitInputPixels: limits.maxPixels, failOn: 'warning' });
  // sharp counts whole seconds, from when libvips starts on the image.
  if (limits.timeoutMs !== undefined) decoder = decoder.timeout({ seconds: Math.max(1, Math.ceil(limits.timeoutMs / 1000)) });
  try {
    // EXIF orientation first: the view is a region of the photo as seen.
    const oriented = decoder.rotate();
    let pixels: Uint8Array;
    if (preprocess.kernel === 'bilinear') {
      const whole = await oriented.removeAlpha().toColourspace('srgb').raw({ depth: 'uchar' }).toBuffer();
      if (whole.length !== width * height * 3) throw new Error(`decoded to ${whole.length} bytes instead of ${width * height * 3}`);
      pixels = resizeBilinear(whole, 3 * width, view, resolution);
    } else {
      const cropped = view.width === width && view.height === height ? oriented : oriented.extract({ left: view.x, top: view.y, width: view.width, height: view.height });
      const resized = await cropped.resize(resolution, resolution, { fit: 'fill', kernel: 'lanczos3' }).removeAlpha().toColourspace('srgb').raw({ depth: 'uchar' }).toBuffer();
      pixels = new Uint8Array(resized.buffer, resized.byteOffset, resized.length);
    }
    if (pixels.length !== resolution * resolution * 3) {
      throw new Error(`decoded to ${pixels.length} bytes instead of ${resolution * resolution * 3}`);
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
  return decodePixels(bytes, await inspectImage(bytes, limits), resolution, limits, preprocess);
}

function firstLine(err: unknown): string {
  return (err instanceof Error ? err.message : String(err)).split('\n')[0]!;
}
