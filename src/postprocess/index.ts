// What each task asks of a model run and what it makes of the outputs. Runs in the worker,
// so only the small result crosses back to the main thread.
import { classify, type ClassificationOutput, type ClassificationRequest } from './classify.js';
import { detect, type DetectionOutput, type DetectionRequest } from './detect.js';
import type { ModelRuns } from '../engine/variants.js';
import { segment, type SegmentationOutput, type SegmentationRequest } from './segment.js';

export type TaskRequest = ClassificationRequest | DetectionRequest | SegmentationRequest;
export type TaskOutput = ClassificationOutput | DetectionOutput | SegmentationOutput;
/** The output type that answers a given request type. */
export type OutputOf<R extends TaskRequest> = Extract<TaskOutput, { task: R['task'] }>;

/** Runs a task: once on the model's graph, except segmentation, whose settings may need other graphs and several runs. */
export async function runTask(request: TaskRequest, input: Float32Array, runs: ModelRuns): Promise<TaskOutput> {
  switch (request.task) {
    case 'classification':
      return classify(await runs.run(input), request);
    case 'detection':
      return detect(await runs.run(input), request, runs.graph);
    case 'segmentation':
      return segment(request, input, runs.runVariant);
  }
}
