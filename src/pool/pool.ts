// A fixed set of inference workers behind a bounded FIFO queue. Each worker is a child process,
// so a fault in native code (an abort in ONNX Runtime, a run that never ends) costs only that
// process: the pool kills it with SIGKILL, fails the task it held and starts a replacement.
// Admission reserves room before the caller reads or decodes anything, so a burst is refused at
// once; a full pool fails fast with an estimate of when to retry. Queued work whose signal
// aborts (deadline, client gone) is dropped without running; a running task is told to stop.
import { fork, type ChildProcess } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { fileURLToPath } from 'node:url';
import type { ModelRef, OutputOf, TaskOutput, TaskRequest } from '../tasks.js';
import { ModelLoadError, ModelNotHeldError, PoolClosedError, QueueFullError, TaskAbortedError, WorkerFailedError } from './errors.js';
import type { Fault, FromWorker, InferTask, ModelAction, ToWorker, WorkerConfig, WorkerMemory } from './messages.js';

export interface PoolOptions {
  size: number;
  /** Requests that may wait for a worker, besides one running on each. */
  maxQueue: number;
  /** Watchdog: a task held longer than this gets its worker killed and replaced. */
  taskTimeoutMs: number;
  /** On close, how long a worker may take to release its engines and end before it is killed. */
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
  /** Aborting drops the task if still queued, or tells its worker to stop; the abort reason is the rejection. */
  signal?: AbortSignal;
  /** When the task's worker should give up on it (epoch ms): checked between the runs of a task. */
  deadlineAt?: number;
  /** Called when a worker takes the task. */
  onStart?: () => void;
}

/**
 * Why a worker was replaced: it threw an uncaught error, exited on its own, was killed by a
 * signal the pool did not send (a native abort, an outside kill -9), or the watchdog stopped it.
 */
export type RestartReason = 'error' | 'exit' | 'crash' | 'watchdog';
export const RESTART_REASONS: readonly RestartReason[] = ['error', 'exit', 'crash', 'watchdog'];

/** Room in the pool held for a request being read and decoded; run() consumes it, release() gives it back. */
export interface Reservation {
  release(): void;
}

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
  child: ChildProcess;
  /** Loaded its models once; a replacement is due when it stops. */
  loaded: boolean;
  /** Can take work now. */
  ready: boolean;
  current?: Pending;
  watchdog?: NodeJS.Timeout;
  /** Set when the pool itself stops the worker, or when the worker reported a fatal error. */
  stopReason?: RestartReason;
  /** As of its last answer. */
  memory: WorkerMemory;
  /** Model changes sent and not yet answered, by message id. */
  changes: Map<number, { resolve(): void; reject(err: Error): void }>;
}

const WORKER_MAIN = new URL(import.meta.url.endsWith('.ts') ? '../worker/main.ts' : '../worker/main.js', import.meta.url);

