// What each task asks of a model run and what it makes of the outputs. Runs in the worker,
// so only the small result crosses back to the main thread.
import type { Graph } from '../model/graph.js';
import { classify, type ClassificationOutput, type ClassificationRequest } from './classify.js';
import { detect, type DetectionOutput, type DetectionRequest } from './detect.js';
import type { ModelRuns } from '../engine/variants.js';
import { classMapOutput, segment, type SegmentationOutput, type SegmentationRequest } from './segment.js';

export type TaskRequest = ClassificationRequest | DetectionRequest | SegmentationRequest;
export type TaskOutput = ClassificationOutput | DetectionOutput | SegmentationOutput;
/** The output type that answers a given request type. */
export type OutputOf<R extends TaskRequest> = Extract<TaskOutput, { task: R['task'] }>;

/** `outputs` are the graph's outputs in the graph's order. */
export function postprocess(request: TaskRequest, outputs: readonly Float32Array[], graph: Graph): TaskOutput {
  switch (request.task) {
    case 'classification':
      return classify(outputs, request);
    case 'detection':
      return detect(outputs, request, graph);
    case 'segmentation':
      return classMapOutput(outputs[0]!);
  }
}

/** Runs a task: once on the model's graph, except segmentation, whose settings may need other graphs and several runs. */
export async function runTask(request: TaskRequest, input: Float32Array, runs: ModelRuns): Promise<TaskOutput> {
  if (request.task === 'segmentation') return segment(request, input, runs.runVariant);
  return postprocess(request, await runs.run(input), runs.graph);
}
