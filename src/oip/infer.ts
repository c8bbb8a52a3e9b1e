// An Open Inference Protocol inference request, whatever transport brought it: its one input (a
// batch of encoded images, or of tensors at the model's input size) becomes one task per image
// in the shared pipeline, each with its own room in the pool, and the tasks' outputs become the
// requested output tensors. Parameters a request may set: the classification extension's
// `classification: k` and `normalize` (embedding) on outputs; `minScore`, `maxDetections`,
// `iouThreshold` (detection) and `outputStride`, `strategy` (segmentation) on the request. Other
// parameters (the transports' own, like `binary_data`) are left to whoever reads them.
import type { ImagePipeline, RunContext, TaskResult } from '../pipeline/image-pipeline.js';
import type { ModelInfo } from '../pipeline/models.js';
import type { Reservation } from '../pool/pool.js';
import { STRATEGIES, type Strategy } from '../model/deeplab.js';
import { OUTPUT_STRIDES, type OutputStride } from '../model/mobilenet-v2.js';
import {
  DETECTION_DEFAULTS, MAX_DETECTIONS,
  type ClassificationOutput, type DetectionOutput, type EmbeddingOutput, type SegmentationOutput, type TaskInput, type TaskRequest,
} from '../tasks.js';
import { IMAGE_INPUT, OUTPUTS, TENSOR_INPUT, modelMetadata } from './metadata.js';
import { ProtocolError, type Params, type ParamValue, type Tensor } from './tensors.js';

export interface InputTensor extends Tensor {
  parameters: Params;
}

export interface RequestedOutput {
  name: string;
  parameters: Params;
}

export interface InferRequest {
  id?: string;
  parameters: Params;
  inputs: InputTensor[];
  /** Absent or empty: the model's default outputs. */
  outputs: RequestedOutput[];
}

export interface InferResponse {
  model_name: string;
  model_version: string;
  id?: string;
  /** `multiply_adds`: of the whole batch, counted from the graph description as the task API's. */
  parameters: Params;
  /** In the order requested; each with the parameters its request gave it. */
  outputs: { tensor: Tensor; requested: Params }[];
}

/** One image of the batch, as the pipeline takes it. */
type Item = { bytes: Uint8Array } | { input: TaskInput };

/** The batch items of the request's one input, checked against the model's input metadata. */
function itemsOf(model: ModelInfo, inputs: readonly InputTensor[]): Item[] {
  const names = [TENSOR_INPUT, IMAGE_INPUT];
  if (inputs.length !== 1) throw new ProtocolError(`send exactly one input, '${TENSOR_INPUT}' or '${IMAGE_INPUT}'; got ${inputs.length}`);
  const [input] = inputs as [InputTensor];
  const what = `input '${input.name}'`;
  const { shape, datatype, data } = input;
  if (input.name === IMAGE_INPUT) {
    if (datatype !== 'BYTES' || shape.length !== 1 || shape[0]! < 1) {
      throw new ProtocolError(`${what} must be BYTES of shape [N], N >= 1 encoded images; got ${datatype} [${shape.join(', ')}]`);
    }
    return (data as Uint8Array[]).map((bytes) => ({ bytes }));
  }
  if (input.name !== TENSOR_INPUT) throw new ProtocolError(`unknown input '${input.name}'; ${model.name} takes ${names.join(' or ')}`);
  const side = model.resolution;
  if (datatype !== 'FP32' && datatype !== 'UINT8') throw new ProtocolError(`${what} must be FP32 (normalized) or UINT8 (RGB pixels); got ${datatype}`);
  if (shape.length !== 4 || shape[0]! < 1 || shape[1] !== side || shape[2] !== side || shape[3] !== 3) {
    throw new ProtocolError(`${what} must have shape [N, ${side}, ${side}, 3] (NHWC at ${model.name}'s resolution), N >= 1; got [${shape.join(', ')}]`);
  }
  const size = side * side * 3;
  return Array.from({ length: shape[0]! }, (_, i): Item => {
    // A copy: a view would carry its whole batch to the worker.
    const slice = (data as Float32Array | Uint8Array).slice(i * size, (i + 1) * size);
    return { input: slice instanceof Float32Array ? { kind: 'normalized', values: slice } : { kind: 'pixels', pixels: slice } };
  });
}

/** A parameter of a type and range, or its default when absent. */
function param<T extends ParamValue>(params: Params, name: string, what: string, check: (v: ParamValue) => v is T, expected: string, fallback: T): T;
function param<T extends ParamValue>(params: Params, name: string, what: string, check: (v: ParamValue) => v is T, expected: string): T | undefined;
function param<T extends ParamValue>(params: Params, name: string, what: string, check: (v: ParamValue) => v is T, expected: string, fallback?: T): T | undefined {
  const value = params[name];
  if (value === undefined) return fallback;
  if (!check(value)) throw new ProtocolError(`${what}: parameter '${name}' must be ${expected}; got ${JSON.stringify(value)}`);
  return value;
}
const between = (lo: number, hi: number, integer = false) => (v: ParamValue): v is number =>
  typeof v === 'number' && v >= lo && v <= hi && (!integer || Number.isInteger(v));
