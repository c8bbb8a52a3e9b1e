// Configuration comes from the environment only; every variable is documented in the README.
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import { CATALOG } from './catalog/catalog.js';
import { ENGINE_NAMES, type EngineName } from './engine/engine.js';

export interface Config {
  host: string;
  port: number;
  modelDir: string;
  models: string[];
  engine: EngineName;
  poolSize: number;
  engineThreads: number;
  maxQueue: number;
  bodyLimitBytes: number;
  maxImagePixels: number;
  logLevel: string;
}

const DEFAULT_MODEL_DIR = fileURLToPath(new URL('../models/files', import.meta.url));

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

export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const models = (env.MODELS ?? CATALOG.map((e) => e.name).join(',')).split(',').map((m) => m.trim()).filter(Boolean);
  const unknown = models.filter((m) => !CATALOG.some((e) => e.name === m));
  if (models.length === 0 || unknown.length > 0) {
    throw new ConfigError(`MODELS must list models from: ${CATALOG.map((e) => e.name).join(', ')}${unknown.length ? ` (unknown: ${unknown.join(', ')})` : ''}`);
  }
  // Measured on 2 cores (npm run bench): one worker with as many engine threads as cores
  // beat two single-threaded workers on latency and matched them on throughput.
  const cores = availableParallelism();
  return {
    host: env.HOST ?? '0.0.0.0',
    port: integer(env, 'PORT', 8080, 0),
    modelDir: env.MODEL_DIR || DEFAULT_MODEL_DIR,
    models,
    engine: oneOf(env, 'ENGINE', ENGINE_NAMES, 'onnx'),
    poolSize: integer(env, 'POOL_SIZE', 1, 1),
    engineThreads: integer(env, 'ENGINE_THREADS', cores, 1),
    maxQueue: integer(env, 'MAX_QUEUE', 64, 0),
    bodyLimitBytes: integer(env, 'BODY_LIMIT_BYTES', 20 * 1024 * 1024, 1024),
    maxImagePixels: integer(env, 'MAX_IMAGE_PIXELS', 50_000_000, 1),
    logLevel: env.LOG_LEVEL ?? 'info',
  };
}
