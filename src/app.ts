// The service as a Fastify plugin: tests build it with `inject`, server.ts only listens.
import multipart from '@fastify/multipart';
import Fastify, { type FastifyError, type FastifyInstance, type FastifyRequest, type FastifyServerOptions } from 'fastify';
import type { Config } from './config.js';
import { ApiError, apiErrorOf, ERROR_CODES, errorBody, type ErrorCode } from './http/errors.js';
import { bodyBudget } from './http/body-budget.js';
import { discardBody } from './http/image-body.js';
import { requestIdOf, requestLifetime } from './http/lifetime.js';
import { clientErrorHandler, frameworkErrors, refuseExpectation } from './http/protocol-errors.js';
import { securityHeaders } from './http/security-headers.js';
import configPlugin from './http/plugins/config.js';
import drainPlugin from './http/plugins/drain.js';
import metricsPlugin from './http/plugins/metrics.js';
import modelsPlugin from './http/plugins/models.js';
import pipelinePlugin from './http/plugins/pipeline.js';
import poolPlugin from './http/plugins/pool.js';
import { classifyRoute } from './http/routes/classify.js';
import { demoRoutes } from './http/routes/demo.js';
import { detectRoute } from './http/routes/detect.js';
import { embedRoute } from './http/routes/embed.js';
import { docsRoutes } from './http/routes/docs.js';
import { segmentRoute } from './http/routes/segment.js';
import { systemRoutes } from './http/routes/system.js';

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

/** What to answer: a deadline or disconnect that came first overrides whatever failed after it. */
function answerTo(request: FastifyRequest, error: unknown): ApiError {
  const cause = request.lifetime?.endedBy ?? error;
  const known = apiErrorOf(cause);
  if (known) return known;
  const fastify = error as FastifyError;
  const code = codeOfFastifyError(fastify);
  return new ApiError(code, code === 'internal_error' ? 'internal error; see the service log' : fastify.message);
}

export async function servicePlugin(app: FastifyInstance, config: Config): Promise<void> {
  await app.register(configPlugin, { config });
  await app.register(metricsPlugin);
  await app.register(poolPlugin, { config });
  await app.register(modelsPlugin, { config });
  await app.register(pipelinePlugin, { config });
  await app.register(drainPlugin);
  await app.register(securityHeaders);
  // Requests in flight when a shutdown starts end within 80% of its drain timeout.
  await app.register(requestLifetime, { defaultMs: config.requestTimeoutMs, maxMs: config.maxRequestTimeoutMs, drainMs: Math.floor(0.8 * config.drainTimeoutMs) });
  await app.register(bodyBudget, { bodyLimitBytes: config.bodyLimitBytes });

  await app.register(multipart, { limits: { fileSize: config.bodyLimitBytes, files: 2, fields: 4, parts: 6 } });
  // Any non-multipart body is taken as raw image bytes; the format is sniffed from the bytes.
  app.removeContentTypeParser(['application/json', 'text/plain']);
  app.addContentTypeParser('*', { parseAs: 'buffer', bodyLimit: config.bodyLimitBytes }, (_req, body, done) => done(null, body));

  app.setErrorHandler((error: unknown, request, reply) => {
    const answer = answerTo(request, error);
    const { code } = answer;
    // A request that ran out of time or lost its client says where; others are where the request was.
    const stage = request.lifetime?.endedBy?.stage ?? request.lifetime?.stage;
    if (code === 'internal_error') request.log.error({ err: error }, 'unhandled error');
    else if (ERROR_CODES[code] >= 500 || code === 'cancelled') request.log.warn({ code, stage }, answer.message);
    app.metrics.errors.inc({ code });
    if (code === 'deadline_exceeded') app.metrics.deadlineExceeded.inc({ stage });
    if (code === 'cancelled') app.metrics.clientDisconnects.inc({ stage });
    // Refused before the whole body arrived. A request that ran out of time or lost its client
    // is closed with its answer. Any other is answered now and the rest of its body read and
    // discarded afterwards, so the connection stays open and the answer reaches clients that
    // write their whole body before they read; one whose body does not end in time is closed
    // (destroying the message closes its socket).
    if (!request.raw.complete) {
      if (code === 'deadline_exceeded' || code === 'cancelled') reply.header('connection', 'close');
      else reply.raw.once('finish', () => void discardBody(request.raw).then((drained) => drained || request.raw.destroy()));
    }
    // One code, one status: the status always comes from the code's definition.
    return reply.code(ERROR_CODES[code]).headers(answer.headers).send(errorBody(code, answer.message));
  });
  app.setNotFoundHandler((request, reply) => {
    app.metrics.errors.inc({ code: 'not_found' });
    return reply.code(404).send(errorBody('not_found', `no route ${request.method} ${request.url}`));
  });

  await app.register(systemRoutes);
  await app.register(classifyRoute);
  await app.register(detectRoute);
  await app.register(segmentRoute);
  await app.register(embedRoute);
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
