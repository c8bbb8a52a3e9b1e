// What every image route does around the shared pipeline: refuse at once when the queue is full
// (before the body is read: that work would be thrown away), read the image from the body, run
// it, and report what every answer carries beside its own fields.
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { RequestLifetime } from '../pipeline/lifetime.js';
import type { ImageTaskResult } from '../pipeline/image-pipeline.js';
import type { ModelInfo } from '../pipeline/models.js';
import type { TaskRequest } from '../tasks.js';
import { readImageBody } from './image-body.js';

export async function runImageRoute<R extends TaskRequest>(
  app: FastifyInstance,
  request: FastifyRequest,
  /** From app.models.find, which the route calls first so that its own checks can use the model. */
  model: ModelInfo,
  taskRequest: R,
): Promise<ImageTaskResult<R>> {
  const startedAt = performance.now();
  // Installed for every request by app.ts; the fallback only serves an app built without it.
  const lifetime = request.lifetime ?? new RequestLifetime(app.config.requestTimeoutMs);
  app.pipeline.admit();
  const bytes = await readImageBody(request, lifetime.signal);
  return app.pipeline.run(model, bytes, taskRequest, lifetime, startedAt);
}

/** What every image route reports beside its own answer: the model that ran, its cost, the image as read, the timings. */
export function commonReport({ model, multiplyAdds, image, timings }: Pick<ImageTaskResult<TaskRequest>, 'model' | 'multiplyAdds' | 'image' | 'timings'>) {
  return {
    model: { name: model.name, version: model.version, task: model.task, alpha: model.alpha, resolution: model.resolution, engine: model.engine, split: model.split },
    multiplyAdds,
    image: { format: image.format, width: image.width, height: image.height },
    timings,
  };
}
