// Typed messages between the pool (main thread) and its workers.
import type { EngineName, TfjsBackendChoice } from '../engine/engine.js';
import type { TaskOutput, TaskRequest } from '../postprocess/index.js';

export interface WorkerConfig {
  modelDir: string;
  models: string[];
  engine: EngineName;
  threads: number;
  /** ENGINE=tfjs: the backend to use (config TFJS_BACKEND); absent = 'auto'. */
  tfjsBackend?: TfjsBackendChoice;
  /** Split factor per model for memory-efficient inference (config MEMORY_SPLIT); absent = 1. */
  split?: Record<string, number>;
}

export interface InferTask<R extends TaskRequest = TaskRequest> {
  model: string;
  /** resolution x resolution x 3 RGB bytes from preprocessing. */
  pixels: Uint8Array;
  request: R;
}

/**
 * Test-only misbehaviour for the worker that receives the task: throw an uncaught error, exit,
 * hang (until the watchdog), fail the task, or stall before running it. Only
 * WorkerPool.injectFault sets it; nothing a request carries can.
 */
export type Fault = { kind: 'throw' | 'exit' | 'hang' | 'fail' } | { kind: 'delay'; ms: number };

export type ToWorker = { type: 'infer'; id: number; task: InferTask; fault?: Fault };

export type FromWorker =
  | { type: 'ready' }
  | { type: 'loadFailed'; message: string }
  | { type: 'result'; id: number; output: TaskOutput; inferenceMs: number }
  | { type: 'failed'; id: number; message: string };
