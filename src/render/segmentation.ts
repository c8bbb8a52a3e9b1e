// The class map at the photo's size, on the main thread: the worker sends the model's map (its
// output height x width bytes), this scales it to the photo as the user sees it (nearest
// neighbour), counts the classes and hands the pixels to sharp, which encodes and composites on
// libuv's threads.
import sharp from 'sharp';
import type { SegmentationOutput } from '../tasks.js';
import type { Labels } from './labels.js';

/** A model's class map: one class id per pixel, row-major. */
export type ClassMap = Pick<SegmentationOutput, 'classMap' | 'width' | 'height'>;

/** Source index of each of `size` output positions: the input pixel whose area holds the output pixel's centre. */
function nearestIndex(source: number, size: number): Uint32Array {
  return Uint32Array.from({ length: size }, (_, i) => Math.min(source - 1, Math.floor(((i + 0.5) * source) / size)));
}

/**
 * Nearest-neighbour scaling of the model's map to width x height. Output rows that come from
 * the same source row are copies, so the work is about min(height, map height) x width plus memcpy.
 */
export function scaleClassMap({ classMap, width: mapWidth, height: mapHeight }: ClassMap, width: number, height: number): Uint8Array {
  const columns = nearestIndex(mapWidth, width);
  const rows = nearestIndex(mapHeight, height);
  const out = new Uint8Array(width * height);
  for (let y = 0; y < height; y++) {
    const start = y * width;
    if (y > 0 && rows[y] === rows[y - 1]) {
      out.copyWithin(start, start - width, start);
      continue;
    }
    const source = rows[y]! * mapWidth;
    for (let x = 0; x < width; x++) out[start + x] = classMap[source + columns[x]!]!;
  }
  return out;
}

export interface LegendEntry {
  label: string;
  classId: number;
  pixels: number;
  fraction: number;
}

/**
 * The classes present in the scaled map with their pixel counts, largest first. Counted on the
 * model's map, each source pixel weighted by how many output rows and columns it fills.
 */
export function legendOf({ classMap, width: mapWidth, height: mapHeight }: ClassMap, width: number, height: number, labels: Labels): LegendEntry[] {
  const fills = (source: number, size: number) => {
    const counts = new Float64Array(source);
    for (const i of nearestIndex(source, size)) counts[i]!++;
    return counts;
  };
  const [rowFill, columnFill] = [fills(mapHeight, height), fills(mapWidth, width)];
  const pixels = new Float64Array(256);
  for (let y = 0; y < mapHeight; y++) {
    if (rowFill[y] === 0) continue;
    for (let x = 0; x < mapWidth; x++) pixels[classMap[y * mapWidth + x]!]! += rowFill[y]! * columnFill[x]!;
  }
  const total = width * height;
  return [...pixels.entries()]
    .filter(([, count]) => count > 0)
    .map(([classId, count]) => ({ label: labels.of(classId), classId, pixels: count, fraction: count / total }))
    .sort((a, b) => b.pixels - a.pixels || a.classId - b.classId);
}

/** An 8-bit greyscale PNG whose pixel values are class ids; `timeoutMs` bounds libvips' work on it. */
export function maskPng(scaled: Uint8Array, width: number, height: number, timeoutMs = 0): Promise<Buffer> {
  return sharp(scaled, { raw: { width, height, channels: 1 } })
    .timeout({ seconds: timeoutMs > 0 ? Math.max(1, Math.ceil(timeoutMs / 1000)) : 0 })
    .toColourspace('b-w')
    .png()
    .toBuffer();
}

/** PASCAL VOC's colour map: class id bits spread over the high bits of R, G and B. */
export function classColour(classId: number): [number, number, number] {
  const rgb: [number, number, number] = [0, 0, 0];
  for (let bit = 0, id = classId; id > 0; bit++, id >>= 3) {
    for (let c = 0; c < 3; c++) rgb[c]! |= ((id >> c) & 1) << (7 - bit);
  }
  return rgb;
}

const OVERLAY_ALPHA = 150;

/** RGBA of every class id as one 32-bit word, built once; background (0) is transparent. */
const OVERLAY_PALETTE = (() => {
  const palette = new Uint32Array(256);
  const bytes = new Uint8Array(palette.buffer);
  for (let id = 1; id < 256; id++) bytes.set([...classColour(id), OVERLAY_ALPHA], id * 4);
  return palette;
})();

/**
 * The photo (EXIF orientation applied) under its classes in PASCAL VOC's colours, half
 * transparent; background stays clear. The overlay is drawn at the model's output size and
 * scaled by sharp, so the main thread only touches the model's pixels.
 */
export async function overlayImage(photo: Uint8Array, width: number, height: number, map: ClassMap) {
  // One 4-byte write per pixel; background (0) stays transparent black.
  const rgba = new Uint32Array(map.width * map.height);
  for (let i = 0; i < rgba.length; i++) rgba[i] = OVERLAY_PALETTE[map.classMap[i]!]!;
  const overlay = await sharp(new Uint8Array(rgba.buffer), { raw: { width: map.width, height: map.height, channels: 4 } })
    .resize(width, height, { kernel: 'nearest', fit: 'fill' })
    .png()
    .toBuffer();
  return sharp(photo).rotate().composite([{ input: overlay, top: 0, left: 0 }]);
}
