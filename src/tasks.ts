// The task contract between the main thread and the inference workers: what a request asks of a
// model and the compact answer a worker sends back (small enough to cross threads cheaply).
import type { Strategy } from './model/deeplab.js';
import type { OutputStride } from './model/mobilenet-v2.js';

export type Task = 'classification' | 'detection' | 'segmentation';
/** What a request may ask of a model: its own task, or (of a classifier) the embedding. */
export type TaskKind = Task | 'embedding';

/**
 * A model's input for one image, the model's resolution x resolution x 3 (RGB, row-major, HWC):
 * bytes as decoding gives them (the worker normalizes them as the weights expect), or float32
 * values a client already normalized so (Open Inference Protocol tensors).
 */
export type TaskInput = { kind: 'pixels'; pixels: Uint8Array } | { kind: 'normalized'; values: Float32Array };

/** One model version as the threads name it to each other: both read the same config file. */
export interface ModelRef {
  name: string;
  version: number;
  configFile: string;
}

export interface ClassificationRequest {
  task: 'classification';
  topk: number;
  /** Also return the embedding the same run computed (the Open Inference Protocol asks for both at once). */
  embedding?: { normalize: boolean };
}

export interface ScoredClass {
  index: number;
  score: number;
}

export interface ClassificationOutput {
  task: 'classification';
  /** The k most probable classes, most probable first. */
  classes: ScoredClass[];
  /** When the request asked for it. */
  embedding?: Float32Array;
}

export interface EmbeddingRequest {
  task: 'embedding';
  /** Scale the vector to unit length (L2), so a dot product is the cosine similarity. */
  normalize: boolean;
}

export interface EmbeddingOutput {
  task: 'embedding';
  /** The backbone's globally pooled features, one per channel. */
  features: Float32Array;
}

/** Most detections one image may return, and the defaults of a detection request. */
export const MAX_DETECTIONS = 100;
export const DETECTION_DEFAULTS = { minScore: 0.5, maxDetections: 20, iouThreshold: 0.6 } as const;

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

export type TaskRequest = ClassificationRequest | EmbeddingRequest | DetectionRequest | SegmentationRequest;
export type TaskOutput = ClassificationOutput | EmbeddingOutput | DetectionOutput | SegmentationOutput;
/** The output type that answers a given request type. */
export type OutputOf<R extends TaskRequest> = Extract<TaskOutput, { task: R['task'] }>;
