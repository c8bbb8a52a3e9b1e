// Requests that never reach a route: bytes Node's HTTP parser refuses, URLs Fastify cannot
// decode, expectations the server does not meet. They get the same answers as any other
// refusal: `{error: {code, message}}`, an X-Request-Id, the security headers.
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { ERROR_CODES, errorBody, type ErrorCode } from './errors.js';
import { REQUEST_ID_HEADER } from './lifetime.js';
import { SECURITY_HEADERS } from './security-headers.js';

/** What a parse error of Node's (llhttp's codes) says to the client. */
function describeParseError(code: string | undefined): { code: ErrorCode; message: string } {
  switch (code) {
    case 'HPE_HEADER_OVERFLOW':
      return { code: 'invalid_request', message: 'the request line and headers exceed the 16 KB the server reads' };
    case 'HPE_UNEXPECTED_CONTENT_LENGTH':
    case 'HPE_INVALID_TRANSFER_ENCODING':
      return { code: 'invalid_request', message: 'a request cannot carry both Content-Length and Transfer-Encoding' };
    case 'HPE_INVALID_CHUNK_SIZE':
      return { code: 'invalid_request', message: 'a chunk size of the chunked body is not valid' };
    case 'ERR_HTTP_REQUEST_TIMEOUT':
      return { code: 'deadline_exceeded', message: 'the request did not arrive within the time the server waits for it' };
    default:
      return { code: 'invalid_request', message: `the HTTP request is malformed${code ? ` (${code})` : ''}` };
  }
}

function rawAnswer(code: ErrorCode, message: string): string {
  const body = JSON.stringify(errorBody(code, message));
  const headers = {
    'content-type': 'application/json; charset=utf-8',
    'content-length': String(Buffer.byteLength(body)),
    [REQUEST_ID_HEADER]: randomUUID(),
    connection: 'close',
    ...SECURITY_HEADERS,
  };
  return `HTTP/1.1 ${ERROR_CODES[code]} ${code}\r\n${Object.entries(headers).map(([k, v]) => `${k}: ${v}`).join('\r\n')}\r\n\r\n${body}`;
}

/**
 * Fastify's clientErrorHandler: the socket's bytes cannot be parsed. When they follow a complete
 * request still being answered (its Content-Length said less than the client sent), that answer
 * is finished first, so that it is not lost. When the connection ended in the middle of a
 * request (the client left), there is no one to answer: the connection goes, and its request
 * sees the client leave. Otherwise the bytes are refused at once.
 */
export function clientErrorHandler(err: NodeJS.ErrnoException, socket: Socket): void {
  if (err.code === 'ECONNRESET' || socket.destroyed) return;
  const answer = () => {
    const { code, message } = describeParseError(err.code);
    if (socket.writable) socket.end(rawAnswer(code, message));
    else socket.destroy();
  };
  const inProgress = (socket as Socket & { _httpMessage?: (ServerResponse & { req?: IncomingMessage }) | null })._httpMessage;
  if (inProgress && !inProgress.writableFinished && inProgress.req?.complete) inProgress.once('finish', answer);
  else if (err.code === 'HPE_INVALID_EOF_STATE') socket.destroy(err);
  else answer();
}

/** Fastify's frameworkErrors: a URL it cannot decode, a parameter too long. */
export function frameworkErrors(error: FastifyError, request: FastifyRequest, reply: FastifyReply): void {
  const message = error.code === 'FST_ERR_BAD_URL' ? 'the URL is not valid: a percent-encoding in it does not decode' : error.message;
  void reply.code(400).headers({ [REQUEST_ID_HEADER]: request.id, ...SECURITY_HEADERS }).send(errorBody('invalid_request', message));
}

/** Node's checkExpectation: an Expect header other than 100-continue. */
export function refuseExpectation(request: IncomingMessage, response: ServerResponse): void {
  const body = JSON.stringify(errorBody('invalid_request', `Expect: ${request.headers.expect} is not supported; only 100-continue is`));
  response.writeHead(400, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(body),
    [REQUEST_ID_HEADER]: randomUUID(),
    connection: 'close',
    ...SECURITY_HEADERS,
  });
  response.end(body);
}
