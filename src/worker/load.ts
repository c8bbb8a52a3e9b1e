// Loading a model in a worker: its graph and weights, the split schedule if configured, the
// engine warmed up, and the runners of the tasks it serves around it.
import { loadWeights, servedPrecision, type CatalogEntry } from '../catalog/catalog.js';
import type { EngineOptions } from '../engine/engine.js';
import { loadEngine } from '../engine/load.js';
import { elementCount, type BuiltGraph, type Graph, type Weights } from '../model/graph.js';
import { splitGraph, splitWeights } from '../model/split.js';
import type { WorkerConfig } from '../pool/messages.js';
import type { TaskInput, TaskRequest } from '../tasks.js';
import { Classifier, ClassificationRunner } from './classify.js';
import { DetectionRunner } from './detect.js';
import { EmbeddingRunner } from './embed.js';
import type { TaskRunner } from './runner.js';
import type { InputNormalization } from '../weights/common.js';
import { activationRanges } from './calibration.js';
import { SegmentationRunner, type VariantCache } from './segmentation-runner.js';

export type AnyRunner = ClassificationRunner | EmbeddingRunner | DetectionRunner | SegmentationRunner;

/** A model as a worker holds it: a runner for each task it serves, and what releases its engines. */
export interface LoadedModel {
  readonly runners: readonly AnyRunner[];
  dispose(): Promise<void>;
}

export async function loadModel(entry: CatalogEntry, config: WorkerConfig, variants: VariantCache): Promise<LoadedModel> {
  const split = config.split?.[entry.name] ?? 1;
  // The engines run the split schedule (if any); outputs keep their names, so handles still hold.
  const engineOf = (graph: Graph, weights: Weights, options: Partial<EngineOptions>) =>
    loadEngine(config.engine, graph, weights, { threads: config.threads, tfjsBackend: config.tfjsBackend, ...options });
  const load = ({ graph }: BuiltGraph, weights: Weights, options: Partial<EngineOptions> = {}) =>
    engineOf(splitGraph(graph, split), splitWeights(graph, weights, split), options);
  const precision = servedPrecision(entry, { engine: config.engine, precision: config.precision?.[entry.name] });
  // Warm-up: the first run allocates and plans; the model's own engine does it before it serves.
  // int8 is calibrated on the graph the engine runs (split or not), whose tensors it quantizes.
  const loadWarm = async (model: BuiltGraph, weights: Weights, normalization: InputNormalization) => {
    const [graph, runWeights] = [splitGraph(model.graph, split), splitWeights(model.graph, weights, split)];
    const quantization = precision === 'int8' ? await activationRanges(entry, graph, runWeights, normalization, config.modelDir) : undefined;
    const engine = await engineOf(graph, runWeights, { quantization });
    await engine.run({ data: new Float32Array(elementCount(model.input.shape)), batch: 1 });
    return engine;
  };
  switch (entry.task) {
    case 'classification': {
      const { model, weights, normalization } = loadWeights(entry);
      const engine = await loadWarm(model, weights, normalization);
      // One engine, two tasks: its run gives the probabilities and the pooled features together.
      const classifier = new Classifier(model, engine, normalization);
      return { runners: [new ClassificationRunner(classifier), new EmbeddingRunner(classifier)], dispose: () => engine.dispose() };
    }
    case 'detection': {
      const { model, weights, normalization } = loadWeights(entry);
      const engine = await loadWarm(model, weights, normalization);
      return { runners: [new DetectionRunner(model, engine, normalization)], dispose: () => engine.dispose() };
    }
    case 'segmentation': {
      const { model, weights, normalization } = loadWeights(entry);
      const runner = new SegmentationRunner({
        name: entry.name,
        own: { model, engine: await loadWarm(model, weights, normalization), variant: { outputStride: entry.outputStride, scale: 1, output: 'classes' } },
        input: normalization,
        graphOf: entry.variant,
        // Other settings run now and then: their activation memory is not kept between runs.
        load: (variant) => load(variant, weights, { keepActivationMemory: false }),
        variants,
      });
      return { runners: [runner], dispose: () => runner.dispose() };
    }
  }
}

/** Runs a request on the model's runner for its task; a task the model does not serve is a caller's error. */
export function runOn(model: LoadedModel, request: TaskRequest, input: TaskInput, signal?: AbortSignal) {
  const runner = model.runners.find((r) => r.task === request.task);
  if (!runner) throw new Error(`the model runs ${model.runners.map((r) => r.task).join(', ')}, not ${request.task}`);
  return (runner as TaskRunner<typeof request>).run(request, input, signal);
}
