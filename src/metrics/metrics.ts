// Prometheus metrics in base units. One registry per app so tests can build apps side by side.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

const LATENCY_BUCKETS = [0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5];

export function createMetrics() {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  return {
    registry,
    requestDuration: new Histogram({
      name: 'http_request_duration_seconds',
      help: 'HTTP request duration by route and status code',
      labelNames: ['method', 'route', 'status_code'] as const,
      buckets: LATENCY_BUCKETS,
      registers: [registry],
    }),
    inferenceDuration: new Histogram({
      name: 'vision_inference_duration_seconds',
      help: 'Time a worker spent running the model for one image',
      labelNames: ['model', 'engine'] as const,
      buckets: LATENCY_BUCKETS,
      registers: [registry],
    }),
    queueWait: new Histogram({
      name: 'vision_queue_wait_seconds',
      help: 'Time a request waited for a free worker',
      buckets: LATENCY_BUCKETS,
      registers: [registry],
    }),
    multiplyAdds: new Counter({
      name: 'vision_multiply_adds_total',
      help: 'Multiply-adds executed, counted from the graph description of each model',
      labelNames: ['model', 'task'] as const,
      registers: [registry],
    }),
    images: new Counter({
      name: 'vision_images_processed_total',
      help: 'Images run through a model',
      labelNames: ['model', 'task'] as const,
      registers: [registry],
    }),
    queueDepth: new Gauge({
      name: 'vision_queue_depth',
      help: 'Requests waiting for a worker',
      registers: [registry],
    }),
    errors: new Counter({
      name: 'vision_errors_total',
      help: 'Error responses by error code',
      labelNames: ['code'] as const,
      registers: [registry],
    }),
    workerRestarts: new Counter({
      name: 'vision_worker_restarts_total',
      help: 'Workers replaced after they stopped',
      registers: [registry],
    }),
  };
}

export type Metrics = ReturnType<typeof createMetrics>;
