// The service as a Fastify plugin: tests build it with `inject`, server.ts only listens.
import multipart from '@fastify/multipart';
import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify';
import { drainDeadlineMs, type Config } from './config.js';
import { errorBody } from './http/errors.js';
import { errorHandler } from './http/error-handler.js';
import { bodyBudget } from './http/body-budget.js';
import { requestIdOf, requestLifetime } from './http/lifetime.js';
import { clientErrorHandler, frameworkErrors, refuseExpectation } from './http/protocol-errors.js';
import { securityHeaders } from './http/security-headers.js';
import configPlugin from './http/plugins/config.js';
import drainPlugin from './http/plugins/drain.js';
import managerPlugin from './http/plugins/manager.js';
import metricsPlugin from './http/plugins/metrics.js';
import modelsPlugin from './http/plugins/models.js';
import pipelinePlugin from './http/plugins/pipeline.js';
import poolPlugin from './http/plugins/pool.js';
import { classifyRoute } from './http/routes/classify.js';
import { demoRoutes } from './http/routes/demo.js';
import { detectRoute } from './http/routes/detect.js';
import { embedRoute } from './http/routes/embed.js';
import { docsRoutes } from './http/routes/docs.js';
import { repositoryRoutes } from './http/routes/repository.js';
import { segmentRoute } from './http/routes/segment.js';
import { systemRoutes } from './http/routes/system.js';
import { inferenceProtocolRoutes } from './http/routes/v2/index.js';

export async function servicePlugin(app: FastifyInstance, config: Config): Promise<void> {
  await app.register(configPlugin, { config });
  await app.register(metricsPlugin);
  await app.register(modelsPlugin, { config });
  await app.register(poolPlugin, { config });
  await app.register(managerPlugin, { config });
  await app.register(pipelinePlugin, { config });
  await app.register(drainPlugin);
  await app.register(securityHeaders);
  // Requests in flight when a shutdown starts end within 80% of its drain timeout.
  await app.register(requestLifetime, { defaultMs: config.requestTimeoutMs, maxMs: config.maxRequestTimeoutMs, drainMs: drainDeadlineMs(config) });
  await app.register(bodyBudget, { bodyLimitBytes: config.bodyLimitBytes });

  await app.register(multipart, { limits: { fileSize: config.bodyLimitBytes, files: 2, fields: 4, parts: 6 } });
  // Any non-multipart body is taken as raw image bytes; the format is sniffed from the bytes.
  app.removeContentTypeParser(['application/json', 'text/plain']);
  app.addContentTypeParser('*', { parseAs: 'buffer', bodyLimit: config.bodyLimitBytes }, (_req, body, done) => done(null, body));

  app.setErrorHandler(errorHandler(app));
  app.setNotFoundHandler((request, reply) => {
    app.metrics.errors.inc({ code: 'not_found' });
    return reply.code(404).send(errorBody('not_found', `no route ${request.method} ${request.url}`));
  });

  await app.register(systemRoutes);
  await app.register(classifyRoute);
  await app.register(detectRoute);
  await app.register(segmentRoute);
  await app.register(repositoryRoutes);
  await app.register(embedRoute);
  await app.register(inferenceProtocolRoutes);
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
    // Backstops under each request's own deadline: Node ends a request that outlives every
    // deadline a client may ask for, and a connection whose headers do not arrive in time.
    requestTimeout: config.maxRequestTimeoutMs + 1_000,
    clientErrorHandler,
    frameworkErrors,
    // HTTP/1.1 requires Host; Node would refuse without it in a bare answer of its own.
    http: { requireHostHeader: false },
    ...options,
  });
  app.server.headersTimeout = config.headersTimeoutMs;
  app.server.on('checkExpectation', refuseExpectation);
  await servicePlugin(app, config);
  return app;
}
