// The FastAPI peer (bench/peer/app.py): the service a user writes in an afternoon, FastAPI +
// uvicorn (2 processes) + onnxruntime + Pillow, on the very ONNX bytes our service runs and the
// same preprocessing. This file makes its venv, writes the model for it, starts and stops it, and
// runs the bench section that alternates it with our server on the same photos and client.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { get as httpGet } from 'node:http';
import { createServer } from 'node:net';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import sharp from 'sharp';
import { findEntry, loadWeights, type ClassifierEntry } from '../src/catalog/catalog.js';
import { decodeImage } from '../src/decode/decode.js';
import { DEFAULT_CENTRAL_FRACTION } from '../src/decode/preprocess.js';
import { emitOnnx, onnxInputName } from '../src/engine/onnx/emit.js';
import { loadEngine } from '../src/engine/load.js';
import { normalize } from '../src/worker/normalize.js';
import { coresText, ms, progress, round, roundStats, runPhase, section, sleep, stats, table, USER_HZ, type Phase, type Stats } from './lib.js';

const run = promisify(execFile);
const ROOT = fileURLToPath(new URL('..', import.meta.url));
const PEER_DIR = join(ROOT, 'bench/peer');
const REQUIREMENTS = join(PEER_DIR, 'requirements.txt');
const VENV = join(ROOT, 'node_modules/.cache/bench-peer-venv');
export const PEER_MODEL = 'mobilenet_v2_1.0_224';
/** uvicorn's worker processes, as many as our pool's default (one single-threaded worker per core). */
export const PEER_WORKERS = 2;

export const TARGETS = { c1P50: 0.8, c16Throughput: 1.3, cpuBound: 0.9 };

// ---------------------------------------------------------------------------------------------
// Venv, model, process

/** The venv's python, made (again) when requirements.txt changed since it was. */
export async function peerPython(): Promise<string> {
  const python = join(VENV, 'bin/python');
  const stamp = join(VENV, '.installed');
  const wanted = createHash('sha256').update(readFileSync(REQUIREMENTS)).digest('hex');
  if (existsSync(stamp) && readFileSync(stamp, 'utf8') === wanted) return python;
  rmSync(VENV, { recursive: true, force: true });
  await run('python3', ['-m', 'venv', VENV]);
  // No retries: an unreachable default index then costs one failed lookup, not five with back-off.
  await run(python, ['-m', 'pip', 'install', '--quiet', '--retries', '0', '-r', REQUIREMENTS], { timeout: 600_000 });
  writeFileSync(stamp, wanted);
  return python;
}

export interface PeerModel {
  dir: string;
  /** PEER_CONFIG files by ONNX Runtime intra-op threads (0: its default). */
  config(threads: number): string;
  dispose(): void;
}

/** Our float32 ONNX bytes for the model, and what app.py needs to prepare photos exactly as our config says. */
export function writePeerModel(entry: ClassifierEntry = findEntry(PEER_MODEL) as ClassifierEntry): PeerModel {
  const { preprocess } = entry;
  if (preprocess.crop !== 'central' || preprocess.kernel !== 'bilinear') {
    throw new Error(`${entry.name}: the peer prepares photos with a central crop and the bilinear kernel, not ${preprocess.crop}/${preprocess.kernel}`);
  }
  const { model, weights, normalization } = loadWeights(entry);
  const dir = mkdtempSync(join(tmpdir(), 'bench-peer-'));
  const onnxFile = join(dir, 'model.onnx');
  writeFileSync(onnxFile, emitOnnx(model.graph, weights));
  const base = {
    model: onnxFile,
    labels: entry.labels,
    labelOffset: entry.labelOffset,
    resolution: model.input.shape[1],
    fraction: preprocess.fraction ?? DEFAULT_CENTRAL_FRACTION,
    scale: normalization.scale,
    zeroPoint: normalization.zeroPoint,
    channels: normalization.channels,
    input: onnxInputName(model.graph.inputs[0]!),
    output: model.probabilities.name,
  };
  return {
    dir,
    config(threads) {
      const file = join(dir, `peer-${threads}.json`);
      if (!existsSync(file)) writeFileSync(file, JSON.stringify({ ...base, threads }));
      return file;
    },
    dispose: () => rmSync(dir, { recursive: true, force: true }),
  };
}

