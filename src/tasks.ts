// The task contract between the main thread and the inference workers: what a request asks of a
// model and the compact answer a worker sends back (small enough to cross threads cheaply).
import type { Strategy } from './model/deeplab.js';
import type { OutputStride } from './model/mobilenet-v2.js';

export type Task = 'classification' | 'detection' | 'segmentation';

/** One model version as the threads name it to each other: both read the same config file. */
export interface ModelRef {
  name: string;
  version: number;
  configFile: string;
}

export interface ClassificationRequest {
  task: 'classification';
  topk: number;
}

export interface ScoredClass {
  index: number;
  score: number;
}

export interface ClassificationOutput {
  task: 'classification';
  /** The k most probable classes, most probable first. */
  classes: ScoredClass[];
}

export interface DetectionRequest {
  task: 'detection';
  minScore: number;
  maxDetections: number;
  iouThreshold: number;
  /** Class logit indices to keep (1..classes-1); all when absent. */
  classIds?: number[];
}

/** Corners in [0, 1] of the whole (unpadded) image. */
export interface NormalizedBox {
  ymin: number;
  xmin: number;
  ymax: number;
  xmax: number;
}

export interface Detection {
  classId: number;
  score: number;
  box: NormalizedBox;
}

export interface DetectionOutput {
  task: 'detection';
  detections: Detection[];
}

export interface SegmentationRequest {
  task: 'segmentation';
  outputStride: OutputStride;
  strategy: Strategy;
}

export interface SegmentationOutput {
  task: 'segmentation';
  /** Class id of each pixel of the model's height x width output, row-major. */
  classMap: Uint8Array;
  height: number;
  width: number;
}

export type TaskRequest = ClassificationRequest | DetectionRequest | SegmentationRequest;
export type TaskOutput = ClassificationOutput | DetectionOutput | SegmentationOutput;
/** The output type that answers a given request type. */
export type OutputOf<R extends TaskRequest> = Extract<TaskOutput, { task: R['task'] }>;
