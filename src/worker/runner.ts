// What a worker holds for one loaded model: a runner that turns a task request and the image's
// pixels into the task's compact output (normalize, run the engine, decode the outputs).
import type { OutputOf, TaskRequest } from '../tasks.js';

export interface TaskRunner<R extends TaskRequest> {
  readonly task: R['task'];
  run(request: R, pixels: Uint8Array): Promise<OutputOf<R>>;
  /** Releases the engines (native sessions, tensors) the runner owns. */
  dispose(): Promise<void>;
}
