// Latency and throughput report for mobilenet_v2_1.0_224, all measured in one run:
//   1. the bare engine in-process (threads=1 and threads=2),
//   2. decode + resize of real photos through src/preprocess/decode.ts,
//   3. end-to-end HTTP at concurrency 1 against the real server on loopback,
//   4. throughput and latency at concurrency 4 and 16,
//   5. the overhead ratio  e2e p50 (c=1) / (bare inference p50 + decode p50), target <= 1.5x,
//   6. the same server phases for each pool configuration (POOL_SIZE x ENGINE_THREADS),
//   then detection, segmentation, both engines, memory, the cost of worker isolation, and
//   our server against a FastAPI + onnxruntime peer and the CPU bound (bench/peer.ts).
// It is a report: the exit code is 0 whatever the verdict. Results also go to bench/results/latest.json.
//
//   npm run bench                   full run (~2-3 minutes on 2 cores)
//   npm run bench -- --quick        fewer iterations, for a smoke check
//   npm run bench -- --peer-only    only the section against the FastAPI peer (= --only peer)
//   npm run bench -- --help         every flag
import { mkdirSync, readFileSync, writeFileSync, existsSync } from 'node:fs';
import { availableParallelism, cpus, loadavg } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { buildApp } from '../src/app.js';
import { buildWithWeights, findEntry } from '../src/catalog/catalog.js';
import { loadConfig } from '../src/config.js';
import { type Engine } from '../src/engine/engine.js';
import { loadEngine } from '../src/engine/load.js';
import { decodeImage } from '../src/decode/decode.js';
import {
  coresText, cpuMark, ms, otherCores, progress, round, roundStats, runPhase, section, sleep, stats, table,
  type Phase, type Stats, type Timings,
} from './lib.js';
import { normalize } from '../src/worker/normalize.js';
import { benchDetection } from './detection.js';
import { benchSegmentation } from './segmentation.js';
import { benchEngineComparison } from './engines.js';
import { benchMemory } from './memory.js';
import { benchIsolation } from './isolation.js';
import { benchPrecision, type PrecisionBenchOptions } from './precision.js';
import { benchPeer } from './peer.js';

const MODEL = 'mobilenet_v2_1.0_224';
const TARGET_RATIO = 1.5;
const CLASSIFY_PATH = '/v1/classify?topk=1';
const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const IMAGES_DIR = resolve(ROOT, '../shared/images');
const DECODE_LIMITS = { maxPixels: 50e6, minSide: 1 };

// ---------------------------------------------------------------------------------------------
// Options

const HELP = `usage: npm run bench -- [flags]
  --quick              fewer iterations (smoke check, ~40 s)
  --engine-runs N      timed engine.run calls per thread count        (default 200, quick 40)
  --decode-runs N      timed decodes per photo                        (default 60, quick 15)
  --requests N         requests at concurrency 1, per configuration   (default 200, quick 40)
  --load-requests N    requests at concurrency 4 and 16, each          (default 240, quick 60)
  --max-seconds S      time cap of any one timed phase                 (default 15, quick 5)
  --rounds R           server rounds; configurations alternate A B, B A, ... and samples are
                       pooled, so slow drift on a noisy machine hits both alike (default 3, quick 1)
  --budget S           start no further round once the run would exceed S seconds; at least
                       one round always runs (default 170, quick 60)
  --configs LIST       pool configurations as POOLxTHREADS, comma-separated (default 1x2,2x1)
  --image FILE         photo POSTed to the server, under ../shared/images (default parrot.jpg)
  --only PART          only that part: precision (float32 against int8, bench/precision.ts) or
                       peer (ours against the FastAPI peer, bench/peer.ts, with --rounds,
                       --requests, --load-requests, --decode-runs for the CPU bound, --max-seconds)
  --peer-only          the same as --only peer
  --out FILE           JSON output (default bench/results/latest.json, with --only peer
                       bench/results/peer.json)`;

