// Liveness, readiness, the model list and Prometheus metrics.
import type { FastifyInstance } from 'fastify';
import { ApiError } from '../errors.js';
import { errorSchema } from '../schemas.js';

const statusSchema = { type: 'object', required: ['status'], properties: { status: { type: 'string' } } } as const;

export async function systemRoutes(app: FastifyInstance): Promise<void> {
  const { pool, models, metrics, config } = app;

  app.get('/healthz', { schema: { response: { 200: statusSchema } } }, async () => ({ status: 'ok' }));

  app.get('/readyz', { schema: { response: { 200: statusSchema, 503: errorSchema } } }, async () => {
    if (!pool.ready) throw new ApiError('not_ready', 'models are still loading or the service is shutting down');
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
                required: ['name', 'task', 'description', 'alpha', 'resolution', 'weights', 'classes', 'params', 'multiplyAdds', 'peakActivationBytes'],
                properties: {
                  name: { type: 'string' },
                  task: { type: 'string' },
                  description: { type: 'string' },
                  alpha: { type: 'number' },
                  resolution: { type: 'integer' },
                  weights: { type: 'string' },
                  classes: { type: 'integer' },
                  params: { type: 'integer' },
                  multiplyAdds: { type: 'integer' },
                  peakActivationBytes: { type: 'integer' },
                },
              },
            },
          },
        },
      },
    },
  }, async () => ({
    engine: config.engine,
    models: [...models.values()].map(({ labels, ...info }) => ({ ...info, classes: labels.length })),
  }));

  app.get('/metrics', async (_request, reply) => {
    metrics.queueDepth.set(pool.queueDepth);
    reply.type(metrics.registry.contentType);
    return metrics.registry.metrics();
  });
}
