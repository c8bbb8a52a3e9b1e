// What `npm run eval` runs: labelled datasets read from disk, every image sent through the
// service's own routes (in-process with inject, or to a running server), and the answers scored
// with the metrics of src/eval/. The service is measured as a client sees it: the same decode,
// preprocessing, post-processing and rendering.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { basename, dirname, extname, join, resolve } from 'node:path';
import sharp from 'sharp';
import { buildApp } from '../src/app.js';
import { loadConfig, type Config } from '../src/config.js';
import { ClassificationTally, ClassMapping, type ClassificationMetrics } from '../src/eval/classification.js';
import { evaluateDetections, type CocoDataset, type CocoMetrics, type CocoResult } from '../src/eval/coco.js';
import { ConfusionMatrix, segmentationMetrics, type SegmentationMetrics } from '../src/eval/segmentation.js';

/** A model as GET /v1/models describes it. */
export interface ServedModel {
  name: string;
  task: string;
  resolution: number;
  classes: number;
  preprocess?: unknown;
}

export interface Answer {
  status: number;
  type: string;
  body: Buffer;
}

/** Where the images go: the service built in this process, or one listening at a URL. */
export interface EvalTarget {
  post(path: string, query: Record<string, string | number | undefined>, image: Buffer): Promise<Answer>;
  models(): Promise<ServedModel[]>;
  /** Requests to keep in flight so that every worker is busy. */
  concurrency: number;
  close(): Promise<void>;
}

const queryString = (query: Record<string, string | number | undefined>) =>
  new URLSearchParams(Object.entries(query).filter((e): e is [string, string | number] => e[1] !== undefined).map(([k, v]) => [k, String(v)])).toString();

/** The service built with buildApp and called through inject: no sockets, the same routes. */
export async function inProcessTarget(overrides: Partial<Config> & { models: string[] }): Promise<EvalTarget> {
  const config = { ...loadConfig({ LOG_LEVEL: 'warn', ...process.env, MODELS: overrides.models.join(',') }), ...overrides };
  // Long strategies (MF) legitimately take seconds per image; the eval has no client to time out.
  config.requestTimeoutMs = config.maxRequestTimeoutMs = Math.max(config.maxRequestTimeoutMs, 600_000);
  config.workerTimeoutMs = Math.max(config.workerTimeoutMs, 600_000);
  const app = await buildApp(config, { logger: { level: config.logLevel } });
  await app.ready();
  await app.modelsLoaded;
  return {
    concurrency: 2 * config.poolSize,
    async post(path, query, image) {
      const res = await app.inject({ method: 'POST', url: `${path}?${queryString(query)}`, payload: image, headers: { 'content-type': 'application/octet-stream' } });
      return { status: res.statusCode, type: String(res.headers['content-type'] ?? ''), body: res.rawPayload };
    },
    async models() {
      return (await app.inject({ method: 'GET', url: '/v1/models' })).json<{ models: ServedModel[] }>().models;
    },
    close: () => app.close(),
  };
}

export function urlTarget(url: string, concurrency = 2 * availableParallelism()): EvalTarget {
  const base = url.replace(/\/$/, '');
  return {
    concurrency,
    async post(path, query, image) {
      const res = await fetch(`${base}${path}?${queryString(query)}`, { method: 'POST', body: new Uint8Array(image), headers: { 'content-type': 'application/octet-stream' } });
      return { status: res.status, type: res.headers.get('content-type') ?? '', body: Buffer.from(await res.arrayBuffer()) };
    },
    async models() {
      const res = await fetch(`${base}/v1/models`);
      if (!res.ok) throw new Error(`GET ${base}/v1/models answered ${res.status}`);
      return ((await res.json()) as { models: ServedModel[] }).models;
    },
    close: async () => {},
  };
}

