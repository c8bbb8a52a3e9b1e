// Configuration comes from the environment only; every variable is documented in the README.
import { availableParallelism } from 'node:os';
import { DEFAULT_MODEL_DIR, DEFAULT_REPOSITORY, indexRepository } from './catalog/catalog.js';
import { INT8_TASKS, ModelConfigError } from './catalog/config.js';
import { servedPrecision } from './catalog/catalog.js';
import type { Preprocess } from './decode/preprocess.js';
import { ENGINE_NAMES, PRECISIONS, TFJS_BACKENDS, type EngineName, type Precision, type TfjsBackendChoice } from './engine/engine.js';

export interface Config {
  host: string;
  port: number;
  /** The Open Inference Protocol's gRPC port; undefined: no gRPC server. */
  grpcPort: number | undefined;
  /** The model repository (MODEL_REPOSITORY): a folder per model, a numbered folder per version. */
  repository: string;
  /** Where the installed model files are: what a config's `@models/` paths name. */
  modelDir: string;
  /** The repository models loaded at start. */
  models: string[];
  /** Seconds between looks at the repository for new versions of the loaded models; 0 = never. */
  pollSeconds: number;
  /** The management API's bearer token; unset, the API is off. */
  adminToken?: string;
  /** Memory each worker may give its models (weights and activations); unset, every worker loads every model. */
  workerMemoryBytes?: number;
  engine: EngineName;
  /** ENGINE=tfjs only: tfjs-node ('tensorflow') or wasm; 'auto' takes tfjs-node when it loads. */
  tfjsBackend: TfjsBackendChoice;
  /** Memory-efficient inference: each model's split factor (src/model/split.ts); absent = 1, off. */
  split: Record<string, number>;
  /** PRECISION: each model's precision where it overrides its config's (docs/engines.md, Precision). */
  precision: Record<string, Precision>;
  /** Per model, preprocessing other than its config's (no variable sets it: `npm run eval` compares settings with it). */
  preprocess?: Record<string, Preprocess>;
  poolSize: number;
  engineThreads: number;
  /**
   * Memory the engines of segmentation settings other than a model's own (another output stride,
   * multi-scale) may hold together, shared evenly by the workers; least recently used go first.
   */
  variantMemoryBytes: number;
  maxQueue: number;
  bodyLimitBytes: number;
  /** Bytes of request bodies all requests may hold together while they arrive. */
  bodyMemoryBytes: number;
  /** Bytes of images all requests may hold together while they are decoded or drawn at full size. */
  pixelMemoryBytes: number;
  maxImagePixels: number;
  /** scans x width x height of a progressive JPEG: the decoding work it asks for. */
  maxJpegScanPixels: number;
  /** Most time one decode (or one drawing of an answer) may take. */
  decodeTimeoutMs: number;
  /** Time a client has to send a request's headers (slow clients hold a connection otherwise). */
  headersTimeoutMs: number;
  /** Smallest image side accepted; smaller images carry too little to classify. */
  minImageSide: number;
  /** Default per-request deadline, from arrival to response. */
  requestTimeoutMs: number;
  /** Largest deadline a client may ask for with X-Request-Timeout-Ms. */
  maxRequestTimeoutMs: number;
  /** Watchdog: a worker that holds one task longer than this is replaced. */
  workerTimeoutMs: number;
  /** On SIGTERM/SIGINT, how long in-flight requests may take before connections are cut. */
  drainTimeoutMs: number;
  logLevel: string;
}

/** What in-flight requests get of DRAIN_TIMEOUT_MS on shutdown: each ends, answered, before the drain does. */
export const drainDeadlineMs = (config: Pick<Config, 'drainTimeoutMs'>): number => Math.floor(0.8 * config.drainTimeoutMs);

const MIB = 1024 * 1024;

export class ConfigError extends Error {}

