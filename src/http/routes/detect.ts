import type { FastifyInstance } from 'fastify';
import type { Detection } from '../../postprocess/detect.js';
import { drawBoxes, type LabelledBox } from '../../postprocess/draw.js';
import { ApiError } from '../errors.js';
import { encode, requestedImageType } from '../image-response.js';
import { commonReport, findModel, runImageTask } from '../image-task.js';
import { imageRouteErrors, imageTaskResponse } from '../schemas.js';

interface DetectQuery {
  minScore: number;
  maxDetections: number;
  iouThreshold: number;
  classes?: string;
  model?: string;
  format?: 'json' | 'image';
}

export const MAX_DETECTIONS = 100;

export async function detectRoute(app: FastifyInstance): Promise<void> {
  app.post<{ Querystring: DetectQuery }>('/v1/detect', {
    schema: {
      querystring: {
        type: 'object',
        additionalProperties: false,
        properties: {
          minScore: { type: 'number', minimum: 0, maximum: 1, default: 0.5 },
          maxDetections: { type: 'integer', minimum: 1, maximum: MAX_DETECTIONS, default: 20 },
          iouThreshold: { type: 'number', minimum: 0, maximum: 1, default: 0.6 },
          classes: { type: 'string', minLength: 1 },
          model: { type: 'string' },
          format: { type: 'string', enum: ['json', 'image'] },
        },
      },
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
        ...imageRouteErrors,
      },
    },
  }, async (request, reply) => {
    const { query } = request;
    const model = findModel(app, 'detection', query.model);
    // Class logit k is the class on line k of the label list, counted from 1 (0 is background).
    const classIds = query.classes?.split(',').map((name) => {
      const index = model.labels.findIndex((label) => label.toLowerCase() === name.trim().toLowerCase() && label !== 'n/a');
      if (index < 0) throw new ApiError('invalid_request', `classes: unknown class name '${name.trim()}'; see the model's labels`);
      return index + 1;
    });
    const result = await runImageTask(app, request, model, {
      task: 'detection',
      minScore: query.minScore,
      maxDetections: query.maxDetections,
      iouThreshold: query.iouThreshold,
      classIds,
    });
    const { image } = result;
    const detections = result.output.detections.map((d) => toPixels(d, model.labels, image.width, image.height));

    const pictureType = requestedImageType(request, query.format);
    if (pictureType) {
      const picture = await encode(drawBoxes(result.bytes, image.width, image.height, detections), pictureType);
      return reply.type(pictureType).send(picture);
    }
    return { detections, ...commonReport(result) };
  });
}

/** Normalized corners to a pixel box of the photo as seen (the model saw it stretched, not cropped). */
function toPixels({ classId, score, box }: Detection, labels: readonly string[], width: number, height: number): LabelledBox {
  const clamp = (v: number) => Math.min(1, Math.max(0, v));
  const [x0, x1] = [clamp(box.xmin) * width, clamp(box.xmax) * width];
  const [y0, y1] = [clamp(box.ymin) * height, clamp(box.ymax) * height];
  return { label: labels[classId - 1] ?? `class ${classId}`, classId, score, box: { x: x0, y: y0, width: x1 - x0, height: y1 - y0 } };
}
