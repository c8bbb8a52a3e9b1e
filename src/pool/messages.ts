// Typed messages between the pool (main thread) and its workers (child processes, over IPC with
// the structured-clone serialization, so typed arrays cross as typed arrays).
import type { EngineName, Precision, TfjsBackendChoice } from '../engine/engine.js';
import type { ModelRef, TaskInput, TaskOutput, TaskRequest } from '../tasks.js';

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
  /** PRECISION's overrides of the models' configs (see servedPrecision); absent = none. */
  precision?: Record<string, Precision>;
  /** Memory this worker's engines for other segmentation settings may hold (its share of VARIANT_MEMORY_MB). */
  variantBudgetBytes: number;
}

export interface InferTask<R extends TaskRequest = TaskRequest> {
  model: string;
  /** The model's input size x 3: RGB bytes from decoding, or values already normalized. */
  input: TaskInput;
  request: R;
}

/**
 * Test-only misbehaviour for the worker that receives the task: throw an uncaught error, exit,
 * abort in native code (SIGABRT), hang (until the watchdog), fail the task, or stall before
 * running it. Only WorkerPool.injectFault sets it; nothing a request carries can.
 */
export type Fault = { kind: 'throw' | 'exit' | 'abort' | 'hang' | 'fail' } | { kind: 'delay'; ms: number };

/**
 * Changing a worker's models, in two phases so that every worker swaps or none does: `prepare`
 * loads and warms a version beside the one serving, `commit` makes it serve (the old one is
 * released once the task running on it is done), `abort` drops it; `unload` releases a model.
 */
export type ModelAction =
  | { kind: 'prepare'; ref: ModelRef }
  | { kind: 'commit' | 'abort' | 'unload'; name: string };

export type ToWorker =
  | { type: 'start'; config: WorkerConfig }
  /** `deadlineAt` (epoch ms): the worker gives the task up when it passes, between runs. */
  | { type: 'infer'; id: number; task: InferTask; deadlineAt?: number; fault?: Fault }
  /** The task's request was abandoned: stop at the next point between runs. */
  | { type: 'cancel'; id: number }
  | { type: 'models'; id: number; action: ModelAction }
  /** Release every engine and end the process. */
  | { type: 'close' };

/** What a worker holds: its resident memory, and its cache of engines for other segmentation settings. */
export interface WorkerMemory {
  residentBytes: number;
  variantEngines: number;
  /** Estimated: see engineMemoryBytes. */
  variantBytes: number;
}

export type FromWorker =
  | { type: 'ready'; memory: WorkerMemory }
  | { type: 'loadFailed'; message: string }
  | { type: 'result'; id: number; output: TaskOutput; inferenceMs: number; memory: WorkerMemory }
  | { type: 'failed'; id: number; message: string; memory: WorkerMemory }
  /** An uncaught error; the process exits right after. */
  | { type: 'fatal'; message: string }
  /** The answer to a `models` message: done, or why not. */
  | { type: 'models'; id: number; error?: string };
