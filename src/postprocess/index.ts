// What each task asks of a model run and what it makes of the outputs. Runs in the worker,
// so only the small result crosses back to the main thread.
import { classify, type ClassificationOutput, type ClassificationRequest } from './classify.js';

export type TaskRequest = ClassificationRequest;
export type TaskOutput = ClassificationOutput;
/** The output type that answers a given request type. */
export type OutputOf<R extends TaskRequest> = Extract<TaskOutput, { task: R['task'] }>;

/** `outputs` are the graph's outputs in the graph's order. */
export function postprocess(request: TaskRequest, outputs: readonly Float32Array[]): TaskOutput {
  switch (request.task) {
    case 'classification':
      return classify(outputs, request);
  }
}
