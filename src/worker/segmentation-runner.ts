// Segmentation in the worker. A request may ask for another output stride or for multi-scale +
// flip, each a graph of its own over the same weights (a variant). The model's own setting runs
// on the engine built at load; the others are built the first time a request needs them and kept
// in the worker's variant cache, which is bounded by memory (least recently used out first) and
// disposes what it evicts, so the settings requests reach cannot hold a worker's memory for good.
import type { Engine } from '../engine/engine.js';
import { costOf } from '../model/cost.js';
import type { DeepLabGraph, DeepLabVariant } from '../model/deeplab.js';
import { elementCount } from '../model/graph.js';
import type { SegmentationOutput, SegmentationRequest, TaskInput } from '../tasks.js';
import type { InputNormalization } from '../weights/common.js';
import { BoundedCache } from './bounded-cache.js';
import { engineInput } from './normalize.js';
import { checkpoint, type TaskRunner } from './runner.js';
import { segment, type GraphOutput } from './segment.js';

/** A graph over the model's weights and the engine that runs it. */
export interface VariantEngine {
  model: DeepLabGraph;
  engine: Engine;
}

/** The worker's cache of variant engines, shared by its segmentation models; it disposes what it evicts. */
export type VariantCache = BoundedCache<string, VariantEngine>;

export function variantCache(budgetBytes: number): VariantCache {
  return new BoundedCache(budgetBytes, ({ engine }) => engine.dispose());
}

export interface SegmentationRunnerOptions {
  /** The model's name: its variants' keys in the shared cache. */
  name: string;
  /** The model's own setting, loaded and warmed up already. */
  own: VariantEngine & { variant: DeepLabVariant };
  input: InputNormalization;
  /** The graph of a setting, with the same parameters. */
  graphOf(variant: DeepLabVariant): DeepLabGraph;
  /** Builds an engine for a variant's graph (memory arena off: these run now and then). */
  load(model: DeepLabGraph): Promise<Engine>;
  variants: VariantCache;
}

/**
 * What a cached variant engine holds between runs, estimated from the cost model: its float32
 * parameters (the session's own copy). Its activations exist only during a run (the memory arena
 * is off for variants), one run per worker at a time. Measured on the DeepLab files: 1.2 to 1.4
 * times this in resident memory per cached session (docs/engines.md).
 */
export function engineMemoryBytes(model: DeepLabGraph): number {
  return 4 * costOf(model.graph).params;
}

export class SegmentationRunner implements TaskRunner<SegmentationRequest> {
  readonly task = 'segmentation';
  private readonly ownKey: string;

  constructor(private readonly options: SegmentationRunnerOptions) {
    this.ownKey = this.keyOf(options.own.variant);
  }

  private keyOf({ outputStride, scale, output }: DeepLabVariant): string {
    return `${this.options.name}/os${outputStride}/x${scale}/${output}`;
  }

  async run(request: SegmentationRequest, taskInput: TaskInput, signal?: AbortSignal): Promise<SegmentationOutput> {
    const { own, input } = this.options;
    const { shape } = own.model.input;
    return segment(request, engineInput(taskInput, input, elementCount(shape)), shape, async (variant, data) => {
      // MF makes twelve runs: an abandoned request stops between them.
      await checkpoint(signal);
      return this.runVariant(variant, data);
    });
  }

  private async runVariant(variant: DeepLabVariant, data: Float32Array): Promise<GraphOutput> {
    const { own, variants } = this.options;
    const key = this.keyOf(variant);
    let held = key === this.ownKey ? own : variants.get(key);
    let transient = false;
    if (!held) {
      const model = this.options.graphOf(variant);
      held = { model, engine: await this.options.load(model) };
      // Larger than the whole budget: used for this run only.
      transient = !(await variants.set(key, held, engineMemoryBytes(model)));
    }
    try {
      const outputs = await held.engine.run({ data, batch: 1 });
      return { values: outputs.get(held.model.output.name)!, shape: held.model.output.shape };
    } finally {
      if (transient) await held.engine.dispose();
    }
  }

  /** Releases the model's own engine; its variants are the shared cache's to release. */
  async dispose(): Promise<void> {
    await this.options.own.engine.dispose();
  }
}
