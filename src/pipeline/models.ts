// The loaded models as the main thread knows them: what each is, what it costs per setting, its
// labels; and the lookup every request starts with.
import { servedPrecision, type CatalogEntry } from '../catalog/catalog.js';
import { ModelConfigError, type WeightFormat } from '../catalog/config.js';
import type { Precision } from '../engine/engine.js';
import type { Preprocess } from '../decode/preprocess.js';
import type { EngineName } from '../engine/engine.js';
import { costOf } from '../model/cost.js';
import { STRATEGIES, strategyMultiplyAdds, type DeepLabHead, type Strategy } from '../model/deeplab.js';
import { OUTPUT_STRIDES, type OutputStride } from '../model/mobilenet-v2.js';
import { subgraphTo } from '../model/graph.js';
import type { ClassifierGraph } from '../model/mobilenet-v2.js';
import { splitGraph } from '../model/split.js';
import { Labels } from '../render/labels.js';
import { modelBytes } from './placement.js';
import type { ModelRef, Task, TaskKind, TaskRequest } from '../tasks.js';

export type SegmentationSetting = `${OutputStride}/${Strategy}`;

/** What the main thread knows about a loaded model, without its weights. */
export interface ModelInfo {
  name: string;
  /** The repository version loaded, and its config file. */
  version: number;
  configFile: string;
  task: Task;
  format: WeightFormat;
  description: string;
  alpha: number;
  /** Side of the square input the image is resized to. */
  resolution: number;
  /** How the photo becomes that input. */
  preprocess: Preprocess;
  weights: string;
  /** Outputs per class axis (background included where the model has one). */
  classes: number;
  params: number;
  multiplyAdds: number;
  /** Under the schedule the engine runs: with `split` > 1, the memory-efficient one. */
  peakActivationBytes: number;
  /** What a worker's engine holds for it: float32 parameters and peak activations (placement.ts). */
  memoryBytes: number;
  /** The engine that runs it and the split factor of memory-efficient inference (1 = off). */
  engine: EngineName;
  split: number;
  /** float32, or int8 built from the graph description (docs/engines.md, Precision). */
  precision: Precision;
  labels: Labels;
  /** Classifiers: the embedding (the backbone's pooled features), its length and the backbone's multiply-adds, the layers up to the pool. */
  embedding?: { dimensions: number; multiplyAdds: number };
  /** Segmentation models: the file's output stride and head, and the multiply-adds of every setting a request may choose. */
  segmentation?: {
    outputStride: OutputStride;
    head: DeepLabHead;
    multiplyAdds: Record<SegmentationSetting, number>;
  };
}

/**
 * What the main thread knows of an entry: its cost from the graph, its labels checked against its
 * classes. `serving.preprocess` replaces the config's crop and kernel (the eval compares settings
 * with it); a segmentation map is scaled onto the whole photo, so it cannot be cropped.
 */
export function describeModel(
  entry: CatalogEntry,
  serving: { engine: EngineName; split?: number; preprocess?: Preprocess; precision?: Precision } = { engine: 'onnx' },
): ModelInfo {
  const preprocess = serving.preprocess ?? entry.preprocess;
  if (entry.task === 'segmentation' && preprocess.crop !== 'none') {
    throw new ModelConfigError(`model ${entry.name}: a segmentation model's input must show the whole photo (crop 'none'), not '${preprocess.crop}'`);
  }
  const precision = servedPrecision(entry, serving);
  const built = entry.build();
  const cost = costOf(built.graph);
  const split = serving.split ?? 1;
  // Parameters and multiply-adds are the model's own (the split adds only zero biases and moves no work).
  const peakActivationBytes = split === 1 ? cost.peakActivationBytes : costOf(splitGraph(built.graph, split)).peakActivationBytes;
  let labels: Labels;
  try {
    labels = Labels.read(entry.labels, entry.labelOffset);
  } catch (err) {
    throw new ModelConfigError(`${entry.configFile}: labels ${entry.labels} cannot be read: ${(err as Error).message}`);
  }
  if (labels.firstClassId + labels.count !== built.classes) {
    throw new ModelConfigError(
      `${entry.configFile}: ${entry.labels} has ${labels.count} labels from class ${labels.firstClassId}, but the model has ${built.classes} classes`,
    );
  }
  return {
    name: entry.name,
    version: entry.version,
    configFile: entry.configFile,
    task: entry.task,
    format: entry.format,
    description: entry.description,
    alpha: entry.alpha,
    resolution: built.input.shape[1]!,
    preprocess,
    weights: entry.weights,
    classes: built.classes,
    params: cost.params,
    multiplyAdds: cost.multiplyAdds,
    peakActivationBytes,
    memoryBytes: modelBytes({ params: cost.params, peakActivationBytes }),
    engine: serving.engine,
    split,
    precision,
    labels,
    embedding: entry.task === 'classification' ? embeddingOf(built as ClassifierGraph) : undefined,
    segmentation: entry.task === 'segmentation' ? {
      outputStride: entry.outputStride,
      head: entry.head,
      multiplyAdds: Object.fromEntries(OUTPUT_STRIDES.flatMap((outputStride) => STRATEGIES.map((strategy) => [
        `${outputStride}/${strategy}`,
        strategyMultiplyAdds((scale) => entry.variant({ outputStride, scale, output: 'logits' }).graph, strategy),
      ]))) as Record<SegmentationSetting, number>,
    } : undefined,
  };
}

