// What every image route does around the shared pipeline: refuse at once when the pool is full
// (as soon as the request's headers are in, before its body is read), read the image from the
// body, run it, and report what every answer carries beside its own fields.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { RequestLifetime } from '../pipeline/lifetime.js';
import type { ImageTaskResult, RunContext } from '../pipeline/image-pipeline.js';
import type { ModelInfo } from '../pipeline/models.js';
import type { Reservation } from '../pool/pool.js';
import type { TaskRequest } from '../tasks.js';
import { readImageBody } from './image-body.js';

const reservations = new WeakMap<FastifyRequest, Reservation>();

/** The image routes' onRequest hook: room in the pool, held until the task is queued or the request ends. */
export function admitImageRequest(app: FastifyInstance) {
  return async (request: FastifyRequest, reply: FastifyReply) => {
    const reservation = app.pipeline.admit();
    reservations.set(request, reservation);
    reply.raw.once('close', reservation.release);
  };
}

/**
 * Runs `work` in the room admission took for the request (given back if the work fails before
 * the pool takes it), under the request's lifetime, with its timings counted from now.
 */
export async function withAdmission<T>(app: FastifyInstance, request: FastifyRequest, work: (context: RunContext) => Promise<T>): Promise<T> {
  const startedAt = performance.now();
  // Installed for every request by app.ts; the fallback only serves an app built without it.
  const lifetime = request.lifetime ?? new RequestLifetime(app.config.requestTimeoutMs);
  const reservation = reservations.get(request) ?? app.pipeline.admit();
  try {
    return await work({ lifetime, reservation, startedAt });
  } finally {
    // Taken by the pool once queued; a request that failed before that gives its room back.
    reservation.release();
  }
}

export function runImageRoute<R extends TaskRequest>(
  app: FastifyInstance,
  request: FastifyRequest,
  /** From app.models.find, which the route calls first so that its own checks can use the model. */
  model: ModelInfo,
  taskRequest: R,
): Promise<ImageTaskResult<R>> {
  return withAdmission(app, request, async (context) => {
    const bytes = await readImageBody(request, context.lifetime.signal);
    return app.pipeline.run(model, bytes, taskRequest, context);
  });
}

/** An answer drawn on the photo (boxes, overlay, mask), under the request's deadline and the pixel budget. */
export function renderAnswer<T>(app: FastifyInstance, request: FastifyRequest, result: { image: { decodedBytes: number } }, draw: (limits: { timeoutMs: number }) => Promise<T>): Promise<T> {
  const lifetime = request.lifetime ?? new RequestLifetime(app.config.requestTimeoutMs);
  return app.pipeline.render(result, lifetime, draw);
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
