// The path every image request takes on the main thread, whatever protocol brought it: admission
// (refuse at once when the pool is full), decode on libuv's threads, a task for a worker, the
// picture drawn for answers that are pictures, and the metrics it feeds. Every stage watches the
// request's lifetime, so abandoned work is dropped, and holds its memory in a budget, so requests
// in flight together cannot take more than the service has.
import { decodePixels, inspectImage, type DecodedImage, type DecodeLimits } from '../decode/decode.js';
import type { EngineName } from '../engine/engine.js';
import type { Metrics } from '../metrics/metrics.js';
import type { Reservation, WorkerPool } from '../pool/pool.js';
import type { OutputOf, TaskInput, TaskRequest } from '../tasks.js';
import { MemoryBudget, type Lease } from './budget.js';
import { untilAborted, type RequestLifetime } from './lifetime.js';
import { multiplyAddsOf, type ModelInfo } from './models.js';

export interface TaskResult<R extends TaskRequest> {
  model: ModelInfo;
  output: OutputOf<R>;
  /** Of this request's settings; the same number the metrics count. */
  multiplyAdds: number;
  /** decodeMs is 0 for an input given as a tensor. */
  timings: { decodeMs: number; queueMs: number; inferenceMs: number; totalMs: number };
}

export interface ImageTaskResult<R extends TaskRequest> extends TaskResult<R> {
  image: DecodedImage & { decodedBytes: number };
  /** The request's bytes, for answers drawn on the original photo. */
  bytes: Uint8Array;
}

/** What run() needs besides the model and the request; `startedAt` (performance.now()) is when the caller began on the request: its timings count from there. */
export interface RunContext {
  lifetime: RequestLifetime;
  reservation: Reservation;
  startedAt: number;
}

export interface ImagePipelineOptions {
  pool: WorkerPool;
  metrics: Metrics;
  /** `timeoutMs` bounds each decode and each drawing, within the request's own deadline. */
  limits: DecodeLimits & { timeoutMs: number };
  engine: EngineName;
  /** Bytes of request bodies being received, all requests together. */
  bodyMemoryBytes: number;
  /** Bytes of images being decoded or drawn at full size, all requests together. */
  pixelMemoryBytes: number;
}

export class ImagePipeline {
  private readonly bodies: MemoryBudget;
  private readonly pixels: MemoryBudget;

  constructor(private readonly options: ImagePipelineOptions) {
    this.bodies = new MemoryBudget('request bodies', options.bodyMemoryBytes);
    this.pixels = new MemoryBudget('decoded pixels', options.pixelMemoryBytes);
  }

  /** What the budgets hold now, for the metrics. */
  get memoryHeld(): { bodies: number; pixels: number } {
    return { bodies: this.bodies.held, pixels: this.pixels.held };
  }

  /** Room for a body of this many bytes, held until the request ends: taken before the first byte is read. */
  reserveBody(bytes: number): Lease {
    return this.bodies.reserve(bytes);
  }

  /**
   * Room in the pool for one request, taken before its body is read or its image decoded: a
   * protocol refuses at once what the pool could not take anyway. Give it to run(), or release it.
   */
  admit(): Reservation {
    return this.options.pool.reserve();
  }

  /** An encoded image: decoded here with every limit, then run. */
  async run<R extends TaskRequest>(model: ModelInfo, bytes: Uint8Array, request: R, context: RunContext): Promise<ImageTaskResult<R>> {
    const { lifetime, startedAt } = context;
    lifetime.stage = 'decode';
    const inspected = await untilAborted(inspectImage(bytes, this.options.limits), lifetime.signal);
    const image = {
      ...(await this.withPixels(inspected.decodedBytes, lifetime, (limits) => decodePixels(inspected, model.resolution, limits, model.preprocess))),
      decodedBytes: inspected.decodedBytes,
    };
    const decodeMs = performance.now() - startedAt;
    const result = await this.infer(model, { kind: 'pixels', pixels: image.pixels }, request, context);
    return { ...result, image, bytes, timings: { ...result.timings, decodeMs } };
  }

  /**
   * An input already at the model's size (a client's tensor): nothing to decode, the same
   * admission, deadline and pool. Its size is the caller's to check against the model.
   */
  runTensor<R extends TaskRequest>(model: ModelInfo, input: TaskInput, request: R, context: RunContext): Promise<TaskResult<R>> {
    return this.infer(model, input, request, context);
  }

  private async infer<R extends TaskRequest>(model: ModelInfo, input: TaskInput, request: R, { lifetime, reservation, startedAt }: RunContext): Promise<TaskResult<R>> {
    const { pool, metrics, engine } = this.options;
    lifetime.stage = 'queue';
    const { output, queueMs, inferenceMs } = await pool.run(
      { model: model.name, input, request },
      { signal: lifetime.signal, deadlineAt: lifetime.deadlineAt, onStart: () => (lifetime.stage = 'inference') },
      reservation,
    );
    const multiplyAdds = multiplyAddsOf(model, request);
    metrics.multiplyAdds.inc({ model: model.name, task: request.task }, multiplyAdds);
    metrics.images.inc({ model: model.name, task: request.task });
    metrics.inferenceDuration.observe({ model: model.name, engine }, inferenceMs / 1000);
    metrics.queueWait.observe(queueMs / 1000);
    return { model, output, multiplyAdds, timings: { decodeMs: 0, queueMs, inferenceMs, totalMs: performance.now() - startedAt } };
  }

  /**
   * An answer drawn on the photo at its full size (boxes, overlay, mask): the same memory as
   * decoding it, and the same time limit, within the request's deadline.
   */
  render<T>({ image }: { image: { decodedBytes: number } }, lifetime: RequestLifetime, draw: (limits: { timeoutMs: number }) => Promise<T>): Promise<T> {
    lifetime.stage = 'render';
    return this.withPixels(image.decodedBytes, lifetime, draw);
  }

  /**
   * Work on libuv's threads that holds `bytes` of pixels: within the pixel budget, stopped by
   * libvips at the decode time limit or the request's deadline, whichever comes first. sharp
   * cannot be interrupted otherwise: an abandoned request stops waiting at once, and the budget
   * is given back when the work itself ends.
   */
  private async withPixels<T>(bytes: number, lifetime: RequestLifetime, work: (limits: DecodeLimits & { timeoutMs: number }) => Promise<T>): Promise<T> {
    const lease = this.pixels.reserve(bytes);
    const timeoutMs = Math.max(1, Math.min(this.options.limits.timeoutMs, lifetime.deadlineAt - Date.now()));
    const working = work({ ...this.options.limits, timeoutMs });
    working.then(lease.release, lease.release);
    return untilAborted(working, lifetime.signal);
  }
}
