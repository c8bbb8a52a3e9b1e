// Liveness, readiness, the model list and Prometheus metrics.
import type { FastifyInstance } from 'fastify';
import { PRECISIONS } from '../../engine/engine.js';
import { CROP_POLICIES, RESIZE_KERNELS } from '../../decode/preprocess.js';
import { ApiError } from '../errors.js';
import { errorSchema } from '../schemas.js';

const statusSchema = { type: 'object', required: ['status'], properties: { status: { type: 'string' } } } as const;

export async function systemRoutes(app: FastifyInstance): Promise<void> {
  const { pool, models, metrics, config } = app;

  app.get('/healthz', { schema: { response: { 200: statusSchema } } }, async () => ({ status: 'ok' }));

  app.get('/readyz', { schema: { response: { 200: statusSchema, 503: errorSchema } } }, async () => {
    // Saturation does not make the service unready: see docs/reliability.md. A full queue is
    // refused per request with 503 queue_full and Retry-After instead.
    if (app.draining) throw new ApiError('not_ready', 'the service is shutting down');
    if (!pool.ready) throw new ApiError('not_ready', 'no inference worker is ready (models loading, or every worker restarting)');
    return { status: 'ready' };
  });

  app.get('/v1/models', {
    schema: {
      response: {
        200: {
          type: 'object',
          required: ['engine', 'models'],
          properties: {
            engine: { type: 'string' },
            models: {
              type: 'array',
              items: {
                type: 'object',
                required: ['name', 'version', 'task', 'format', 'description', 'alpha', 'resolution', 'preprocess', 'weights', 'classes', 'params', 'multiplyAdds', 'peakActivationBytes', 'memoryBytes', 'workers', 'split', 'precision'],
                properties: {
                  name: { type: 'string' },
                  version: { type: 'integer', minimum: 1 },
                  task: { type: 'string' },
                  format: { type: 'string' },
                  description: { type: 'string' },
                  alpha: { type: 'number' },
                  resolution: { type: 'integer' },
                  preprocess: {
                    type: 'object',
                    required: ['crop', 'kernel'],
                    properties: { crop: { type: 'string', enum: [...CROP_POLICIES] }, fraction: { type: 'number' }, kernel: { type: 'string', enum: [...RESIZE_KERNELS] } },
                  },
                  weights: { type: 'string' },
                  classes: { type: 'integer' },
                  params: { type: 'integer' },
                  multiplyAdds: { type: 'integer' },
                  peakActivationBytes: { type: 'integer' },
                  memoryBytes: { type: 'integer' },
                  workers: { type: 'integer' },
                  split: { type: 'integer', minimum: 1 },
                  precision: { type: 'string', enum: [...PRECISIONS] },
                },
              },
            },
          },
        },
      },
    },
  }, async () => ({
    engine: config.engine,
    models: models.models.map((m) => ({
      name: m.name,
      version: m.version,
      task: m.task,
      format: m.format,
      description: m.description,
      alpha: m.alpha,
      resolution: m.resolution,
      preprocess: m.preprocess,
      weights: m.weights,
      // The classes a client can get by name.
      classes: m.labels.count,
      params: m.params,
      multiplyAdds: m.multiplyAdds,
      peakActivationBytes: m.peakActivationBytes,
      memoryBytes: m.memoryBytes,
      workers: pool.placement.filter((names) => names.includes(m.name)).length,
      split: m.split,
      precision: m.precision,
    })),
  }));

  app.get('/metrics', async (_request, reply) => {
    metrics.queueDepth.set(pool.queueDepth);
    metrics.workersReady.set(pool.readyWorkers);
    const workers = pool.memory;
    metrics.workerMemory.set(workers.residentBytes);
    metrics.variantBytes.set(workers.variantBytes);
    metrics.variantEngines.set(workers.variantEngines);
    const held = app.pipeline.memoryHeld;
    metrics.heldMemory.set({ budget: 'bodies' }, held.bodies);
    metrics.heldMemory.set({ budget: 'pixels' }, held.pixels);
    // What is loaded now: series of unloaded models and replaced versions go.
    for (const gauge of [metrics.modelLoaded, metrics.modelParameters, metrics.modelMultiplyAdds]) gauge.reset();
    for (const m of models.models) {
      const labels = { model: m.name, version: String(m.version) };
      metrics.modelLoaded.set({ ...labels, task: m.task }, 1);
      metrics.modelParameters.set(labels, m.params);
      metrics.modelMultiplyAdds.set(labels, m.multiplyAdds);
    }
    reply.type(metrics.registry.contentType);
    return metrics.registry.metrics();
  });
}
