// Each HTTP request's lifetime (src/pipeline/lifetime.ts): its deadline from REQUEST_TIMEOUT_MS
// or the client's X-Request-Timeout-Ms (up to MAX_REQUEST_TIMEOUT_MS), and the end of its
// connection as the client leaving. Also the request id: taken from X-Request-Id or generated,
// and echoed.
import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { PassThrough } from 'node:stream';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import { RequestLifetime } from '../pipeline/lifetime.js';
import { ApiError } from './errors.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** Set by the onRequest hook; null only if that hook refused the request. */
    lifetime: RequestLifetime | null;
  }
}

export const TIMEOUT_HEADER = 'x-request-timeout-ms';
export const REQUEST_ID_HEADER = 'x-request-id';

const REQUEST_ID = /^[\w.:@/+=-]{1,128}$/;

/** Fastify's genReqId: the caller's id when it is a sane token (it goes into logs), else a UUID. */
export function requestIdOf(raw: IncomingMessage): string {
  const given = raw.headers[REQUEST_ID_HEADER];
  return typeof given === 'string' && REQUEST_ID.test(given) ? given : randomUUID();
}

function timeoutOf(request: FastifyRequest, defaultMs: number, maxMs: number): number {
  const raw = request.headers[TIMEOUT_HEADER];
  if (raw === undefined) return defaultMs;
  const text = String(raw).trim();
  if (!/^\d+$/.test(text) || Number(text) < 1) {
    throw new ApiError('invalid_request', `${TIMEOUT_HEADER} must be a whole number of milliseconds, at least 1; got '${String(raw)}'`);
  }
  // Longer than allowed is not an error: the client gets the most the service gives.
  return Math.min(Number(text), maxMs);
}

export const hasBody = (request: FastifyRequest) =>
  Number(request.headers['content-length'] ?? 0) > 0 || request.headers['transfer-encoding'] !== undefined;

/** The one body the image routes read in the handler (@fastify/multipart); every other is read before it, raw. */
export const isFormData = (request: FastifyRequest) => /^multipart\/form-data\b/i.test(request.headers['content-type'] ?? '');

/**
 * `request.lifetime` for every route, present or future (the hooks sit on the root instance).
 * When the server starts closing, every request's deadline comes forward to `drainMs`, so that
 * all of them end, answered, before the drain timeout.
 */
export const requestLifetime = fp(async (app: FastifyInstance, options: { defaultMs: number; maxMs: number; drainMs: number }) => {
  app.decorateRequest('lifetime', null);
  const live = new Set<RequestLifetime>();
  app.addHook('preClose', async () => {
    for (const lifetime of live) lifetime.shorten(options.drainMs, `the shutdown's drain of ${options.drainMs} ms`);
  });

  app.addHook('onRequest', async (request, reply) => {
    reply.header(REQUEST_ID_HEADER, request.id);
    if (request.raw.httpVersion === '1.1' && request.headers.host === undefined) {
      throw new ApiError('invalid_request', 'an HTTP/1.1 request must carry a Host header');
    }
    // The header is for the image routes (all POST): a probe or a scrape is not refused over it.
    const timeoutMs = request.method === 'POST' ? timeoutOf(request, options.defaultMs, options.maxMs) : options.defaultMs;
    const lifetime = new RequestLifetime(timeoutMs);
    request.lifetime = lifetime;
    live.add(lifetime);
    reply.raw.once('close', () => live.delete(lifetime));
    // 'close' before the response was ended is a client that went away before its answer.
    reply.raw.once('close', () => (reply.raw.writableEnded ? lifetime.end() : lifetime.clientLeft()));
    // The deadline holds to the last byte: an answer still being written when it passes is cut.
    lifetime.signal.addEventListener('abort', () => {
      if (reply.raw.headersSent && !reply.raw.writableEnded) reply.raw.destroy();
    }, { once: true });
  });

  app.addHook('onSend', async (request) => {
    if (request.lifetime) request.lifetime.stage = 'response';
  });

  // A raw body (any type but a form, multipart/mixed included) is read by Fastify before the
  // handler runs; pass it through a stream that fails when the request is aborted, so a slow
  // upload meets the deadline too. Forms are read inside the handler, which watches the signal.
  app.addHook('preParsing', async (request, _reply, payload) => {
    const { lifetime } = request;
    if (!lifetime || !hasBody(request) || isFormData(request)) return payload;
    const guarded = new PassThrough();
    // Fastify stops listening once it has refused the body (413); the abort must not go unhandled.
    guarded.on('error', () => {});
    const stop = () => {
      payload.unpipe(guarded);
      guarded.destroy(lifetime.signal.reason as Error);
    };
    lifetime.signal.addEventListener('abort', stop, { once: true });
    guarded.once('close', () => lifetime.signal.removeEventListener('abort', stop));
    payload.pipe(guarded);
    return guarded;
  });

  app.addHook('onResponse', async (request) => request.lifetime?.end());
}, { name: 'lifetime' });
