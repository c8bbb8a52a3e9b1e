// A fixed set of inference workers behind a bounded FIFO queue. A full queue fails fast with an
// estimate of when to retry; queued work whose signal aborts (deadline, client gone) is dropped
// without running; a worker that throws, exits or hangs past the watchdog is replaced, and only
// the task it held fails.
import { EventEmitter } from 'node:events';
import { Worker } from 'node:worker_threads';
import type { ModelRef, OutputOf, TaskOutput, TaskRequest } from '../tasks.js';
import { ModelLoadError, ModelNotHeldError, PoolClosedError, QueueFullError, TaskAbortedError, WorkerFailedError } from './errors.js';
import type { Fault, FromWorker, InferTask, ModelAction, ToWorker, VariantsHeld, WorkerConfig } from './messages.js';

export interface PoolOptions {
  size: number;
  maxQueue: number;
  /** Watchdog: a task held longer than this gets its worker terminated and replaced. */
  taskTimeoutMs: number;
  /** On close, how long a worker may take to release its engines and end before it is terminated. */
  closeTimeoutMs?: number;
  worker: WorkerConfig;
  /** Per worker, the models of `worker.models` it loads; absent, every worker loads every model. */
  assignment?: string[][];
}

export interface TaskResult<O extends TaskOutput = TaskOutput> {
  output: O;
  queueMs: number;
  inferenceMs: number;
}

export interface RunOptions {
  /** Aborting drops the task if still queued, or stops waiting for it if running; the abort reason is the rejection. */
  signal?: AbortSignal;
  /** Called when a worker takes the task. */
  onStart?: () => void;
}

/** Why a worker was replaced: it threw an uncaught error, exited, or the watchdog stopped it. */
export type RestartReason = 'error' | 'exit' | 'watchdog';
export const RESTART_REASONS: readonly RestartReason[] = ['error', 'exit', 'watchdog'];

interface Pending {
  id: number;
  task: InferTask;
  enqueuedAt: number;
  startedAt?: number;
  resolve(result: TaskResult): void;
  reject(err: Error): void;
  options: RunOptions;
  onAbort?: () => void;
}

interface Slot {
  /** Its place in the assignment: a replacement loads the same models. */
  index: number;
  worker: Worker;
  /** Loaded its models once; a replacement is due when it stops. */
  loaded: boolean;
  /** Can take work now. */
  ready: boolean;
  current?: Pending;
  watchdog?: NodeJS.Timeout;
  /** Set when the pool itself stops the worker, or when it reported an uncaught error. */
  stopReason?: RestartReason;
  /** As of its last answer. */
  variants: VariantsHeld;
  /** Model changes sent and not yet answered, by message id. */
  changes: Map<number, { resolve(): void; reject(err: Error): void }>;
}

// Run from source (tests, `npm start`) the worker is TypeScript. Node 20 does not pass the
// parent's tsx loader hooks to worker threads, so a tiny bootstrap registers tsx first.
function createWorker(workerData: WorkerConfig): Worker {
  if (!import.meta.url.endsWith('.ts')) return new Worker(new URL('../worker/main.js', import.meta.url), { workerData });
  const worker = JSON.stringify(new URL('../worker/main.ts', import.meta.url).href);
  const tsx = JSON.stringify(import.meta.resolve('tsx/esm/api'));
  const bootstrap = `import(${tsx}).then((tsx) => { tsx.register(); return import(${worker}); })`;
  return new Worker(bootstrap, { eval: true, workerData });
}

// As fetch and timers do: an aborted task rejects with its signal's reason.
const abortError = (signal: AbortSignal): Error =>
  signal.reason instanceof Error ? signal.reason : new TaskAbortedError('the task was cancelled');

export class WorkerPool extends EventEmitter {
  private readonly slots = new Set<Slot>();
  private readonly queue: Pending[] = [];
  private nextId = 1;
  private closing = false;
  private nextFault?: Fault;
  private nextChangeId = 1;
  /** Model changes run one at a time: each is a sequence of messages to every worker. */
  private changing: Promise<unknown> = Promise.resolve();
  /** Moving average of seconds per task, for the retry estimate of a full queue. */
  private serviceSeconds = 0.05;
  restarts = 0;
  /** Tasks by fate, for tests and the soak report. */
  readonly stats = { started: 0, completed: 0, failed: 0, dropped: 0, abandoned: 0 };

