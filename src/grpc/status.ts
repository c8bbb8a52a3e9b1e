// The gRPC front-end's answer to an error of any layer: a status code, its details and, for
// "not now" refusals, when to retry (grpc-retry-pushback-ms, what gRPC retry policies read).
// The HTTP front-end maps the same errors in src/http/errors.ts; the two agree on meaning.
import { Metadata, status } from '@grpc/grpc-js';
import { ImageError } from '../decode/decode.js';
import { ProtocolError } from '../oip/tensors.js';
import { BudgetError } from '../pipeline/budget.js';
import { ClientGoneError, DeadlineExceededError } from '../pipeline/lifetime.js';
import { UnknownModelError } from '../pipeline/models.js';
import { PoolClosedError, QueueFullError, TaskAbortedError, WorkerFailedError } from '../pool/errors.js';

export interface GrpcFailure {
  code: status;
  details: string;
  metadata?: Metadata;
}

/** How long a client should wait when a memory budget is full: requests in flight end within seconds. */
const BUDGET_RETRY_MS = 1_000;

function retryAfter(ms: number): Metadata {
  const metadata = new Metadata();
  metadata.set('grpc-retry-pushback-ms', String(ms));
  return metadata;
}

/** The failure to answer; undefined for an error no layer raises (a bug: INTERNAL, logged). */
export function grpcFailureOf(err: unknown): GrpcFailure | undefined {
  if (!(err instanceof Error)) return undefined;
  const details = err.message;
  // The request's own input: an image that cannot be used, a tensor or parameter that does not fit.
  if (err instanceof ImageError || err instanceof ProtocolError) return { code: status.INVALID_ARGUMENT, details };
  if (err instanceof UnknownModelError) return { code: status.NOT_FOUND, details };
  if (err instanceof DeadlineExceededError) return { code: status.DEADLINE_EXCEEDED, details };
  if (err instanceof ClientGoneError || err instanceof TaskAbortedError) return { code: status.CANCELLED, details };
  if (err instanceof QueueFullError) return { code: status.RESOURCE_EXHAUSTED, details, metadata: retryAfter(1000 * err.retryAfterSeconds) };
  if (err instanceof BudgetError) {
    return err.exceedsLimit ? { code: status.INVALID_ARGUMENT, details } : { code: status.RESOURCE_EXHAUSTED, details, metadata: retryAfter(BUDGET_RETRY_MS) };
  }
  if (err instanceof PoolClosedError) return { code: status.UNAVAILABLE, details };
  // Not UNAVAILABLE: retry policies would resend a request that may itself have killed the worker.
  if (err instanceof WorkerFailedError) return { code: status.INTERNAL, details };
  return undefined;
}
