// The one error handler of every route: the answer to an error of any layer (apiErrorOf), logged,
// counted, and sent so that it reaches the client (see docs/reliability.md, Refusals). Routes of
// another protocol (the Open Inference Protocol's) give the body its own form; status and code
// stay the same.
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { ApiError, apiErrorOf, ERROR_CODES, errorBody, type ErrorCode } from './errors.js';
import { discardBody } from './image-body.js';

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

export type ErrorBodyOf = (code: ErrorCode, message: string) => unknown;

export function errorHandler(app: FastifyInstance, bodyOf: ErrorBodyOf = errorBody) {
  return (error: unknown, request: FastifyRequest, reply: FastifyReply) => {
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
    return reply.code(ERROR_CODES[code]).headers(answer.headers).send(bodyOf(code, answer.message));
  };
}