  /** Per worker, the models it loads. */
  private readonly assignment: string[][];

  constructor(private readonly options: PoolOptions) {
    super();
    this.assignment = options.assignment?.map((models) => [...models]) ?? Array.from({ length: options.size }, () => [...options.worker.models]);
  }

  /** Starts every worker and resolves once all have loaded and warmed up their models. */
  async start(): Promise<void> {
    await Promise.all(this.assignment.map((_, index) => this.spawn(index)));
  }

  /** Per worker, the models it holds now. */
  get placement(): readonly (readonly string[])[] {
    return this.assignment;
  }

  /** At least one worker can take work, and the pool is not closing. */
  get ready(): boolean {
    return !this.closing && this.readyWorkers > 0;
  }

  get readyWorkers(): number {
    return [...this.slots].filter((s) => s.ready).length;
  }

  get queueDepth(): number {
    return this.queue.length;
  }

  /** Engines of other segmentation settings the live workers hold, as they last reported. */
  get variantsHeld(): VariantsHeld {
    return [...this.slots].reduce((sum, s) => ({ count: sum.count + s.variants.count, bytes: sum.bytes + s.variants.bytes }), { count: 0, bytes: 0 });
  }

  get busyWorkers(): number {
    return [...this.slots].filter((s) => s.current).length;
  }

  /**
   * Throws what run() would throw right now for lack of capacity, so callers can refuse before
   * spending time on a request (reading, decoding) that the queue could not take anyway.
   */
  checkCapacity(): void {
    if (this.closing) throw new PoolClosedError('the service is shutting down');
    if (this.idleSlot() || this.queue.length < this.options.maxQueue) return;
    const workers = Math.max(1, this.readyWorkers);
    // Expected wait for one more task: everything queued ahead of it, served by every worker.
    const seconds = Math.max(1, Math.ceil(((this.queue.length + 1) * this.serviceSeconds) / workers));
    throw new QueueFullError(`all ${this.options.size} workers are busy and ${this.queue.length} requests are queued; retry later`, seconds);
  }

  run<R extends TaskRequest>(task: InferTask<R>, options: RunOptions = {}): Promise<TaskResult<OutputOf<R>>> {
    // The worker answers each request with the output of the same task.
    return this.enqueue(task, options) as Promise<TaskResult<OutputOf<R>>>;
  }

  /** Tests only: the next task dispatched carries this fault to its worker. */
  injectFault(fault: Fault): void {
    this.nextFault = fault;
  }

  private enqueue(task: InferTask, options: RunOptions): Promise<TaskResult> {
    const { signal } = options;
    if (signal?.aborted) return Promise.reject(abortError(signal));
    if (!this.assignment.some((names) => names.includes(task.model))) {
      return Promise.reject(new ModelNotHeldError(`no worker holds model ${task.model} (it was unloaded)`));
    }
    try {
      this.checkCapacity();
    } catch (err) {
      return Promise.reject(err as Error);
    }
    return new Promise<TaskResult>((resolve, reject) => {
      const pending: Pending = { id: this.nextId++, task, enqueuedAt: performance.now(), resolve, reject, options };
      if (signal) {
        pending.onAbort = () => {
          const index = this.queue.indexOf(pending);
          if (index >= 0) {
            // Never started: drop it, no worker time spent.
            this.queue.splice(index, 1);
            this.stats.dropped++;
          } else {
            // Running: the worker cannot be interrupted mid-inference; its answer will be ignored.
            this.stats.abandoned++;
          }
          reject(abortError(signal));
        };
        signal.addEventListener('abort', pending.onAbort, { once: true });
      }
      const idle = this.idleSlot(task.model);
      if (idle) this.dispatch(idle, pending);
      else this.queue.push(pending);
    });
  }

  /** An idle worker, one that holds `model` when given. */
  private idleSlot(model?: string): Slot | undefined {
    return [...this.slots].find((s) => s.ready && !s.current && (model === undefined || this.assignment[s.index]!.includes(model)));
  }