export async function servedModel(target: EvalTarget, task: string, name: string | undefined): Promise<ServedModel> {
  const models = (await target.models()).filter((m) => m.task === task);
  const model = name === undefined ? models[0] : models.find((m) => m.name === name);
  if (!model) throw new Error(`the service has no ${task} model${name ? ` named ${name}` : ''}; it serves: ${models.map((m) => m.name).join(', ') || 'none'}`);
  return model;
}

export type Progress = (done: number, total: number) => void;

/** Runs `work` on every item, `concurrency` at a time, in order of the items; results in the same order. */
export async function runAll<T, R>(items: readonly T[], concurrency: number, work: (item: T) => Promise<R>, progress?: Progress): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  let done = 0;
  const lane = async () => {
    while (next < items.length) {
      const index = next++;
      results[index] = await work(items[index]!);
      progress?.(++done, items.length);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, items.length) }, lane));
  return results;
}

async function expectOk(answer: Answer, what: string): Promise<Answer> {
  if (answer.status !== 200) throw new Error(`${what}: the service answered ${answer.status} ${answer.body.toString('utf8').slice(0, 300)}`);
  return answer;
}

// ---------------------------------------------------------------------------------------------
// Classification

export interface LabelledImage {
  path: string;
  label: number;
}

/**
 * A labels file: one image a line, `file<TAB>class`, the class an integer id of the dataset's
 * convention. A first line whose class field is not an integer is a header, and `column` then
 * names the class column (default: the second). Files are relative to `imagesDir` (default: the
 * labels file's folder).
 */
export function readLabelsFile(file: string, options: { column?: string; imagesDir?: string } = {}): LabelledImage[] {
  const lines = readFileSync(file, 'utf8').split('\n').filter((l) => l.trim() !== '').map((l) => l.split('\t'));
  const isId = (v: string | undefined) => v !== undefined && /^\d+$/.test(v.trim());
  let column = 1;
  if (!isId(lines[0]?.[1])) {
    const header = lines.shift()!;
    if (options.column !== undefined) {
      column = header.indexOf(options.column);
      if (column < 0) throw new Error(`${file}: no column '${options.column}'; the header has ${header.join(', ')}`);
    }
  } else if (options.column !== undefined) throw new Error(`${file} has no header line to find column '${options.column}' in`);
  const base = options.imagesDir ?? dirname(file);
  return lines.map((fields, i) => {
    if (!isId(fields[column])) throw new Error(`${file}, line ${i + 1}: class '${fields[column] ?? ''}' is not an integer id`);
    return { path: resolve(base, fields[0]!.trim()), label: Number(fields[column]) };
  });
}

const IMAGE_EXTENSIONS = new Set(['.jpg', '.jpeg', '.png', '.webp', '.gif', '.tif', '.tiff', '.avif']);
const isImage = (name: string) => IMAGE_EXTENSIONS.has(extname(name).toLowerCase());

/**
 * An ImageNet-style folder: one subfolder per class. Folders named by integers are those class
 * ids; otherwise a class is its folder's position in `synsets` (one WordNet id first on each
 * line, as synset_words.txt) or, without it, in the sorted folder names (ImageNet's own order).
 */
export function readClassFolders(dir: string, synsets?: string): LabelledImage[] {
  const folders = readdirSync(dir).filter((f) => statSync(join(dir, f)).isDirectory()).sort();
  const order = synsets ? readFileSync(synsets, 'utf8').split('\n').filter(Boolean).map((l) => l.split(/\s/)[0]!) : folders;
  return folders.flatMap((folder) => {
    const label = /^\d+$/.test(folder) ? Number(folder) : order.indexOf(folder);
    if (label < 0) throw new Error(`${join(dir, folder)}: ${folder} is not in ${synsets}`);
    return readdirSync(join(dir, folder)).filter(isImage).sort().map((f) => ({ path: join(dir, folder, f), label }));
  });
}

export interface ClassificationRun {
  model: ServedModel;
  /** Classes of the labels' convention (1000, or 1001 with background at 0). */
  labelClasses: number;
  metrics: ClassificationMetrics;
  /** Each image's label and the model's five best outputs, to compare settings image by image. */
  images: { path: string; label: number; top5: number[] }[];
}

