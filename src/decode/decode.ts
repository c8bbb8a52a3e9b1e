// Decode -> orient -> sRGB RGB -> crop -> model resolution. Runs on libuv's threads through sharp,
// so the event loop stays free; the result is raw HWC uint8 pixels ready to send to a worker.
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

/**
 * Resize kernels. 'lanczos3': sharp's default, antialiased (each output pixel filters the input
 * pixels it covers). 'bilinear': TensorFlow's resize_bilinear as TF-slim and the Object Detection
 * API evaluate with (align_corners and half_pixel_centers false): each output pixel interpolates
 * the four input pixels nearest to y * inHeight / outHeight, x * inWidth / outWidth, with no
 * antialiasing. It needs the whole decoded photo in memory (3 bytes a pixel) before resizing.
 */
export const RESIZE_KERNELS = ['lanczos3', 'bilinear'] as const;
export type ResizeKernel = (typeof RESIZE_KERNELS)[number];

/** How a photo becomes a model's square input; a catalog entry's setting (docs/accuracy.md measures each). */
export interface Preprocess {
  /**
   * 'none': the whole photo, stretched to the square (aspect ratio not kept), as Google's TFLite
   * and Coral examples feed these weights. 'central': first the central `fraction` of each side,
   * as TF-slim's ImageNet evaluation crops (tf.image.central_crop, 0.875).
   */
  crop: 'none' | 'central';
  /** 'central' only: the share of each side kept; default 0.875. */
  fraction?: number;
  kernel: ResizeKernel;
}

export const WHOLE_PHOTO: Preprocess = { crop: 'none', kernel: 'lanczos3' };
export const DEFAULT_CENTRAL_FRACTION = 0.875;

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

/** The photo as `preprocess` makes it the model's resolution x resolution input. Animated images contribute their first frame. */
export async function decodeImage(bytes: Uint8Array, resolution: number, limits: DecodeLimits, preprocess: Preprocess = WHOLE_PHOTO): Promise<DecodedImage> {
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
  const view = preprocess.crop === 'central' ? centralCrop(width, height, preprocess.fraction ?? DEFAULT_CENTRAL_FRACTION) : { x: 0, y: 0, width, height };
  try {
    // EXIF orientation first: the view is a region of the photo as seen.
    const oriented = sharp(bytes, options).rotate();
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
    throw new ImageError('undecodable', `the ${format} image cannot be decoded: ${firstLine(err)}`);
  }
}

function firstLine(err: unknown): string {
  return (err instanceof Error ? err.message : String(err)).split('\n')[0]!;
}
