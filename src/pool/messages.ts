// Typed messages between the pool (main thread) and its workers.
import type { EngineName } from '../engine/engine.js';
import type { ScoredClass } from '../postprocess/classify.js';

export interface WorkerConfig {
  modelDir: string;
  models: string[];
  engine: EngineName;
  threads: number;
}

export interface InferTask {
  model: string;
  /** resolution x resolution x 3 RGB bytes from preprocessing. */
  pixels: Uint8Array;
  topk: number;
}

export interface ClassificationOutput {
  classes: ScoredClass[];
}

export type ToWorker = { type: 'infer'; id: number; task: InferTask };

export type FromWorker =
  | { type: 'ready' }
  | { type: 'loadFailed'; message: string }
  | { type: 'result'; id: number; output: ClassificationOutput; inferenceMs: number }
  | { type: 'failed'; id: number; message: string };
