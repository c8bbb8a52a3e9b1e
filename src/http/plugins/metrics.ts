// `app.metrics`: the Prometheus registry and metrics, fed by the layers that measure, and the
// duration of every HTTP request.
import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import { createMetrics, type Metrics } from '../../metrics/metrics.js';
import { GRPC_METHODS } from '../../oip/metadata.js';
import { REQUEST_STAGES } from '../../pipeline/lifetime.js';
import { RESTART_REASONS } from '../../pool/pool.js';

declare module 'fastify' {
  interface FastifyInstance {
    metrics: Metrics;
  }
}

export default fp(async (app: FastifyInstance) => {
  const metrics = createMetrics({ stages: REQUEST_STAGES, restartReasons: RESTART_REASONS, grpcMethods: GRPC_METHODS });
  app.decorate('metrics', metrics);
  app.addHook('onResponse', async (request, reply) => {
    metrics.requestDuration.observe(
      { method: request.method, route: request.routeOptions.url ?? 'unmatched', status_code: String(reply.statusCode) },
      reply.elapsedTime / 1000,
    );
  });
}, { name: 'metrics' });
