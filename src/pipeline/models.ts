// The loaded models as the main thread knows them: what each is, what it costs per setting, its
// labels; and the lookup every request starts with.
import { join } from 'node:path';
import type { CatalogEntry } from '../catalog/catalog.js';
import type { EngineName } from '../engine/engine.js';
import { costOf } from '../model/cost.js';
import { STRATEGIES, strategyMultiplyAdds, type DeepLabHead, type Strategy } from '../model/deeplab.js';
import { OUTPUT_STRIDES, type OutputStride } from '../model/mobilenet-v2.js';
import { subgraphTo } from '../model/graph.js';
import type { ClassifierGraph } from '../model/mobilenet-v2.js';
import { splitGraph } from '../model/split.js';
import { Labels } from '../render/labels.js';
import type { Task, TaskKind, TaskRequest } from '../tasks.js';

export type SegmentationSetting = `${OutputStride}/${Strategy}`;

/** What the main thread knows about a loaded model, without its weights. */
export interface ModelInfo {
  name: string;
  task: Task;
  description: string;
  alpha: number;
  /** Side of the square input the image is resized to. */
  resolution: number;
  weights: string;
  /** Outputs per class axis (background included where the model has one). */
  classes: number;
  params: number;
  multiplyAdds: number;
  /** Under the schedule the engine runs: with `split` > 1, the memory-efficient one. */
  peakActivationBytes: number;
  /** The engine that runs it and the split factor of memory-efficient inference (1 = off). */
  engine: EngineName;
  split: number;
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

export class ModelConfigError extends Error {}

export function describeModel(entry: CatalogEntry, modelDir: string, serving: { engine: EngineName; split?: number } = { engine: 'onnx' }): ModelInfo {
  const built = entry.build();
  const cost = costOf(built.graph);
  const split = serving.split ?? 1;
  const labels = Labels.read(join(modelDir, entry.labels), entry.labelOffset);
  if (labels.firstClassId + labels.count !== built.classes) {
    throw new ModelConfigError(
      `model ${entry.name}: ${entry.labels} has ${labels.count} labels from class ${labels.firstClassId}, but the model has ${built.classes} classes`,
    );
  }
  return {
    name: entry.name,
    task: entry.task,
    description: entry.description,
    alpha: entry.alpha,
    resolution: built.input.shape[1]!,
    weights: entry.weights,
    classes: built.classes,
    params: cost.params,
    multiplyAdds: cost.multiplyAdds,
    // Parameters and multiply-adds are the model's own (the split adds only zero biases and moves no work).
    peakActivationBytes: split === 1 ? cost.peakActivationBytes : costOf(splitGraph(built.graph, split)).peakActivationBytes,
    engine: serving.engine,
    split,
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

export class ModelRegistry {
  constructor(readonly models: readonly ModelInfo[]) {}

  /** The model of that name, whatever its task. */
  named(name: string): ModelInfo {
    const model = this.models.find((m) => m.name === name);
    if (!model) throw new UnknownModelError(`no model named '${name}'; loaded models: ${this.models.map((m) => m.name).join(', ')}`);
    return model;
  }

  /** The named model that serves a task (or the embedding), or the first such model. */
  find(task: TaskKind, name: string | undefined): ModelInfo {
    const candidates = this.models.filter((m) => serves(m, task));
    const model = name === undefined ? candidates[0] : candidates.find((m) => m.name === name);
    if (!model) {
      const loaded = candidates.map((m) => m.name).join(', ') || 'none';
      throw new UnknownModelError(`no ${task} model named '${name ?? '(default)'}'; loaded ${task} models: ${loaded}`);
    }
    return model;
  }
}
