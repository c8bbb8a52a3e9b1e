// ONNX Runtime and TensorFlow.js side by side for each task: the bare engine in this process, then
// the real server (POOL_SIZE = cores, each worker single-threaded) over loopback, at concurrency 1
// and 4. Engines alternate per task so drift on a shared machine falls on both.
import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { buildApp } from '../src/app.js';
import { buildWithWeights, findEntry } from '../src/catalog/catalog.js';
import { loadConfig } from '../src/config.js';
import { type EngineName } from '../src/engine/engine.js';
import { loadEngine } from '../src/engine/load.js';
import { decodeImage } from '../src/decode/decode.js';
import { normalize } from '../src/worker/normalize.js';
import { ms, progress, round, roundStats, runPhase, section, stats, table, type Stats } from './lib.js';

const TASKS = [
  { task: 'classification', model: 'mobilenet_v2_1.0_224', path: '/v1/classify?topk=1', photo: 'parrot.jpg' },
  { task: 'detection', model: 'ssdlite_mobilenet_v2_coco', path: '/v1/detect', photo: 'kite_and_cold.jpg' },
  { task: 'segmentation', model: 'deeplabv3_mobilenet_v2_0.5_257', path: '/v1/segment', photo: 'dog_segmentation.png' },
] as const;
const ENGINES: EngineName[] = ['onnx', 'tfjs'];

export interface EnginesBenchOptions {
  root: string;
  imagesDir: string;
  /** Timed bare runs per engine and task. */
  runs: number;
  /** Requests per server phase. */
  requests: number;
  maxSeconds: number;
}

interface Row {
  task: string;
  model: string;
  engine: EngineName;
  bare: Stats;
  c1: Stats;
  c4Rps: number;
  non200: number;
}

async function bare(engine: EngineName, model: string, photo: Buffer, opts: EnginesBenchOptions): Promise<Stats> {
  const { model: built, imported: { weights, input } } = buildWithWeights(findEntry(model), join(opts.root, 'models/files'));
  const { graph } = built;
  const data = normalize((await decodeImage(photo, built.input.shape[1]!, { maxPixels: 5e7, minSide: 1 })).pixels, input);
  const e = await loadEngine(engine, graph, weights, { threads: 1, tfjsBackend: 'wasm' });
  try {
    for (let i = 0; i < 3; i++) await e.run({ data, batch: 1 });
    const samples: number[] = [];
    const deadline = performance.now() + opts.maxSeconds * 1000;
    while (samples.length < opts.runs && performance.now() < deadline) {
      const started = performance.now();
      await e.run({ data, batch: 1 });
      samples.push(performance.now() - started);
    }
    return stats(samples);
  } finally {
    await e.dispose();
  }
}

async function served(engine: EngineName, model: string, path: string, body: Buffer, opts: EnginesBenchOptions) {
  const app = await buildApp(loadConfig({
    ...process.env, PORT: '0', HOST: '127.0.0.1', MODELS: model, ENGINE: engine, TFJS_BACKEND: 'wasm',
    POOL_SIZE: String(availableParallelism()), ENGINE_THREADS: '1', LOG_LEVEL: 'warn',
  }));
  try {
    await app.listen({ port: 0, host: '127.0.0.1' });
    await app.modelsLoaded;
    const { port } = app.server.address() as { port: number };
    await runPhase(port, path, body, 2, 4, opts.maxSeconds);
    const one = await runPhase(port, path, body, 1, opts.requests, opts.maxSeconds);
    const four = await runPhase(port, path, body, 4, opts.requests, opts.maxSeconds);
    const ok = (replies: typeof one.replies) => replies.filter((r) => r.status === 200);
    return {
      c1: stats(ok(one.replies).map((r) => r.ms)),
      c4Rps: (ok(four.replies).length / four.wallMs) * 1000,
      non200: one.replies.length + four.replies.length - ok(one.replies).length - ok(four.replies).length,
    };
  } finally {
    await app.close();
  }
}

export async function benchEngineComparison(opts: EnginesBenchOptions) {
  const rows: Row[] = [];
  for (const [t, { task, model, path, photo }] of TASKS.entries()) {
    const body = readFileSync(join(opts.imagesDir, photo));
    // Alternate which engine goes first from task to task.
    for (const engine of t % 2 === 0 ? ENGINES : [...ENGINES].reverse()) {
      progress(`engines: ${task} on ${engine}, bare then served`);
      const b = await bare(engine, model, body, opts);
      rows.push({ task, model, engine, bare: b, ...(await served(engine, model, path, body, opts)) });
    }
  }
  rows.sort((a, b) => TASKS.findIndex((t) => t.task === a.task) - TASKS.findIndex((t) => t.task === b.task) || ENGINES.indexOf(a.engine) - ENGINES.indexOf(b.engine));

  section(`Engines side by side: ONNX Runtime vs TensorFlow.js (wasm), bare and served (${availableParallelism()} workers x 1 thread)`);
  console.log(table(
    ['task', 'model', 'engine', 'bare p50 ms', 'bare p99 ms', 'e2e c=1 p50 ms', 'e2e c=1 p99 ms', 'c=4 req/s', 'non-200'],
    rows.map((r) => [r.task, r.model, r.engine, ms(r.bare.p50), ms(r.bare.p99), ms(r.c1.p50), ms(r.c1.p99), r.c4Rps.toFixed(1), String(r.non200)]),
  ));
  for (const { task } of TASKS) {
    const [onnx, tfjs] = ENGINES.map((e) => rows.find((r) => r.task === task && r.engine === e)!);
    console.log(`  ${task}: bare p50 TensorFlow.js / ONNX Runtime ${(tfjs!.bare.p50 / onnx!.bare.p50).toFixed(1)}x; served c=4 throughput ONNX Runtime / TensorFlow.js ${(onnx!.c4Rps / tfjs!.c4Rps).toFixed(1)}x`);
  }
  return rows.map((r) => ({ task: r.task, model: r.model, engine: r.engine, bareMs: roundStats(r.bare), e2eC1Ms: roundStats(r.c1), c4Rps: round(r.c4Rps), non200: r.non200 }));
}
