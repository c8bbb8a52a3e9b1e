// Each request's lifetime, whatever protocol brought it: a deadline and the client's presence.
// Either ending aborts one signal that every stage of an image request watches (upload, decode,
// queue, inference), so work nobody will receive is dropped.

/** Where a request is: its body arriving, its image decoding, waiting for a worker, in a worker, its answer drawn or sent. */
export type RequestStage = 'upload' | 'decode' | 'queue' | 'inference' | 'render' | 'response';
export const REQUEST_STAGES: readonly RequestStage[] = ['upload', 'decode', 'queue', 'inference', 'render', 'response'];

/** Why a request ended early, and the stage it was in. */
export class RequestEndedError extends Error {
  constructor(message: string, readonly stage: RequestStage) {
    super(message);
  }
}

export class DeadlineExceededError extends RequestEndedError {}

/** The client went away before its answer. */
export class ClientGoneError extends RequestEndedError {}

export class RequestLifetime {
  /** Where the request is; an image request moves it forward. */
  stage: RequestStage = 'upload';
  private readonly controller = new AbortController();
  private timer: NodeJS.Timeout;
  private due: number;

  constructor(readonly timeoutMs: number) {
    this.due = Date.now() + timeoutMs;
    this.timer = this.arm(timeoutMs, `its deadline of ${timeoutMs} ms`);
  }

  /** When the deadline passes, as epoch milliseconds (other processes share this clock). */
  get deadlineAt(): number {
    return this.due;
  }

  /** Brings the deadline forward to `ms` from now, if that is sooner (a shutdown has its own). */
  shorten(ms: number, why: string): void {
    if (this.signal.aborted || Date.now() + ms >= this.due) return;
    clearTimeout(this.timer);
    this.due = Date.now() + ms;
    this.timer = this.arm(ms, why);
  }

  private arm(ms: number, what: string): NodeJS.Timeout {
    const timer = setTimeout(() => {
      this.abort(new DeadlineExceededError(`the request did not finish within ${what} (it was in ${this.stage})`, this.stage));
    }, ms);
    // A pending deadline must not keep a stopping process alive.
    timer.unref();
    return timer;
  }

  get signal(): AbortSignal {
    return this.controller.signal;
  }

  /** The deadline or disconnect that ended the request early, if one did. */
  get endedBy(): RequestEndedError | undefined {
    return this.signal.aborted ? (this.signal.reason as RequestEndedError) : undefined;
  }

  clientLeft(): void {
    this.abort(new ClientGoneError(`the client closed the connection during ${this.stage}`, this.stage));
  }

  end(): void {
    clearTimeout(this.timer);
  }

  private abort(reason: RequestEndedError): void {
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