function options() {
  const { values } = parseArgs({
    options: {
      quick: { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
      'engine-runs': { type: 'string' },
      'decode-runs': { type: 'string' },
      requests: { type: 'string' },
      'load-requests': { type: 'string' },
      'max-seconds': { type: 'string' },
      rounds: { type: 'string' },
      budget: { type: 'string' },
      configs: { type: 'string' },
      image: { type: 'string' },
      'peer-only': { type: 'boolean', default: false },
      out: { type: 'string' },
      only: { type: 'string' },
    },
    strict: true,
  });
  if (values.help) {
    console.log(HELP);
    process.exit(0);
  }
  const quick = values.quick;
  const int = (name: string, raw: string | undefined, full: number, fast: number) => {
    if (raw === undefined) return quick ? fast : full;
    const n = Number(raw);
    if (!Number.isInteger(n) || n < 1) throw new Error(`--${name}=${raw} must be a positive integer`);
    return n;
  };
  const only = values['peer-only'] ? 'peer' : values.only;
  if (only !== undefined && only !== 'precision' && only !== 'peer') throw new Error(`--only: '${only}' is not a part that runs alone; valid: precision, peer`);
  const cores = availableParallelism();
  const configs = (values.configs ?? `1x${cores},${cores}x1`).split(',').map((spec) => {
    const match = /^(\d+)x(\d+)$/.exec(spec.trim());
    if (!match) throw new Error(`--configs: '${spec}' is not POOLxTHREADS, e.g. 1x2`);
    return { poolSize: Number(match[1]), engineThreads: Number(match[2]) };
  });
  return {
    quick,
    engineRuns: int('engine-runs', values['engine-runs'], 200, 40),
    decodeRuns: int('decode-runs', values['decode-runs'], 60, 15),
    requests: int('requests', values.requests, 200, 40),
    loadRequests: int('load-requests', values['load-requests'], 240, 60),
    maxSeconds: int('max-seconds', values['max-seconds'], 15, 5),
    rounds: int('rounds', values.rounds, 3, 1),
    budgetSeconds: int('budget', values.budget, 170, 60),
    configs,
    image: values.image ?? 'parrot.jpg',
    only,
    out: resolve(ROOT, values.out ?? (only === 'peer' ? 'bench/results/peer.json' : 'bench/results/latest.json')),
  };
}
type Options = ReturnType<typeof options>;

// ---------------------------------------------------------------------------------------------
// 1. Bare engine

interface EngineResult {
  threads: number;
  loadMs: number;
  stats: Stats;
}

/**
 * Loads one engine per thread count, warms each up, then times them in alternating blocks so
 * background noise on the shared machine falls on every thread count alike.
 */
async function benchEngines(opts: Options, photo: Uint8Array, threadCounts: number[]): Promise<EngineResult[]> {
  const { model, imported: { weights, input } } = buildWithWeights(findEntry(MODEL), join(ROOT, 'models/files'));
  const { graph } = model;
  const resolution = model.input.shape[1]!;
  const { pixels } = await decodeImage(photo, resolution, DECODE_LIMITS);
  const data = normalize(pixels, input);

  const engines: { threads: number; engine: Engine; loadMs: number; samples: number[] }[] = [];
  try {
    for (const threads of threadCounts) {
      const started = performance.now();
      const engine = await loadEngine('onnx', graph, weights, { threads });
      engines.push({ threads, engine, loadMs: performance.now() - started, samples: [] });
    }
    const warmup = opts.quick ? 5 : 15;
    for (const e of engines) for (let i = 0; i < warmup; i++) await e.engine.run({ data, batch: 1 });

    const block = 10;
    const deadline = performance.now() + opts.maxSeconds * 1000 * engines.length;
    while (engines.some((e) => e.samples.length < opts.engineRuns) && performance.now() < deadline) {
      for (const e of engines) {
        for (let i = 0; i < block && e.samples.length < opts.engineRuns; i++) {
          const started = performance.now();
          await e.engine.run({ data, batch: 1 });
          e.samples.push(performance.now() - started);
        }
      }
    }
  } finally {
    // Release before any server starts: these sessions run on the main thread and their
    // thread pools would compete with the workers for the two cores.
    for (const e of engines) await e.engine.dispose();
  }
  return engines.map((e) => ({ threads: e.threads, loadMs: e.loadMs, stats: stats(e.samples) }));
}

// ---------------------------------------------------------------------------------------------
// 2. Decode + resize

interface DecodeResult {
  file: string;
  format: string;
  width: number;
  height: number;
  bytes: number;
  stats: Stats;
}

async function benchDecode(opts: Options, files: string[]): Promise<DecodeResult[]> {
  const resolution = findEntry(MODEL).build().input.shape[1]!;
  const results: DecodeResult[] = [];
  for (const file of files) {
    const bytes = readFileSync(join(IMAGES_DIR, file));
    // A fresh copy per call, as each request brings its own buffer (libvips caches by input).
    const first = await decodeImage(Buffer.from(bytes), resolution, DECODE_LIMITS);
    for (let i = 0; i < 5; i++) await decodeImage(Buffer.from(bytes), resolution, DECODE_LIMITS);
    const samples: number[] = [];
    const deadline = performance.now() + opts.maxSeconds * 1000;
    while (samples.length < opts.decodeRuns && performance.now() < deadline) {
      const copy = Buffer.from(bytes);
      const started = performance.now();
      await decodeImage(copy, resolution, DECODE_LIMITS);
      samples.push(performance.now() - started);
    }
    results.push({ file, format: first.format, width: first.width, height: first.height, bytes: bytes.length, stats: stats(samples) });
  }
  return results;
}

// ---------------------------------------------------------------------------------------------
// 3-4. The real server over loopback HTTP

interface PoolConfig {
  poolSize: number;
  engineThreads: number;
}

const configName = (c: PoolConfig) => `POOL_SIZE=${c.poolSize} ENGINE_THREADS=${c.engineThreads}`;
const configKey = (c: PoolConfig) => `${c.poolSize}x${c.engineThreads}`;

async function benchServer(opts: Options, config: PoolConfig, body: Buffer, concurrencies: number[]): Promise<{ startMs: number; phases: Phase[]; maxQueue: number; workersResidentMb: number }> {
  const started = performance.now();
  const appConfig = loadConfig({
    ...process.env,
    PORT: '0',
    HOST: '127.0.0.1',
    MODELS: MODEL,
    POOL_SIZE: String(config.poolSize),
    ENGINE_THREADS: String(config.engineThreads),
    LOG_LEVEL: 'warn',
  });
  const app = await buildApp(appConfig);
  const phases: Phase[] = [];
  try {
    await app.listen({ port: 0, host: '127.0.0.1' });
    await app.modelsLoaded;
    const startMs = performance.now() - started;
    const address = app.server.address();
    if (address === null || typeof address === 'string') throw new Error(`unexpected server address ${String(address)}`);
    // Warm-up: connections, JIT, sharp, every worker's first real request.
    await runPhase(address.port, CLASSIFY_PATH, body, Math.max(1, config.poolSize) * 2, opts.quick ? 8 : 20, opts.maxSeconds);
    for (const concurrency of concurrencies) {
      const count = concurrency === 1 ? opts.requests : opts.loadRequests;
      progress(`${configName(config)}: concurrency ${concurrency}, up to ${count} requests / ${opts.maxSeconds} s`);
      phases.push(await runPhase(address.port, CLASSIFY_PATH, body, concurrency, count, opts.maxSeconds));
      await sleep(200);
    }
    // The worker processes' memory after the load, as they report it with their answers.
    return { startMs, phases, maxQueue: appConfig.maxQueue, workersResidentMb: app.pool.memory.residentBytes / 2 ** 20 };
  } finally {
    await app.close();
  }
}

interface PhaseSummary {
  concurrency: number;
  requests: number;
  ok: number;
  non200: Record<string, number>;
  clientErrors: number;
  throughputRps: number;
  /** Cores other processes used meanwhile, time-weighted over the phases. */
  otherCores: number;
  latency: Stats;
  server: { decode: Stats; queue: Stats; inference: Stats; total: Stats };
  top1?: string;
}

function summarize(phases: Phase[]): PhaseSummary {
  const replies = phases.flatMap((p) => p.replies);
  const ok = replies.filter((r) => r.status === 200);
  const non200: Record<string, number> = {};
  for (const r of replies) if (r.status !== 200) non200[String(r.status)] = (non200[String(r.status)] ?? 0) + 1;
  const wallMs = phases.reduce((s, p) => s + p.wallMs, 0);
  const timings = ok.map((r) => r.timings).filter((t): t is Timings => t !== undefined);
  return {
    concurrency: phases[0]!.concurrency,
    requests: replies.length,
    ok: ok.length,
    non200,
    clientErrors: phases.reduce((s, p) => s + p.errors.length, 0),
    throughputRps: (ok.length / wallMs) * 1000,
    otherCores: phases.reduce((s, p) => s + p.otherCores * p.wallMs, 0) / wallMs,
    latency: stats(ok.map((r) => r.ms)),
    server: {
      decode: stats(timings.map((t) => t.decodeMs)),
      queue: stats(timings.map((t) => t.queueMs)),
      inference: stats(timings.map((t) => t.inferenceMs)),
      total: stats(timings.map((t) => t.totalMs)),
    },
    top1: ok[0]?.label,
  };
}

// ---------------------------------------------------------------------------------------------

const precisionOptions = (opts: Options): PrecisionBenchOptions => ({
  root: ROOT, imagesDir: IMAGES_DIR, runs: opts.engineRuns, requests: opts.requests, loadRequests: opts.loadRequests, maxSeconds: opts.maxSeconds, rounds: Math.max(2, opts.rounds - 1),
});

async function main(): Promise<void> {
  const opts = options();
  const peerOptions = { imagesDir: IMAGES_DIR, requests: opts.requests, loadRequests: opts.loadRequests, maxSeconds: opts.maxSeconds, rounds: opts.rounds, boundRuns: opts.decodeRuns, quick: opts.quick };
  if (opts.only !== undefined) {
    const part = opts.only === 'peer' ? { peer: await benchPeer(peerOptions) } : { precision: await benchPrecision(precisionOptions(opts)) };
    writeResults(opts.out, { date: new Date().toISOString(), node: process.version, cores: availableParallelism(), cpu: cpus()[0]?.model.trim(), options: { ...opts, out: undefined }, ...part });
    return;
  }
  const benchStarted = performance.now();
  const weightsFile = findEntry(MODEL).weightsPath;
  if (!existsSync(weightsFile)) {
    console.error(`missing ${weightsFile}; install the models with: MODEL_MIRROR=../shared/models npx tsx scripts/fetch-models.ts`);
    process.exit(1);
  }
  const photoFiles = [...new Set([opts.image, 'parrot.jpg', 'grace_hopper.png', 'cat.png'])];
  for (const f of photoFiles) if (!existsSync(join(IMAGES_DIR, f))) throw new Error(`missing photo ${join(IMAGES_DIR, f)}`);
  const body = readFileSync(join(IMAGES_DIR, opts.image));
  const cores = availableParallelism();
  const load0 = loadavg();

  console.log(`MobileNetV2 serving benchmark: ${MODEL}${opts.quick ? ' (--quick)' : ''}`);
  console.log(`node ${process.version}, ${cores} cores (${cpus()[0]?.model.trim() ?? '?'}), load average ${load0.map((v) => v.toFixed(2)).join(' ')}`);
  console.log(`HTTP body: ${opts.image} (${body.length} bytes), raw image/jpeg POST /v1/classify?topk=1 over loopback, keep-alive node:http client`);

  // 1. Bare engine, threads 1..cores (1 and 2 here), plus any thread count a configuration uses.
  const threadCounts = [...new Set([1, cores, ...opts.configs.map((c) => c.engineThreads)])].sort((a, b) => a - b);
  progress(`bare engine: threads ${threadCounts.join(', ')}, ${opts.engineRuns} runs each`);
  let mark = cpuMark();
  const engineResults = await benchEngines(opts, body, threadCounts);
  const engineOther = otherCores(mark, cpuMark());
  section('1. Bare engine (onnxruntime-node, in-process, 1x224x224x3 float32 input)');
  console.log(table(
    ['threads', 'runs', 'p50 ms', 'p90 ms', 'p99 ms', 'mean ms', 'min ms', 'load ms'],
    engineResults.map((e) => [String(e.threads), String(e.stats.n), ms(e.stats.p50), ms(e.stats.p90), ms(e.stats.p99), ms(e.stats.mean), ms(e.stats.min), ms(e.loadMs)]),
  ));
  console.log(`  timed in alternating blocks of 10 runs; other processes used ${coresText(engineOther)} cores meanwhile`);

  // 2. Decode + resize.
  progress(`decode: ${photoFiles.join(', ')}, ${opts.decodeRuns} runs each`);
  mark = cpuMark();
  const decodeResults = await benchDecode(opts, photoFiles);
  const decodeOther = otherCores(mark, cpuMark());
  section('2. Decode + resize to 224x224 (decodeImage, sharp, sequential)');
  console.log(table(
    ['photo', 'size', 'bytes', 'runs', 'p50 ms', 'p90 ms', 'p99 ms', 'mean ms'],
    decodeResults.map((d) => [d.file, `${d.format} ${d.width}x${d.height}`, String(d.bytes), String(d.stats.n), ms(d.stats.p50), ms(d.stats.p90), ms(d.stats.p99), ms(d.stats.mean)]),
  ));
  console.log(`  other processes used ${coresText(decodeOther)} cores meanwhile`);

  // 3-4. Servers: configurations alternate between rounds (A B, B A, ...).
  const concurrencies = [1, 4, 16];
  const phasesByConfig = new Map<string, Phase[][]>(opts.configs.map((c) => [configKey(c), concurrencies.map(() => [])]));
  const startMsByConfig = new Map<string, number[]>();
  let maxQueue = 0;
  let roundsRun = 0;
  let lastRoundMs = 0;
  const workersMbByConfig = new Map<string, number[]>();
  for (let r = 0; r < opts.rounds; r++) {
    const elapsedMs = performance.now() - benchStarted;
    if (r > 0 && elapsedMs + lastRoundMs > opts.budgetSeconds * 1000) {
      progress(`stopping after ${r} round(s): another would pass the ${opts.budgetSeconds} s budget`);
      break;
    }
    const roundStarted = performance.now();
    const order = r % 2 === 0 ? opts.configs : [...opts.configs].reverse();
    for (const config of order) {
      progress(`round ${r + 1}/${opts.rounds}: server ${configName(config)}`);
      const result = await benchServer(opts, config, body, concurrencies);
      maxQueue = result.maxQueue;
      result.phases.forEach((p, i) => phasesByConfig.get(configKey(config))![i]!.push(p));
      startMsByConfig.set(configKey(config), [...(startMsByConfig.get(configKey(config)) ?? []), result.startMs]);
      workersMbByConfig.set(configKey(config), [...(workersMbByConfig.get(configKey(config)) ?? []), result.workersResidentMb]);
      await sleep(500);
    }
    roundsRun++;
    lastRoundMs = performance.now() - roundStarted;
  }
  const serverResults = opts.configs.map((config) => ({
    config,
    startMs: startMsByConfig.get(configKey(config)) ?? [],
    workersResidentMb: workersMbByConfig.get(configKey(config)) ?? [],
    phases: phasesByConfig.get(configKey(config))!.map(summarize),
    // Each round on its own, to judge the noise: c=1 p50 latency, else throughput.
    perRound: phasesByConfig.get(configKey(config))!.map((rounds) => rounds.map((p) => summarize([p]))),
  }));

  section(`3-4. End-to-end HTTP, real server in-process (MAX_QUEUE=${maxQueue}, ${roundsRun} round(s) pooled)`);
  const rows: string[][] = [];
  for (const s of serverResults) {
    for (const [i, p] of s.phases.entries()) {
      const rounds = s.perRound[i]!.map((q) => `${q.concurrency === 1 ? ms(q.latency.p50) : q.throughputRps.toFixed(0)} (${coresText(q.otherCores)})`).join('  ');
      const non200 = Object.entries(p.non200).map(([code, n]) => `${n}x${code}`).join(' ') || '0';
      rows.push([
        configKey(s.config), String(p.concurrency), String(p.requests), p.throughputRps.toFixed(1),
        ms(p.latency.p50), ms(p.latency.p90), ms(p.latency.p99),
        ms(p.server.decode.p50), ms(p.server.queue.p50), ms(p.server.inference.p50), ms(p.latency.p50 - p.server.total.p50),
        non200 + (p.clientErrors ? ` +${p.clientErrors} conn err` : ''),
        coresText(p.otherCores),
        rounds,
      ]);
    }
  }
  console.log(table(
    ['pool x thr', 'conc', 'reqs', 'req/s', 'p50 ms', 'p90 ms', 'p99 ms', 'srv dec', 'srv queue', 'srv infer', 'http ovh', 'non-200', 'other cpu', 'by round (other cpu)'],
    rows,
  ));
  console.log('  srv dec/queue/infer: p50 of the timings the server reports in each response; http ovh: client p50 minus server totalMs p50');
  console.log('  other cpu: cores other processes on the machine kept busy meanwhile (noise; above ~0.3 the row is suspect)');
  console.log('  by round: each round alone (c=1: p50 ms; c=4/16: req/s) with its other cpu, to judge the noise between rounds');
  console.log(`  server start (listen + workers loaded + warmed): ${serverResults.map((s) => `${configKey(s.config)} ${s.startMs.map((v) => ms(v)).join('/')} ms`).join(', ')}`);
  const top1 = serverResults[0]?.phases[0]?.top1;
  if (top1) console.log(`  top-1 for ${opts.image}: ${top1}`);

  // 5. Overhead ratio per configuration, against the bare engine with the same thread count.
  const bodyDecode = decodeResults.find((d) => d.file === opts.image)!;
  const ratios = serverResults.map((s) => {
    const bare = engineResults.find((e) => e.threads === s.config.engineThreads)!;
    const c1 = s.phases.find((p) => p.concurrency === 1)!;
    const baseline = bare.stats.p50 + bodyDecode.stats.p50;
    const ratio = c1.latency.p50 / baseline;
    return { config: s.config, e2eP50: c1.latency.p50, bareP50: bare.stats.p50, decodeP50: bodyDecode.stats.p50, baseline, ratio, pass: ratio <= TARGET_RATIO };
  });
  section(`5. Overhead ratio: e2e p50 (c=1) / (bare engine p50 + decode p50 of ${opts.image}), target <= ${TARGET_RATIO}x`);
  console.log(table(
    ['pool x thr', 'e2e p50', 'engine p50', 'decode p50', 'sum', 'ratio', 'verdict'],
    ratios.map((r) => [configKey(r.config), ms(r.e2eP50), `${ms(r.bareP50)} (t=${r.config.engineThreads})`, ms(r.decodeP50), ms(r.baseline), `${r.ratio.toFixed(2)}x`, r.pass ? `PASS (<= ${TARGET_RATIO}x)` : `FAIL (> ${TARGET_RATIO}x)`]),
  ));

  // 6. Which configuration should be the default.
  const defaults = loadConfig({ MODELS: MODEL });
  const defaultKey = configKey({ poolSize: defaults.poolSize, engineThreads: defaults.engineThreads });
  const at = (s: (typeof serverResults)[number], c: number) => s.phases.find((p) => p.concurrency === c)!;
  const best = (pick: (s: (typeof serverResults)[number]) => number, lowerIsBetter: boolean) =>
    [...serverResults].sort((a, b) => (lowerIsBetter ? pick(a) - pick(b) : pick(b) - pick(a)))[0]!;
  const bestLatency = best((s) => at(s, 1).latency.p50, true);
  const bestThroughput = best((s) => Math.max(at(s, 4).throughputRps, at(s, 16).throughputRps), false);
  const load1 = loadavg();

  const detection = await benchDetection({
    root: ROOT,
    imagesDir: IMAGES_DIR,
    photos: ['kite_and_cold.jpg', 'pets.jpg', 'grace_hopper.png'],
    requests: Math.ceil(opts.requests / 2),
    loadRequests: Math.ceil(opts.loadRequests / 2),
    maxSeconds: opts.maxSeconds,
  });
  const segmentation = await benchSegmentation({ root: ROOT, imagesDir: IMAGES_DIR, runs: opts.quick ? 3 : 10, maxSeconds: opts.maxSeconds });
  const engines = await benchEngineComparison({ root: ROOT, imagesDir: IMAGES_DIR, runs: opts.quick ? 10 : 40, requests: opts.quick ? 12 : 40, maxSeconds: opts.maxSeconds });
  const memory = await benchMemory({ runs: opts.quick ? 10 : 40, maxSeconds: opts.maxSeconds });
  const isolation = await benchIsolation({ roundTrips: opts.quick ? 200 : 1000 });
  const precision = await benchPrecision(precisionOptions(opts));
  const peer = await benchPeer(peerOptions);

  section('Summary');
  const engineLine = engineResults.map((e) => `threads=${e.threads} p50 ${ms(e.stats.p50)} / p99 ${ms(e.stats.p99)} ms`).join('; ');
  console.log(`bare engine       ${engineLine}`);
  console.log(`decode+resize     ${decodeResults.map((d) => `${d.file} p50 ${ms(d.stats.p50)} / p99 ${ms(d.stats.p99)} ms`).join('; ')}`);
  for (const s of serverResults) {
    const [c1, c4, c16] = [at(s, 1), at(s, 4), at(s, 16)];
    const non200 = s.phases.reduce((n, p) => n + p.requests - p.ok, 0);
    console.log(
      `${configKey(s.config).padEnd(5)}${configKey(s.config) === defaultKey ? ' (default)' : '          '}  ` +
        `c=1 p50 ${ms(c1.latency.p50)} / p99 ${ms(c1.latency.p99)} ms;  ` +
        `c=4 ${c4.throughputRps.toFixed(1)} req/s (p50 ${ms(c4.latency.p50)}, p99 ${ms(c4.latency.p99)});  ` +
        `c=16 ${c16.throughputRps.toFixed(1)} req/s (p50 ${ms(c16.latency.p50)}, p99 ${ms(c16.latency.p99)});  non-200: ${non200};  ` +
        `worker processes ${s.workersResidentMb.map((v) => v.toFixed(0)).join('/')} MB resident after the load`,
    );
  }
  for (const r of ratios) {
    console.log(`ratio ${configKey(r.config).padEnd(5)}       ${r.ratio.toFixed(2)}x  ${r.pass ? 'PASS' : 'FAIL'} (target <= ${TARGET_RATIO}x)`);
  }
  console.log(`lowest c=1 latency: ${configKey(bestLatency.config)}; highest throughput: ${configKey(bestThroughput.config)}; current default: ${defaultKey} (POOL_SIZE=${defaults.poolSize}, ENGINE_THREADS=${defaults.engineThreads})`);
  const serverOther = serverResults.flatMap((s) => s.phases.map((p) => p.otherCores));
  const worstOther = Math.max(engineOther, decodeOther, ...serverOther);
  console.log(
    `noise             other processes used up to ${coresText(worstOther)} cores during a measurement` +
      (worstOther > 0.3 ? ' -- the machine was not quiet; compare the by-round columns or rerun' : ' (quiet enough)'),
  );
  console.log(`load average before ${load0.map((v) => v.toFixed(2)).join(' ')}, after ${load1.map((v) => v.toFixed(2)).join(' ')}; total ${((performance.now() - benchStarted) / 1000).toFixed(0)} s`);

  const json = {
    model: MODEL,
    date: new Date().toISOString(),
    node: process.version,
    cores,
    cpu: cpus()[0]?.model.trim(),
    loadAverage: { before: load0, after: load1 },
    options: { ...opts, out: undefined },
    roundsRun,
    image: { file: opts.image, bytes: body.length },
    otherCores: { engine: round(engineOther), decode: round(decodeOther) },
    engine: engineResults.map((e) => ({ threads: e.threads, loadMs: round(e.loadMs), latencyMs: roundStats(e.stats) })),
    decode: decodeResults.map((d) => ({ ...d, stats: undefined, latencyMs: roundStats(d.stats) })),
    servers: serverResults.map((s) => ({
      poolSize: s.config.poolSize,
      engineThreads: s.config.engineThreads,
      isDefault: configKey(s.config) === defaultKey,
      startMs: s.startMs.map((v) => round(v)),
      workersResidentMb: s.workersResidentMb.map((v) => round(v, 0)),
      perRound: s.perRound.map((rounds) => rounds.map((q) => ({ concurrency: q.concurrency, ok: q.ok, otherCores: round(q.otherCores), throughputRps: round(q.throughputRps), p50Ms: round(q.latency.p50), p99Ms: round(q.latency.p99) }))),
      phases: s.phases.map((p) => ({
        concurrency: p.concurrency,
        requests: p.requests,
        ok: p.ok,
        non200: p.non200,
        clientErrors: p.clientErrors,
        throughputRps: round(p.throughputRps),
        otherCores: round(p.otherCores),
        latencyMs: roundStats(p.latency),
        serverMs: { decode: roundStats(p.server.decode), queue: roundStats(p.server.queue), inference: roundStats(p.server.inference), total: roundStats(p.server.total) },
      })),
    })),
    ratio: ratios.map((r) => ({
      poolSize: r.config.poolSize,
      engineThreads: r.config.engineThreads,
      e2eP50Ms: round(r.e2eP50),
      engineP50Ms: round(r.bareP50),
      decodeP50Ms: round(r.decodeP50),
      ratio: round(r.ratio),
      target: TARGET_RATIO,
      pass: r.pass,
    })),
    best: { latency: configKey(bestLatency.config), throughput: configKey(bestThroughput.config), default: defaultKey },
    detection,
    segmentation,
    engines,
    memory,
    isolation,
    precision,
    peer,
    totalSeconds: round((performance.now() - benchStarted) / 1000, 1),
  };
  writeResults(opts.out, json);
}

function writeResults(out: string, json: object): void {
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(out, `${JSON.stringify(json, null, 2)}\n`);
  console.log(`\nresults written to ${out}`);
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
