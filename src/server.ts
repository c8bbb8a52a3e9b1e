// The process entry: listen (HTTP, and gRPC with GRPC_PORT), and on SIGTERM/SIGINT turn unready,
// stop taking connections and calls, finish what is in flight, close the workers and exit 0; past
// DRAIN_TIMEOUT_MS, cut what is left and exit 1.
import { buildApp } from './app.js';
import { ConfigError, drainDeadlineMs, loadConfig } from './config.js';
import { startGrpcServer } from './grpc/server.js';

async function main(): Promise<void> {
  let config;
  let app;
  try {
    config = loadConfig();
    app = await buildApp(config, { logger: { level: config.logLevel } });
  } catch (err) {
    if (err instanceof ConfigError) {
      console.error(`configuration error: ${err.message}`);
      process.exit(2);
    }
    throw err;
  }
  // glibc keeps freed memory for reuse unless told to return large blocks; npm start and the
  // image tell it to, so released engines give their memory back (docs/engines.md).
  const glibc = (process.report.getReport() as { header?: { glibcVersionRuntime?: string } }).header?.glibcVersionRuntime;
  if (glibc && process.env.MALLOC_MMAP_THRESHOLD_ === undefined) {
    app.log.warn({ glibc }, 'MALLOC_MMAP_THRESHOLD_ is not set: memory of released segmentation engines may stay with the process (use npm start, or see docs/engines.md)');
  }
  const grpc = config.grpcPort === undefined ? undefined : await startGrpcServer({
    host: config.host,
    port: config.grpcPort,
    pipeline: app.pipeline,
    models: app.models,
    metrics: app.metrics,
    log: app.log,
    ready: () => !app.draining && app.pool.ready,
    defaultTimeoutMs: config.requestTimeoutMs,
    maxTimeoutMs: config.maxRequestTimeoutMs,
    maxMessageBytes: config.bodyLimitBytes,
  });
  if (grpc) app.log.info({ port: grpc.port }, `gRPC server listening at ${config.host}:${grpc.port}`);
  let grpcDrained = Promise.resolve();
  // onClose hooks run last registered first: this one before the pool's, which must still serve
  // the gRPC calls being drained.
  app.addHook('onClose', () => grpcDrained);
  let stopping = false;
  app.modelsLoaded.then(
    () => app.log.info({ models: config.models, engine: config.engine, workers: config.poolSize }, 'models loaded; ready'),
    (err: Error) => {
      // A shutdown during start-up stops the workers still loading: that is not a failure.
      if (stopping) return;
      app.log.fatal({ err }, 'models failed to load');
      process.exit(1);
    },
  );
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    app.log.info({ signal, drainTimeoutMs: config.drainTimeoutMs }, 'shutting down: unready, listener closed, draining in-flight requests');
    // Unready at once, before close() gets round to its hooks.
    app.draining = true;
    let cut = false;
    // gRPC drains beside HTTP: calls in flight end within the same 80% of the drain timeout.
    grpcDrained = grpc?.drain(drainDeadlineMs(config)) ?? grpcDrained;
    const drainTimer = setTimeout(() => {
      cut = true;
      app.log.error({ drainTimeoutMs: config.drainTimeoutMs }, 'drain timeout: closing the connections still open');
      app.server.closeAllConnections();
      grpc?.cut();
      // If closing still hangs (it should not), do not outlive the orchestrator's patience.
      setTimeout(() => process.exit(1), 2000).unref();
    }, config.drainTimeoutMs);
    await app.close();
    clearTimeout(drainTimer);
    app.log.info({ cut }, 'stopped');
    process.exit(cut ? 1 : 0);
  };
  process.on('SIGTERM', () => void stop('SIGTERM'));
  process.on('SIGINT', () => void stop('SIGINT'));
  await app.listen({ host: config.host, port: config.port });
}

void main();