async function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolvePort(port));
    });
  });
}

/** The process and its descendants, from /proc/<pid>/task/<tid>/children. */
function processTree(pid: number): number[] {
  const pids = [pid];
  for (let i = 0; i < pids.length; i++) {
    try {
      for (const task of readdirSync(`/proc/${pids[i]}/task`)) {
        const children = readFileSync(`/proc/${pids[i]}/task/${task}/children`, 'utf8').trim();
        if (children) pids.push(...children.split(/\s+/).map(Number));
      }
    } catch {
      // gone meanwhile
    }
  }
  return pids;
}

/** VmRSS of the processes, summed, in MiB (NaN off Linux). */
export function residentMb(pids: number[]): number {
  let kb = 0;
  for (const pid of pids) {
    try {
      kb += Number(/^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? NaN);
    } catch {
      return NaN;
    }
  }
  return kb / 1024;
}

/** The pid /health answers with, over a connection of its own; undefined while nothing answers. */
function healthPid(port: number): Promise<number | undefined> {
  return new Promise((resolvePid) => {
    const req = httpGet({ host: '127.0.0.1', port, path: '/health', agent: false }, (res) => {
      let body = '';
      res.on('data', (chunk: Buffer) => (body += chunk.toString()));
      res.on('end', () => {
        try {
          resolvePid(res.statusCode === 200 ? (JSON.parse(body) as { pid: number }).pid : undefined);
        } catch {
          resolvePid(undefined);
        }
      });
    });
    req.on('error', () => resolvePid(undefined));
  });
}

/** Resident memory of a service's processes: all of them, and those that serve (not the master). */
export interface Resident {
  totalMb: number;
  servingMb: number;
  processes: number;
}

/** CPU seconds the processes have used (utime + stime of /proc/<pid>/stat; NaN off Linux). */
export function cpuSeconds(pids: number[]): number {
  let ticks = 0;
  for (const pid of pids) {
    try {
      // Fields after the parenthesized command name, which may itself hold spaces.
      const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
      ticks += Number(fields[11]) + Number(fields[12]);
    } catch {
      return NaN;
    }
  }
  return ticks / USER_HZ;
}

export interface Peer {
  port: number;
  /** The processes that serve: uvicorn's master and everything it started. */
  pids(): number[];
  /** uvicorn's master and everything it started. */
  resident(): Resident;
  stop(): Promise<void>;
}

/** Stops a server process: SIGTERM, then SIGKILL after `graceMs`; resolves once it has exited. */
function stopper(child: ChildProcess, graceMs: number): () => Promise<void> {
  const exited = new Promise<void>((resolveExit) => child.once('exit', () => resolveExit()));
  return async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
    await exited;
    clearTimeout(timer);
  };
}

/** uvicorn with PEER_WORKERS processes on a free loopback port, answering once every worker has loaded. */
export async function startPeer(python: string, configFile: string, workers = PEER_WORKERS): Promise<Peer> {
  const port = await freePort();
  const child: ChildProcess = spawn(
    python,
    ['-m', 'uvicorn', 'app:app', '--app-dir', PEER_DIR, '--host', '127.0.0.1', '--port', String(port), '--workers', String(workers), '--log-level', 'warning', '--no-access-log'],
    { env: { ...process.env, PEER_CONFIG: configFile }, stdio: ['ignore', 'inherit', 'pipe'] },
  );
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => {
    stderr = (stderr + chunk.toString()).slice(-4000);
  });
  const stop = stopper(child, 10_000);
  try {
    // Each worker loads the model before it accepts: ready once /health, asked over a new
    // connection each time (the workers share the listening socket), has answered from each.
    const seen = new Set<number>();
    const deadline = performance.now() + 120_000;
    while (seen.size < workers) {
      if (child.exitCode !== null) throw new Error(`the peer exited with ${child.exitCode}: ${stderr}`);
      if (performance.now() > deadline) throw new Error(`the peer did not answer from ${workers} workers within 120 s: ${stderr}`);
      const pid = await healthPid(port);
      if (pid === undefined) await sleep(200);
      else seen.add(pid);
    }
  } catch (err) {
    await stop();
    throw err;
  }
  return {
    port,
    pids: () => processTree(child.pid!),
    resident: () => {
      const pids = processTree(child.pid!);
      return { totalMb: residentMb(pids), servingMb: residentMb(pids.slice(1)), processes: pids.length };
    },
    stop,
  };
}

