// Typed messages between the pool (main thread) and its workers.
import type { EngineName } from '../engine/engine.js';
import type { TaskOutput, TaskRequest } from '../postprocess/index.js';

export interface WorkerConfig {
  modelDir: string;
  models: string[];
  engine: EngineName;
  threads: number;
}

export interface InferTask<R extends TaskRequest = TaskRequest> {
  model: string;
  /** resolution x resolution x 3 RGB bytes from preprocessing. */
  pixels: Uint8Array;
  request: R;
}

export type ToWorker = { type: 'infer'; id: number; task: InferTask };

export type FromWorker =
  | { type: 'ready' }
  | { type: 'loadFailed'; message: string }
  | { type: 'result'; id: number; output: TaskOutput; inferenceMs: number }
  | { type: 'failed'; id: number; message: string };