function integer(env: NodeJS.ProcessEnv, name: string, fallback: number, min: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < min) throw new ConfigError(`${name}=${raw} must be an integer >= ${min}`);
  return value;
}

function oneOf<T extends string>(env: NodeJS.ProcessEnv, name: string, allowed: readonly T[], fallback: T): T {
  const raw = env[name] ?? fallback;
  if (!(allowed as readonly string[]).includes(raw)) throw new ConfigError(`${name}=${raw} must be one of ${allowed.join(', ')}`);
  return raw as T;
}

/**
 * A per-model setting: one value for every model of `all` ('4'), or model=value pairs for models
 * of `models` ('mobilenet_v2_1.0_224=4,ssdlite_mobilenet_v2_coco=2').
 */
function perModel<T>(name: string, raw: string | undefined, models: readonly string[], all: readonly string[], parse: (text: string) => T): Record<string, T> {
  if (raw === undefined || raw.trim() === '') return {};
  if (!raw.includes('=')) return Object.fromEntries(all.map((m) => [m, parse(raw.trim())]));
  const entries = raw.split(',').map((pair) => pair.split('=').map((part) => part.trim()));
  for (const [model, value] of entries) {
    if (!model || value === undefined || !models.includes(model)) {
      throw new ConfigError(`${name}: '${model ?? ''}=${value ?? ''}' must name a model of MODELS (${models.join(', ')}) and a value`);
    }
  }
  return Object.fromEntries(entries.map(([model, value]) => [model!, parse(value!)]));
}

function splitFactor(text: string): number {
  const value = Number(text);
  if (!Number.isInteger(value) || value < 1) throw new ConfigError(`MEMORY_SPLIT: split factor '${text}' must be an integer >= 1`);
  return value;
}

function precision(text: string): Precision {
  if (!(PRECISIONS as readonly string[]).includes(text)) throw new ConfigError(`PRECISION: '${text}' must be one of ${PRECISIONS.join(', ')}`);
  return text as Precision;
}

