import type { JsonSchemaToTsProvider } from '@fastify/type-provider-json-schema-to-ts';
import type { FastifyInstance } from 'fastify';
import { floatBytes } from '../../render/tensor-bytes.js';
import { admitImageRequest, commonReport, runImageRoute } from '../image-route.js';
import { imageRouteErrors, imageTaskResponse } from '../schemas.js';

const querystring = {
  type: 'object',
  additionalProperties: false,
  properties: {
    model: { type: 'string' },
    normalize: { type: 'boolean', default: false },
    format: { type: 'string', enum: ['json', 'float32', 'float16'], default: 'json' },
  },
} as const;

export const EMBEDDING_DIMENSIONS_HEADER = 'x-embedding-dimensions';

export async function embedRoute(fastify: FastifyInstance): Promise<void> {
  const app = fastify.withTypeProvider<JsonSchemaToTsProvider>();
  app.post('/v1/embed', {
    onRequest: admitImageRequest(app),
    schema: {
      querystring,
      response: {
        200: imageTaskResponse({
          embedding: { type: 'array', items: { type: 'number' } },
          dimensions: { type: 'integer' },
          normalized: { type: 'boolean' },
        }),
        ...imageRouteErrors,
      },
    },
  }, async (request, reply) => {
    const { query } = request;
    const model = app.models.find('embedding', query.model);
    const result = await runImageRoute(app, request, model, { task: 'embedding', normalize: query.normalize });
    const { features } = result.output;
    if (query.format !== 'json') {
      return reply.type('application/octet-stream').header(EMBEDDING_DIMENSIONS_HEADER, String(features.length)).send(floatBytes(features, query.format));
    }
    return { embedding: Array.from(features), dimensions: features.length, normalized: query.normalize, ...commonReport(result) };
  });
}
