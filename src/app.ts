// The service as a Fastify plugin: tests build it with `inject`, server.ts only listens.
import multipart from '@fastify/multipart';
import Fastify, { type FastifyError, type FastifyInstance, type FastifyServerOptions } from 'fastify';
import { CATALOG, describeModel, type ModelInfo } from './catalog/catalog.js';
import type { Config } from './config.js';
import { ApiError, ERROR_CODES, errorBody, type ErrorCode } from './http/errors.js';
import { effectiveError, installRequestLifetime, requestIdOf } from './http/lifetime.js';
import { classifyRoute } from './http/routes/classify.js';
import { demoRoutes } from './http/routes/demo.js';
import { detectRoute } from './http/routes/detect.js';
import { docsRoutes } from './http/routes/docs.js';
import { segmentRoute } from './http/routes/segment.js';
import { systemRoutes } from './http/routes/system.js';
import { createMetrics, type Metrics } from './metrics/metrics.js';
import { WorkerPool, type RestartReason } from './pool/pool.js';

declare module 'fastify' {
  interface FastifyInstance {
    config: Config;
    pool: WorkerPool;
    models: Map<string, ModelInfo>;
    metrics: Metrics;
    /** Settles when every worker has loaded and warmed up its models. */
    modelsLoaded: Promise<void>;
    /** Set when close() begins (SIGTERM): readiness turns false while in-flight requests finish. */
    draining: boolean;
  }
}

/** Fastify's own errors, translated to our codes. */
function codeOfFastifyError(error: FastifyError): ErrorCode {
  if (error.validation) return 'invalid_request';
  switch (error.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
    case 'FST_REQ_FILE_TOO_LARGE':
    case 'FST_PARTS_LIMIT':
    case 'FST_FILES_LIMIT':
    case 'FST_FIELDS_LIMIT':
      return 'body_too_large';
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return 'unsupported_media_type';
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return 'empty_body';
    case 'FST_INVALID_MULTIPART_CONTENT_TYPE':
    case 'FST_PROTO_VIOLATION':
      return 'invalid_multipart';
    default:
      return error.statusCode && error.statusCode >= 400 && error.statusCode < 500 ? 'invalid_request' : 'internal_error';
  }
}

export async function servicePlugin(app: FastifyInstance, config: Config): Promise<void> {
  const metrics = createMetrics();
  const pool = new WorkerPool({
    size: config.poolSize,
    maxQueue: config.maxQueue,
    taskTimeoutMs: config.workerTimeoutMs,
    worker: { modelDir: config.modelDir, models: config.models, engine: config.engine, threads: config.engineThreads, tfjsBackend: config.tfjsBackend, split: config.split },
  });
  pool.on('restart', (reason: RestartReason) => {
    metrics.workerRestarts.inc({ reason });
    app.log.warn({ reason, restarts: pool.restarts }, 'inference worker replaced');
  });
  pool.on('workerError', (err: Error) => app.log.error({ err }, 'worker error'));
  const models = new Map(CATALOG.filter((e) => config.models.includes(e.name)).map((e) => [e.name, describeModel(e, config.modelDir, { engine: config.engine, split: config.split[e.name] })]));

  app.decorate('config', config);
  app.decorate('metrics', metrics);
  app.decorate('models', models);
  app.decorate('pool', pool);
  app.decorate('modelsLoaded', pool.start());
  app.decorate('draining', false);
  app.addHook('preClose', async () => {
    app.draining = true;
  });
  // A keep-alive connection whose request was in flight when the drain began would otherwise
  // stay open until its keep-alive timeout and hold the drain up.
  app.addHook('onSend', async (_request, reply) => {
    if (app.draining) reply.header('connection', 'close');
  });
  // Fastify closes the listener and waits for in-flight requests before onClose hooks run.
  app.addHook('onClose', () => pool.close());
  installRequestLifetime(app, { defaultMs: config.requestTimeoutMs, maxMs: config.maxRequestTimeoutMs });

  await app.register(multipart, { limits: { fileSize: config.bodyLimitBytes, files: 2, fields: 4, parts: 6 } });
  // Any non-multipart body is taken as raw image bytes; the format is sniffed from the bytes.
  app.removeContentTypeParser(['application/json', 'text/plain']);
  app.addContentTypeParser('*', { parseAs: 'buffer', bodyLimit: config.bodyLimitBytes }, (_req, body, done) => done(null, body));

  app.addHook('onResponse', async (request, reply) => {
    metrics.requestDuration.observe(
      { method: request.method, route: request.routeOptions.url ?? 'unmatched', status_code: String(reply.statusCode) },
      reply.elapsedTime / 1000,
    );
  });

  app.setErrorHandler((error: FastifyError | ApiError, request, reply) => {
    const { apiError, stage } = effectiveError(request, error);
    const code = apiError?.code ?? codeOfFastifyError(error as FastifyError);
    // One code, one status: the status always comes from the code's definition.
    const status = ERROR_CODES[code];
    if (code === 'internal_error') request.log.error({ err: error }, 'unhandled error');
    else if (status >= 500 || code === 'cancelled') request.log.warn({ code, stage }, apiError?.message ?? error.message);
    metrics.errors.inc({ code });
    if (code === 'deadline_exceeded') metrics.deadlineExceeded.inc({ stage });
    if (code === 'cancelled') metrics.clientDisconnects.inc({ stage });
    // Refused before the whole body arrived: close the connection rather than read the rest.
    if (!request.raw.complete) reply.header('connection', 'close');
    const message = code === 'internal_error' ? 'internal error; see the service log' : (apiError ?? error).message;
    return reply.code(status).headers(apiError?.headers ?? {}).send(errorBody(code, message));
  });
  app.setNotFoundHandler((request, reply) => {
    metrics.errors.inc({ code: 'not_found' });
    return reply.code(404).send(errorBody('not_found', `no route ${request.method} ${request.url}`));
  });

  await app.register(systemRoutes);
  await app.register(classifyRoute);
  await app.register(detectRoute);
  await app.register(segmentRoute);
  // Pages for people (API docs, demo); outside the API contract.
  await app.register(docsRoutes);
  await app.register(demoRoutes);
}

export async function buildApp(config: Config, options: FastifyServerOptions = {}): Promise<FastifyInstance> {
  const app = Fastify({
    bodyLimit: config.bodyLimitBytes,
    // A misspelt parameter is refused rather than silently ignored.
    ajv: { customOptions: { removeAdditional: false } },
    genReqId: requestIdOf,
    // While draining, requests on open connections are still served (with Connection: close)
    // instead of Fastify's own 503, whose body is not our error format.
    return503OnClosing: false,
    ...options,
  });
  await servicePlugin(app, config);
  return app;
}
