// The path every image request takes on the main thread, whatever protocol brought it: admission
// (refuse at once when the queue is full), decode on libuv's threads, a task for a worker, and
// the metrics it feeds. Every wait watches the request's lifetime, so abandoned work is dropped.
import { decodeImage, type DecodedImage, type DecodeLimits } from '../decode/decode.js';
import type { EngineName } from '../engine/engine.js';
import type { Metrics } from '../metrics/metrics.js';
import type { WorkerPool } from '../pool/pool.js';
import type { OutputOf, TaskRequest } from '../tasks.js';
import { untilAborted, type RequestLifetime } from './lifetime.js';
import { multiplyAddsOf, type ModelInfo } from './models.js';

export interface ImageTaskResult<R extends TaskRequest> {
  model: ModelInfo;
  image: DecodedImage;
  /** The request's bytes, for answers drawn on the original photo. */
  bytes: Uint8Array;
  output: OutputOf<R>;
  /** Of this request's settings; the same number the metrics count. */
  multiplyAdds: number;
  timings: { decodeMs: number; queueMs: number; inferenceMs: number; totalMs: number };
}

export interface ImagePipelineOptions {
  pool: WorkerPool;
  metrics: Metrics;
  limits: DecodeLimits;
  engine: EngineName;
}

export class ImagePipeline {
  constructor(private readonly options: ImagePipelineOptions) {}

  /**
   * Throws what the pool would refuse with right now, so a protocol can refuse before reading a
   * body or decoding an image that the queue could not take anyway.
   */
  admit(): void {
    this.options.pool.checkCapacity();
  }

  /** `startedAt` (performance.now()) is when the caller began on the request: its timings count from there. */
  async run<R extends TaskRequest>(model: ModelInfo, bytes: Uint8Array, request: R, lifetime: RequestLifetime, startedAt: number): Promise<ImageTaskResult<R>> {
    const { pool, metrics, limits, engine } = this.options;
    const { signal } = lifetime;
    lifetime.stage = 'decode';
    // sharp cannot be interrupted; on abort the decode finishes in the background, unused.
    const image = await untilAborted(decodeImage(bytes, model.resolution, limits, model.preprocess), signal);
    const decoded = performance.now();

    lifetime.stage = 'queue';
    const { output, queueMs, inferenceMs } = await pool.run(
      { model: model.name, pixels: image.pixels, request },
      { signal, onStart: () => (lifetime.stage = 'inference') },
    );

    const multiplyAdds = multiplyAddsOf(model, request);
    metrics.multiplyAdds.inc({ model: model.name, task: model.task }, multiplyAdds);
    metrics.images.inc({ model: model.name, task: model.task });
    metrics.inferenceDuration.observe({ model: model.name, engine }, inferenceMs / 1000);
    metrics.queueWait.observe(queueMs / 1000);
    return {
      model,
      image,
      bytes,
      output,
      multiplyAdds,
      timings: { decodeMs: decoded - startedAt, queueMs, inferenceMs, totalMs: performance.now() - startedAt },
    };
  }
}
