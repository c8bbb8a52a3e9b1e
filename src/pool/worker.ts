// A pool worker: loads and warms up its models, reports ready, then runs one task at a time.
// Inference happens here, never on the main thread's event loop.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parentPort, workerData } from 'node:worker_threads';
import { findEntry } from '../catalog/catalog.js';
import { loadEngine, type Engine } from '../engine/engine.js';
import { postprocess } from '../postprocess/index.js';
import type { InputQuantization } from '../weights/tflite/import.js';
import type { FromWorker, InferTask, ToWorker, WorkerConfig } from './messages.js';

interface LoadedModel {
  engine: Engine;
  input: InputQuantization;
  outputs: readonly string[];
}

const port = parentPort!;
const send = (message: FromWorker) => port.postMessage(message);

/** Pixels to the float values the imported weights were trained on. */
function normalize(pixels: Uint8Array, { scale, zeroPoint }: InputQuantization): Float32Array {
  const values = new Float32Array(pixels.length);
  for (let i = 0; i < pixels.length; i++) values[i] = scale * (pixels[i]! - zeroPoint);
  return values;
}

async function loadModel(name: string, config: WorkerConfig): Promise<LoadedModel> {
  const entry = findEntry(name);
  const graph = entry.graph();
  const { weights, input } = entry.importWeights(graph, readFileSync(join(config.modelDir, entry.weights)));
  const engine = await loadEngine(config.engine, graph, weights, { threads: config.threads });
  // Warm-up: the first run allocates and plans; do it before reporting ready.
  await engine.run({ data: new Float32Array(entry.resolution * entry.resolution * 3), batch: 1 });
  return { engine, input, outputs: graph.outputs };
}

async function infer(models: Map<string, LoadedModel>, task: InferTask) {
  const model = models.get(task.model);
  if (!model) throw new Error(`model ${task.model} is not loaded in this worker`);
  const started = performance.now();
  const outputs = await model.engine.run({ data: normalize(task.pixels, model.input), batch: 1 });
  const output = postprocess(task.request, model.outputs.map((name) => outputs.get(name)!));
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
    infer(models, message.task).then(
      (result) => send({ type: 'result', id: message.id, ...result }),
      (err: unknown) => send({ type: 'failed', id: message.id, message: err instanceof Error ? err.message : String(err) }),
    );
  });
  send({ type: 'ready' });
}

void main();
