// Typed messages between the pool (main thread) and its workers.
import type { EngineName, TfjsBackendChoice } from '../engine/engine.js';
import type { ModelRef, TaskOutput, TaskRequest } from '../tasks.js';

export interface WorkerConfig {
  modelDir: string;
  models: string[];
  /** Which version (config file) of each model in `models` to load. */
  refs?: Record<string, ModelRef>;
  engine: EngineName;
  threads: number;
  /** ENGINE=tfjs: the backend to use (config TFJS_BACKEND); absent = 'auto'. */
  tfjsBackend?: TfjsBackendChoice;
  /** Split factor per model for memory-efficient inference (config MEMORY_SPLIT); absent = 1. */
  split?: Record<string, number>;
  /** Memory this worker's engines for other segmentation settings may hold (its share of VARIANT_MEMORY_MB). */
  variantBudgetBytes: number;
}

export interface InferTask<R extends TaskRequest = TaskRequest> {
  model: string;
  /** The model's input size x 3 RGB bytes from decoding. */
  pixels: Uint8Array;
  request: R;
}

/**
 * Test-only misbehaviour for the worker that receives the task: throw an uncaught error, exit,
 * hang (until the watchdog), fail the task, or stall before running it. Only
 * WorkerPool.injectFault sets it; nothing a request carries can.
 */
export type Fault = { kind: 'throw' | 'exit' | 'hang' | 'fail' } | { kind: 'delay'; ms: number };

/**
 * Changing a worker's models, in two phases so that every worker swaps or none does: `prepare`
 * loads and warms a version beside the one serving, `commit` makes it serve (the old one is
 * released once the task running on it is done), `abort` drops it; `unload` releases a model.
 */
export type ModelAction =
  | { kind: 'prepare'; ref: ModelRef }
  | { kind: 'commit' | 'abort' | 'unload'; name: string };

export type ToWorker =
  | { type: 'infer'; id: number; task: InferTask; fault?: Fault }
  | { type: 'models'; id: number; action: ModelAction }
  /** Release every engine and end the thread. */
  | { type: 'close' };

/** The worker's cache of engines for other segmentation settings: how many, and their estimated bytes. */
export interface VariantsHeld {
  count: number;
  bytes: number;
}

export type FromWorker =
  | { type: 'ready' }
  | { type: 'loadFailed'; message: string }
  | { type: 'result'; id: number; output: TaskOutput; inferenceMs: number; variants: VariantsHeld }
  | { type: 'failed'; id: number; message: string; variants: VariantsHeld }
  /** The answer to a `models` message: done, or why not. */
  | { type: 'models'; id: number; error?: string };
