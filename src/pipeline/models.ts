// The loaded models as the main thread knows them: what each is, what it costs per setting, its
// labels; and the lookup every request starts with.
import { join } from 'node:path';
import type { CatalogEntry } from '../catalog/catalog.js';
import type { Preprocess } from '../decode/decode.js';
import type { EngineName } from '../engine/engine.js';
import { costOf } from '../model/cost.js';
import { STRATEGIES, strategyMultiplyAdds, type DeepLabHead, type Strategy } from '../model/deeplab.js';
import { OUTPUT_STRIDES, type OutputStride } from '../model/mobilenet-v2.js';
import { splitGraph } from '../model/split.js';
import { Labels } from '../render/labels.js';
import type { Task, TaskRequest } from '../tasks.js';

export type SegmentationSetting = `${OutputStride}/${Strategy}`;

/** What the main thread knows about a loaded model, without its weights. */
export interface ModelInfo {
  name: string;
  task: Task;
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
  /** The engine that runs it and the split factor of memory-efficient inference (1 = off). */
  engine: EngineName;
  split: number;
  labels: Labels;
  /** Segmentation models: the file's output stride and head, and the multiply-adds of every setting a request may choose. */
  segmentation?: {
    outputStride: OutputStride;
    head: DeepLabHead;
    multiplyAdds: Record<SegmentationSetting, number>;
  };
}

export class ModelConfigError extends Error {}

/**
 * `serving.preprocess` replaces the catalog's preprocessing (the eval compares settings with it). A
 * segmentation map covers the whole input and is scaled onto the whole photo, so it cannot be cropped.
 */
export function describeModel(
  entry: CatalogEntry,
  modelDir: string,
  serving: { engine: EngineName; split?: number; preprocess?: Preprocess } = { engine: 'onnx' },
): ModelInfo {
  const preprocess = serving.preprocess ?? entry.preprocess;
  if (entry.task === 'segmentation' && preprocess.crop !== 'none') {
    throw new ModelConfigError(`model ${entry.name}: a segmentation model's input must show the whole photo (crop 'none'), not '${preprocess.crop}'`);
  }
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
    preprocess,
    weights: entry.weights,
    classes: built.classes,
    params: cost.params,
    multiplyAdds: cost.multiplyAdds,
    // Parameters and multiply-adds are the model's own (the split adds only zero biases and moves no work).
    peakActivationBytes: split === 1 ? cost.peakActivationBytes : costOf(splitGraph(built.graph, split)).peakActivationBytes,
    engine: serving.engine,
    split,
    labels,
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

/** A model's multiply-adds for one image, under the settings the request chose. */
export function multiplyAddsOf(model: ModelInfo, request: TaskRequest): number {
  if (request.task === 'segmentation' && model.segmentation) {
    return model.segmentation.multiplyAdds[`${request.outputStride}/${request.strategy}`];
  }
  return model.multiplyAdds;
}

export class UnknownModelError extends Error {}

export class ModelRegistry {
  constructor(readonly models: readonly ModelInfo[]) {}

  /** The named model of a task, or the task's first model. */
  find(task: Task, name: string | undefined): ModelInfo {
    const candidates = this.models.filter((m) => m.task === task);
    const model = name === undefined ? candidates[0] : candidates.find((m) => m.name === name);
    if (!model) {
      const loaded = candidates.map((m) => m.name).join(', ') || 'none';
      throw new UnknownModelError(`no ${task} model named '${name ?? '(default)'}'; loaded ${task} models: ${loaded}`);
    }
    return model;
  }
}