export async function evalClassification(target: EvalTarget, modelName: string | undefined, images: LabelledImage[], labelClasses: number, progress?: Progress): Promise<ClassificationRun> {
  const model = await servedModel(target, 'classification', modelName);
  const tally = new ClassificationTally(new ClassMapping(labelClasses, model.classes));
  const answers = await runAll(images, target.concurrency, async ({ path }) => {
    const answer = await expectOk(await target.post('/v1/classify', { model: model.name, topk: 5 }, readFileSync(path)), path);
    return (JSON.parse(answer.body.toString('utf8')) as { predictions: { index: number }[] }).predictions.map((p) => p.index);
  }, progress);
  images.forEach(({ label }, i) => tally.add(label, answers[i]!));
  return { model, labelClasses, metrics: tally.metrics(), images: images.map((image, i) => ({ ...image, top5: answers[i]! })) };
}

// ---------------------------------------------------------------------------------------------
// Detection

export interface DetectionSettings {
  /** The TF Object Detection API evaluates SSD with a score threshold of 1e-8, IoU 0.6, 100 per class and image. */
  minScore: number;
  iouThreshold: number;
  maxDetections: number;
}

export const DETECTION_EVAL_SETTINGS: DetectionSettings = { minScore: 1e-8, iouThreshold: 0.6, maxDetections: 100 };

export interface DetectionRun {
  model: ServedModel;
  settings: DetectionSettings;
  metrics: CocoMetrics;
  results: CocoResult[];
  /** Labels the model predicted that the dataset has no category for (their detections are dropped). */
  unmapped: string[];
}

export function readCocoDataset(file: string): CocoDataset {
  return JSON.parse(readFileSync(file, 'utf8')) as CocoDataset;
}

/** Detections of every image of `dataset` (files under `imagesDir`), matched to the dataset's categories by name. */
export async function evalDetection(target: EvalTarget, modelName: string | undefined, dataset: CocoDataset, imagesDir: string, settings: DetectionSettings, progress?: Progress): Promise<DetectionRun> {
  const model = await servedModel(target, 'detection', modelName);
  const categoryOf = new Map(dataset.categories.map((c) => [c.name.toLowerCase(), c.id]));
  const unmapped = new Set<string>();
  const perImage = await runAll(dataset.images, target.concurrency, async (image) => {
    const path = join(imagesDir, image.file_name);
    const answer = await expectOk(await target.post('/v1/detect', { model: model.name, ...settings }, readFileSync(path)), path);
    const { detections } = JSON.parse(answer.body.toString('utf8')) as { detections: { label: string; score: number; box: { x: number; y: number; width: number; height: number } }[] };
    return detections.flatMap(({ label, score, box }): CocoResult[] => {
      const category = categoryOf.get(label.toLowerCase());
      if (category === undefined) {
        unmapped.add(label);
        return [];
      }
      return [{ image_id: image.id, category_id: category, bbox: [box.x, box.y, box.width, box.height], score }];
    });
  }, progress);
  const results = perImage.flat();
  return { model, settings, metrics: evaluateDetections(dataset, results), results, unmapped: [...unmapped].sort() };
}

// ---------------------------------------------------------------------------------------------
// Segmentation

export interface MaskedImage {
  image: string;
  mask: string;
}

/**
 * Images with their label masks: a mask `<name>.png` in `masksDir` for each image `<name>.*` in
 * `imagesDir`, restricted to the names in `list` (one a line) when given.
 */
export function readMaskedImages(imagesDir: string, masksDir: string, list?: string): MaskedImage[] {
  const stem = (f: string) => basename(f, extname(f));
  const images = new Map(readdirSync(imagesDir).filter(isImage).map((f) => [stem(f), join(imagesDir, f)]));
  const names = list ? readFileSync(list, 'utf8').split('\n').map((l) => l.trim()).filter(Boolean) : readdirSync(masksDir).filter((f) => f.endsWith('.png')).map(stem).sort();
  return names.map((name) => {
    const image = images.get(name);
    if (!image) throw new Error(`no image named ${name} in ${imagesDir} for mask ${join(masksDir, `${name}.png`)}`);
    return { image, mask: join(masksDir, `${name}.png`) };
  });
}

