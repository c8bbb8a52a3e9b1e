// Detection: our service end to end against the same SSDLite graph model run the way a Node
// user runs it today (TensorFlow.js graph model on the wasm backend, as @tensorflow-models/coco-ssd
// does: decode, executeAsync on the whole image, class-agnostic non-maximum suppression).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import { buildApp } from '../src/app.js';
import { loadConfig } from '../src/config.js';
import { loadReferenceModel, tf } from '../test/tfjs-reference.js';
import { progress, round, roundStats, runPhase, section, stats, table, ms, type Stats } from './lib.js';

const MODEL = 'ssdlite_mobilenet_v2_coco';
export const DETECTION_TARGET = 5;

export interface DetectionBenchOptions {
  root: string;
  imagesDir: string;
  photos: string[];
  requests: number;
  loadRequests: number;
  maxSeconds: number;
}

/** What coco-ssd's detect() does for one image, with its defaults (20 boxes, IoU 0.5, score 0.5). */
async function cocoSsdDetect(model: Awaited<ReturnType<typeof loadReferenceModel>>, bytes: Buffer): Promise<number> {
  const { data, info } = await sharp(bytes).rotate().removeAlpha().toColourspace('srgb').raw().toBuffer({ resolveWithObject: true });
  const input = tf.tensor(Int32Array.from(data), [1, info.height, info.width, 3], 'int32');
  const [scores, boxes] = (await model.executeAsync(input, ['Postprocessor/Slice', 'Postprocessor/ExpandDims_1'])) as tf.Tensor[];
  const best = tf.squeeze(tf.max(scores!, 2), [0]) as tf.Tensor1D;
  const flat = tf.reshape(boxes!, [-1, 4]) as tf.Tensor2D;
  const kept = await tf.image.nonMaxSuppressionAsync(flat, best, 20, 0.5, 0.5);
  const count = kept.size;
  tf.dispose([input, scores!, boxes!, best, flat, kept]);
  return count;
}

export async function benchDetection(opts: DetectionBenchOptions) {
  const bodies = opts.photos.map((p) => readFileSync(join(opts.imagesDir, p)));

  progress(`detection: tfjs wasm graph model, ${opts.requests} images`);
  const reference = await loadReferenceModel(join(opts.root, 'models/files', MODEL));
  for (const body of bodies) await cocoSsdDetect(reference, body); // warm-up: kernels, memory
  const theirs: number[] = [];
  const deadline = performance.now() + opts.maxSeconds * 1000;
  for (let i = 0; i < opts.requests && performance.now() < deadline; i++) {
    const started = performance.now();
    await cocoSsdDetect(reference, bodies[i % bodies.length]!);
    theirs.push(performance.now() - started);
  }
  reference.dispose();
  const theirStats = stats(theirs);

  progress(`detection: our server, concurrency 1 and 4`);
  const app = await buildApp(loadConfig({ ...process.env, PORT: '0', HOST: '127.0.0.1', MODELS: MODEL, LOG_LEVEL: 'warn' }));
  const phases: { concurrency: number; latency: Stats; throughputRps: number; non200: number }[] = [];
  try {
    await app.listen({ port: 0, host: '127.0.0.1' });
    await app.modelsLoaded;
    const { port } = app.server.address() as { port: number };
    for (const body of bodies) await runPhase(port, '/v1/detect', body, 2, 4, opts.maxSeconds);
    for (const concurrency of [1, 4]) {
      const replies = [];
      let wallMs = 0;
      // Every photo in turn, so both sides see the same mix.
      for (const body of bodies) {
        const phase = await runPhase(port, '/v1/detect', body, concurrency, Math.ceil((concurrency === 1 ? opts.requests : opts.loadRequests) / bodies.length), opts.maxSeconds);
        replies.push(...phase.replies);
        wallMs += phase.wallMs;
      }
      const ok = replies.filter((r) => r.status === 200);
      phases.push({ concurrency, latency: stats(ok.map((r) => r.ms)), throughputRps: (ok.length / wallMs) * 1000, non200: replies.length - ok.length });
    }
  } finally {
    await app.close();
  }

  const ours = phases[0]!;
  const ratio = theirStats.p50 / ours.latency.p50;
  section(`6. Detection end to end (${opts.photos.join(', ')}): ours vs TensorFlow.js graph model (wasm), target ${DETECTION_TARGET}x`);
  console.log(table(
    ['path', 'conc', 'p50 ms', 'p90 ms', 'p99 ms', 'req/s', 'non-200'],
    [
      ['tfjs-converter + wasm (coco-ssd way)', '1', ms(theirStats.p50), ms(theirStats.p90), ms(theirStats.p99), (1000 / theirStats.mean).toFixed(1), '-'],
      ...phases.map((p) => [`ours: POST /v1/detect (onnxruntime)`, String(p.concurrency), ms(p.latency.p50), ms(p.latency.p90), ms(p.latency.p99), p.throughputRps.toFixed(1), String(p.non200)]),
    ],
  ));
  console.log(`  the tfjs path runs in this process one image at a time (decode with sharp, executeAsync, NMS); its req/s is 1000 / mean latency`);
  console.log(`  ratio tfjs p50 / ours p50 at concurrency 1: ${ratio.toFixed(1)}x  ${ratio >= DETECTION_TARGET ? 'PASS' : 'FAIL'} (target >= ${DETECTION_TARGET}x)`);
  return {
    photos: opts.photos,
    tfjsWasm: { latencyMs: roundStats(theirStats), throughputRps: round(1000 / theirStats.mean) },
    ours: phases.map((p) => ({ concurrency: p.concurrency, latencyMs: roundStats(p.latency), throughputRps: round(p.throughputRps), non200: p.non200 })),
    ratio: round(ratio),
    target: DETECTION_TARGET,
    pass: ratio >= DETECTION_TARGET,
  };
}
