import type { FastifyInstance } from 'fastify';
import { runImageTask } from '../image-task.js';
import { imageRouteErrors, imageSchema, modelSummarySchema, timingsSchema } from '../schemas.js';

interface ClassifyQuery {
  topk: number;
  model?: string;
}

export async function classifyRoute(app: FastifyInstance): Promise<void> {
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
            image: imageSchema,
            timings: timingsSchema,
          },
        },
        ...imageRouteErrors,
      },
    },
  }, async (request, reply) => {
    const { model, image, output, timings } = await runImageTask(app, request, reply, request.query.model, {
      task: 'classification',
      topk: request.query.topk,
    });
    return {
      predictions: output.classes.map(({ index, score }) => ({ label: model.labels[index]!, index, score })),
      model: { name: model.name, task: model.task, alpha: model.alpha, resolution: model.resolution },
      multiplyAdds: model.multiplyAdds,
      image: { format: image.format, width: image.width, height: image.height },
      timings,
    };
  });
}
