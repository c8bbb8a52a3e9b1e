// A model version's config file (config.yaml, config.yml or config.json in the version folder):
// its schema, and reading it with errors that name the file, the field and the valid values.
// docs/model-repository.md documents every field.
import { readFileSync } from 'node:fs';
import { Ajv, type ErrorObject } from 'ajv';
import { parse as parseYaml } from 'yaml';
import { DEEPLAB_HEADS } from '../model/deeplab.js';
import { OUTPUT_STRIDES, WIDTH_MULTIPLIERS } from '../model/mobilenet-v2.js';
import { CROP_POLICIES, RESIZE_KERNELS } from '../decode/preprocess.js';
import { CHANNEL_ORDERS } from '../weights/common.js';
import { PRECISIONS, type Precision } from '../engine/engine.js';

export const TASKS = ['classification', 'detection', 'segmentation'] as const;
export const WEIGHT_FORMATS = ['tflite', 'tfjs-layers', 'tfjs-graph', 'onnx'] as const;
export type WeightFormat = (typeof WEIGHT_FORMATS)[number];
/** Chosen by the measurements in docs/engines.md, Precision. */
export const DEFAULT_PRECISION: Precision = 'float32';
/** The tasks int8 is built for; segmentation's measurements are in docs/engines.md, Precision. */
export const INT8_TASKS: readonly (typeof TASKS)[number][] = ['classification', 'detection'];

/** A number for all three channels, or one per channel. */
type PerChannel = number | [number, number, number];

export interface ModelConfig {
  task: (typeof TASKS)[number];
  format: WeightFormat;
  /** The weight file, or the folder of a TensorFlow.js model; relative to the version folder, or `@models/...` for the installed model files. */
  weights: string;
  labels: string;
  /** The class id of the label file's first line (1 where the background class has no line). */
  labelOffset?: number;
  description?: string;
  /** Loaded when the service starts (MODELS unset); default true. */
  loadAtStartup?: boolean;
  /** Default DEFAULT_PRECISION; the PRECISION variable overrides it. */
  precision?: Precision;
  /**
   * The normalization, value = scale x (pixel - zeroPoint) or value = (pixel / 255 - mean) / std,
   * only where the weights do not say; and how the photo becomes the square input: the crop (the
   * central `fraction` of each side, or none) and the resize kernel.
   */
  preprocessing?: {
    scale?: PerChannel;
    zeroPoint?: PerChannel;
    mean?: PerChannel;
    std?: PerChannel;
    channels?: (typeof CHANNEL_ORDERS)[number];
    crop?: (typeof CROP_POLICIES)[number];
    fraction?: number;
    kernel?: (typeof RESIZE_KERNELS)[number];
  };
  /** What the weights cannot say; for a classifier every field is read from the weights and only checked. */
  architecture?: {
    alpha?: (typeof WIDTH_MULTIPLIERS)[number];
    resolution?: number;
    classes?: number;
    outputStride?: (typeof OUTPUT_STRIDES)[number];
    head?: (typeof DEEPLAB_HEADS)[number];
    predictor?: 'separable' | 'regular';
  };
}

const perChannel = (exclusiveMinimum?: number) => ({
  oneOf: [
    { type: 'number', ...(exclusiveMinimum === undefined ? {} : { exclusiveMinimum }) },
    { type: 'array', items: { type: 'number', ...(exclusiveMinimum === undefined ? {} : { exclusiveMinimum }) }, minItems: 3, maxItems: 3 },
  ],
});

export const MODEL_CONFIG_SCHEMA = {
  type: 'object',
  additionalProperties: false,
  required: ['task', 'format', 'weights', 'labels'],
  properties: {
    task: { enum: [...TASKS] },
    format: { enum: [...WEIGHT_FORMATS] },
    weights: { type: 'string', minLength: 1 },
    labels: { type: 'string', minLength: 1 },
    labelOffset: { type: 'integer', minimum: 0 },
    description: { type: 'string' },
    loadAtStartup: { type: 'boolean' },
    precision: { enum: [...PRECISIONS] },
    preprocessing: {
      type: 'object',
      additionalProperties: false,
      properties: {
        scale: perChannel(0),
        zeroPoint: perChannel(),
        mean: perChannel(),
        std: perChannel(0),
        channels: { enum: [...CHANNEL_ORDERS] },
        crop: { enum: [...CROP_POLICIES] },
        fraction: { type: 'number', exclusiveMinimum: 0, maximum: 1 },
        kernel: { enum: [...RESIZE_KERNELS] },
      },
    },
    architecture: {
      type: 'object',
      additionalProperties: false,
      properties: {
        alpha: { enum: [...WIDTH_MULTIPLIERS] },
        resolution: { type: 'integer', minimum: 32 },
        classes: { type: 'integer', minimum: 1 },
        outputStride: { enum: [...OUTPUT_STRIDES] },
        head: { enum: [...DEEPLAB_HEADS] },
        predictor: { enum: ['separable', 'regular'] },
      },
    },
  },
} as const;

