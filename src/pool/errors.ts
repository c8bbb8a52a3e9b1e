// What the pool refuses or fails with. It knows nothing of HTTP: the caller maps these.

export class PoolError extends Error {}

/** Every worker is busy and the queue is full. */
export class QueueFullError extends PoolError {
  constructor(
    message: string,
    /** The expected wait before one more task would be taken, in whole seconds (at least 1). */
    readonly retryAfterSeconds: number,
  ) {
    super(message);
  }
}

/** The worker running the task threw, exited, hung past the watchdog, or the task itself failed. */
export class WorkerFailedError extends PoolError {}

/** The pool is closing (shutdown) and takes no more work. */
export class PoolClosedError extends PoolError {}

/** The task's signal aborted without a reason of its own. */
export class TaskAbortedError extends PoolError {}

/** A worker could not load a model version (every worker keeps the version it had). */
export class ModelLoadError extends PoolError {}

/** No worker holds the task's model (it was unloaded while the request was on its way). */
export class ModelNotHeldError extends PoolError {}
