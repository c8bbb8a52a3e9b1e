// A fixed set of inference workers behind a bounded FIFO queue. A full queue fails fast with a
// Retry-After estimate; queued work can be cancelled; a worker that dies is replaced and only
// the task it held fails.
import { EventEmitter } from 'node:events';
import { Worker } from 'node:worker_threads';
import { ApiError } from '../http/errors.js';
import type { OutputOf, TaskOutput, TaskRequest } from '../postprocess/index.js';
import type { FromWorker, InferTask, ToWorker, WorkerConfig } from './messages.js';

export interface PoolOptions {
  size: number;
  maxQueue: number;
  worker: WorkerConfig;
}

export interface TaskResult<O extends TaskOutput = TaskOutput> {
  output: O;
  queueMs: number;
  inferenceMs: number;
}

interface Pending {
  id: number;
  task: InferTask;
  enqueuedAt: number;
  startedAt?: number;
  resolve(result: TaskResult): void;
  reject(err: Error): void;
  signal?: AbortSignal;
  onAbort?: () => void;
}

interface Slot {
  worker: Worker;
  ready: boolean;
  current?: Pending;
}

// Run from source (tests, `npm start`) the worker is TypeScript. Node 20 does not pass the
// parent's tsx loader hooks to worker threads, so a tiny bootstrap registers tsx first.
function createWorker(workerData: WorkerConfig): Worker {
  if (!import.meta.url.endsWith('.ts')) return new Worker(new URL('./worker.js', import.meta.url), { workerData });
  const worker = JSON.stringify(new URL('./worker.ts', import.meta.url).href);
  const tsx = JSON.stringify(import.meta.resolve('tsx/esm/api'));
  const bootstrap = `import(${tsx}).then((tsx) => { tsx.register(); return import(${worker}); })`;
  return new Worker(bootstrap, { eval: true, workerData });
}

export class WorkerPool extends EventEmitter {
  private readonly slots = new Set<Slot>();
  private readonly queue: Pending[] = [];
  private nextId = 1;
  private closing = false;
  /** Moving average of seconds per task, for Retry-After. */
  private serviceSeconds = 0.05;
  restarts = 0;

  constructor(private readonly options: PoolOptions) {
    super();
  }

  /** Starts every worker and resolves once all have loaded and warmed up their models. */
  async start(): Promise<void> {
    await Promise.all(Array.from({ length: this.options.size }, () => this.spawn()));
  }

  get ready(): boolean {
    return !this.closing && [...this.slots].some((s) => s.ready);
  }

  get queueDepth(): number {
    return this.queue.length;
  }

  get busyWorkers(): number {
    return [...this.slots].filter((s) => s.current).length;
  }

  run<R extends TaskRequest>(task: InferTask<R>, signal?: AbortSignal): Promise<TaskResult<OutputOf<R>>> {
    // The worker answers each request with the output of the same task.
    return this.enqueue(task, signal) as Promise<TaskResult<OutputOf<R>>>;
  }

  private enqueue(task: InferTask, signal?: AbortSignal): Promise<TaskResult> {
    if (this.closing) return Promise.reject(new ApiError('not_ready', 'the service is shutting down'));
    if (signal?.aborted) return Promise.reject(new ApiError('cancelled', 'the request was cancelled'));
    const idle = this.idleSlot();
    if (!idle && this.queue.length >= this.options.maxQueue) {
      const seconds = Math.max(1, Math.ceil(((this.queue.length + 1) * this.serviceSeconds) / this.options.size));
      return Promise.reject(new ApiError('queue_full', `all ${this.options.size} workers are busy and ${this.queue.length} requests are queued; retry later`, { 'retry-after': String(seconds) }));
    }
    return new Promise<TaskResult>((resolve, reject) => {
      const pending: Pending = { id: this.nextId++, task, enqueuedAt: performance.now(), resolve, reject, signal };
      if (signal) {
        pending.onAbort = () => {
          const index = this.queue.indexOf(pending);
          if (index >= 0) {
            this.queue.splice(index, 1);
            reject(new ApiError('cancelled', 'the request was cancelled before it ran'));
            this.emit('cancelled');
          }
        };
        signal.addEventListener('abort', pending.onAbort, { once: true });
      }
      if (idle) this.dispatch(idle, pending);
      else this.queue.push(pending);
    });
  }

  private idleSlot(): Slot | undefined {
    return [...this.slots].find((s) => s.ready && !s.current);
  }

  private dispatch(slot: Slot, pending: Pending): void {
    slot.current = pending;
    pending.startedAt = performance.now();
    // Copy so the caller's buffer stays usable; the copy's memory moves to the worker.
    const pixels = pending.task.pixels.slice();
    const message: ToWorker = { type: 'infer', id: pending.id, task: { ...pending.task, pixels } };
    slot.worker.postMessage(message, [pixels.buffer]);
  }

  private settle(slot: Slot): Pending | undefined {
    const pending = slot.current;
    slot.current = undefined;
    if (pending?.onAbort) pending.signal?.removeEventListener('abort', pending.onAbort);
    return pending;
  }

  private drain(): void {
    let slot: Slot | undefined;
    while (this.queue.length > 0 && (slot = this.idleSlot())) this.dispatch(slot, this.queue.shift()!);
  }

  private spawn(): Promise<void> {
    const worker = createWorker(this.options.worker);
    const slot: Slot = { worker, ready: false };
    this.slots.add(slot);
    return new Promise<void>((resolveReady, rejectReady) => {
      worker.on('message', (message: FromWorker) => {
        switch (message.type) {
          case 'ready':
            slot.ready = true;
            resolveReady();
            this.drain();
            break;
          case 'loadFailed':
            rejectReady(new Error(`worker failed to load models: ${message.message}`));
            void worker.terminate();
            break;
          case 'result':
          case 'failed': {
            const pending = this.settle(slot);
            if (!pending) break;
            if (message.type === 'result') {
              const queueMs = pending.startedAt! - pending.enqueuedAt;
              this.serviceSeconds = 0.8 * this.serviceSeconds + 0.2 * ((performance.now() - pending.startedAt!) / 1000);
              pending.resolve({ output: message.output, queueMs, inferenceMs: message.inferenceMs });
            } else {
              pending.reject(new ApiError('worker_failed', `inference failed: ${message.message}`));
            }
            this.drain();
            break;
          }
        }
      });
      worker.on('error', (err) => this.emit('workerError', err));
      worker.on('exit', (code) => {
        this.slots.delete(slot);
        const pending = this.settle(slot);
        pending?.reject(new ApiError('worker_failed', 'the worker running this request stopped; retry'));
        if (!slot.ready) rejectReady(new Error(`worker exited with code ${code} before it was ready`));
        if (!this.closing && slot.ready) {
          this.restarts++;
          this.emit('restart');
          this.spawn().catch((err: Error) => this.emit('workerError', err));
        }
      });
    });
  }

  /** Stops taking work, fails what is still queued, and terminates the workers. */
  async close(): Promise<void> {
    this.closing = true;
    for (const pending of this.queue.splice(0)) pending.reject(new ApiError('not_ready', 'the service is shutting down'));
    await Promise.all([...this.slots].map((s) => s.worker.terminate()));
  }
}