export class ModelConfigError extends Error {}

const ajv = new Ajv({ allErrors: true });
const validate = ajv.compile<ModelConfig>(MODEL_CONFIG_SCHEMA);

/** One schema error as a reader can act on it: the field, what is wrong, the valid values. */
function describeError(error: ErrorObject, config: unknown): string {
  const field = error.instancePath ? error.instancePath.slice(1).replaceAll('/', '.') : '(top level)';
  const found = error.instancePath.split('/').slice(1).reduce<unknown>((v, key) => (v as Record<string, unknown> | undefined)?.[key], config);
  switch (error.keyword) {
    case 'enum':
      return `${field} is ${JSON.stringify(found)}; valid values: ${(error.params.allowedValues as unknown[]).join(', ')}`;
    case 'additionalProperties': {
      const known = Object.keys(schemaAt(error.schemaPath));
      return `${field === '(top level)' ? '' : `${field}.`}${error.params.additionalProperty as string} is not a field; valid fields: ${known.join(', ')}`;
    }
    case 'required':
      return `${field === '(top level)' ? '' : `${field}.`}${error.params.missingProperty as string} is required`;
    default:
      return `${field} ${error.message ?? 'is invalid'} (found ${JSON.stringify(found)})`;
  }
}

/** The `properties` of the schema object an additionalProperties error points into. */
function schemaAt(schemaPath: string): Record<string, unknown> {
  const tokens = schemaPath.replace(/^#\//, '').split('/').slice(0, -1);
  const node = tokens.reduce<unknown>((s, key) => (s as Record<string, unknown>)[key], MODEL_CONFIG_SCHEMA) as { properties: Record<string, unknown> };
  return node.properties;
}

/** A .json file as JSON, any other as YAML; a failure names the file. */
export function readYamlOrJson(file: string): unknown {
  try {
    const text = readFileSync(file, 'utf8');
    return file.endsWith('.json') ? JSON.parse(text) : parseYaml(text);
  } catch (err) {
    throw new ModelConfigError(`${file}: cannot be read: ${(err as Error).message}`);
  }
}

/** Parses and validates a config file; every problem names the file. */
export function readModelConfig(file: string): ModelConfig {
  const parsed = readYamlOrJson(file);
  if (!validate(parsed)) {
    // oneOf's branches repeat what the type errors say; the type errors are the useful part.
    const errors = (validate.errors ?? []).filter((e) => e.keyword !== 'oneOf');
    throw new ModelConfigError(`${file}: ${[...new Set(errors.map((e) => describeError(e, parsed)))].join('; ')}`);
  }
  const { preprocessing: p } = parsed;
  if (p && (p.mean !== undefined || p.std !== undefined) && (p.scale !== undefined || p.zeroPoint !== undefined)) {
    throw new ModelConfigError(`${file}: preprocessing gives scale/zeroPoint or mean/std, not both`);
  }
  if (p?.fraction !== undefined && p.crop !== 'central') {
    throw new ModelConfigError(`${file}: preprocessing.fraction is the share of each side a central crop keeps; it needs crop: central`);
  }
  if (parsed.precision !== undefined) checkPrecision(parsed.task, parsed.precision, file);
  if (parsed.task === 'segmentation' && (p?.crop ?? 'none') !== 'none') {
    throw new ModelConfigError(`${file}: preprocessing.crop is '${p?.crop}'; a segmentation model's mask covers the whole photo, so its crop must be none`);
  }
  return parsed;
}

/** A precision the task has: int8 is built for INT8_TASKS only. `where` names the setting that asks. */
export function checkPrecision(task: (typeof TASKS)[number], precision: Precision, where: string): void {
  if (precision === 'int8' && !INT8_TASKS.includes(task)) {
    throw new ModelConfigError(`${where}: precision is 'int8', which ${task} models do not have; valid precisions for ${task}: float32`);
  }
}
