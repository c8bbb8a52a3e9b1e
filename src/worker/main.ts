// An inference worker, a child process of the pool: loads and warms up its models, reports ready,
// then runs one task at a time. Inference happens here, never on the server's event loop, and a
// fault here (native code included) ends only this process.
import { entryOf } from '../catalog/catalog.js';
import type { FromWorker, InferTask, ModelAction, ToWorker, WorkerConfig } from '../pool/messages.js';
import { actOut } from './faults.js';
import { loadModel, runOn, type LoadedModel } from './load.js';
import { variantCache, type VariantCache } from './segmentation-runner.js';

const send = (message: FromWorker) => process.send?.(message);
const messageOf = (err: unknown) => (err instanceof Error ? err.message : String(err));

// The pool's process drains and then closes the workers: signals sent to the whole process group
// (Ctrl-C in a terminal) must not cut inference short. The pool kills with SIGKILL when it must.
process.on('SIGINT', () => {});
process.on('SIGTERM', () => {});
// Without the pool (it was killed), a worker has no one to serve.
process.on('disconnect', () => process.exit(0));
process.on('uncaughtException', (err) => {
  send({ type: 'fatal', message: messageOf(err) });
  process.exit(1);
});

class Worker {
  private readonly models = new Map<string, LoadedModel>();
  /** Versions prepared beside the serving ones, waiting for their commit. */
  private readonly staged = new Map<string, LoadedModel>();
  private readonly variants: VariantCache;
  /** The running task's stop signal, by task id. */
  private readonly stops = new Map<number, AbortController>();
  private running: Promise<unknown> = Promise.resolve();

  constructor(private readonly config: WorkerConfig) {
    this.variants = variantCache(config.variantBudgetBytes);
  }

  async load(): Promise<void> {
    for (const name of this.config.models) this.models.set(name, await this.loadVersion(name));
  }

  private loadVersion(name: string, ref = this.config.refs?.[name]): Promise<LoadedModel> {
    if (!ref) throw new Error(`no repository version given for model ${name}`);
    return loadModel(entryOf(ref, this.config.modelDir), this.config, this.variants);
  }

  /**
   * Carries out one change of models. A prepared version waits beside the serving one; the model
   * a commit or unload replaces is released only once the task running now (which may use it) is done.
   */
  async changeModels(action: ModelAction): Promise<void> {
    const release = (model: LoadedModel | undefined) => {
      if (model) void this.running.catch(() => {}).then(() => model.dispose());
    };
    switch (action.kind) {
      case 'prepare':
        release(this.staged.get(action.ref.name));
        this.staged.set(action.ref.name, await this.loadVersion(action.ref.name, action.ref));
        break;
      case 'commit': {
        const next = this.staged.get(action.name);
        if (!next) throw new Error(`no prepared version of ${action.name} to commit`);
        this.staged.delete(action.name);
        release(this.models.get(action.name));
        this.models.set(action.name, next);
        break;
      }
      case 'abort':
        release(this.staged.get(action.name));
        this.staged.delete(action.name);
        break;
      case 'unload':
        release(this.models.get(action.name));
        this.models.delete(action.name);
        break;
    }
  }

  /** Reported with every answer, so the server can export it. */
  memory() {
    return { residentBytes: process.memoryUsage.rss(), variantEngines: this.variants.size, variantBytes: this.variants.bytes };
  }

  infer(id: number, task: InferTask, deadlineAt: number | undefined, fault: Parameters<typeof actOut>[0]): void {
    const stop = new AbortController();
    this.stops.set(id, stop);
    const signals = [stop.signal];
    if (deadlineAt !== undefined) signals.push(AbortSignal.timeout(Math.max(0, deadlineAt - Date.now())));
    const signal = AbortSignal.any(signals);
    this.running = actOut(fault)
      .then(() => this.run(task, signal))
      .then(
        (result) => send({ type: 'result', id, ...result, memory: this.memory() }),
        (err: unknown) => send({ type: 'failed', id, message: messageOf(err), memory: this.memory() }),
      )
      .finally(() => this.stops.delete(id));
  }

  private async run(task: InferTask, signal: AbortSignal) {
    const model = this.models.get(task.model);
    if (!model) throw new Error(`model ${task.model} is not loaded in this worker`);
    const started = performance.now();
    const output = await runOn(model, task.request, task.input, signal);
    return { output, inferenceMs: performance.now() - started };
  }

  cancel(id: number): void {
    this.stops.get(id)?.abort(new Error('the request was abandoned'));
  }

  async close(): Promise<void> {
    // An engine must not be released under a run: let the current task finish first.
    await this.running.catch(() => {});
    await this.variants.clear();
    for (const model of [...this.models.values(), ...this.staged.values()]) await model.dispose();
    process.exit(0);
  }
}

let worker: Worker | undefined;
process.on('message', (message: ToWorker) => {
  switch (message.type) {
    case 'start': {
      const started = new Worker(message.config);
      started.load().then(
        () => {
          worker = started;
          send({ type: 'ready', memory: started.memory() });
        },
        (err: unknown) => send({ type: 'loadFailed', message: messageOf(err) }),
      );
      break;
    }
    case 'infer':
      // One task at a time: the pool sends the next only after this one's answer.
      if (!worker) send({ type: 'failed', id: message.id, message: 'the worker is not ready', memory: { residentBytes: process.memoryUsage.rss(), variantEngines: 0, variantBytes: 0 } });
      else worker.infer(message.id, message.task, message.deadlineAt, message.fault);
      break;
    case 'cancel':
      worker?.cancel(message.id);
      break;
    case 'models':
      if (!worker) {
        send({ type: 'models', id: message.id, error: 'the worker is not ready' });
        break;
      }
      worker.changeModels(message.action).then(
        () => send({ type: 'models', id: message.id }),
        (err: unknown) => send({ type: 'models', id: message.id, error: messageOf(err) }),
      );
      break;
    case 'close':
      if (worker) void worker.close();
      else process.exit(0);
      break;
  }
});