/** The palette of a palette PNG (its PLTE chunk), or undefined for another PNG. */
function pngPalette(png: Buffer): Buffer | undefined {
  for (let at = 8; at + 8 <= png.length;) {
    const length = png.readUInt32BE(at);
    const type = png.toString('latin1', at + 4, at + 8);
    if (type === 'PLTE') return png.subarray(at + 8, at + 8 + length);
    if (type === 'IDAT' || type === 'IEND') return undefined;
    at += 12 + length;
  }
  return undefined;
}

/**
 * A label mask as class ids: palette PNGs (PASCAL VOC's SegmentationClass) give each pixel its
 * palette index, which is the class (255 = ignore); a greyscale PNG gives its grey level.
 */
export async function readLabelMask(file: string | Buffer): Promise<{ ids: Uint8Array; width: number; height: number }> {
  const png = typeof file === 'string' ? readFileSync(file) : file;
  const palette = pngPalette(png);
  // sharp expands a palette to its colours; the palette maps them back to indices.
  const { data, info } = await sharp(png).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  const pixels = info.width * info.height;
  const ids = new Uint8Array(pixels);
  if (!palette) {
    for (let i = 0; i < pixels; i++) ids[i] = data[i * info.channels]!;
    return { ids, width: info.width, height: info.height };
  }
  const indexOf = new Map<number, number>();
  for (let i = palette.length / 3 - 1; i >= 0; i--) indexOf.set((palette[3 * i]! << 16) | (palette[3 * i + 1]! << 8) | palette[3 * i + 2]!, i);
  for (let i = 0; i < pixels; i++) {
    const colour = (data[3 * i]! << 16) | (data[3 * i + 1]! << 8) | data[3 * i + 2]!;
    const index = indexOf.get(colour);
    if (index === undefined) throw new Error(`${typeof file === 'string' ? file : 'mask'}: pixel ${i} has a colour outside its palette`);
    ids[i] = index;
  }
  return { ids, width: info.width, height: info.height };
}

export interface SegmentationSettings {
  strategy: 'single' | 'mf';
  outputStride?: number;
}

export interface SegmentationRun {
  model: ServedModel;
  settings: SegmentationSettings;
  metrics: SegmentationMetrics;
  images: number;
  /** The confusion matrix, rows the labels, columns the predictions. */
  confusion: number[][];
}

/** Each image's mask as the service draws it (format=mask, the photo's size) against its label mask, over one confusion matrix. */
export async function evalSegmentation(target: EvalTarget, modelName: string | undefined, pairs: MaskedImage[], settings: SegmentationSettings, progress?: Progress): Promise<SegmentationRun> {
  const model = await servedModel(target, 'segmentation', modelName);
  const matrix = new ConfusionMatrix(model.classes);
  await runAll(pairs, target.concurrency, async ({ image, mask }) => {
    const answer = await expectOk(await target.post('/v1/segment', { model: model.name, format: 'mask', ...settings }, readFileSync(image)), image);
    const [predicted, labels] = await Promise.all([readLabelMask(answer.body), readLabelMask(mask)]);
    if (predicted.width !== labels.width || predicted.height !== labels.height) {
      throw new Error(`${mask} is ${labels.width}x${labels.height} but its image ${image} is ${predicted.width}x${predicted.height}`);
    }
    matrix.add(labels.ids, predicted.ids);
  }, progress);
  const rows = Array.from({ length: matrix.classes }, (_, label) => [...matrix.counts.subarray(label * matrix.classes, (label + 1) * matrix.classes)]);
  return { model, settings, metrics: segmentationMetrics(matrix), images: pairs.length, confusion: rows };
}