  private dispatch(slot: Slot, pending: Pending): void {
    slot.current = pending;
    pending.startedAt = performance.now();
    this.stats.started++;
    pending.options.onStart?.();
    slot.watchdog = setTimeout(() => this.stopHung(slot), this.options.taskTimeoutMs);
    // Copy so the caller's buffer stays usable; the copy's memory moves to the worker.
    const pixels = pending.task.pixels.slice();
    const message: ToWorker = { type: 'infer', id: pending.id, task: { ...pending.task, pixels } };
    if (this.nextFault) {
      message.fault = this.nextFault;
      this.nextFault = undefined;
    }
    slot.worker.postMessage(message, [pixels.buffer]);
  }

  private stopHung(slot: Slot): void {
    const pending = this.settle(slot);
    slot.stopReason = 'watchdog';
    slot.ready = false;
    this.failTask(pending, `the worker did not finish within ${this.options.taskTimeoutMs} ms and was replaced`);
    void slot.worker.terminate();
  }

  private failTask(pending: Pending | undefined, why: string): void {
    if (!pending) return;
    this.stats.failed++;
    pending.reject(new WorkerFailedError(`inference failed: ${why}; retry`));
  }

  private settle(slot: Slot): Pending | undefined {
    const pending = slot.current;
    slot.current = undefined;
    clearTimeout(slot.watchdog);
    if (pending?.onAbort) pending.options.signal?.removeEventListener('abort', pending.onAbort);
    return pending;
  }

  /** Gives idle workers the oldest queued tasks they can run (a task waits for a worker holding its model). */
  private drain(): void {
    for (let i = 0; i < this.queue.length && this.idleSlot(); ) {
      const slot = this.idleSlot(this.queue[i]!.task.model);
      if (slot) this.dispatch(slot, this.queue.splice(i, 1)[0]!);
      else i++;
    }
  }

  private spawn(index: number): Promise<void> {
    const worker = createWorker({ ...this.options.worker, models: this.assignment[index]! });
    const slot: Slot = { index, worker, loaded: false, ready: false, variants: { count: 0, bytes: 0 }, changes: new Map() };
    this.slots.add(slot);
    return new Promise<void>((resolveReady, rejectReady) => {
      worker.on('message', (message: FromWorker) => {
        switch (message.type) {
          case 'ready':
            slot.loaded = slot.ready = true;
            resolveReady();
            this.drain();
            break;
          case 'loadFailed':
            rejectReady(new Error(`worker failed to load models: ${message.message}`));
            void worker.terminate();
            break;
          case 'models': {
            const change = slot.changes.get(message.id);
            slot.changes.delete(message.id);
            if (message.error === undefined) change?.resolve();
            else change?.reject(new ModelLoadError(message.error));
            break;
          }
          case 'result':
          case 'failed': {
            slot.variants = message.variants;
            // A late answer from a worker the watchdog already gave up on belongs to no one.
            if (slot.current?.id !== message.id) break;
            const pending = this.settle(slot)!;
            if (message.type === 'result') {
              const queueMs = pending.startedAt! - pending.enqueuedAt;
              this.serviceSeconds = 0.8 * this.serviceSeconds + 0.2 * ((performance.now() - pending.startedAt!) / 1000);
              this.stats.completed++;
              pending.resolve({ output: message.output, queueMs, inferenceMs: message.inferenceMs });
            } else {
              this.failTask(pending, message.message);
            }
            this.drain();
            break;
          }
        }
      });
      worker.on('error', (err) => {
        // The thread is going down; 'exit' follows. Give it no more work meanwhile.
        slot.stopReason ??= 'error';
        slot.ready = false;
        this.emit('workerError', err);
      });
      worker.on('exit', (code) => {
        this.slots.delete(slot);
        for (const change of slot.changes.values()) change.reject(new ModelLoadError(`a worker stopped (exit code ${code}) while changing its models`));
        slot.changes.clear();
        this.failTask(this.settle(slot), `the worker stopped (exit code ${code})`);
        if (!slot.loaded) rejectReady(new Error(`worker exited with code ${code} before it was ready`));
        if (!this.closing && slot.loaded) {
          const reason = slot.stopReason ?? 'exit';
          this.restarts++;
          this.emit('restart', reason);
          this.spawn(slot.index).catch((err: Error) => this.emit('workerError', err));
        }
      });
    });
  }

  private change(slot: Slot, action: ModelAction): Promise<void> {
    const id = this.nextChangeId++;
    return new Promise<void>((resolve, reject) => {
      slot.changes.set(id, { resolve, reject });
      const message: ToWorker = { type: 'models', id, action };
      slot.worker.postMessage(message);
    });
  }

