// The models the service can load: each a version of a model in a repository (./repository.ts),
// made from its config file into an architecture from src/model plus a weight importer and
// labels. Both threads read it: the main thread to describe and route to a model, a worker to
// build and load it.
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DEFAULT_CENTRAL_FRACTION, type Preprocess } from '../decode/preprocess.js';
import { deepLabV3, type DeepLabGraph, type DeepLabHead, type DeepLabVariant } from '../model/deeplab.js';
import { mobileNetV2Classifier, type ClassifierGraph, type OutputStride } from '../model/mobilenet-v2.js';
import { ssdMobileNetV2, type SsdGraph } from '../model/ssdlite.js';
import { classifierArchitecture, importClassifier, type ClassifierArchitecture, type FileClassifier } from '../weights/classifier.js';
import {
  normalizationOf, WeightImportError,
  type FileWeights, type ImportedWeights, type InputNormalization, type InputQuantization,
} from '../weights/common.js';
import { readGraphClassifier } from '../weights/tfjs/graph-classifier.js';
import { readLayersClassifier } from '../weights/tfjs/layers-model.js';
import { importSsdWeights } from '../weights/tfjs/import-ssd.js';
import { readOnnxClassifier } from '../weights/onnx/classifier.js';
import { importDeepLabWeights } from '../weights/tflite/deeplab.js';
import { readTfliteClassifier } from '../weights/tflite/import.js';
import { checkPrecision, DEFAULT_PRECISION, ModelConfigError, readModelConfig, TASKS, type ModelConfig, type WeightFormat } from './config.js';
import type { EngineName, Precision } from '../engine/engine.js';
import type { ModelRef, Task } from '../tasks.js';
import { listRepository, servedVersion } from './repository.js';

interface EntryBase<T extends Task, G> {
  name: string;
  /** The repository version this entry is. */
  version: number;
  task: T;
  description: string;
  format: WeightFormat;
  /** Width multiplier of the backbone. */
  alpha: number;
  /** The weight file (or folder) as its config names it. */
  weights: string;
  weightsPath: string;
  /** Absolute path of the label file. */
  labels: string;
  /** The class id of the label file's first line: 1 where the background class has no line. */
  labelOffset: number;
  /** The normalization the config states, if it does; the weights may say it instead. */
  normalization?: InputNormalization;
  /** How a photo becomes the model's input: crop and resize kernel (docs/accuracy.md measures them). */
  preprocess: Preprocess;
  configFile: string;
  /** The architecture, with the handles the worker and the cost model need. */
  build(): G;
  /** Reads the weight file (or folder) at `path` and maps it onto the graph, checking every tensor. */
  importWeights(model: G, path: string): FileWeights;
  /** Whether MODELS includes it when unset (default true); see README, Configuration. */
  loadByDefault?: boolean;
  /** The config's precision (PRECISION overrides it: see precisionOf). */
  precision: Precision;
}

export type ClassifierEntry = EntryBase<'classification', ClassifierGraph>;
export type DetectorEntry = EntryBase<'detection', SsdGraph>;

/** A segmentation model: what its weights fix, and the graphs a request may build over them. */
export interface SegmenterEntry extends EntryBase<'segmentation', DeepLabGraph> {
  /** The output stride and head the file was built with; a request may ask for another stride. */
  outputStride: OutputStride;
  head: DeepLabHead;
  /** The graph for a request's output stride, input scale and output, with the same parameters. */
  variant(variant: DeepLabVariant): DeepLabGraph;
}

export type CatalogEntry = ClassifierEntry | DetectorEntry | SegmenterEntry;

/** The repository of the built-in models, and where the installed model files are. */
export const DEFAULT_REPOSITORY = fileURLToPath(new URL('../../models/repository', import.meta.url));
export const DEFAULT_MODEL_DIR = fileURLToPath(new URL('../../models/files', import.meta.url));
/** A config path under the installed model files (MODEL_DIR) rather than the version folder. */
const MODEL_DIR_PREFIX = '@models/';

