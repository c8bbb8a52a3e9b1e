// `app.pool`: the inference workers, started with the app (`app.modelsLoaded` settles when every
// worker has loaded and warmed up its models) and closed after the last request has finished.
import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import { ConfigError, type Config } from '../../config.js';
import { refOf } from '../../pipeline/models.js';
import { placeModels, PlacementError } from '../../pipeline/placement.js';
import { WorkerPool, type RestartReason } from '../../pool/pool.js';

declare module 'fastify' {
  interface FastifyInstance {
    pool: WorkerPool;
    /** Settles when every worker has loaded and warmed up its models. */
    modelsLoaded: Promise<void>;
  }
}

export default fp(async (app: FastifyInstance, { config }: { config: Config }) => {
  let assignment: string[][];
  try {
    assignment = placeModels(app.models.models.map((m) => ({ name: m.name, bytes: m.memoryBytes })), config.poolSize, config.workerMemoryBytes);
  } catch (err) {
    // A budget the models of MODELS cannot fit is a configuration the service cannot start with.
    if (err instanceof PlacementError) throw new ConfigError(err.message);
    throw err;
  }
  const pool = new WorkerPool({
    size: config.poolSize,
    assignment,
    maxQueue: config.maxQueue,
    taskTimeoutMs: config.workerTimeoutMs,
    worker: {
      modelDir: config.modelDir,
      models: config.models,
      refs: Object.fromEntries(app.models.models.map((m) => [m.name, refOf(m)])),
      engine: config.engine,
      threads: config.engineThreads,
      tfjsBackend: config.tfjsBackend,
      split: config.split,
      precision: config.precision,
      // Each worker keeps its own engines: the budget is shared out.
      variantBudgetBytes: Math.floor(config.variantMemoryBytes / config.poolSize),
    },
  });
  pool.on('restart', (reason: RestartReason) => {
    app.metrics.workerRestarts.inc({ reason });
    app.log.warn({ reason, restarts: pool.restarts }, 'inference worker replaced');
  });
  pool.on('workerError', (err: Error) => app.log.error({ err }, 'worker error'));
  app.decorate('pool', pool);
  app.decorate('modelsLoaded', pool.start());
  // Fastify closes the listener and waits for in-flight requests before onClose hooks run.
  app.addHook('onClose', () => pool.close());
}, { name: 'pool', dependencies: ['metrics', 'models'] });
