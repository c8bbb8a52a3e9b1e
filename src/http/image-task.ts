// The shared path of every image route: resolve the model, read and decode the image, queue it
// for a worker (cancelled if the client leaves), and count what it cost.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { ModelInfo, Task } from '../catalog/catalog.js';
import type { OutputOf, TaskRequest } from '../postprocess/index.js';
import { decodeImage, type DecodedImage } from '../preprocess/decode.js';
import { ApiError } from './errors.js';
import { readImageBody } from './image-body.js';

const MIN_IMAGE_SIDE = 1;

export interface ImageTaskResult<R extends TaskRequest> {
  model: ModelInfo;
  image: DecodedImage;
  /** The request's bytes, for routes that draw on the original photo. */
  bytes: Buffer;
  output: OutputOf<R>;
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

export async function runImageTask<R extends TaskRequest>(
  app: FastifyInstance,
  request: FastifyRequest,
  reply: FastifyReply,
  modelName: string | undefined,
  taskRequest: R,
): Promise<ImageTaskResult<R>> {
  const started = performance.now();
  const model = findModel(app, taskRequest.task, modelName);
  const bytes = await readImageBody(request);
  const image = await decodeImage(bytes, model.resolution, { maxPixels: app.config.maxImagePixels, minSide: MIN_IMAGE_SIDE });
  const decoded = performance.now();

  // A client that goes away before its turn should not cost a worker anything.
  const cancel = new AbortController();
  reply.raw.once('close', () => cancel.abort());
  const { output, queueMs, inferenceMs } = await app.pool.run({ model: model.name, pixels: image.pixels, request: taskRequest }, cancel.signal);

  const { metrics, config } = app;
  metrics.multiplyAdds.inc({ model: model.name, task: model.task }, model.multiplyAdds);
  metrics.images.inc({ model: model.name, task: model.task });
  metrics.inferenceDuration.observe({ model: model.name, engine: config.engine }, inferenceMs / 1000);
  metrics.queueWait.observe(queueMs / 1000);
  return {
    model,
    image,
    bytes,
    output,
    timings: { decodeMs: decoded - started, queueMs, inferenceMs, totalMs: performance.now() - started },
  };
}
