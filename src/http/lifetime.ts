// Each request's lifetime: a deadline (REQUEST_TIMEOUT_MS, or the client's X-Request-Timeout-Ms
// up to MAX_REQUEST_TIMEOUT_MS) and the client's connection. Either ending aborts one signal that
// every stage of an image request watches (upload, decode, queue, inference), so work nobody will
// receive is dropped. Also the request id: taken from X-Request-Id or generated, and echoed.
import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { PassThrough } from 'node:stream';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { ApiError, type ErrorCode } from './errors.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** Set by the onRequest hook; null only if that hook refused the request. */
    lifetime: RequestLifetime | null;
  }
}

export type RequestStage = 'upload' | 'decode' | 'queue' | 'inference';
export const REQUEST_STAGES: readonly RequestStage[] = ['upload', 'decode', 'queue', 'inference'];

export const TIMEOUT_HEADER = 'x-request-timeout-ms';
export const REQUEST_ID_HEADER = 'x-request-id';

export class RequestLifetime {
  /** Where the request is; an image route moves it forward. */
  stage: RequestStage = 'upload';
  private readonly controller = new AbortController();
  private readonly timer: NodeJS.Timeout;

  constructor(readonly timeoutMs: number) {
    this.timer = setTimeout(() => {
      this.abort(new ApiError('deadline_exceeded', `the request did not finish within its deadline of ${timeoutMs} ms (it was in ${this.stage})`));
    }, timeoutMs);
    // A pending deadline must not keep a stopping process alive.
    this.timer.unref();
  }

  get signal(): AbortSignal {
    return this.controller.signal;
  }

  /** The deadline or disconnect that ended the request early, if one did. */
  get abortedWith(): ApiError | undefined {
    return this.signal.aborted ? (this.signal.reason as ApiError) : undefined;
  }

  clientLeft(): void {
    this.abort(new ApiError('cancelled', `the client closed the connection during ${this.stage}`));
  }

  end(): void {
    clearTimeout(this.timer);
  }

  private abort(reason: ApiError): void {
    this.end();
    this.controller.abort(reason);
  }
}

/** Rejects with the signal's reason as soon as it aborts; `work` goes on but its outcome is ignored. */
export function untilAborted<T>(work: Promise<T>, signal: AbortSignal): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    if (signal.aborted) onAbort();
    else signal.addEventListener('abort', onAbort, { once: true });
    work.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}

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
  if (!/^\d{1,10}$/.test(text) || Number(text) < 1) {
    throw new ApiError('invalid_request', `${TIMEOUT_HEADER} must be a whole number of milliseconds, at least 1; got '${String(raw)}'`);
  }
  // Longer than allowed is not an error: the client gets the most the service gives.
  return Math.min(Number(text), maxMs);
}

const hasBody = (request: FastifyRequest) =>
  Number(request.headers['content-length'] ?? 0) > 0 || request.headers['transfer-encoding'] !== undefined;

/** Installs the hooks on the root instance, so every route, present or future, has them. */
export function installRequestLifetime(app: FastifyInstance, options: { defaultMs: number; maxMs: number }): void {
  app.decorateRequest('lifetime', null);

  app.addHook('onRequest', async (request, reply) => {
    reply.header(REQUEST_ID_HEADER, request.id);
    // The header is for the image routes (all POST): a probe or a scrape is not refused over it.
    const timeoutMs = request.method === 'POST' ? timeoutOf(request, options.defaultMs, options.maxMs) : options.defaultMs;
    const lifetime = new RequestLifetime(timeoutMs);
    request.lifetime = lifetime;
    // 'close' before the response was ended is a client that went away before its answer.
    reply.raw.once('close', () => (reply.raw.writableEnded ? lifetime.end() : lifetime.clientLeft()));
  });

  // A raw body is read by Fastify before the handler runs; pass it through a stream that fails
  // when the request is aborted, so a slow upload meets the deadline too. Multipart bodies are
  // read inside the handler, which watches the signal itself.
  app.addHook('preParsing', async (request, _reply, payload) => {
    const { lifetime } = request;
    if (!lifetime || !hasBody(request) || /^multipart\//i.test(request.headers['content-type'] ?? '')) return payload;
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
}

/** The code to answer with: a deadline or disconnect that came first overrides whatever failed after it. */
export function effectiveError(request: FastifyRequest, error: Error): { apiError?: ApiError; stage?: RequestStage } {
  const aborted = request.lifetime?.abortedWith;
  return { apiError: aborted ?? (error instanceof ApiError ? error : undefined), stage: request.lifetime?.stage };
}

export const isAbortCode = (code: ErrorCode): code is 'deadline_exceeded' | 'cancelled' => code === 'deadline_exceeded' || code === 'cancelled';
