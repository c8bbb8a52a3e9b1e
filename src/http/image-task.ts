// The shared path of every image route: find the model (findModel), refuse at once if the queue is full,
// read and decode the image, queue it for a worker, and count what it cost. Every wait watches
// the request's lifetime signal (deadline, client disconnect), so abandoned work is dropped.
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { ModelInfo, Task } from '../catalog/catalog.js';
import type { OutputOf, TaskRequest } from '../postprocess/index.js';
import { decodeImage, type DecodedImage } from '../preprocess/decode.js';
import { ApiError } from './errors.js';
import { readImageBody } from './image-body.js';
import { RequestLifetime, untilAborted } from './lifetime.js';

export interface ImageTaskResult<R extends TaskRequest> {
  model: ModelInfo;
  image: DecodedImage;
  /** The request's bytes, for routes that draw on the original photo. */
  bytes: Buffer;
  output: OutputOf<R>;
  /** Of this request's settings; the same number the metrics count. */
  multiplyAdds: number;
  timings: { decodeMs: number; queueMs: number; inferenceMs: number; totalMs: number };
}

export function findModel(app: FastifyInstance, task: Task, name: string | undefined): ModelInfo {
  const candidates = [...app.models.values()].filter((m) => m.task === task);
  const model = name === undefined ? candidates[0] : candidates.find((m) => m.name === name);
  if (!model) {
    const loaded = candidates.map((m) => m.name).join(', ') || 'none';
    throw new ApiError('unknown_model', `no ${task} model named '${name ?? '(default)'}'; loaded ${task} models: ${loaded}`);
  }
  return model;
}

/** A model's multiply-adds for one image, under the settings the request chose. */
export function multiplyAddsOf(model: ModelInfo, taskRequest: TaskRequest): number {
  if (taskRequest.task === 'segmentation' && model.segmentation) {
    return model.segmentation.multiplyAdds[`${taskRequest.outputStride}/${taskRequest.strategy}`];
  }
  return model.multiplyAdds;
}

export async function runImageTask<R extends TaskRequest>(
  app: FastifyInstance,
  request: FastifyRequest,
  /** From findModel, which the route calls first so that its own checks can use the model. */
  model: ModelInfo,
  taskRequest: R,
): Promise<ImageTaskResult<R>> {
  const started = performance.now();
  const { metrics, config, pool } = app;
  // Installed for every request by app.ts; the fallback only serves an app built without it.
  const lifetime = request.lifetime ?? new RequestLifetime(config.requestTimeoutMs);
  const { signal } = lifetime;
  // Overload is refused before the body is read or decoded: that work would be thrown away.
  pool.checkCapacity();
  const bytes = await readImageBody(request, signal);
  lifetime.stage = 'decode';
  // sharp cannot be interrupted; on abort the decode finishes in the background, unused.
  const limits = { maxPixels: config.maxImagePixels, minSide: config.minImageSide };
  const image = await untilAborted(decodeImage(bytes, model.resolution, limits), signal);
  const decoded = performance.now();

  lifetime.stage = 'queue';
  const { output, queueMs, inferenceMs } = await pool.run(
    { model: model.name, pixels: image.pixels, request: taskRequest },
    { signal, onStart: () => (lifetime.stage = 'inference') },
  );

  const multiplyAdds = multiplyAddsOf(model, taskRequest);
  metrics.multiplyAdds.inc({ model: model.name, task: model.task }, multiplyAdds);
  metrics.images.inc({ model: model.name, task: model.task });
  metrics.inferenceDuration.observe({ model: model.name, engine: config.engine }, inferenceMs / 1000);
  metrics.queueWait.observe(queueMs / 1000);
  return {
    model,
    image,
    bytes,
    output,
    multiplyAdds,
    timings: { decodeMs: decoded - started, queueMs, inferenceMs, totalMs: performance.now() - started },
  };
}

/** What every image route reports beside its own answer: the model that ran, its cost, the image as read, the timings. */
export function commonReport({ model, multiplyAdds, image, timings }: Pick<ImageTaskResult<TaskRequest>, 'model' | 'multiplyAdds' | 'image' | 'timings'>) {
  return {
    model: { name: model.name, task: model.task, alpha: model.alpha, resolution: model.resolution, engine: model.engine, split: model.split },
    multiplyAdds,
    image: { format: image.format, width: image.width, height: image.height },
    timings,
  };
}