/**
 * Our server as `npm start` runs it (its command, flags and defaults), in a process of its own as
 * the peer is: in this process its event loop would also carry the bench client's work.
 */
async function startOurs(env: NodeJS.ProcessEnv): Promise<Peer & { workers(): number }> {
  const port = await freePort();
  const start = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { scripts: { start: string } }).scripts.start;
  // `exec` in the script: the shell becomes the server, so child.pid is the server's.
  const child = spawn('sh', ['-c', start], { cwd: ROOT, env: { ...process.env, ...env, PORT: String(port), HOST: '127.0.0.1' }, stdio: ['ignore', 'inherit', 'inherit'] });
  // Past its own drain timeout (DRAIN_TIMEOUT_MS, 25 s) and margin.
  const stop = stopper(child, 30_000);
  const deadline = performance.now() + 180_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`our server exited with ${child.exitCode}`);
    if (performance.now() > deadline) {
      await stop();
      throw new Error('our server was not ready within 180 s');
    }
    const status = await new Promise<number>((resolveGet) => {
      httpGet({ host: '127.0.0.1', port, path: '/readyz' }, (res) => {
        res.resume();
        resolveGet(res.statusCode ?? 0);
      }).on('error', () => resolveGet(0));
    });
    if (status === 200) break;
    await sleep(200);
  }
  const pids = () => processTree(child.pid!);
  return {
    port,
    pids,
    resident: () => {
      const tree = pids();
      return { totalMb: residentMb(tree), servingMb: residentMb(tree.slice(1)), processes: tree.length };
    },
    workers: () => pids().length - 1,
    stop,
  };
}

// ---------------------------------------------------------------------------------------------
// The bench section

export interface PeerBenchOptions {
  imagesDir: string;
  requests: number;
  loadRequests: number;
  maxSeconds: number;
  rounds: number;
  /** Timed decode + inference runs per photo for the CPU bound. */
  boundRuns: number;
  quick: boolean;
}

const CLASSIFY = { ours: '/v1/classify?topk=1', peer: '/classify?topk=1' };
const CONCURRENCIES = [1, 4, 16] as const;

interface Side {
  name: string;
  port: number;
  path: string;
  /** Its processes other than this one, whose CPU is its own work, not noise. */
  pids(): number[];
  resident(): Resident;
}

interface Photo {
  name: string;
  body: Buffer;
}

/** A 640x480 JPEG at quality 85 from a shared photo: the small upload a phone app would send. */
async function smallJpeg(imagesDir: string, dir: string): Promise<Photo> {
  const body = await sharp(join(imagesDir, 'kite_and_cold.jpg')).rotate().resize(640, 480, { fit: 'cover' }).jpeg({ quality: 85 }).toBuffer();
  writeFileSync(join(dir, 'small-640x480-q85.jpg'), body);
  return { name: 'small 640x480 q85 JPEG', body };
}

/**
 * CPU seconds per request of the two things a request must do, in this process, one at a time:
 * decode + resize as our config says, and inference on one thread. Two cores divided by their
 * sum is the most requests per second any server can answer on this machine.
 */