  /** Runs model changes one after another, whatever became of the one before. */
  private serially<T>(work: () => Promise<T>): Promise<T> {
    const next = this.changing.then(work, work);
    this.changing = next.catch(() => {});
    return next;
  }

  /** Tasks queued or running for a model. */
  private pendingFor(name: string): number {
    return this.queue.filter((p) => p.task.model === name).length + [...this.slots].filter((s) => s.current?.task.model === name).length;
  }

  /**
   * Loads a model version into the given workers (default: all), or replaces the one they run:
   * each loads and warms it beside the serving one, then all swap; if any cannot, none does, and
   * the error says why. No task fails or waits for it: the old version serves until the swap.
   * Workers that held the model and are not given unload it once its tasks there are done.
   * Replacement workers load the new version.
   */
  loadModel(ref: ModelRef, workers: readonly number[] = this.assignment.map((_, i) => i)): Promise<void> {
    return this.serially(async () => {
      if (this.closing) throw new PoolClosedError('the service is shutting down');
      const slots = [...this.slots].filter((s) => s.loaded && workers.includes(s.index));
      const prepared = await Promise.allSettled(slots.map((slot) => this.change(slot, { kind: 'prepare', ref })));
      const failed = prepared.find((r): r is PromiseRejectedResult => r.status === 'rejected');
      if (failed) {
        await Promise.allSettled(slots.map((slot) => this.change(slot, { kind: 'abort', name: ref.name })));
        throw failed.reason instanceof Error ? failed.reason : new ModelLoadError(String(failed.reason));
      }
      await Promise.all(slots.map((slot) => this.change(slot, { kind: 'commit', name: ref.name })));
      const leaving = this.assignment.flatMap((names, i) => (names.includes(ref.name) && !workers.includes(i) ? [i] : []));
      this.assignment.forEach((names, i) => {
        if (workers.includes(i) && !names.includes(ref.name)) names.push(ref.name);
      });
      const worker = this.options.worker;
      worker.refs = { ...worker.refs, [ref.name]: ref };
      if (!worker.models.includes(ref.name)) worker.models = [...worker.models, ref.name];
      if (leaving.length) await this.release(ref.name, leaving);
    });
  }

  /** Unloads a model from every worker once no task for it is queued or running; the caller stops sending new ones first. */
  unloadModel(name: string): Promise<void> {
    return this.serially(async () => {
      while (this.pendingFor(name) > 0) await new Promise((r) => setTimeout(r, 10));
      await this.release(name, this.assignment.map((_, i) => i));
      const worker = this.options.worker;
      worker.models = worker.models.filter((m) => m !== name);
      const { [name]: _, ...refs } = worker.refs ?? {};
      worker.refs = refs;
    });
  }

  /** Takes a model off some workers: they get no more of its tasks, and unload it once the one running (if any) is done. */
  private async release(name: string, workers: readonly number[]): Promise<void> {
    for (const i of workers) this.assignment[i] = this.assignment[i]!.filter((m) => m !== name);
    const slots = [...this.slots].filter((s) => s.loaded && workers.includes(s.index));
    while (slots.some((s) => s.current?.task.model === name)) await new Promise((r) => setTimeout(r, 10));
    await Promise.all(slots.map((slot) => this.change(slot, { kind: 'unload', name })));
  }

  /**
   * Stops taking work, fails what is still queued, and asks every worker to release its engines
   * and end; one that has not ended within closeTimeoutMs is terminated.
   */
  async close(): Promise<void> {
    this.closing = true;
    for (const pending of this.queue.splice(0)) pending.reject(new PoolClosedError('the service is shutting down'));
    const timeoutMs = this.options.closeTimeoutMs ?? 5_000;
    await Promise.all([...this.slots].map(async ({ worker }) => {
      const exited = new Promise<void>((resolve) => worker.once('exit', () => resolve()));
      const message: ToWorker = { type: 'close' };
      worker.postMessage(message);
      let timer: NodeJS.Timeout | undefined;
      const late = new Promise<'late'>((resolve) => (timer = setTimeout(() => resolve('late'), timeoutMs)));
      if ((await Promise.race([exited, late])) === 'late') await worker.terminate();
      clearTimeout(timer);
    }));
  }
}
