import type { JsonSchemaToTsProvider } from '@fastify/type-provider-json-schema-to-ts';
import type { FastifyInstance } from 'fastify';
import { STRATEGIES } from '../../model/deeplab.js';
import { OUTPUT_STRIDES } from '../../model/mobilenet-v2.js';
import { encode } from '../../render/encode.js';
import { legendOf, maskPng, overlayImage, scaleClassMap } from '../../render/segmentation.js';
import { admitImageRequest, commonReport, renderAnswer, runImageRoute } from '../image-route.js';
import { answerType } from '../negotiate.js';
import { imageTaskResponse, pictureRouteErrors } from '../schemas.js';

const querystring = {
  type: 'object',
  additionalProperties: false,
  properties: {
    model: { type: 'string' },
    outputStride: { type: 'integer', enum: OUTPUT_STRIDES },
    strategy: { type: 'string', enum: STRATEGIES, default: 'single' },
    format: { type: 'string', enum: ['json', 'mask', 'image'] },
  },
} as const;

export async function segmentRoute(fastify: FastifyInstance): Promise<void> {
  const app = fastify.withTypeProvider<JsonSchemaToTsProvider>();
  app.post('/v1/segment', {
    onRequest: admitImageRequest(app),
    schema: {
      querystring,
      response: {
        200: imageTaskResponse({
          legend: {
            type: 'array',
            items: {
              type: 'object',
              required: ['label', 'classId', 'pixels', 'fraction'],
              properties: {
                label: { type: 'string' },
                classId: { type: 'integer' },
                pixels: { type: 'integer' },
                fraction: { type: 'number' },
              },
            },
          },
          mask: {
            type: 'object',
            required: ['mediaType', 'width', 'height', 'data'],
            properties: {
              mediaType: { type: 'string' },
              width: { type: 'integer' },
              height: { type: 'integer' },
              data: { type: 'string' },
            },
          },
          outputStride: { type: 'integer' },
          strategy: { type: 'string' },
        }),
        ...pictureRouteErrors,
      },
    },
  }, async (request, reply) => {
    const { query } = request;
    const model = app.models.find('segmentation', query.model);
    // Any output stride runs with any weights (only the dilations change); the file's own is the default.
    const outputStride = query.outputStride ?? model.segmentation!.outputStride;
    // format=mask, the PNG of class ids, wins over Accept as any explicit format does.
    const answer = query.format === 'mask' ? 'mask' : answerType(request.headers.accept, query.format);
    const result = await runImageRoute(app, request, model, { task: 'segmentation', outputStride, strategy: query.strategy });
    const renderStarted = performance.now();
    const { image, bytes, output, timings } = result;
    const { width, height } = image;
    if (answer === 'image/png' || answer === 'image/jpeg') {
      const picture = await renderAnswer(app, request, result, async ({ timeoutMs }) => encode(await overlayImage(bytes, width, height, output), answer, timeoutMs));
      return reply.type(answer).send(picture);
    }
    const png = await renderAnswer(app, request, result, ({ timeoutMs }) => maskPng(scaleClassMap(output, width, height), width, height, timeoutMs));
    if (answer === 'mask') return reply.type('image/png').send(png);
    return {
      legend: legendOf(output, width, height, model.labels),
      mask: { mediaType: 'image/png', width, height, data: png.toString('base64') },
      outputStride,
      strategy: query.strategy,
      ...commonReport(result),
      // Scaling and encoding the mask come after the shared path's clock stopped.
      timings: { ...timings, totalMs: timings.totalMs + performance.now() - renderStarted },
    };
  });
}