async function cpuPerRequest(entry: ClassifierEntry, photos: Photo[], runs: number): Promise<{ decodeMs: number; inferenceMs: number }[]> {
  const { model, weights, normalization } = loadWeights(entry);
  const engine = await loadEngine('onnx', model.graph, weights, { threads: 1 });
  const resolution = model.input.shape[1]!;
  const limits = { maxPixels: 50e6, minSide: 1 };
  const cpuMs = () => {
    const { user, system } = process.cpuUsage();
    return (user + system) / 1000;
  };
  try {
    const results = [];
    for (const photo of photos) {
      const { pixels } = await decodeImage(Buffer.from(photo.body), resolution, limits, entry.preprocess);
      const data = normalize(pixels, normalization);
      for (let i = 0; i < 5; i++) {
        await decodeImage(Buffer.from(photo.body), resolution, limits, entry.preprocess);
        await engine.run({ data, batch: 1 });
      }
      let [decodeMs, inferenceMs] = [0, 0];
      for (let i = 0; i < runs; i++) {
        const copy = Buffer.from(photo.body); // each request brings its own buffer
        let started = cpuMs();
        await decodeImage(copy, resolution, limits, entry.preprocess);
        decodeMs += cpuMs() - started;
        started = cpuMs();
        await engine.run({ data, batch: 1 });
        inferenceMs += cpuMs() - started;
      }
      results.push({ decodeMs: decodeMs / runs, inferenceMs: inferenceMs / runs });
    }
    return results;
  } finally {
    await engine.dispose();
  }
}

interface Summary {
  requests: number;
  ok: number;
  non200: number;
  throughputRps: number;
  otherCores: number;
  latency: Stats;
  top1?: string;
}

function summarize(phases: Phase[]): Summary {
  const replies = phases.flatMap((p) => p.replies);
  const ok = replies.filter((r) => r.status === 200);
  const wallMs = phases.reduce((s, p) => s + p.wallMs, 0);
  return {
    requests: replies.length,
    ok: ok.length,
    non200: replies.length - ok.length + phases.reduce((s, p) => s + p.errors.length, 0),
    throughputRps: (ok.length / wallMs) * 1000,
    otherCores: phases.reduce((s, p) => s + p.otherCores * p.wallMs, 0) / wallMs,
    latency: stats(ok.map((r) => r.ms)),
    top1: ok[0]?.label,
  };
}

/**
 * runPhase, with the side's processes taken out of its noise figure: runPhase counts all but this
 * process as other, but our worker processes and the peer's are the work being measured.
 */
async function measure(side: Side, body: Buffer, concurrency: number, count: number, maxSeconds: number): Promise<Phase> {
  const pids = side.pids();
  const before = cpuSeconds(pids);
  const phase = await runPhase(side.port, side.path, body, concurrency, count, maxSeconds);
  const own = (cpuSeconds(pids) - before) / (phase.wallMs / 1000);
  return { ...phase, otherCores: Math.max(0, phase.otherCores - own) };
}

const pass = (ok: boolean) => (ok ? 'PASS' : 'FAIL');

