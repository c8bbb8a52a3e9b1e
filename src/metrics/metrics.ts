// Prometheus metrics in base units. One registry per app so tests can build apps side by side.
// The metrics are fed by the layers that measure; they import none of them.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

const LATENCY_BUCKETS = [0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5];

export interface MetricLabels {
  /** Stages a request can be in when it runs out of time or its client leaves. */
  stages: readonly string[];
  /** Why a worker can be replaced. */
  restartReasons: readonly string[];
  /** The gRPC front-end's methods. */
  grpcMethods: readonly string[];
}

export function createMetrics({ stages, restartReasons, grpcMethods }: MetricLabels) {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const byStage = (name: string, help: string) =>
    new Counter({ name, help: `${help}, by the stage they were in (${stages.join(', ')})`, labelNames: ['stage'] as const, registers: [registry] });
  // prom-client's totals of active handles, requests and resources are gauges named like
  // counters (`_total`), which `promtool check metrics` rejects; the per-type gauges it also
  // exports (nodejs_active_handles{type}, ...) sum to the same numbers.
  for (const name of ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total']) {
    registry.removeSingleMetric(name);
  }
  const metrics = {
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
      help: `Workers replaced after they stopped, by why they stopped (${restartReasons.join(', ')})`,
      labelNames: ['reason'] as const,
      registers: [registry],
    }),
    workerMemory: new Gauge({
      name: 'vision_workers_resident_memory_bytes',
      help: 'Resident memory of the inference worker processes together, as of their last answers (process_resident_memory_bytes is the server process alone)',
      registers: [registry],
    }),
    heldMemory: new Gauge({
      name: 'vision_request_memory_held_bytes',
      help: 'Memory requests in flight hold in a budget: bodies arriving (BODY_MEMORY_MB), images decoded or drawn (PIXEL_MEMORY_MB)',
      labelNames: ['budget'] as const,
      registers: [registry],
    }),
    variantBytes: new Gauge({
      name: 'vision_segmentation_variant_bytes',
      help: 'Memory held by the engines of segmentation settings other than a model\'s own, estimated from the cost model, all workers (VARIANT_MEMORY_MB bounds it)',
      registers: [registry],
    }),
    variantEngines: new Gauge({
      name: 'vision_segmentation_variant_engines',
      help: 'Engines of segmentation settings other than a model\'s own that the workers keep',
      registers: [registry],
    }),
    workersReady: new Gauge({
      name: 'vision_workers_ready',
      help: 'Inference workers loaded and able to take work',
      registers: [registry],
    }),
    modelLoaded: new Gauge({
      name: 'vision_model_loaded',
      help: 'Models loaded and serving, 1 per model and repository version',
      labelNames: ['model', 'version', 'task'] as const,
      registers: [registry],
    }),
    modelParameters: new Gauge({
      name: 'vision_model_parameters',
      help: 'Parameters of each loaded model, head included, counted from its graph description (batch norm folded)',
      labelNames: ['model', 'version'] as const,
      registers: [registry],
    }),
    modelMultiplyAdds: new Gauge({
      name: 'vision_model_multiply_adds',
      help: 'Multiply-adds of one inference of each loaded model (its own setting), head included, counted from its graph description',
      labelNames: ['model', 'version'] as const,
      registers: [registry],
    }),
    grpcHandled: new Counter({
      name: 'grpc_server_handled_total',
      help: 'gRPC calls answered, by method and status code',
      labelNames: ['grpc_method', 'grpc_code'] as const,
      registers: [registry],
    }),
    grpcDuration: new Histogram({
      name: 'grpc_server_handling_seconds',
      help: 'gRPC call duration, from its arrival to its answer, by method',
      labelNames: ['grpc_method'] as const,
      buckets: LATENCY_BUCKETS,
      registers: [registry],
    }),
    deadlineExceeded: byStage('vision_deadline_exceeded_total', 'Requests that ran out of time'),
    clientDisconnects: byStage('vision_client_disconnects_total', 'Requests whose client went away before the answer'),
  };
  // Every series exists from the start, so a rate() over it never begins with a gap.
  for (const stage of stages) {
    metrics.deadlineExceeded.inc({ stage }, 0);
    metrics.clientDisconnects.inc({ stage }, 0);
  }
  for (const reason of restartReasons) metrics.workerRestarts.inc({ reason }, 0);
  for (const method of grpcMethods) {
    metrics.grpcHandled.inc({ grpc_method: method, grpc_code: 'OK' }, 0);
    metrics.grpcDuration.zero({ grpc_method: method });
  }
  return metrics;
}

export type Metrics = ReturnType<typeof createMetrics>;
