// Decode -> orient -> sRGB RGB -> model resolution. Runs on libuv's threads through sharp, so
// the event loop stays free; the result is raw HWC uint8 pixels ready to send to a worker.
import sharp, { type Metadata } from 'sharp';

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

export interface DecodedImage {
  format: ImageFormat;
  /** Size after EXIF orientation, as the user sees the photo. */
  width: number;
  height: number;
  /** resolution x resolution x 3 RGB bytes. */
  pixels: Uint8Array;
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

/** Decodes an inspected image to the model's input: raw HWC uint8 RGB, resolution x resolution. */
export async function decodePixels(bytes: Uint8Array, image: InspectedImage, resolution: number, limits: DecodeLimits): Promise<DecodedImage> {
  const { format, width, height } = image;
  let decoder = sharp(bytes, { limitInputPixels: limits.maxPixels, failOn: 'warning' });
  // sharp counts whole seconds, from when libvips starts on the image.
  if (limits.timeoutMs !== undefined) decoder = decoder.timeout({ seconds: Math.max(1, Math.ceil(limits.timeoutMs / 1000)) });
  try {
    const pixels = await decoder
      .rotate()
      .resize(resolution, resolution, { fit: 'fill' })
      .removeAlpha()
      .toColourspace('srgb')
      .raw({ depth: 'uchar' })
      .toBuffer();
    if (pixels.length !== resolution * resolution * 3) {
      throw new Error(`decoded to ${pixels.length} bytes instead of ${resolution * resolution * 3}`);
    }
    return { format, width, height, pixels: new Uint8Array(pixels.buffer, pixels.byteOffset, pixels.length) };
  } catch (err) {
    if (/timeout/i.test(firstLine(err))) {
      throw new ImageError('too_complex', `the ${format} image took longer than the ${limits.timeoutMs} ms allowed to decode`);
    }
    throw new ImageError('undecodable', `the ${format} image cannot be decoded: ${firstLine(err)}`);
  }
}

/**
 * inspectImage then decodePixels. Crop policy: none. The whole photo is resized to the square
 * model input (aspect ratio not kept), as Google's TFLite and Coral classification examples feed
 * these weights, so objects near the borders still count. Animated images contribute their first frame.
 */
export async function decodeImage(bytes: Uint8Array, resolution: number, limits: DecodeLimits): Promise<DecodedImage> {
  return decodePixels(bytes, await inspectImage(bytes, limits), resolution, limits);
}

function firstLine(err: unknown): string {
  return (err instanceof Error ? err.message : String(err)).split('\n')[0]!;
}