export async function benchPeer(opts: PeerBenchOptions) {
  const entry = findEntry(PEER_MODEL) as ClassifierEntry;
  const scratch = mkdtempSync(join(tmpdir(), 'bench-peer-photos-'));
  const photos: Photo[] = [
    { name: 'parrot.jpg', body: readFileSync(join(opts.imagesDir, 'parrot.jpg')) },
    { name: 'cat.png', body: readFileSync(join(opts.imagesDir, 'cat.png')) },
    await smallJpeg(opts.imagesDir, scratch),
  ];
  rmSync(scratch, { recursive: true, force: true });

  progress('peer: python venv (bench/peer/requirements.txt from the wheel mirror)');
  let python: string;
  try {
    python = await peerPython();
  } catch (err) {
    const reason = `no Python venv for the peer: ${err instanceof Error ? err.message.split('\n')[0] : String(err)}`;
    section('Against a FastAPI peer: SKIPPED');
    console.log(`  ${reason}`);
    return { skipped: reason };
  }

  progress(`peer: CPU bound, ${opts.boundRuns} decode + inference runs per photo in-process`);
  const cores = availableParallelism();
  const cpu = await cpuPerRequest(entry, photos, opts.boundRuns);

  const model = writePeerModel(entry);
  const peers: Peer[] = [];
  // float32 on both sides: the peer runs the float graph's bytes (writePeerModel), whatever PRECISION says.
  // Errors only: its /readyz answers 503 until the workers are ready, each a logged warning.
  const ours = await startOurs({ MODELS: PEER_MODEL, PRECISION: 'float32', LOG_LEVEL: 'error' });
  try {
    const sides: Side[] = [
      {
        name: `ours (npm start, POOL_SIZE=${ours.workers()}, defaults)`,
        port: ours.port,
        path: CLASSIFY.ours,
        pids: ours.pids,
        resident: ours.resident,
      },
    ];
    for (const threads of [1, 0]) {
      progress(`peer: uvicorn --workers ${PEER_WORKERS}, onnxruntime ${threads ? `intra_op_num_threads=${threads}` : 'default threads'}`);
      const peer = await startPeer(python, model.config(threads));
      peers.push(peer);
      sides.push({ name: `peer, ORT ${threads ? `${threads} thread` : 'default threads'}`, port: peer.port, path: CLASSIFY.peer, pids: peer.pids, resident: peer.resident });
    }
    for (const side of sides) for (const photo of photos) await runPhase(side.port, side.path, photo.body, 4, opts.quick ? 8 : 24, opts.maxSeconds);

    // phases[side][photo][concurrency]: one Phase a round.
    const phases = sides.map(() => photos.map(() => CONCURRENCIES.map((): Phase[] => [])));
    const rss: Resident[] = sides.map(() => ({ totalMb: 0, servingMb: 0, processes: 0 }));
    for (let r = 0; r < opts.rounds; r++) {
      for (const [p, photo] of photos.entries()) {
        // A B C, C B A, ...: slow drift of the machine falls on every side alike.
        const order = (r + p) % 2 === 0 ? [...sides.keys()] : [...sides.keys()].reverse();
        for (const s of order) {
          progress(`peer section, round ${r + 1}/${opts.rounds}, ${photo.name}: ${sides[s]!.name}`);
          for (const [c, concurrency] of CONCURRENCIES.entries()) {
            const count = concurrency === 1 ? opts.requests : opts.loadRequests;
            phases[s]![p]![c]!.push(await measure(sides[s]!, photo.body, concurrency, count, opts.maxSeconds));
            await sleep(100);
          }
          const now = sides[s]!.resident();
          if (now.totalMb > rss[s]!.totalMb) rss[s] = now;
        }
      }
    }

    const results = photos.map((photo, p) => {
      const bySide = sides.map((side, s) => ({ side: side.name, phases: CONCURRENCIES.map((concurrency, c) => ({ concurrency, ...summarize(phases[s]![p]![c]!) })) }));
      const at = (s: number, c: number) => bySide[s]!.phases[c]!;
      const boundRps = (cores * 1000) / (cpu[p]!.decodeMs + cpu[p]!.inferenceMs);
      const versus = sides.slice(1).map((_, i) => {
        const s = i + 1;
        return {
          peer: sides[s]!.name,
          c1P50: at(0, 0).latency.p50 / at(s, 0).latency.p50,
          c1P99: at(0, 0).latency.p99 / at(s, 0).latency.p99,
          c4Throughput: at(0, 1).throughputRps / at(s, 1).throughputRps,
          c16Throughput: at(0, 2).throughputRps / at(s, 2).throughputRps,
          sameTop1: at(0, 0).top1 === at(s, 0).top1,
        };
      });
      return { photo: photo.name, bytes: photo.body.length, bySide, cpu: cpu[p]!, boundRps, boundFraction: at(0, 2).throughputRps / boundRps, versus };
    });

    section(`Against a FastAPI peer (uvicorn --workers ${PEER_WORKERS} + onnxruntime + Pillow, same ONNX bytes and preprocessing), ${opts.rounds} round(s)`);
    const rows: string[][] = [];
    for (const res of results) {
      for (const [s, side] of res.bySide.entries()) {
        const [c1, c4, c16] = [side.phases[0]!, side.phases[1]!, side.phases[2]!];
        rows.push([
          s === 0 ? `${res.photo} (${res.bytes} B)` : '', side.side,
          ms(c1.latency.p50), ms(c1.latency.p99), c4.throughputRps.toFixed(1), c16.throughputRps.toFixed(1), ms(c16.latency.p99),
          `${rss[s]!.totalMb.toFixed(0)} (${rss[s]!.servingMb.toFixed(0)})`, String(side.phases.reduce((n, q) => n + q.non200, 0)), coresText(Math.max(c1.otherCores, c4.otherCores, c16.otherCores)), c1.top1 ?? '-',
        ]);
      }
    }
    console.log(table(['photo', 'server', 'c=1 p50', 'c=1 p99', 'c=4 req/s', 'c=16 req/s', 'c=16 p99', 'RSS MB (workers)', 'non-200', 'other cpu', 'top-1'], rows));
    console.log('  RSS: VmRSS summed, the most seen after a photo\'s phases. ours: the server process + its workers; the peer: uvicorn\'s master + its');
    console.log('  children. (workers): without the main process');
    console.log('  other cpu: cores other processes kept busy meanwhile, worst phase (above ~0.3 the row is suspect)');
    console.log('\n  ratios ours / peer, same run (targets: c=1 p50 <= 0.8x, c=16 throughput >= 1.3x)');
    console.log(table(
      ['photo', 'peer', 'c=1 p50', 'c=1 p99', 'c=4 req/s', 'c=16 req/s', 'same top-1'],
      results.flatMap((res) => res.versus.map((v) => [
        res.photo, v.peer,
        `${v.c1P50.toFixed(2)}x ${pass(v.c1P50 <= TARGETS.c1P50)}`, `${v.c1P99.toFixed(2)}x`, `${v.c4Throughput.toFixed(2)}x`,
        `${v.c16Throughput.toFixed(2)}x ${pass(v.c16Throughput >= TARGETS.c16Throughput)}`, v.sameTop1 ? 'yes' : 'NO',
      ])),
    ));
    console.log(`\n  CPU bound: ${cores} cores / CPU time per request (decode + inference, in-process, one at a time); ours at c=16 against it (target >= ${TARGETS.cpuBound * 100}%)`);
    console.log(table(
      ['photo', 'decode cpu ms', 'inference cpu ms', 'bound req/s', 'ours c=16 req/s', 'fraction'],
      results.map((res) => [
        res.photo, ms(res.cpu.decodeMs), ms(res.cpu.inferenceMs), res.boundRps.toFixed(1), res.bySide[0]!.phases[2]!.throughputRps.toFixed(1),
        `${(res.boundFraction * 100).toFixed(0)}% ${pass(res.boundFraction >= TARGETS.cpuBound)}`,
      ]),
    ));

    return {
      model: PEER_MODEL,
      peerWorkers: PEER_WORKERS,
      rounds: opts.rounds,
      targets: TARGETS,
      residentMb: Object.fromEntries(sides.map((side, s) => [side.name, { total: round(rss[s]!.totalMb, 0), workers: round(rss[s]!.servingMb, 0), processes: rss[s]!.processes }])),
      photos: results.map((res) => ({
        photo: res.photo,
        bytes: res.bytes,
        cpuMs: { decode: round(res.cpu.decodeMs), inference: round(res.cpu.inferenceMs) },
        boundRps: round(res.boundRps),
        boundFraction: round(res.boundFraction),
        servers: res.bySide.map((side) => ({
          server: side.side,
          phases: side.phases.map((q) => ({ concurrency: q.concurrency, requests: q.requests, ok: q.ok, non200: q.non200, throughputRps: round(q.throughputRps), otherCores: round(q.otherCores), latencyMs: roundStats(q.latency), top1: q.top1 })),
        })),
        versus: res.versus.map((v) => ({ ...v, c1P50: round(v.c1P50), c1P99: round(v.c1P99), c4Throughput: round(v.c4Throughput), c16Throughput: round(v.c16Throughput) })),
      })),
    };
  } finally {
    await ours.stop();
    for (const peer of peers) await peer.stop();
    model.dispose();
  }
}