/** How a worker is told to load the model. */
export const refOf = (model: ModelInfo): ModelRef => ({ name: model.name, version: model.version, configFile: model.configFile });

function embeddingOf({ graph, features }: ClassifierGraph): ModelInfo['embedding'] {
  return { dimensions: features.shape[0]!, multiplyAdds: costOf(subgraphTo(graph, [features.name])).multiplyAdds };
}

/** A model's multiply-adds for one image, under the settings the request chose. */
export function multiplyAddsOf(model: ModelInfo, request: TaskRequest): number {
  if (request.task === 'segmentation' && model.segmentation) {
    return model.segmentation.multiplyAdds[`${request.outputStride}/${request.strategy}`];
  }
  // The same run computes the probabilities too, but an embedding needs only the backbone: its cost is the backbone's.
  if (request.task === 'embedding' && model.embedding) return model.embedding.multiplyAdds;
  return model.multiplyAdds;
}

/** Whether a model answers requests of a kind: its own task, or the embedding of a classifier. */
const serves = (model: ModelInfo, kind: TaskKind): boolean => model.task === kind || (kind === 'embedding' && model.embedding !== undefined);

export class UnknownModelError extends Error {}

/** A model the repository has but that is not loaded (never loaded, unloaded, or its load failed). */
export class ModelNotLoadedError extends Error {}

/**
 * The loaded models, in the order they were first loaded (the first of each task is its default).
 * A reload replaces a model in place.
 */
export class ModelRegistry {
  private readonly loaded: ModelInfo[];
  /** Why a model of the task that was loaded is not now (unloaded, its load failed); undefined otherwise. */
  whyNotLoaded: (name: string, task: TaskKind) => string | undefined = () => undefined;

  constructor(models: readonly ModelInfo[]) {
    this.loaded = [...models];
  }

  get models(): readonly ModelInfo[] {
    return this.loaded;
  }

  /** Adds a model, or replaces the loaded version of it in place. */
  set(model: ModelInfo): void {
    const at = this.loaded.findIndex((m) => m.name === model.name);
    if (at >= 0) this.loaded[at] = model;
    else this.loaded.push(model);
  }

  remove(name: string): void {
    const at = this.loaded.findIndex((m) => m.name === name);
    if (at >= 0) this.loaded.splice(at, 1);
  }

  get(name: string): ModelInfo | undefined {
    return this.loaded.find((m) => m.name === name);
  }

  /** The model of that name, whatever its task. */
  named(name: string): ModelInfo {
    const model = this.loaded.find((m) => m.name === name);
    if (!model) throw new UnknownModelError(`no model named '${name}'; loaded models: ${this.loaded.map((m) => m.name).join(', ')}`);
    return model;
  }

  /** The named model that serves a task (or the embedding), or the first such model. */
  find(task: TaskKind, name: string | undefined): ModelInfo {
    const candidates = this.loaded.filter((m) => serves(m, task));
    const model = name === undefined ? candidates[0] : candidates.find((m) => m.name === name);
    if (!model) {
      const why = name === undefined || this.get(name) ? undefined : this.whyNotLoaded(name, task);
      if (why !== undefined) throw new ModelNotLoadedError(`model '${name}' is in the repository but not loaded: ${why}`);
      const loaded = candidates.map((m) => m.name).join(', ') || 'none';
      throw new UnknownModelError(`no ${task} model named '${name ?? '(default)'}'; loaded ${task} models: ${loaded}`);
    }
    return model;
  }
}
