// What a worker holds for one loaded model: a runner that turns a task request and the image's
// pixels into the task's compact output (normalize, run the engine, decode the outputs).
import type { OutputOf, TaskRequest } from '../tasks.js';

export interface TaskRunner<R extends TaskRequest> {
  readonly task: R['task'];
  /** `signal` aborts when the request is abandoned or past its deadline: the runner stops before its next model run. */
  run(request: R, pixels: Uint8Array, signal?: AbortSignal): Promise<OutputOf<R>>;
  /** Releases the engines (native sessions, tensors) the runner owns. */
  dispose(): Promise<void>;
}

/**
 * Lets the process read its messages (a cancel) and timers (a deadline) between model runs,
 * which block the event loop while they last, then throws if the task should stop.
 */
export async function checkpoint(signal: AbortSignal | undefined): Promise<void> {
  if (!signal) return;
  await new Promise((resolve) => setImmediate(resolve));
  signal.throwIfAborted();
}