function startWorker(config: WorkerConfig): ChildProcess {
  const child = fork(fileURLToPath(WORKER_MAIN), [], {
    // From source (tests, `npm start`) the worker is TypeScript, compiled by tsx as the parent is.
    execArgv: import.meta.url.endsWith('.ts') ? ['--import', 'tsx'] : [],
    // Typed arrays cross as typed arrays.
    serialization: 'advanced',
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  send(child, { type: 'start', config });
  return child;
}

/** A message to a worker; one whose channel has closed (it is dying) is dropped, its exit handles the rest. */
function send(child: ChildProcess, message: ToWorker): void {
  if (child.connected) child.send(message, (err) => err && undefined);
}

// As fetch and timers do: an aborted task rejects with its signal's reason.
const abortError = (signal: AbortSignal): Error =>
  signal.reason instanceof Error ? signal.reason : new TaskAbortedError('the task was cancelled');

const RESPAWN_BACKOFF_MS = [1_000, 2_000, 5_000, 10_000, 30_000];

export class WorkerPool extends EventEmitter {
  private readonly slots = new Set<Slot>();
  private readonly queue: Pending[] = [];
  private reserved = 0;
  private nextId = 1;
  private closing = false;
  private started = false;
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
    this.started = true;
  }

  /** Per worker, the models it holds now. */
  get placement(): readonly (readonly string[])[] {
    return this.assignment;
  }

  /**
   * Every worker has loaded and warmed up its models once, at least one can take work now, and
   * the pool is not closing. A worker being replaced later does not make the pool unready while
   * another serves.
   */
  get ready(): boolean {
    return this.started && !this.closing && this.readyWorkers > 0;
  }

  get readyWorkers(): number {
    return [...this.slots].filter((s) => s.ready).length;
  }

  get queueDepth(): number {
    return this.queue.length;
  }

  /** The worker processes, for operators and fault tests. */
  get workers(): { pid: number; ready: boolean; busy: boolean }[] {
    return [...this.slots].flatMap((s) => (s.child.pid === undefined ? [] : [{ pid: s.child.pid, ready: s.ready, busy: s.current !== undefined }]));
  }

  /** What the live workers hold, summed, as they last reported. */
  get memory(): WorkerMemory {
    return [...this.slots].reduce((sum, { memory: m }) => ({
      residentBytes: sum.residentBytes + m.residentBytes,
      variantEngines: sum.variantEngines + m.variantEngines,
      variantBytes: sum.variantBytes + m.variantBytes,
    }), { residentBytes: 0, variantEngines: 0, variantBytes: 0 });
  }

  get busyWorkers(): number {
    return [...this.slots].filter((s) => s.current).length;
  }

  /**
   * Holds room for one task while its request is read and decoded: requests running, queued and
   * reserved together stay within one per worker plus the queue. Refuses at once when the pool is
   * full or closing.
   */
  reserve(): Reservation {
    if (this.closing) throw new PoolClosedError('the service is shutting down');
    const taken = this.busyWorkers + this.queue.length + this.reserved;
    if (taken >= this.options.size + this.options.maxQueue) {
      const waiting = this.queue.length + this.reserved;
      // Expected wait for one more task: everything ahead of it, served by every worker.
      const seconds = Math.max(1, Math.ceil(((waiting + 1) * this.serviceSeconds) / Math.max(1, this.readyWorkers)));
      throw new QueueFullError(`all ${this.options.size} workers are busy and ${waiting} requests are waiting; retry later`, seconds);
    }
    this.reserved++;
    let held = true;
    return {
      release: () => {
        if (held) this.reserved--;
        held = false;
      },
    };
  }

  /** Runs a task in the room `reservation` holds (released here), or in room taken now. */
  run<R extends TaskRequest>(task: InferTask<R>, options: RunOptions = {}, reservation: Reservation = this.reserve()): Promise<TaskResult<OutputOf<R>>> {
    reservation.release();
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
    if (this.closing) return Promise.reject(new PoolClosedError('the service is shutting down'));
    if (!this.assignment.some((names) => names.includes(task.model))) {
      return Promise.reject(new ModelNotHeldError(`no worker holds model ${task.model} (it was unloaded)`));
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
            // Running: the worker stops between runs; its slot frees when it answers.
            this.stats.abandoned++;
            const slot = [...this.slots].find((s) => s.current === pending);
            if (slot) send(slot.child, { type: 'cancel', id: pending.id });
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
    const message: ToWorker = { type: 'infer', id: pending.id, task: pending.task, deadlineAt: pending.options.deadlineAt };
    if (this.nextFault) {
      message.fault = this.nextFault;
      this.nextFault = undefined;
    }
    send(slot.child, message);
  }

  private stopHung(slot: Slot): void {
    const pending = this.settle(slot);
    this.kill(slot, 'watchdog');
    this.failTask(pending, `the worker did not finish within ${this.options.taskTimeoutMs} ms and was replaced`);
  }

  /** SIGKILL: whatever the process is doing, native code included, it ends now. */
  private kill(slot: Slot, reason: RestartReason): void {
    slot.stopReason ??= reason;
    slot.ready = false;
    slot.child.kill('SIGKILL');
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
    const child = startWorker({ ...this.options.worker, models: this.assignment[index]! });
    const slot: Slot = { index, child, loaded: false, ready: false, memory: { residentBytes: 0, variantEngines: 0, variantBytes: 0 }, changes: new Map() };
    this.slots.add(slot);
    return new Promise<void>((resolveReady, rejectReady) => {
      child.on('message', (message: FromWorker) => {
        switch (message.type) {
          case 'ready':
            slot.memory = message.memory;
            slot.loaded = slot.ready = !this.closing;
            resolveReady();
            this.drain();
            break;
          case 'loadFailed':
            rejectReady(new Error(`worker failed to load models: ${message.message}`));
            this.kill(slot, 'exit');
            break;
          case 'fatal':
            // An uncaught error: the process exits next; give it no more work meanwhile.
            slot.stopReason ??= 'error';
            slot.ready = false;
            this.emit('workerError', new Error(message.message));
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
            slot.memory = message.memory;
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
      child.on('error', (err) => this.emit('workerError', err));
      child.once('exit', (code, signal) => {
        this.slots.delete(slot);
        const how = signal ? `signal ${signal}` : `exit code ${code}`;
        for (const change of slot.changes.values()) change.reject(new ModelLoadError(`a worker stopped (${how}) while changing its models`));
        slot.changes.clear();
        this.failTask(this.settle(slot), `the worker stopped (${how})`);
        if (!slot.loaded) rejectReady(new Error(`worker stopped (${how}) before it was ready`));
        if (!this.closing && slot.loaded) {
          const reason = slot.stopReason ?? (signal ? 'crash' : 'exit');
          this.restarts++;
          this.emit('restart', reason);
          this.replace(slot.index);
        }
      });
    });
  }

  /** A replacement worker with the models of slot `index`; if it cannot load, tries again later rather than leave the pool short. */
  private replace(index: number, attempt = 0): void {
    this.spawn(index).then(
      () => this.drain(),
      (err: Error) => {
        this.emit('workerError', err);
        if (this.closing) return;
        const delay = RESPAWN_BACKOFF_MS[Math.min(attempt, RESPAWN_BACKOFF_MS.length - 1)]!;
        setTimeout(() => !this.closing && this.replace(index, attempt + 1), delay).unref();
      },
    );
  }

  private change(slot: Slot, action: ModelAction): Promise<void> {
    const id = this.nextChangeId++;
    return new Promise<void>((resolve, reject) => {
      slot.changes.set(id, { resolve, reject });
      const message: ToWorker = { type: 'models', id, action };
      send(slot.child, message);
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
   * and end; one still loading, or not ended within closeTimeoutMs, is killed.
   */
  async close(): Promise<void> {
    this.closing = true;
    for (const pending of this.queue.splice(0)) pending.reject(new PoolClosedError('the service is shutting down'));
    const timeoutMs = this.options.closeTimeoutMs ?? 5_000;
    await Promise.all([...this.slots].map(async (slot) => {
      const { child } = slot;
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      // A worker still loading has nothing worth waiting for.
      if (!slot.loaded) this.kill(slot, 'exit');
      else send(child, { type: 'close' });
      const timer = setTimeout(() => this.kill(slot, 'exit'), timeoutMs);
      await exited;
      clearTimeout(timer);
    }));
  }
}
