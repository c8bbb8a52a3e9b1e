// float32 against int8 for each task that has int8: the bare engine (1 thread, batch 1) in this
// process, then the real server (POOL_SIZE = cores, each worker single-threaded) over loopback at
// concurrency 1 and 16. Precisions alternate (blocks of runs; servers A B, B A) so drift on a
// shared machine falls on both. Also what int8 adds to a load: calibrating without the cache, and
// loading with it.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { buildApp } from '../src/app.js';
import { findEntry, loadWeights } from '../src/catalog/catalog.js';
import type { Precision } from '../src/engine/engine.js';
import { loadConfig } from '../src/config.js';
import { decodeImage } from '../src/decode/decode.js';
import type { Engine } from '../src/engine/engine.js';
import { calibrate } from '../src/engine/onnx/calibrate.js';
import { loadEngine } from '../src/engine/load.js';
import { activationRanges, calibrationInputs } from '../src/worker/calibration.js';
import { normalize } from '../src/worker/normalize.js';
import { ms, progress, round, roundStats, runPhase, section, sleep, stats, table, type Phase, type Stats } from './lib.js';

const TASKS = [
  { task: 'classification', model: 'mobilenet_v2_1.0_224', path: '/v1/classify?topk=1', photo: 'parrot.jpg' },
  { task: 'detection', model: 'ssdlite_mobilenet_v2_coco', path: '/v1/detect', photo: 'kite_and_cold.jpg' },
] as const;
const PRECISIONS: Precision[] = ['float32', 'int8'];
const LIMITS = { maxPixels: 5e7, minSide: 1 };

export interface PrecisionBenchOptions {
  root: string;
  imagesDir: string;
  /** Timed bare runs per precision and task. */
  runs: number;
  /** Requests per server phase at concurrency 1, and at 16. */
  requests: number;
  loadRequests: number;
  maxSeconds: number;
  /** Server rounds, precisions alternating. */
  rounds: number;
}

interface Bare {
  precision: Precision;
  loadMs: number;
  stats: Stats;
}

async function bare(model: string, photo: Buffer, opts: PrecisionBenchOptions): Promise<{ rows: Bare[]; calibrationMs: number; photos: number }> {
  const entry = findEntry(model);
  const { model: built, weights, normalization } = loadWeights(entry);
  const data = normalize((await decodeImage(photo, built.input.shape[1]!, LIMITS, entry.preprocess)).pixels, normalization);
  const modelDir = join(opts.root, 'models/files');
  // Calibration as a load without the cache does it (the photos decoded here are not timed).
  const inputs = await calibrationInputs(entry, built.input.shape[1]!, normalization, modelDir);
  const calibrationStarted = performance.now();
  await calibrate(built.graph, weights, inputs);
  const calibrationMs = performance.now() - calibrationStarted;
  const engines: { precision: Precision; engine: Engine; loadMs: number; samples: number[] }[] = [];
  try {
    for (const precision of PRECISIONS) {
      const started = performance.now();
      // With the cache, as every load after the first one.
      const quantization = precision === 'int8' ? await activationRanges(entry, built.graph, weights, normalization, modelDir) : undefined;
      const engine = await loadEngine('onnx', built.graph, weights, { threads: 1, quantization });
      engines.push({ precision, engine, loadMs: performance.now() - started, samples: [] });
    }
    for (const e of engines) for (let i = 0; i < 5; i++) await e.engine.run({ data, batch: 1 });
    const deadline = performance.now() + opts.maxSeconds * 1000 * engines.length;
    while (engines.some((e) => e.samples.length < opts.runs) && performance.now() < deadline) {
      for (const e of engines) {
        for (let i = 0; i < 10 && e.samples.length < opts.runs; i++) {
          const started = performance.now();
          await e.engine.run({ data, batch: 1 });
          e.samples.push(performance.now() - started);
        }
      }
    }
  } finally {
    for (const e of engines) await e.engine.dispose();
  }
  return { rows: engines.map((e) => ({ precision: e.precision, loadMs: e.loadMs, stats: stats(e.samples) })), calibrationMs, photos: inputs.length };
}

