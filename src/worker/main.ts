// A pool worker: loads and warms up its models, reports ready, then runs one task at a time.
// Inference happens here, never on the main thread's event loop.
import { join } from 'node:path';
import { parentPort, workerData } from 'node:worker_threads';
import { findEntry } from '../catalog/catalog.js';
import { loadEngine, type EngineOptions } from '../engine/engine.js';
import { modelRuns, type ModelRuns } from '../engine/variants.js';
import type { Graph, Weights } from '../model/graph.js';
import { splitGraph, splitWeights } from '../model/split.js';
import { runTask } from '../postprocess/index.js';
import type { InputQuantization } from '../weights/tflite/import.js';
import { normalize } from '../preprocess/normalize.js';
import { actOut } from './faults.js';
import type { FromWorker, InferTask, ToWorker, WorkerConfig } from './messages.js';

interface LoadedModel {
  input: InputQuantization;
  runs: ModelRuns;
}

const port = parentPort!;
const send = (message: FromWorker) => port.postMessage(message);

async function loadModel(name: string, config: WorkerConfig): Promise<LoadedModel> {
  const entry = findEntry(name);
  const graph = entry.graph();
  const { weights, input } = entry.importWeights(graph, join(config.modelDir, entry.weights));
  // The engines run the split schedule (if any); post-processing keeps reading the model's own graph.
  const split = config.split?.[name] ?? 1;
  const load = (g: Graph, w: Weights, options: EngineOptions) =>
    loadEngine(config.engine, splitGraph(g, split), splitWeights(g, w, split), { ...options, tfjsBackend: config.tfjsBackend });
  const engine = await load(graph, weights, { threads: config.threads });
  // Warm-up: the first run allocates and plans; do it before reporting ready.
  await engine.run({ data: new Float32Array(entry.resolution * entry.resolution * 3), batch: 1 });
  // Graphs for other settings (segmentation) run now and then: their memory is not kept between runs.
  const runs = modelRuns(graph, engine, entry.segmentation, weights, (g, w) => load(g, w, { threads: config.threads, keepActivationMemory: false }));
  return { input, runs };
}

async function infer(models: Map<string, LoadedModel>, task: InferTask) {
  const model = models.get(task.model);
  if (!model) throw new Error(`model ${task.model} is not loaded in this worker`);
  const started = performance.now();
  const output = await runTask(task.request, normalize(task.pixels, model.input), model.runs);
  return { output, inferenceMs: performance.now() - started };
}

async function main(): Promise<void> {
  const config = workerData as WorkerConfig;
  const models = new Map<string, LoadedModel>();
  try {
    for (const name of config.models) models.set(name, await loadModel(name, config));
  } catch (err) {
    send({ type: 'loadFailed', message: err instanceof Error ? err.message : String(err) });
    return;
  }
  port.on('message', (message: ToWorker) => {
    actOut(message.fault).then(() => infer(models, message.task)).then(
      (result) => send({ type: 'result', id: message.id, ...result }),
      (err: unknown) => send({ type: 'failed', id: message.id, message: err instanceof Error ? err.message : String(err) }),
    );
  });
  send({ type: 'ready' });
}

void main();
