// What a worker holds for one loaded model: a runner per task it serves, each turning a task
// request and the image's input into the task's compact output (normalize, run the engine,
// decode the outputs).
import type { OutputOf, TaskInput, TaskRequest } from '../tasks.js';

export interface TaskRunner<R extends TaskRequest> {
  readonly task: R['task'];
  /** `signal` aborts when the request is abandoned or past its deadline: the runner stops before its next model run. */
  run(request: R, input: TaskInput, signal?: AbortSignal): Promise<OutputOf<R>>;
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