async function server(model: string, path: string, body: Buffer, precision: Precision, opts: PrecisionBenchOptions): Promise<{ c1: Phase; c16: Phase }> {
  const app = await buildApp(loadConfig({ ...process.env, PORT: '0', HOST: '127.0.0.1', MODELS: model, PRECISION: precision, ENGINE_THREADS: '1', LOG_LEVEL: 'warn' }));
  try {
    await app.listen({ port: 0, host: '127.0.0.1' });
    await app.modelsLoaded;
    const address = app.server.address();
    if (address === null || typeof address === 'string') throw new Error(`unexpected server address ${String(address)}`);
    await runPhase(address.port, path, body, 4, 16, opts.maxSeconds);
    const c1 = await runPhase(address.port, path, body, 1, opts.requests, opts.maxSeconds);
    await sleep(200);
    const c16 = await runPhase(address.port, path, body, 16, opts.loadRequests, opts.maxSeconds);
    return { c1, c16 };
  } finally {
    await app.close();
  }
}

const okMs = (phases: Phase[]) => stats(phases.flatMap((p) => p.replies.filter((r) => r.status === 200).map((r) => r.ms)));
const throughput = (phases: Phase[]) => {
  const ok = phases.reduce((n, p) => n + p.replies.filter((r) => r.status === 200).length, 0);
  return (ok / phases.reduce((s, p) => s + p.wallMs, 0)) * 1000;
};

export async function benchPrecision(opts: PrecisionBenchOptions) {
  const results = [];
  for (const t of TASKS) {
    const photo = readFileSync(join(opts.imagesDir, t.photo));
    progress(`precision, ${t.task}: bare engine float32 and int8, ${opts.runs} runs each`);
    const { rows, calibrationMs, photos } = await bare(t.model, photo, opts);
    const phases = new Map(PRECISIONS.map((p) => [p, { c1: [] as Phase[], c16: [] as Phase[] }]));
    for (let r = 0; r < opts.rounds; r++) {
      for (const precision of r % 2 === 0 ? PRECISIONS : [...PRECISIONS].reverse()) {
        progress(`precision, ${t.task}: server ${precision}, round ${r + 1}/${opts.rounds}`);
        const { c1, c16 } = await server(t.model, t.path, photo, precision, opts);
        phases.get(precision)!.c1.push(c1);
        phases.get(precision)!.c16.push(c16);
      }
    }
    results.push({
      task: t.task,
      model: t.model,
      photo: t.photo,
      calibration: { photos, ms: calibrationMs },
      precisions: rows.map((b) => {
        const p = phases.get(b.precision)!;
        return { precision: b.precision, loadMs: b.loadMs, bare: b.stats, c1: okMs(p.c1), c16Rps: throughput(p.c16), non200: [...p.c1, ...p.c16].flatMap((q) => q.replies).filter((r) => r.status !== 200).length };
      }),
    });
  }

  section('Precision: float32 against int8 (bare: 1 thread, batch 1; server: POOL_SIZE = cores, ENGINE_THREADS=1)');
  console.log(table(
    ['task', 'precision', 'bare p50 ms', 'bare p99 ms', 'engine load ms', 'c=1 p50 ms', 'c=1 p99 ms', 'c=16 req/s', 'non-200'],
    results.flatMap((r) => r.precisions.map((p) => [r.task, p.precision, ms(p.bare.p50), ms(p.bare.p99), ms(p.loadMs), ms(p.c1.p50), ms(p.c1.p99), p.c16Rps.toFixed(1), String(p.non200)])),
  ));
  for (const r of results) {
    const [f, q] = r.precisions as [(typeof r.precisions)[number], (typeof r.precisions)[number]];
    console.log(`  ${r.task} (${r.photo}): int8 / float32 bare p50 ${(q.bare.p50 / f.bare.p50).toFixed(2)}x, c=1 p50 ${(q.c1.p50 / f.c1.p50).toFixed(2)}x, c=16 throughput ${(q.c16Rps / f.c16Rps).toFixed(2)}x; calibration without the cache ${ms(r.calibration.ms)} ms on ${r.calibration.photos} photos (engine load ms above: with it)`);
  }
  return results.map((r) => ({
    ...r,
    calibration: { photos: r.calibration.photos, ms: round(r.calibration.ms) },
    precisions: r.precisions.map((p) => ({ ...p, loadMs: round(p.loadMs), bare: roundStats(p.bare), c1: roundStats(p.c1), c16Rps: round(p.c16Rps) })),
  }));
}
