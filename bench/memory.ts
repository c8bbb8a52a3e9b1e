// Memory-efficient inference measured: MobileNetV2 1.0/224 with split factors 1, 2, 4, 6 (6 is
// the expansion factor t). For each: the peak the cost model computes (float32), the peak
// TensorFlow.js measures for one forward pass (tf.profile: largest tf.memory().numBytes above
// what was live before, i.e. the activations), the latency on both engines, and ONNX Runtime's
// process memory (each split in a fresh child process: its arena plans activations per session).
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildWithWeights, findEntry } from '../src/catalog/catalog.js';
import { type Engine, type EngineName } from '../src/engine/engine.js';
import { loadEngine } from '../src/engine/load.js';
import { tf } from '../src/engine/tfjs/backend.js';
import { costOf } from '../src/model/cost.js';
import { splitGraph, splitWeights } from '../src/model/split.js';
import { ms, progress, round, roundStats, section, stats, table, type Stats } from './lib.js';

const MODEL = 'mobilenet_v2_1.0_224';
export const SPLITS = [1, 2, 4, 6] as const;
const ROOT = fileURLToPath(new URL('..', import.meta.url));

export interface MemoryBenchOptions {
  /** Timed runs per engine and split factor. */
  runs: number;
  maxSeconds: number;
}

async function splitEngine(engine: EngineName, k: number): Promise<Engine> {
  const { model: { graph }, imported: { weights } } = buildWithWeights(findEntry(MODEL), join(ROOT, 'models/files'));
  return loadEngine(engine, splitGraph(graph, k), splitWeights(graph, weights, k), { threads: 1, tfjsBackend: 'wasm' });
}

const input = () => ({ data: new Float32Array(224 * 224 * 3).map((_, i) => Math.sin(i)), batch: 1 });

/** Latency per split factor, the factors interleaved in blocks so noise falls on all alike. */
async function latencies(engines: Engine[], opts: MemoryBenchOptions): Promise<Stats[]> {
  const samples = engines.map((): number[] => []);
  const batch = input();
  for (const e of engines) for (let i = 0; i < 3; i++) await e.run(batch);
  const deadline = performance.now() + opts.maxSeconds * 1000;
  while (samples.some((s) => s.length < opts.runs) && performance.now() < deadline) {
    for (const [i, e] of engines.entries()) {
      for (let j = 0; j < 5; j++) {
        const started = performance.now();
        await e.run(batch);
        samples[i]!.push(performance.now() - started);
      }
    }
  }
  return samples.map(stats);
}

/** Child process mode: one ONNX Runtime session of split k, warmed up; prints its RSS figures. */
async function onnxChild(k: number): Promise<void> {
  const baseline = process.memoryUsage().rss;
  const engine = await splitEngine('onnx', k);
  const loaded = process.memoryUsage().rss;
  for (let i = 0; i < 20; i++) await engine.run(input());
  // Not getrusage's max RSS: on Linux a child reports its parent's high-water mark from before exec.
  console.log(JSON.stringify({ baseline, loaded, after: process.memoryUsage().rss }));
}

function onnxProcessMemory(k: number): { baseline: number; loaded: number; after: number } {
  const out = execFileSync(process.execPath, ['--import', 'tsx', fileURLToPath(import.meta.url), '--onnx-child', String(k)], { cwd: ROOT, encoding: 'utf8' });
  return JSON.parse(out.trim().split('\n').at(-1)!);
}

export async function benchMemory(opts: MemoryBenchOptions) {
  const { graph } = findEntry(MODEL).build();
  const computed = SPLITS.map((k) => costOf(splitGraph(graph, k)).peakActivationBytes);

  progress(`memory: TensorFlow.js peak bytes and latency, split ${SPLITS.join(', ')}`);
  const tfjs = await Promise.all(SPLITS.map((k) => splitEngine('tfjs', k)));
  const measured: number[] = [];
  for (const e of tfjs) {
    const before = tf.memory().numBytes;
    const profile = await tf.profile(async () => {
      await e.run(input());
    });
    measured.push(profile.peakBytes - before);
  }
  const tfjsLatency = await latencies(tfjs, opts);
  for (const e of tfjs) await e.dispose();

  progress(`memory: ONNX Runtime latency, then process memory per split in child processes`);
  const onnx = await Promise.all(SPLITS.map((k) => splitEngine('onnx', k)));
  const onnxLatency = await latencies(onnx, opts);
  for (const e of onnx) await e.dispose();
  const onnxMemory = SPLITS.map((k) => onnxProcessMemory(k));

  const mb = (bytes: number) => (bytes / 1e6).toFixed(2);
  section(`Memory-efficient inference: ${MODEL}, split factor k (1 = off), float32, batch 1`);
  console.log(table(
    ['k', 'computed peak MB', 'tfjs measured peak MB', 'tfjs p50 ms', 'tfjs p90 ms', 'onnx p50 ms', 'onnx p90 ms', 'onnx RSS: session MB', 'after runs MB'],
    SPLITS.map((k, i) => [
      String(k), mb(computed[i]!), mb(measured[i]!), ms(tfjsLatency[i]!.p50), ms(tfjsLatency[i]!.p90),
      ms(onnxLatency[i]!.p50), ms(onnxLatency[i]!.p90), mb(onnxMemory[i]!.loaded - onnxMemory[i]!.baseline), mb(onnxMemory[i]!.after - onnxMemory[i]!.baseline),
    ]),
  ));
  console.log('  computed: largest live set, layers one at a time in graph order (src/model/cost.ts); measured: tf.profile peakBytes');
  console.log('  minus the bytes live before the run (the weights); onnx RSS: a fresh process per k, its growth after importing');
  console.log('  the weights and building the session, and after 20 runs');
  return SPLITS.map((k, i) => ({
    split: k,
    computedPeakBytes: computed[i],
    tfjsMeasuredPeakBytes: measured[i],
    tfjsLatencyMs: roundStats(tfjsLatency[i]!),
    onnxLatencyMs: roundStats(onnxLatency[i]!),
    onnxRssBytes: { baseline: onnxMemory[i]!.baseline, session: onnxMemory[i]!.loaded, afterRuns: onnxMemory[i]!.after },
    ratioMeasuredToComputed: round(measured[i]! / computed[i]!),
  }));
}

if (process.argv[2] === '--onnx-child') {
  onnxChild(Number(process.argv[3])).then(() => process.exit(0), (err: unknown) => {
    console.error(err);
    process.exit(1);
  });
}