const CLASSIFIER_READERS: Partial<Record<WeightFormat, (path: string) => FileClassifier>> = {
  tflite: (path) => readTfliteClassifier(readFileSync(path)),
  'tfjs-layers': readLayersClassifier,
  'tfjs-graph': readGraphClassifier,
  onnx: (path) => readOnnxClassifier(readFileSync(path)),
};
const FORMATS_BY_TASK: Record<Task, readonly WeightFormat[]> = {
  classification: Object.keys(CLASSIFIER_READERS) as WeightFormat[],
  detection: ['tfjs-graph'],
  segmentation: ['tflite'],
};

const perChannel = (value: number | readonly number[] | undefined, fallback: number) =>
  (typeof value === 'number' || value === undefined ? [value ?? fallback, value ?? fallback, value ?? fallback] : [...value]) as [number, number, number];

/** The normalization a config states, if it states one: scale x (pixel - zeroPoint), or (pixel / 255 - mean) / std. */
function statedNormalization(p: ModelConfig['preprocessing']): InputNormalization | undefined {
  const channels = p?.channels ?? 'RGB';
  if (p?.mean !== undefined || p?.std !== undefined) {
    const [mean, std] = [perChannel(p.mean, 0), perChannel(p.std, 1)];
    return { scale: perChannel(std.map((s) => 1 / (255 * s)), 1), zeroPoint: perChannel(mean.map((m) => 255 * m), 0), channels };
  }
  if (p?.scale !== undefined || p?.zeroPoint !== undefined) return { scale: perChannel(p.scale, 1), zeroPoint: perChannel(p.zeroPoint, 0), channels };
  return undefined;
}

/** The crop and kernel a config states; unstated, the whole photo through sharp's lanczos3. */
function statedPreprocess(p: ModelConfig['preprocessing']): Preprocess {
  const kernel = p?.kernel ?? 'lanczos3';
  return p?.crop === 'central' ? { crop: 'central', fraction: p.fraction ?? DEFAULT_CENTRAL_FRACTION, kernel } : { crop: 'none', kernel };
}

const close = (a: readonly number[], b: readonly number[]) => a.every((v, i) => Math.abs(v - b[i]!) <= 1e-4 * Math.max(1, Math.abs(v)));

/** What the model's input expects: the config's statement, the file's, both when they agree. */
export function resolveNormalization(entry: CatalogEntry, file: InputQuantization | undefined): InputNormalization {
  const stated = entry.normalization;
  const read = file && normalizationOf(file);
  if (stated && read && !(close(stated.scale, read.scale) && close(stated.zeroPoint, read.zeroPoint))) {
    throw new ModelConfigError(`${entry.configFile}: preprocessing gives scale ${stated.scale} and zeroPoint ${stated.zeroPoint} but the weights' input takes scale ${read.scale[0]} and zeroPoint ${read.zeroPoint[0]}`);
  }
  const normalization = stated ?? read;
  if (!normalization) {
    throw new ModelConfigError(`${entry.configFile}: the weights do not say how pixels are normalized; give preprocessing.scale and zeroPoint, or mean and std`);
  }
  return normalization;
}

