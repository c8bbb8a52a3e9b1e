// Segmentation: DeepLabv3 on MobileNetV2 at 257 (width 0.5) and 513 (width 1.0), output stride
// 16 and 8, with the lite head and with ASPP, on the bare engine with one thread (a worker's
// default), plus the served 257 model's MF strategy through the worker's code path. Weights come
// from the TFLite file where it has the tensor (the lite head at any output stride) and are
// random where no file exists (the ASPP branches and their wider projection).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { findEntry, loadWeights } from '../src/catalog/catalog.js';
import { type Engine } from '../src/engine/engine.js';
import { loadEngine } from '../src/engine/load.js';
import { costOf } from '../src/model/cost.js';
import { deepLabV3, strategyMultiplyAdds, type DeepLabConfig } from '../src/model/deeplab.js';
import { paramsOf, type Graph, type Weights } from '../src/model/graph.js';
import type { OutputStride } from '../src/model/mobilenet-v2.js';
import { decodeImage } from '../src/decode/decode.js';
import { normalize } from '../src/worker/normalize.js';
import { SegmentationRunner, variantCache } from '../src/worker/segmentation-runner.js';
import { ms, progress, round, roundStats, section, stats, table, type Stats } from './lib.js';

export interface SegmentationBenchOptions {
  root: string;
  imagesDir: string;
  /** Timed runs per configuration (fewer when `maxSeconds` runs out first). */
  runs: number;
  maxSeconds: number;
}

/** The two served files the configurations borrow weights from. */
const SERVED = [
  { model: 'deeplabv3_mobilenet_v2_0.5_257', alpha: 0.5, resolution: 257 },
  { model: 'deeplabv3_mobilenet_v2_1.0_513', alpha: 1.0, resolution: 513 },
] as const;
const PHOTO = 'pets.jpg';

/** Deterministic small weights (He-scaled uniform) so runs are comparable between bench runs. */
function randomWeights(graph: Graph, known: Weights): { weights: Map<string, Float32Array>; random: number } {
  let seed = 12345;
  const next = () => ((seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32) * 2 - 1;
  const weights = new Map<string, Float32Array>();
  let random = 0;
  for (const spec of paramsOf(graph)) {
    const size = spec.shape.reduce((a, b) => a * b, 1);
    const fromFile = known.get(spec.name);
    if (fromFile?.length === size) {
      weights.set(spec.name, fromFile);
      continue;
    }
    const fanIn = spec.shape.slice(1).reduce((a, b) => a * b, 1);
    const bound = Math.sqrt(6 / fanIn);
    weights.set(spec.name, Float32Array.from({ length: size }, () => (spec.shape.length > 1 ? bound * next() : 0)));
    random++;
  }
  return { weights, random };
}

async function time(run: () => Promise<unknown>, opts: SegmentationBenchOptions): Promise<Stats> {
  for (let i = 0; i < 2; i++) await run();
  const samples: number[] = [];
  const deadline = performance.now() + opts.maxSeconds * 1000;
  while (samples.length < opts.runs && (samples.length < 3 || performance.now() < deadline)) {
    const started = performance.now();
    await run();
    samples.push(performance.now() - started);
  }
  return stats(samples);
}

interface Row {
  name: string;
  resolution: number;
  alpha: number;
  outputStride: OutputStride;
  head: string;
  strategy: string;
  weights: string;
  multiplyAdds: number;
  latency: Stats;
}

export async function benchSegmentation(opts: SegmentationBenchOptions) {
  const rows: Row[] = [];
  for (const served of SERVED) {
    const entry = findEntry(served.model, 'segmentation');
    const { model: own, weights: fileWeights, normalization: input } = loadWeights(entry);
    const { pixels } = await decodeImage(readFileSync(join(opts.imagesDir, PHOTO)), served.resolution, { maxPixels: 50e6, minSide: 1 });
    const data = normalize(pixels, input);

    for (const outputStride of [16, 8] as const) {
      for (const head of ['lite', 'aspp'] as const) {
        const config: DeepLabConfig = { alpha: served.alpha, resolution: served.resolution, outputStride, head };
        const { graph } = deepLabV3(config);
        const { weights, random } = randomWeights(graph, fileWeights);
        progress(`segmentation: ${graph.name}, up to ${opts.runs} runs`);
        let engine: Engine | undefined;
        try {
          engine = await loadEngine('onnx', graph, weights, { threads: 1 });
          const loaded = engine;
          const latency = await time(() => loaded.run({ data, batch: 1 }), opts);
          rows.push({
            name: graph.name, ...config, strategy: 'single', latency,
            weights: random === 0 ? entry.weights : `random for ${random} of ${paramsOf(graph).length} tensors`,
            multiplyAdds: costOf(graph).multiplyAdds,
          });
        } finally {
          await engine?.dispose();
        }
      }
    }

    if (served.resolution === 257) {
      // MF through the worker's own runner: one session per scale, built on first use and kept.
      const { outputStride, head } = entry;
      const variants = variantCache(Infinity);
      const runner = new SegmentationRunner({
        name: served.model,
        own: { model: own, engine: await loadEngine('onnx', own.graph, fileWeights, { threads: 1 }), variant: { outputStride, scale: 1, output: 'classes' } },
        input,
        graphOf: entry.variant,
        load: (variant) => loadEngine('onnx', variant.graph, fileWeights, { threads: 1, keepActivationMemory: false }),
        variants,
      });
      try {
        progress(`segmentation: ${served.model} MF at output stride ${outputStride}`);
        const latency = await time(() => runner.run({ task: 'segmentation', outputStride, strategy: 'mf' }, { kind: 'pixels', pixels }), { ...opts, runs: Math.max(3, Math.ceil(opts.runs / 4)) });
        rows.push({
          name: `${served.model} MF`, alpha: served.alpha, resolution: served.resolution, outputStride, head,
          strategy: 'mf', weights: entry.weights, latency,
          multiplyAdds: strategyMultiplyAdds({ alpha: served.alpha, resolution: served.resolution, outputStride, head }, 'mf'),
        });
      } finally {
        await variants.clear();
        await runner.dispose();
      }
    }
  }

  section(`7. Segmentation, bare engine with 1 thread (${PHOTO}; DeepLabv3 + MobileNetV2)`);
  console.log(table(
    ['input', 'width', 'OS', 'head', 'strategy', 'MACs/image (B)', 'runs', 'p50 ms', 'p90 ms', 'GMAC/s at p50', 'weights'],
    rows.map((r) => [
      String(r.resolution), r.alpha.toFixed(1), String(r.outputStride), r.head, r.strategy, (r.multiplyAdds / 1e9).toFixed(3),
      String(r.latency.n), ms(r.latency.p50), ms(r.latency.p90), (r.multiplyAdds / r.latency.p50 / 1e6).toFixed(1), r.weights,
    ]),
  ));
  console.log('  MACs: convolutions only, batch norm folded (docs/cost-model.md); MF: the sum over its 12 runs, whose session builds the warm-up paid');
  return rows.map((r) => ({
    ...r,
    latencyMs: roundStats(r.latency),
    latency: undefined,
    multiplyAddsPerSecond: round(r.multiplyAdds / (r.latency.p50 / 1000), 0),
  }));
}
