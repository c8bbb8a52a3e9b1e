// A pool worker: loads and warms up its models, reports ready, then runs one task at a time.
// Inference happens here, never on the main thread's event loop.
import { parentPort, workerData } from 'node:worker_threads';
import { entryOf } from '../catalog/catalog.js';
import type { FromWorker, InferTask, ModelAction, ToWorker, WorkerConfig } from '../pool/messages.js';
import { actOut } from './faults.js';
import { loadRunner, runOn, type AnyRunner } from './load.js';
import { variantCache, type VariantCache } from './segmentation-runner.js';

const port = parentPort!;
const send = (message: FromWorker) => port.postMessage(message);
const messageOf = (err: unknown) => (err instanceof Error ? err.message : String(err));

async function infer(runners: Map<string, AnyRunner>, task: InferTask) {
  const runner = runners.get(task.model);
  if (!runner) throw new Error(`model ${task.model} is not loaded in this worker`);
  const started = performance.now();
  const output = await runOn(runner, task.request, task.pixels);
  return { output, inferenceMs: performance.now() - started };
}

/**
 * Carries out one change of models. A prepared version waits beside the serving one; the runner a
 * commit or unload replaces is released only once the task running now (which may use it) is done.
 */
async function changeModels(action: ModelAction, runners: Map<string, AnyRunner>, staged: Map<string, AnyRunner>, config: WorkerConfig, variants: VariantCache, running: () => Promise<unknown>): Promise<void> {
  const release = (runner: AnyRunner | undefined) => {
    if (runner) void running().catch(() => {}).then(() => runner.dispose());
  };
  switch (action.kind) {
    case 'prepare':
      release(staged.get(action.ref.name));
      staged.set(action.ref.name, await loadRunner(entryOf(action.ref, config.modelDir), config, variants));
      break;
    case 'commit': {
      const next = staged.get(action.name);
      if (!next) throw new Error(`no prepared version of ${action.name} to commit`);
      staged.delete(action.name);
      release(runners.get(action.name));
      runners.set(action.name, next);
      break;
    }
    case 'abort':
      release(staged.get(action.name));
      staged.delete(action.name);
      break;
    case 'unload':
      release(runners.get(action.name));
      runners.delete(action.name);
      break;
  }
}

async function close(runners: Iterable<AnyRunner>, variants: VariantCache, running: Promise<unknown>): Promise<void> {
  // An engine must not be released under a run: let the current task finish first.
  await running.catch(() => {});
  await variants.clear();
  for (const runner of runners) await runner.dispose();
  // Nothing else keeps the thread alive: it ends once the port is closed.
  port.close();
}

async function main(): Promise<void> {
  const config = workerData as WorkerConfig;
  const runners = new Map<string, AnyRunner>();
  const variants = variantCache(config.variantBudgetBytes);
  // What the cache holds, reported with every answer so the main thread can export it.
  const held = () => ({ count: variants.size, bytes: variants.bytes });
  try {
    for (const name of config.models) {
      const ref = config.refs?.[name];
      if (!ref) throw new Error(`no repository version given for model ${name}`);
      runners.set(name, await loadRunner(entryOf(ref, config.modelDir), config, variants));
    }
  } catch (err) {
    send({ type: 'loadFailed', message: messageOf(err) });
    return;
  }
  const staged = new Map<string, AnyRunner>();
  // One task at a time: the pool sends the next only after this one's answer.
  let running: Promise<unknown> = Promise.resolve();
  port.on('message', (message: ToWorker) => {
    if (message.type === 'close') {
      void close([...runners.values(), ...staged.values()], variants, running);
      return;
    }
    if (message.type === 'models') {
      changeModels(message.action, runners, staged, config, variants, () => running).then(
        () => send({ type: 'models', id: message.id }),
        (err: unknown) => send({ type: 'models', id: message.id, error: messageOf(err) }),
      );
      return;
    }
    running = actOut(message.fault).then(() => infer(runners, message.task)).then(
      (result) => send({ type: 'result', id: message.id, ...result, variants: held() }),
      (err: unknown) => send({ type: 'failed', id: message.id, message: messageOf(err), variants: held() }),
    );
  });
  send({ type: 'ready' });
}

void main();
