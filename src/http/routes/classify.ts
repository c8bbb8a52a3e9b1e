import type { FastifyInstance } from 'fastify';
import { decodeImage } from '../../preprocess/decode.js';
import { ApiError } from '../errors.js';
import { readImageBody } from '../image-body.js';
import { imageRouteErrors, modelSummarySchema, timingsSchema } from '../schemas.js';

const MIN_IMAGE_SIDE = 1;

interface ClassifyQuery {
  topk: number;
  model?: string;
}

export async function classifyRoute(app: FastifyInstance): Promise<void> {
  const { pool, models, metrics, config } = app;
  const defaultModel = config.models[0]!;

  app.post<{ Querystring: ClassifyQuery }>('/v1/classify', {
    schema: {
      querystring: {
        type: 'object',
        additionalProperties: false,
        properties: {
          topk: { type: 'integer', minimum: 1, maximum: 1001, default: 5 },
          model: { type: 'string' },
        },
      },
      response: {
        200: {
          type: 'object',
          required: ['predictions', 'model', 'multiplyAdds', 'image', 'timings'],
          properties: {
            predictions: {
              type: 'array',
              items: {
                type: 'object',
                required: ['label', 'index', 'score'],
                properties: { label: { type: 'string' }, index: { type: 'integer' }, score: { type: 'number' } },
              },
            },
            model: modelSummarySchema,
            multiplyAdds: { type: 'integer' },
            image: {
              type: 'object',
              required: ['format', 'width', 'height'],
              properties: { format: { type: 'string' }, width: { type: 'integer' }, height: { type: 'integer' } },
            },
            timings: timingsSchema,
          },
        },
        ...imageRouteErrors,
      },
    },
  }, async (request, reply) => {
    const started = performance.now();
    const name = request.query.model ?? defaultModel;
    const model = models.get(name);
    if (!model || model.task !== 'classification') {
      throw new ApiError('unknown_model', `no classification model named '${name}'; loaded: ${[...models.keys()].join(', ')}`);
    }
    const bytes = await readImageBody(request);
    const image = await decodeImage(bytes, model.resolution, { maxPixels: config.maxImagePixels, minSide: MIN_IMAGE_SIDE });
    const decoded = performance.now();

    // A client that goes away before its turn should not cost a worker anything.
    const cancel = new AbortController();
    reply.raw.once('close', () => cancel.abort());
    const { output, queueMs, inferenceMs } = await pool.run(
      { model: name, pixels: image.pixels, topk: Math.min(request.query.topk, model.labels.length) },
      cancel.signal,
    );
    metrics.multiplyAdds.inc({ model: name, task: model.task }, model.multiplyAdds);
    metrics.images.inc({ model: name, task: model.task });
    metrics.inferenceDuration.observe({ model: name, engine: config.engine }, inferenceMs / 1000);
    metrics.queueWait.observe(queueMs / 1000);

    return {
      predictions: output.classes.map(({ index, score }) => ({ label: model.labels[index]!, index, score })),
      model: { name, task: model.task, alpha: model.alpha, resolution: model.resolution },
      multiplyAdds: model.multiplyAdds,
      image: { format: image.format, width: image.width, height: image.height },
      timings: { decodeMs: decoded - started, queueMs, inferenceMs, totalMs: performance.now() - started },
    };
  });
}
