// Every refusal the API makes: an HTTP status and a stable machine code, documented in
// openapi.yaml. Each layer raises its own errors; apiErrorOf is the one place that turns them
// into a code, a status and headers.
import { ImageError, type ImageProblem } from '../decode/decode.js';
import { ProtocolError } from '../oip/tensors.js';
import { BudgetError } from '../pipeline/budget.js';
import { ClientGoneError, DeadlineExceededError } from '../pipeline/lifetime.js';
import { ModelNotLoadedError, UnknownModelError } from '../pipeline/models.js';
import { ModelLoadError, ModelNotHeldError, PoolClosedError, QueueFullError, TaskAbortedError, WorkerFailedError } from '../pool/errors.js';

export const ERROR_CODES = {
  invalid_request: 400,
  empty_body: 400,
  invalid_multipart: 400,
  unknown_model: 400,
  cancelled: 400,
  load_failed: 400,
  unauthorized: 401,
  forbidden: 403,
  not_found: 404,
  not_acceptable: 406,
  body_too_large: 413,
  image_too_large: 413,
  unsupported_media_type: 415,
  invalid_image: 422,
  image_too_small: 422,
  image_too_complex: 422,
  queue_full: 503,
  overloaded: 503,
  not_ready: 503,
  worker_failed: 503,
  deadline_exceeded: 503,
  model_not_loaded: 503,
  internal_error: 500,
} as const;

export type ErrorCode = keyof typeof ERROR_CODES;

export class ApiError extends Error {
  readonly statusCode: number;
  constructor(readonly code: ErrorCode, message: string, readonly headers: Record<string, string> = {}) {
    super(message);
    this.statusCode = ERROR_CODES[code];
  }
}

export interface ErrorBody {
  error: { code: ErrorCode; message: string };
}

export const errorBody = (code: ErrorCode, message: string): ErrorBody => ({ error: { code, message } });

const IMAGE_CODES: Record<ImageProblem, ErrorCode> = {
  empty: 'empty_body',
  unsupported: 'unsupported_media_type',
  too_large: 'image_too_large',
  too_small: 'image_too_small',
  too_complex: 'image_too_complex',
  undecodable: 'invalid_image',
};

/** How long a client should wait when a memory budget is full: requests in flight end within seconds. */
const BUDGET_RETRY_SECONDS = 1;

/** The API's answer to an error of any layer below HTTP; undefined for an error none of them raises (a bug). */
export function apiErrorOf(err: unknown): ApiError | undefined {
  if (err instanceof ApiError) return err;
  if (!(err instanceof Error)) return undefined;
  const as = (code: ErrorCode, headers?: Record<string, string>) => new ApiError(code, err.message, headers);
  if (err instanceof ImageError) return as(IMAGE_CODES[err.problem]);
  if (err instanceof UnknownModelError) return as('unknown_model');
  if (err instanceof ModelNotLoadedError || err instanceof ModelNotHeldError) return as('model_not_loaded');
  if (err instanceof ModelLoadError) return as('load_failed');
  if (err instanceof ProtocolError) return as('invalid_request');
  if (err instanceof DeadlineExceededError) return as('deadline_exceeded');
  if (err instanceof ClientGoneError || err instanceof TaskAbortedError) return as('cancelled');
  if (err instanceof QueueFullError) return as('queue_full', { 'retry-after': String(err.retryAfterSeconds) });
  if (err instanceof PoolClosedError) return as('not_ready');
  if (err instanceof BudgetError) return err.exceedsLimit ? as('image_too_large') : as('overloaded', { 'retry-after': String(BUDGET_RETRY_SECONDS) });
  if (err instanceof WorkerFailedError) return as('worker_failed');
  return undefined;
}
