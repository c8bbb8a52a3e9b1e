import type { FastifyInstance } from 'fastify';
import { commonReport, findModel, runImageTask } from '../image-task.js';
import { imageRouteErrors, imageTaskResponse } from '../schemas.js';

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
        200: imageTaskResponse({
          predictions: {
            type: 'array',
            items: {
              type: 'object',
              required: ['label', 'index', 'score'],
              properties: { label: { type: 'string' }, index: { type: 'integer' }, score: { type: 'number' } },
            },
          },
        }),
        ...imageRouteErrors,
      },
    },
  }, async (request) => {
    const model = findModel(app, 'classification', request.query.model);
    const result = await runImageTask(app, request, model, {
      task: 'classification',
      topk: request.query.topk,
    });
    const { labels } = model;
    return {
      predictions: result.output.classes.map(({ index, score }) => ({ label: labels[index]!, index, score })),
      ...commonReport(result),
    };
  });
}