const isBoolean = (v: ParamValue): v is boolean => typeof v === 'boolean';
const oneOf = <T extends string | number>(allowed: readonly T[]) => (v: ParamValue): v is T => (allowed as readonly ParamValue[]).includes(v);

/** What a batch's outputs become, given each image's task output. */
interface Plan {
  request: TaskRequest;
  outputs(results: TaskResult<TaskRequest>['output'][], batch: number): Map<string, Tensor>;
}

/** The requested output names, checked against the model's; the defaults when none are asked. */
function wantedOutputs(model: ModelInfo, requested: readonly RequestedOutput[], defaults: readonly string[]): Map<string, Params> {
  if (requested.length === 0) return new Map(defaults.map((name) => [name, {}]));
  const known = modelMetadata(model).outputs.map((o) => o.name);
  const wanted = new Map<string, Params>();
  for (const { name, parameters } of requested) {
    if (!known.includes(name)) throw new ProtocolError(`unknown output '${name}'; ${model.name} has ${known.join(', ')}`);
    if (wanted.has(name)) throw new ProtocolError(`output '${name}' is requested twice`);
    if (parameters.classification !== undefined && name !== OUTPUTS.classification.probabilities) {
      throw new ProtocolError(`output '${name}' holds no class scores: the classification parameter is for a classifier's '${OUTPUTS.classification.probabilities}'`);
    }
    wanted.set(name, parameters);
  }
  return wanted;
}

function classificationPlan(model: ModelInfo, wanted: Map<string, Params>): Plan {
  const names = OUTPUTS.classification;
  const probabilities = wanted.get(names.probabilities);
  const embedding = wanted.get(names.embedding);
  const top = probabilities && param(probabilities, 'classification', `output '${names.probabilities}'`, between(1, model.classes, true), `an integer 1..${model.classes}`);
  const normalize = embedding && param(embedding, 'normalize', `output '${names.embedding}'`, isBoolean, 'a boolean', false);
  const embeddingOf = (output: ClassificationOutput | EmbeddingOutput) => (output.task === 'embedding' ? output.features : output.embedding!);
  return {
    // The embedding alone costs only the backbone; with the classes, both come from one run.
    request: probabilities === undefined
      ? { task: 'embedding', normalize: normalize! }
      : { task: 'classification', topk: top ?? model.classes, embedding: embedding ? { normalize: normalize! } : undefined },
    outputs(results, batch) {
      const outputs = results as (ClassificationOutput | EmbeddingOutput)[];
      const tensors = new Map<string, Tensor>();
      if (probabilities) {
        const classified = outputs as ClassificationOutput[];
        if (top !== undefined) {
          // The classification extension: "score:index:label", best first.
          const data = classified.flatMap((o) => o.classes.map(({ index, score }) => Buffer.from(`${score}:${index}:${model.labels.of(index)}`)));
          tensors.set(names.probabilities, { name: names.probabilities, datatype: 'BYTES', shape: [batch, top], data });
        } else {
          const data = new Float32Array(batch * model.classes);
          classified.forEach((o, i) => o.classes.forEach(({ index, score }) => (data[i * model.classes + index] = score)));
          tensors.set(names.probabilities, { name: names.probabilities, datatype: 'FP32', shape: [batch, model.classes], data });
        }
      }
      if (embedding) {
        const dimensions = model.embedding!.dimensions;
        const data = new Float32Array(batch * dimensions);
        outputs.forEach((o, i) => data.set(embeddingOf(o), i * dimensions));
        tensors.set(names.embedding, { name: names.embedding, datatype: 'FP32', shape: [batch, dimensions], data });
      }
      return tensors;
    },
  };
}

