// What the protocol says about the server and each model: names, versions, platforms, and every
// model's input and output tensors with their datatypes and shapes (-1: a size the request sets).
import { readFileSync } from 'node:fs';
import type { ModelInfo, ModelRegistry } from '../pipeline/models.js';
import { UnknownModelError } from '../pipeline/models.js';
import { EXTENSIONS, REST_EXTENSIONS } from './extensions.js';
import type { Datatype } from './tensors.js';

export const SERVER_NAME = 'mobilenet-serving';

/** The methods of the protocol's gRPC service, inference.GRPCInferenceService. */
export const GRPC_METHODS = ['ServerLive', 'ServerReady', 'ModelReady', 'ServerMetadata', 'ModelMetadata', 'ModelInfer'] as const;
export type GrpcMethod = (typeof GRPC_METHODS)[number];
const SERVER_VERSION = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;

export interface TensorMetadata {
  name: string;
  datatype: Datatype;
  shape: number[];
}

export interface ModelMetadata {
  name: string;
  versions: string[];
  platform: string;
  inputs: TensorMetadata[];
  outputs: TensorMetadata[];
}

/** The request's one input: an encoded image per batch item, or the model's input itself. */
export const IMAGE_INPUT = 'image';
export const TENSOR_INPUT = 'input';

export const OUTPUTS = {
  classification: { probabilities: 'probabilities', embedding: 'embedding' },
  detection: { boxes: 'detection_boxes', scores: 'detection_scores', classes: 'detection_classes', count: 'num_detections' },
  segmentation: { classMap: 'class_map' },
} as const;

export function serverMetadata(transport: 'rest' | 'grpc') {
  return { name: SERVER_NAME, version: SERVER_VERSION, extensions: [...(transport === 'rest' ? REST_EXTENSIONS : EXTENSIONS)] };
}

/** Platform names are "<framework>_<format>"; the graph is ours either way, run by the engine named. */
const PLATFORMS = { onnx: 'onnxruntime_onnx', tfjs: 'tensorflowjs_graph' } as const;

function outputsOf(model: ModelInfo): TensorMetadata[] {
  const { resolution: side } = model;
  switch (model.task) {
    case 'classification': {
      const names = OUTPUTS.classification;
      return [
        { name: names.probabilities, datatype: 'FP32', shape: [-1, model.classes] },
        { name: names.embedding, datatype: 'FP32', shape: [-1, model.embedding!.dimensions] },
      ];
    }
    case 'detection': {
      const names = OUTPUTS.detection;
      // The second dimension is the most detections of any image of the batch; the rest is padding.
      return [
        { name: names.boxes, datatype: 'FP32', shape: [-1, -1, 4] },
        { name: names.scores, datatype: 'FP32', shape: [-1, -1] },
        { name: names.classes, datatype: 'INT32', shape: [-1, -1] },
        { name: names.count, datatype: 'INT32', shape: [-1] },
      ];
    }
    case 'segmentation':
      return [{ name: OUTPUTS.segmentation.classMap, datatype: 'UINT8', shape: [-1, side, side] }];
  }
}

export function modelMetadata(model: ModelInfo): ModelMetadata {
  const side = model.resolution;
  return {
    name: model.name,
    // The repository version loaded: the one this server serves (others are the management API's).
    versions: [String(model.version)],
    platform: PLATFORMS[model.engine],
    inputs: [
      // FP32 already normalized as the weights expect; UINT8 RGB pixels are taken too.
      { name: TENSOR_INPUT, datatype: 'FP32', shape: [-1, side, side, 3] },
      { name: IMAGE_INPUT, datatype: 'BYTES', shape: [-1] },
    ],
    outputs: outputsOf(model),
  };
}

/** The model a protocol URL or message names; a version, if given, must be the one loaded. */
export function resolveModel(models: ModelRegistry, name: string, version?: string): ModelInfo {
  const model = models.named(name);
  if (version !== undefined && version !== '' && version !== String(model.version)) {
    throw new UnknownModelError(`model '${name}' has no version '${version}' loaded; the loaded version is '${model.version}'`);
  }
  return model;
}
