// A pool worker: loads and warms up its models, reports ready, then runs one task at a time.
// Inference happens here, never on the main thread's event loop.
import { parentPort, workerData } from 'node:worker_threads';
import { entryOf } from '../catalog/catalog.js';
import type { FromWorker, InferTask, ToWorker, WorkerConfig } from '../pool/messages.js';
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

async function close(runners: Map<string, AnyRunner>, variants: VariantCache, running: Promise<unknown>): Promise<void> {
  // An engine must not be released under a run: let the current task finish first.
  await running.catch(() => {});
  await variants.clear();
  for (const runner of runners.values()) await runner.dispose();
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
  // One task at a time: the pool sends the next only after this one's answer.
  let running: Promise<unknown> = Promise.resolve();
  port.on('message', (message: ToWorker) => {
    if (message.type === 'close') {
      void close(runners, variants, running);
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
