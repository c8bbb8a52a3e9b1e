// Loading a model in a worker: its graph and weights, the split schedule if configured, the
// engine warmed up, and the task's runner around it.
import { loadWeights, type CatalogEntry } from '../catalog/catalog.js';
import type { EngineOptions } from '../engine/engine.js';
import { loadEngine } from '../engine/load.js';
import { elementCount, type BuiltGraph, type Weights } from '../model/graph.js';
import { splitGraph, splitWeights } from '../model/split.js';
import type { WorkerConfig } from '../pool/messages.js';
import type { TaskRequest } from '../tasks.js';
import { ClassificationRunner } from './classify.js';
import { DetectionRunner } from './detect.js';
import type { TaskRunner } from './runner.js';
import { SegmentationRunner, type VariantCache } from './segmentation-runner.js';

export type AnyRunner = ClassificationRunner | DetectionRunner | SegmentationRunner;

export async function loadRunner(entry: CatalogEntry, config: WorkerConfig, variants: VariantCache): Promise<AnyRunner> {
  const split = config.split?.[entry.name] ?? 1;
  // The engines run the split schedule (if any); outputs keep their names, so handles still hold.
  const load = ({ graph }: BuiltGraph, weights: Weights, options: Partial<EngineOptions> = {}) =>
    loadEngine(config.engine, splitGraph(graph, split), splitWeights(graph, weights, split), {
      threads: config.threads,
      tfjsBackend: config.tfjsBackend,
      ...options,
    });
  // Warm-up: the first run allocates and plans; the model's own engine does it before it serves.
  const loadWarm = async (model: BuiltGraph, weights: Weights) => {
    const engine = await load(model, weights);
    await engine.run({ data: new Float32Array(elementCount(model.input.shape)), batch: 1 });
    return engine;
  };
  switch (entry.task) {
    case 'classification': {
      const { model, weights, normalization } = loadWeights(entry);
      return new ClassificationRunner(model, await loadWarm(model, weights), normalization);
    }
    case 'detection': {
      const { model, weights, normalization } = loadWeights(entry);
      return new DetectionRunner(model, await loadWarm(model, weights), normalization);
    }
    case 'segmentation': {
      const { model, weights, normalization } = loadWeights(entry);
      return new SegmentationRunner({
        name: entry.name,
        own: { model, engine: await loadWarm(model, weights), variant: { outputStride: entry.outputStride, scale: 1, output: 'classes' } },
        input: normalization,
        graphOf: entry.variant,
        // Other settings run now and then: their activation memory is not kept between runs.
        load: (variant) => load(variant, weights, { keepActivationMemory: false }),
        variants,
      });
    }
  }
}

/** Runs a request on the runner of its model; a request for another task is a caller's error. */
export function runOn(runner: AnyRunner, request: TaskRequest, pixels: Uint8Array, signal?: AbortSignal) {
  if (runner.task !== request.task) throw new Error(`the model runs ${runner.task}, not ${request.task}`);
  return (runner as TaskRunner<typeof request>).run(request, pixels, signal);
}
