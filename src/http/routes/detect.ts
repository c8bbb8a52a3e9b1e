import type { JsonSchemaToTsProvider } from '@fastify/type-provider-json-schema-to-ts';
import type { FastifyInstance } from 'fastify';
import { drawBoxes, toPixelBox } from '../../render/boxes.js';
import { DETECTION_DEFAULTS, MAX_DETECTIONS } from '../../tasks.js';
import { encode } from '../../render/encode.js';
import { ApiError } from '../errors.js';
import { admitImageRequest, commonReport, renderAnswer, runImageRoute } from '../image-route.js';
import { answerType } from '../negotiate.js';
import { imageTaskResponse, pictureRouteErrors } from '../schemas.js';

const querystring = {
  type: 'object',
  additionalProperties: false,
  properties: {
    minScore: { type: 'number', minimum: 0, maximum: 1, default: DETECTION_DEFAULTS.minScore },
    maxDetections: { type: 'integer', minimum: 1, maximum: MAX_DETECTIONS, default: DETECTION_DEFAULTS.maxDetections },
    iouThreshold: { type: 'number', minimum: 0, maximum: 1, default: DETECTION_DEFAULTS.iouThreshold },
    classes: { type: 'string', minLength: 1 },
    model: { type: 'string' },
    format: { type: 'string', enum: ['json', 'image'] },
  },
} as const;

export async function detectRoute(fastify: FastifyInstance): Promise<void> {
  const app = fastify.withTypeProvider<JsonSchemaToTsProvider>();
  app.post('/v1/detect', {
    onRequest: admitImageRequest(app),
    schema: {
      querystring,
      response: {
        200: imageTaskResponse({
          detections: {
            type: 'array',
            items: {
              type: 'object',
              required: ['label', 'classId', 'score', 'box'],
              properties: {
                label: { type: 'string' },
                classId: { type: 'integer' },
                score: { type: 'number' },
                box: {
                  type: 'object',
                  required: ['x', 'y', 'width', 'height'],
                  properties: { x: { type: 'number' }, y: { type: 'number' }, width: { type: 'number' }, height: { type: 'number' } },
                },
              },
            },
          },
        }),
        ...pictureRouteErrors,
      },
    },
  }, async (request, reply) => {
    const { query } = request;
    const model = app.models.find('detection', query.model);
    // A class named twice (or in two cases) is one class: its detections come once.
    const classIds = query.classes === undefined ? undefined : [...new Set(query.classes.split(',').map((name) => {
      const id = model.labels.idOf(name);
      if (id === undefined) throw new ApiError('invalid_request', `classes: unknown class name '${name.trim()}'; see the model's labels`);
      return id;
    }))];
    const answer = answerType(request.headers.accept, query.format);
    const result = await runImageRoute(app, request, model, {
      task: 'detection',
      minScore: query.minScore,
      maxDetections: query.maxDetections,
      iouThreshold: query.iouThreshold,
      classIds,
    });
    const { image } = result;
    const detections = result.output.detections.map((d) => toPixelBox(d, model.labels, image.view));

    if (answer !== 'application/json') {
      const picture = await renderAnswer(app, request, result, ({ timeoutMs }) => encode(drawBoxes(result.bytes, image.width, image.height, detections), answer, timeoutMs));
      return reply.type(answer).send(picture);
    }
    return { detections, ...commonReport(result) };
  });
}