/** The entry of one model version, from its config file; every path resolved. */
export function entryOf(ref: ModelRef, modelDir: string): CatalogEntry {
  const config = readModelConfig(ref.configFile);
  const where = ref.configFile;
  const path = (p: string) => (p.startsWith(MODEL_DIR_PREFIX) ? resolve(modelDir, p.slice(MODEL_DIR_PREFIX.length)) : resolve(dirname(ref.configFile), p));
  if (!FORMATS_BY_TASK[config.task].includes(config.format)) {
    throw new ModelConfigError(`${where}: format is '${config.format}'; valid formats for ${config.task}: ${FORMATS_BY_TASK[config.task].join(', ')}`);
  }
  const stated = config.architecture ?? {};
  const required = <K extends keyof typeof stated>(key: K): NonNullable<(typeof stated)[K]> =>
    stated[key] ?? (() => {
      throw new ModelConfigError(`${where}: architecture.${key} is required for ${config.task} (the ${config.format} importer does not read it from the weights)`);
    })();
  const base = {
    name: ref.name,
    version: ref.version,
    description: config.description ?? `${ref.name}, version ${ref.version}`,
    format: config.format,
    weights: config.weights.startsWith(MODEL_DIR_PREFIX) ? config.weights.slice(MODEL_DIR_PREFIX.length) : config.weights,
    weightsPath: path(config.weights),
    labels: path(config.labels),
    labelOffset: config.labelOffset ?? 0,
    normalization: statedNormalization(config.preprocessing),
    preprocess: statedPreprocess(config.preprocessing),
    configFile: ref.configFile,
    loadByDefault: config.loadAtStartup ?? true,
    precision: config.precision ?? DEFAULT_PRECISION,
  };
  switch (config.task) {
    case 'classification': {
      const read = CLASSIFIER_READERS[config.format]!;
      // Read from the weights the first time something needs it, then kept.
      let architecture: ClassifierArchitecture | undefined;
      const fixed = () => (architecture ??= classifierArchitecture(read(base.weightsPath), stated, where));
      return {
        ...base,
        task: 'classification',
        get alpha() {
          return fixed().alpha;
        },
        build: () => mobileNetV2Classifier(fixed()),
        importWeights: (model, weightsPath) => {
          const file = read(weightsPath);
          // The file at hand must still say what the config and the first reading said.
          classifierArchitecture(file, { ...stated, ...fixed() }, where);
          return importClassifier(model.graph, file);
        },
      };
    }
    case 'detection': {
      const architecture = { alpha: required('alpha'), resolution: required('resolution'), classes: required('classes'), predictor: stated.predictor ?? 'separable' };
      return {
        ...base,
        task: 'detection',
        alpha: architecture.alpha,
        build: () => ssdMobileNetV2(architecture),
        importWeights: (model, weightsPath) => importSsdWeights(model.graph, weightsPath),
      };
    }
    case 'segmentation': {
      const [alpha, resolution, outputStride, head] = [required('alpha'), required('resolution'), required('outputStride'), stated.head ?? 'lite'];
      const variant = (v: DeepLabVariant) => deepLabV3({ alpha, resolution, head, ...v });
      const floatInput = quantizationOf(base.normalization);
      return {
        ...base,
        task: 'segmentation',
        alpha,
        build: () => variant({ outputStride, scale: 1, output: 'classes' }),
        importWeights: (model, weightsPath) => importDeepLabWeights(model, readFileSync(weightsPath), floatInput),
        outputStride,
        head,
        variant,
      };
    }
  }
}

/** A per-tensor quantization, where the normalization is one (the same for every channel, RGB). */
function quantizationOf(normalization: InputNormalization | undefined): InputQuantization | undefined {
  if (!normalization || normalization.channels !== 'RGB') return undefined;
  const { scale: [s, ...ss], zeroPoint: [z, ...zs] } = normalization;
  return ss.every((v) => v === s) && zs.every((v) => v === z) ? { scale: s, zeroPoint: z } : undefined;
}

/**
 * The precision an entry runs at: PRECISION's (`serving.precision`) if set, else its config's;
 * one the task has, and float32 on an engine other than ONNX Runtime (only it runs int8).
 */
export function servedPrecision(entry: CatalogEntry, serving: { engine: EngineName; precision?: Precision }): Precision {
  const precision = serving.precision ?? entry.precision;
  checkPrecision(entry.task, precision, `model ${entry.name}`);
  if (precision === 'int8' && serving.engine !== 'onnx') {
    throw new ModelConfigError(`model ${entry.name}: precision int8 runs on ENGINE=onnx only, not ${serving.engine}; set precision float32 (its config or PRECISION) or use ENGINE=onnx`);
  }
  return precision;
}

