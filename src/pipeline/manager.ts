// The model repository at run time: what it holds and in what state (the Open Inference
// Protocol's repository index), loading a version or reloading one, unloading, and polling for
// new versions. A load reads and checks the model on this thread first (config, weights, labels),
// then every worker loads and warms it beside the serving version and all swap at once: nothing
// in flight fails, and a load that fails anywhere leaves the old version serving.
import { entryOf, indexRepository } from '../catalog/catalog.js';
import type { Precision } from '../engine/engine.js';
import type { EngineName } from '../engine/engine.js';
import { ModelLoadError } from '../pool/errors.js';
import type { WorkerPool } from '../pool/pool.js';
import type { Task, TaskKind } from '../tasks.js';
import { describeModel, refOf, UnknownModelError, type ModelRegistry } from './models.js';
import { placeOne } from './placement.js';

/** Triton's model states. */
export type ModelState = 'READY' | 'LOADING' | 'UNLOADING' | 'UNAVAILABLE';

export interface IndexEntry {
  name: string;
  version: string;
  state: ModelState;
  reason: string;
}

export interface ModelManagerOptions {
  repository: string;
  modelDir: string;
  engine: EngineName;
  split: Record<string, number>;
  /** PRECISION's overrides of the configs' precisions. */
  precision: Record<string, Precision>;
  pool: WorkerPool;
  registry: ModelRegistry;
  /** WORKER_MEMORY_MB: what each worker may give its models; unset, every worker loads every model. */
  workerMemoryBytes?: number;
  /** Told of every load and unload, and of every failure (the log). */
  onChange?: (event: { name: string; version?: number; action: 'load' | 'unload'; error?: string }) => void;
}

/** Why a model version is not serving: the last thing that happened to it. */
type Note = { state: 'LOADING' | 'UNLOADING' | 'UNAVAILABLE'; reason: string };

export class ModelManager {
  /** By model, then version: what the last load or unload left. */
  private readonly notes = new Map<string, Map<number, Note>>();
  /** What last happened to each model that is not serving, and its task if known, for a request that asks for it. */
  private readonly last = new Map<string, { reason: string; task?: Task }>();
  /** One change at a time per model. */
  private readonly locks = new Map<string, Promise<unknown>>();
  private poller?: NodeJS.Timeout;

  constructor(private readonly options: ModelManagerOptions) {
    options.registry.whyNotLoaded = (name, task) => this.whyNotLoaded(name, task);
  }

  private note(name: string, version: number, note: Note | undefined): void {
    const versions = this.notes.get(name) ?? new Map<number, Note>();
    if (note) versions.set(version, note);
    else versions.delete(version);
    this.notes.set(name, versions);
  }

  /**
   * Why a model of `task` that was loaded (or asked to load) is not serving now: unloaded, its
   * load failed, or it is loading. Undefined for one never loaded (a request for it is then told
   * no such model is loaded, as for any name).
   */
  whyNotLoaded(name: string, task: TaskKind): string | undefined {
    const last = this.last.get(name);
    // An embedding comes from a classifier.
    const served = task === 'embedding' ? 'classification' : task;
    return last && (last.task === undefined || last.task === served) ? last.reason : undefined;
  }

  /** Every version of every model of the repository with its state; `ready` keeps only those serving. */
  index(ready = false): IndexEntry[] {
    const entries = indexRepository(this.options.repository, this.options.modelDir).flatMap((model) => {
      const loaded = this.options.registry.get(model.name);
      const versions = model.versions.length ? model.versions : [model.version ?? 0];
      return versions.map((version): IndexEntry => {
        const note = this.notes.get(model.name)?.get(version);
        if (loaded?.version === version && note?.state !== 'UNLOADING') return { name: model.name, version: String(version), state: 'READY', reason: '' };
        if (note) return { name: model.name, version: String(version), ...note };
        const reason = version === model.version ? model.problem ?? 'not loaded' : `not the served version (${model.version ?? 'none'})`;
        return { name: model.name, version: String(version), state: 'UNAVAILABLE', reason };
      });
    });
    return ready ? entries.filter((e) => e.state === 'READY') : entries;
  }

