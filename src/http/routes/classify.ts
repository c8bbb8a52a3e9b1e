import type { JsonSchemaToTsProvider } from '@fastify/type-provider-json-schema-to-ts';
import type { FastifyInstance } from 'fastify';
import { ApiError } from '../errors.js';
import { admitImageRequest, commonReport, runImageRoute } from '../image-route.js';
import { imageRouteErrors, imageTaskResponse } from '../schemas.js';

const querystring = {
  type: 'object',
  additionalProperties: false,
  properties: {
    // At most the model's class count, which only the model knows: checked in the handler.
    topk: { type: 'integer', minimum: 1, default: 5 },
    model: { type: 'string' },
  },
} as const;

export async function classifyRoute(fastify: FastifyInstance): Promise<void> {
  const app = fastify.withTypeProvider<JsonSchemaToTsProvider>();
  app.post('/v1/classify', {
    onRequest: admitImageRequest(app),
    schema: {
      querystring,
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
    const { topk } = request.query;
    const model = app.models.find('classification', request.query.model);
    if (topk > model.classes) {
      throw new ApiError('invalid_request', `querystring/topk must be <= ${model.classes}, the classes of ${model.name}`);
    }
    const result = await runImageRoute(app, request, model, { task: 'classification', topk });
    return {
      predictions: result.output.classes.map(({ index, score }) => ({ label: model.labels.of(index), index, score })),
      ...commonReport(result),
    };
  });
}