/** One model of a repository: its versions, and the served version's entry or why it has none. */
export interface IndexedModel {
  name: string;
  versions: number[];
  /** The version to serve: the pinned one, else the newest. */
  version?: number;
  entry?: CatalogEntry;
  problem?: string;
  configFile(version: number): string;
}

/**
 * A repository's models, by task, each task's default model first (model.yaml `default`), then
 * by name; models whose config cannot be read come last, with the reason.
 */
export function indexRepository(repository: string, modelDir: string): IndexedModel[] {
  const indexed = listRepository(repository).map((model): IndexedModel & { isDefault: boolean } => {
    const version = servedVersion(model);
    const base = { name: model.name, versions: model.versions, version, isDefault: model.isDefault, configFile: model.configFile };
    if (version === undefined) return { ...base, problem: `model.yaml pins version ${model.pinned}, which has no config` };
    try {
      return { ...base, entry: entryOf({ name: model.name, version, configFile: model.configFile(version) }, modelDir) };
    } catch (err) {
      if (!(err instanceof ModelConfigError)) throw err;
      return { ...base, problem: err.message };
    }
  });
  const rank = (m: (typeof indexed)[number]) => (m.entry ? TASKS.indexOf(m.entry.task) * 2 + (m.isDefault ? 0 : 1) : TASKS.length * 2);
  return indexed
    .sort((a, b) => rank(a) - rank(b) || a.name.localeCompare(b.name))
    .map(({ isDefault: _, ...model }) => model);
}

/** The entries of a repository's served versions, in index order; any that cannot be read fails. */
export function repositoryEntries(repository: string, modelDir: string): CatalogEntry[] {
  return indexRepository(repository, modelDir).map((m) => m.entry ?? (() => {
    throw new ModelConfigError(m.problem);
  })());
}

/** The built-in models: the default repository's entries, over the installed model files. */
export const CATALOG: readonly CatalogEntry[] = repositoryEntries(DEFAULT_REPOSITORY, DEFAULT_MODEL_DIR);

export function findEntry(name: string): CatalogEntry;
export function findEntry<T extends Task>(name: string, task: T): Extract<CatalogEntry, { task: T }>;
export function findEntry(name: string, task?: Task): CatalogEntry {
  const entry = CATALOG.find((e) => e.name === name);
  if (!entry) throw new RangeError(`unknown model ${name}; available: ${CATALOG.map((e) => e.name).join(', ')}`);
  if (task !== undefined && entry.task !== task) throw new RangeError(`model ${name} is a ${entry.task} model, not ${task}`);
  return entry;
}

/** An entry's architecture with its weights, and how its input expects pixels. */
export function loadWeights<E extends CatalogEntry>(entry: E): { model: ReturnType<E['build']>; weights: Map<string, Float32Array>; normalization: InputNormalization } {
  const model = entry.build() as ReturnType<E['build']>;
  // Each entry's build and importWeights belong together; the union of entries cannot say so.
  const importWeights = entry.importWeights as (model: ReturnType<E['build']>, path: string) => FileWeights;
  const { weights, input } = importWeights(model, entry.weightsPath);
  return { model, weights, normalization: resolveNormalization(entry, input) };
}

/**
 * loadWeights for a model whose input takes one scale and zero point (every built-in one), with
 * them as the quantization the engines' tests and benchmarks normalize with. `modelDir` is where
 * the entry was resolved: a built-in entry's paths already are absolute.
 */
export function buildWithWeights<E extends CatalogEntry>(entry: E, _modelDir?: string): { model: ReturnType<E['build']>; imported: ImportedWeights } {
  const { model, weights, normalization } = loadWeights(entry);
  const input = quantizationOf(normalization);
  if (!input) throw new WeightImportError(`${entry.name}: its input is normalized per channel, which one scale and zero point cannot say`);
  return { model, imported: { weights, input } };
}