  private exclusive<T>(name: string, work: () => Promise<T>): Promise<T> {
    const next = (this.locks.get(name) ?? Promise.resolve()).then(work, work);
    this.locks.set(name, next.catch(() => {}));
    return next;
  }

  /**
   * Loads the served version of a model (or `version`), replacing a loaded one; loading the
   * version already serving reloads it. Throws UnknownModelError for a name the repository does
   * not have, ModelLoadError with the reason for anything else that fails.
   */
  load(name: string, version?: number): Promise<number> {
    return this.exclusive(name, async () => {
      const model = indexRepository(this.options.repository, this.options.modelDir).find((m) => m.name === name);
      if (!model) throw new UnknownModelError(`the repository has no model '${name}'`);
      const target = version ?? model.version;
      if (target === undefined || !model.versions.includes(target)) {
        throw new ModelLoadError(`model '${name}' has no version ${target ?? '(none served)'}; versions: ${model.versions.join(', ') || 'none'}`);
      }
      this.note(name, target, { state: 'LOADING', reason: 'loading' });
      if (!this.options.registry.get(name)) this.last.set(name, { reason: `version ${target} is loading`, task: model.entry?.task });
      try {
        const { engine, split, precision, pool, registry } = this.options;
        const info = describeModel(entryOf({ name, version: target, configFile: model.configFile(target) }, this.options.modelDir), { engine, split: split[name], precision: precision[name] });
        const sizes = new Map(registry.models.map((m) => [m.name, m.memoryBytes]));
        const workers = placeOne({ name, bytes: info.memoryBytes }, pool.placement, sizes, this.options.workerMemoryBytes);
        await pool.loadModel(refOf(info), workers);
        registry.set(info);
        this.note(name, target, undefined);
        this.last.delete(name);
        this.options.onChange?.({ name, version: target, action: 'load' });
        return target;
      } catch (err) {
        // Whatever reading a model's files throws (a damaged file trips its parser anywhere) is the model's failure to load.
        const reason = err instanceof Error ? err.message : String(err);
        this.note(name, target, { state: 'UNAVAILABLE', reason: `load failed: ${reason}` });
        if (!this.options.registry.get(name)) this.last.set(name, { reason: `version ${target} failed to load: ${reason}`, task: this.last.get(name)?.task });
        this.options.onChange?.({ name, version: target, action: 'load', error: reason });
        throw new ModelLoadError(`model '${name}' version ${target} did not load${this.options.registry.get(name) ? ' (the loaded version keeps serving)' : ''}: ${reason}`);
      }
    });
  }

  /** Stops serving a model: new requests are refused at once, those already queued or running finish. */
  unload(name: string): Promise<void> {
    return this.exclusive(name, async () => {
      const loaded = this.options.registry.get(name);
      if (!loaded) {
        if (!indexRepository(this.options.repository, this.options.modelDir).some((m) => m.name === name)) throw new UnknownModelError(`the repository has no model '${name}'`);
        return;
      }
      this.note(name, loaded.version, { state: 'UNLOADING', reason: 'finishing the requests it has' });
      this.options.registry.remove(name);
      await this.options.pool.unloadModel(name);
      this.note(name, loaded.version, { state: 'UNAVAILABLE', reason: 'unloaded' });
      this.last.set(name, { reason: `version ${loaded.version} was unloaded`, task: loaded.task });
      this.options.onChange?.({ name, version: loaded.version, action: 'unload' });
    });
  }

  /** Loads the new served version of every loaded model whose repository folder has one. */
  async poll(): Promise<void> {
    const index = indexRepository(this.options.repository, this.options.modelDir);
    for (const loaded of [...this.options.registry.models]) {
      const served = index.find((m) => m.name === loaded.name)?.version;
      if (served === undefined || served === loaded.version || this.notes.get(loaded.name)?.get(served)?.state === 'UNAVAILABLE') continue;
      await this.load(loaded.name, served).catch(() => {});
    }
  }

  startPolling(seconds: number): void {
    if (seconds <= 0) return;
    let polling = false;
    this.poller = setInterval(() => {
      if (polling) return;
      polling = true;
      void this.poll().finally(() => (polling = false));
    }, seconds * 1000);
    this.poller.unref();
  }

  stopPolling(): void {
    clearInterval(this.poller);
  }
}
