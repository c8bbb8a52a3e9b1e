// JSON schemas for Fastify's validation and serialization; openapi.yaml documents the same
// shapes, and test/openapi.test.ts checks the two agree.
import { ERROR_CODES } from './errors.js';

export const errorSchema = {
  type: 'object',
  required: ['error'],
  properties: {
    error: {
      type: 'object',
      required: ['code', 'message'],
      properties: { code: { type: 'string', enum: Object.keys(ERROR_CODES) }, message: { type: 'string' } },
    },
  },
} as const;

export const modelSummarySchema = {
  type: 'object',
  required: ['name', 'version', 'task', 'alpha', 'resolution', 'engine', 'split'],
  properties: {
    name: { type: 'string' },
    version: { type: 'integer', minimum: 1 },
    task: { type: 'string' },
    alpha: { type: 'number' },
    resolution: { type: 'integer' },
    engine: { type: 'string' },
    split: { type: 'integer' },
  },
} as const;

/** The uploaded image as the user sees it: after EXIF orientation. */
export const imageSchema = {
  type: 'object',
  required: ['format', 'width', 'height'],
  properties: { format: { type: 'string' }, width: { type: 'integer' }, height: { type: 'integer' } },
} as const;

export const timingsSchema = {
  type: 'object',
  required: ['decodeMs', 'queueMs', 'inferenceMs', 'totalMs'],
  properties: {
    decodeMs: { type: 'number' },
    queueMs: { type: 'number' },
    inferenceMs: { type: 'number' },
    totalMs: { type: 'number' },
  },
} as const;

/** The 200 body of an image route: its own fields, then what commonReport (image-task.ts) adds. */
export function imageTaskResponse<P extends Record<string, object>>(own: P) {
  return {
    type: 'object',
    required: [...Object.keys(own), 'model', 'multiplyAdds', 'image', 'timings'],
    properties: { ...own, model: modelSummarySchema, multiplyAdds: { type: 'integer' }, image: imageSchema, timings: timingsSchema },
  } as const;
}

/** Error responses every image route can give, by status code. */
export const imageRouteErrors = Object.fromEntries(
  [400, 413, 415, 422, 503].map((status) => [status, errorSchema]),
) as Record<400 | 413 | 415 | 422 | 503, typeof errorSchema>;

/** And those of a route that can also answer with a picture (content negotiation). */
export const pictureRouteErrors = { ...imageRouteErrors, 406: errorSchema };
