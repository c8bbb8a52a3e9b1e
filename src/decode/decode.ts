// Decode -> orient -> sRGB RGB -> model resolution. Runs on libuv's threads through sharp, so
// the event loop stays free; the result is raw HWC uint8 pixels ready to send to a worker.
import sharp, { type Metadata } from 'sharp';

/** Why an image was refused: no bytes, not a supported format, too many pixels, a side too short, or bytes that do not decode. */
export type ImageProblem = 'empty' | 'unsupported' | 'too_large' | 'too_small' | 'undecodable';

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

/**
 * Crop policy: none. The whole photo is resized to the square model input (aspect ratio not
 * kept), as Google's TFLite and Coral classification examples feed these weights, so objects
 * near the borders still count. Animated images contribute their first frame.
 */
export async function decodeImage(bytes: Uint8Array, resolution: number, limits: DecodeLimits): Promise<DecodedImage> {
  if (bytes.length === 0) throw new ImageError('empty', 'the request has no image');
  const format = sniffFormat(bytes);
  if (!format) {
    throw new ImageError('unsupported', `${describeBytes(bytes)}; send one of ${SUPPORTED_FORMATS.join(', ')}`);
  }
  const options = { limitInputPixels: limits.maxPixels, failOn: 'warning' } as const;
  let metadata: Metadata;
  try {
    // Header only: the pixel limit is checked below, with a message that names the size.
    metadata = await sharp(bytes, { ...options, limitInputPixels: false }).metadata();
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
  try {
    const pixels = await sharp(bytes, options)
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
    throw new ImageError('undecodable', `the ${format} image cannot be decoded: ${firstLine(err)}`);
  }
}

function firstLine(err: unknown): string {
  return (err instanceof Error ? err.message : String(err)).split('\n')[0]!;
}