function detectionPlan(params: Params): Plan {
  const names = OUTPUTS.detection;
  const what = 'detection';
  const request: TaskRequest = {
    task: 'detection',
    minScore: param(params, 'minScore', what, between(0, 1), 'a number 0..1', DETECTION_DEFAULTS.minScore),
    maxDetections: param(params, 'maxDetections', what, between(1, MAX_DETECTIONS, true), `an integer 1..${MAX_DETECTIONS}`, DETECTION_DEFAULTS.maxDetections),
    iouThreshold: param(params, 'iouThreshold', what, between(0, 1), 'a number 0..1', DETECTION_DEFAULTS.iouThreshold),
  };
  return {
    request,
    outputs(results, batch) {
      const detections = (results as DetectionOutput[]).map((o) => o.detections);
      // Padded with zeros to the most any image has; num_detections says how many are real.
      const most = Math.max(0, ...detections.map((d) => d.length));
      const boxes = new Float32Array(batch * most * 4);
      const scores = new Float32Array(batch * most);
      const classes = new Int32Array(batch * most);
      const clamp = (v: number) => Math.min(1, Math.max(0, v));
      detections.forEach((list, i) => list.forEach(({ box, score, classId }, j) => {
        boxes.set([box.ymin, box.xmin, box.ymax, box.xmax].map(clamp), 4 * (i * most + j));
        scores[i * most + j] = score;
        classes[i * most + j] = classId;
      }));
      return new Map<string, Tensor>([
        [names.boxes, { name: names.boxes, datatype: 'FP32', shape: [batch, most, 4], data: boxes }],
        [names.scores, { name: names.scores, datatype: 'FP32', shape: [batch, most], data: scores }],
        [names.classes, { name: names.classes, datatype: 'INT32', shape: [batch, most], data: classes }],
        [names.count, { name: names.count, datatype: 'INT32', shape: [batch], data: Int32Array.from(detections, (d) => d.length) }],
      ]);
    },
  };
}

function segmentationPlan(model: ModelInfo, params: Params): Plan {
  const name = OUTPUTS.segmentation.classMap;
  const what = 'segmentation';
  const request: TaskRequest = {
    task: 'segmentation',
    outputStride: param(params, 'outputStride', what, oneOf<OutputStride>(OUTPUT_STRIDES), OUTPUT_STRIDES.join(', '), model.segmentation!.outputStride),
    strategy: param(params, 'strategy', what, oneOf<Strategy>(STRATEGIES), STRATEGIES.join(', '), 'single'),
  };
  return {
    request,
    outputs(results, batch) {
      const maps = results as SegmentationOutput[];
      const { height, width } = maps[0]!;
      const data = new Uint8Array(batch * height * width);
      maps.forEach((m, i) => data.set(m.classMap, i * height * width));
      return new Map([[name, { name, datatype: 'UINT8', shape: [batch, height, width], data }]]);
    },
  };
}

function planFor(model: ModelInfo, request: InferRequest): { plan: Plan; wanted: Map<string, Params> } {
  const all = modelMetadata(model).outputs.map((o) => o.name);
  switch (model.task) {
    case 'classification': {
      // The embedding is computed anyway but sent only when asked: 1280 floats per image.
      const wanted = wantedOutputs(model, request.outputs, [OUTPUTS.classification.probabilities]);
      return { plan: classificationPlan(model, wanted), wanted };
    }
    case 'detection':
      return { plan: detectionPlan(request.parameters), wanted: wantedOutputs(model, request.outputs, all) };
    case 'segmentation':
      return { plan: segmentationPlan(model, request.parameters), wanted: wantedOutputs(model, request.outputs, all) };
  }
}

/**
 * Room in the pool for every image: the request's own for the first, one more for each other,
 * taken at once so that a batch larger than the room left is refused before anything is decoded.
 */
function reserveBatch(pipeline: ImagePipeline, first: Reservation, size: number): Reservation[] {
  const reservations = [first];
  try {
    while (reservations.length < size) reservations.push(pipeline.admit());
  } catch (err) {
    for (const r of reservations) r.release();
    throw err;
  }
  return reservations;
}

/**
 * Runs a request on `model`; `context.reservation` is the room its transport took on arrival.
 * The answer waits for every image: a failed one fails the request (the first failure in batch
 * order), and the others still end in the pool, so the queue's bound holds.
 */
export async function infer(pipeline: ImagePipeline, model: ModelInfo, request: InferRequest, context: RunContext): Promise<InferResponse> {
  const items = itemsOf(model, request.inputs);
  const { plan, wanted } = planFor(model, request);
  const reservations = reserveBatch(pipeline, context.reservation, items.length);
  const settled = await Promise.allSettled(items.map((item, i) => {
    const itemContext = { ...context, reservation: reservations[i]! };
    return 'bytes' in item ? pipeline.run(model, item.bytes, plan.request, itemContext) : pipeline.runTensor(model, item.input, plan.request, itemContext);
  }));
  // Taken by the pool once queued; an image that failed before that gives its room back.
  for (const r of reservations) r.release();
  const failed = settled.find((s) => s.status === 'rejected');
  if (failed) throw failed.reason;
  const results = settled.map((s) => (s as PromiseFulfilledResult<TaskResult<TaskRequest>>).value);
  const tensors = plan.outputs(results.map((r) => r.output), items.length);
  return {
    model_name: model.name,
    model_version: String(model.version),
    ...(request.id !== undefined && request.id !== '' ? { id: request.id } : {}),
    parameters: { multiply_adds: results.reduce((sum, r) => sum + r.multiplyAdds, 0) },
    outputs: [...wanted].map(([name, requested]) => ({ tensor: tensors.get(name)!, requested })),
  };
}
