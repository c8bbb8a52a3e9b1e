// The activation ranges of an int8 model: calibrated on the photos the manifest installs under
// calibration/ (the float32 model run on each, decoded and normalized as requests are), then
// kept in a cache file beside them, keyed by everything the ranges depend on, so that a load
// after the first one reads them instead of running the photos again.
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { CatalogEntry } from '../catalog/catalog.js';
import { decodeImage } from '../decode/decode.js';
import { calibrate } from '../engine/onnx/calibrate.js';
import type { ActivationRanges } from '../engine/onnx/quantize.js';
import type { Graph, Weights } from '../model/graph.js';
import type { InputNormalization } from '../weights/common.js';
import { normalize } from './normalize.js';

const PHOTO = /\.(jpe?g|png|webp)$/i;
/** Calibration photos are ours and trusted; the limits only need to let them through. */
const LIMITS = { maxPixels: 100_000_000, minSide: 1 };

/** What calibrate computes; a change to it must not read ranges cached by the old one. */
const CALIBRATION_METHOD = 'minmax, unoptimized float32';

export const calibrationDir = (modelDir: string): string => join(modelDir, 'calibration');

/** What the ranges depend on: the graph, its weights, the input's preprocessing, the photos. */
function cacheKey(graph: Graph, weights: Weights, input: unknown, photos: readonly { name: string; bytes: Buffer }[]): string {
  const hash = createHash('sha256').update(JSON.stringify({ nodes: graph.nodes, outputs: graph.outputs, input }));
  for (const name of [...weights.keys()].sort()) {
    const values = weights.get(name)!;
    hash.update(name).update(new Uint8Array(values.buffer, values.byteOffset, values.byteLength));
  }
  for (const photo of photos) hash.update(photo.name).update(photo.bytes);
  return hash.digest('hex').slice(0, 32);
}

function calibrationPhotos(entry: CatalogEntry, modelDir: string): { name: string; bytes: Buffer }[] {
  const dir = calibrationDir(modelDir);
  const names = existsSync(dir) ? readdirSync(dir).filter((f) => PHOTO.test(f)).sort() : [];
  if (names.length === 0) throw new Error(`model ${entry.name}: precision int8 needs the calibration photos in ${dir}; install them with npm run models`);
  return names.map((name) => ({ name, bytes: readFileSync(join(dir, name)) }));
}

async function inputsOf(entry: CatalogEntry, photos: readonly { bytes: Buffer }[], resolution: number, normalization: InputNormalization): Promise<Float32Array[]> {
  return Promise.all(photos.map(async ({ bytes }) => normalize((await decodeImage(bytes, resolution, LIMITS, entry.preprocess)).pixels, normalization)));
}

/** The calibration photos as the model's inputs: decoded with its preprocessing, normalized. */
export function calibrationInputs(entry: CatalogEntry, resolution: number, normalization: InputNormalization, modelDir: string): Promise<Float32Array[]> {
  return inputsOf(entry, calibrationPhotos(entry, modelDir), resolution, normalization);
}

export async function activationRanges(entry: CatalogEntry, graph: Graph, weights: Weights, normalization: InputNormalization, modelDir: string): Promise<ActivationRanges> {
  const photos = calibrationPhotos(entry, modelDir);
  const cache = join(calibrationDir(modelDir), 'cache', `${entry.name}-${cacheKey(graph, weights, { normalization, preprocess: entry.preprocess, method: CALIBRATION_METHOD }, photos)}.json`);
  if (existsSync(cache)) return JSON.parse(readFileSync(cache, 'utf8')) as ActivationRanges;
  const [, resolution] = graph.nodes.find((n) => n.name === graph.inputs[0])!.shape as [number, number, number];
  const ranges = await calibrate(graph, weights, await inputsOf(entry, photos, resolution!, normalization));
  try {
    mkdirSync(join(calibrationDir(modelDir), 'cache'), { recursive: true });
    // Written whole, then renamed: a worker calibrating at the same time never reads half a file.
    const partial = `${cache}.${process.pid}`;
    writeFileSync(partial, JSON.stringify(ranges));
    renameSync(partial, cache);
  } catch (err) {
    // A read-only model folder (an image's) only costs the calibration at every load.
    if (!['EACCES', 'EROFS', 'EPERM'].includes((err as NodeJS.ErrnoException).code ?? '')) throw err;
  }
  return ranges;
}