export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const repository = env.MODEL_REPOSITORY || DEFAULT_REPOSITORY;
  const modelDir = env.MODEL_DIR || DEFAULT_MODEL_DIR;
  let index;
  try {
    index = indexRepository(repository, modelDir);
  } catch (err) {
    if (err instanceof ModelConfigError) throw new ConfigError(`MODEL_REPOSITORY: ${err.message}`);
    throw err;
  }
  const defaults = index.filter((m) => m.entry?.loadByDefault !== false && m.entry).map((m) => m.name);
  const models = (env.MODELS || defaults.join(',')).split(',').map((m) => m.trim()).filter(Boolean);
  const unknown = models.filter((m) => !index.some((e) => e.name === m));
  if (models.length === 0 || unknown.length > 0) {
    throw new ConfigError(`MODELS must list models from: ${index.map((e) => e.name).join(', ')}${unknown.length ? ` (unknown: ${unknown.join(', ')})` : ''}`);
  }
  const broken = index.filter((m) => models.includes(m.name) && !m.entry);
  if (broken.length) throw new ConfigError(`MODELS: ${broken.map((m) => `${m.name}: ${m.problem}`).join('; ')}`);
  const engine = oneOf(env, 'ENGINE', ENGINE_NAMES, 'onnx');
  // One precision for all applies to the models whose task has it; a pair names a model that must.
  const int8Capable = index.filter((m) => models.includes(m.name) && INT8_TASKS.includes(m.entry!.task)).map((m) => m.name);
  const precisions = perModel('PRECISION', env.PRECISION, models, env.PRECISION?.trim() === 'int8' ? int8Capable : models, precision);
  for (const m of index.filter((e) => models.includes(e.name))) {
    try {
      servedPrecision(m.entry!, { engine, precision: precisions[m.name] });
    } catch (err) {
      if (err instanceof ModelConfigError) throw new ConfigError(`PRECISION: ${err.message}`);
      throw err;
    }
  }
  // Measured on 2 cores (npm run bench): one single-threaded worker per core matched one
  // two-threaded worker on latency at concurrency 1 and gave 15-25% more throughput under load,
  // with lower p99 when other processes compete for the cores.
  const cores = availableParallelism();
  const maxRequestTimeoutMs = integer(env, 'MAX_REQUEST_TIMEOUT_MS', 60_000, 1);
  const requestTimeoutMs = integer(env, 'REQUEST_TIMEOUT_MS', 10_000, 1);
  if (requestTimeoutMs > maxRequestTimeoutMs) {
    throw new ConfigError(`REQUEST_TIMEOUT_MS=${requestTimeoutMs} must not exceed MAX_REQUEST_TIMEOUT_MS=${maxRequestTimeoutMs}`);
  }
  const bodyLimitBytes = integer(env, 'BODY_LIMIT_BYTES', 20 * MIB, 1024);
  const bodyMemoryBytes = integer(env, 'BODY_MEMORY_MB', 512, 1) * MIB;
  if (bodyMemoryBytes < bodyLimitBytes) {
    throw new ConfigError(`BODY_MEMORY_MB=${bodyMemoryBytes / MIB} must hold at least one body of BODY_LIMIT_BYTES=${bodyLimitBytes}`);
  }
  const maxImagePixels = integer(env, 'MAX_IMAGE_PIXELS', 50_000_000, 1);
  return {
    host: env.HOST ?? '0.0.0.0',
    port: integer(env, 'PORT', 8080, 0),
    grpcPort: env.GRPC_PORT === undefined || env.GRPC_PORT === '' ? undefined : integer(env, 'GRPC_PORT', 0, 0),
    repository,
    modelDir,
    models,
    pollSeconds: integer(env, 'MODEL_REPOSITORY_POLL_S', 0, 0),
    adminToken: env.ADMIN_TOKEN || undefined,
    workerMemoryBytes: env.WORKER_MEMORY_MB ? integer(env, 'WORKER_MEMORY_MB', 0, 1) * MIB : undefined,
    engine,
    tfjsBackend: oneOf(env, 'TFJS_BACKEND', TFJS_BACKENDS, 'auto'),
    split: perModel('MEMORY_SPLIT', env.MEMORY_SPLIT, models, models, splitFactor),
    precision: precisions,
    poolSize: integer(env, 'POOL_SIZE', cores, 1),
    engineThreads: integer(env, 'ENGINE_THREADS', 1, 1),
    variantMemoryBytes: integer(env, 'VARIANT_MEMORY_MB', 512, 0) * MIB,
    maxQueue: integer(env, 'MAX_QUEUE', 64, 0),
    bodyLimitBytes,
    bodyMemoryBytes,
    pixelMemoryBytes: integer(env, 'PIXEL_MEMORY_MB', 768, 1) * MIB,
    maxImagePixels,
    // 64 passes over the largest image accepted: under a second of decoding here (docs/reliability.md).
    maxJpegScanPixels: integer(env, 'MAX_JPEG_SCAN_PIXELS', 64 * maxImagePixels, 1),
    decodeTimeoutMs: integer(env, 'DECODE_TIMEOUT_MS', 5_000, 1_000),
    headersTimeoutMs: integer(env, 'HEADERS_TIMEOUT_MS', 10_000, 100),
    minImageSide: integer(env, 'MIN_IMAGE_SIDE', 32, 1),
    requestTimeoutMs,
    maxRequestTimeoutMs,
    // As long as the longest deadline a client may ask for: a first MF segmentation at output
    // stride 8 legitimately takes seconds, and killing it would fail it for nothing.
    workerTimeoutMs: integer(env, 'WORKER_TIMEOUT_MS', 60_000, 100),
    drainTimeoutMs: integer(env, 'DRAIN_TIMEOUT_MS', 25_000, 0),
    logLevel: env.LOG_LEVEL ?? 'info',
  };
}
