// The image bytes of a request: the one file field `image` of a multipart form, or the raw body.
import type { FastifyRequest } from 'fastify';
import { ApiError } from './errors.js';

export const IMAGE_FIELD = 'image';

export async function readImageBody(request: FastifyRequest): Promise<Buffer> {
  if (!request.isMultipart()) {
    if (request.body === undefined || request.body === null) throw new ApiError('empty_body', 'the request has no image');
    if (!Buffer.isBuffer(request.body)) throw new ApiError('unsupported_media_type', 'the body is not an image');
    return request.body;
  }
  let image: Buffer | undefined;
  for await (const part of request.parts()) {
    if (part.type !== 'file' || part.fieldname !== IMAGE_FIELD) {
      throw new ApiError('invalid_multipart', `unexpected form field '${part.fieldname}'; send only the file field '${IMAGE_FIELD}'`);
    }
    if (image) throw new ApiError('invalid_multipart', `send exactly one '${IMAGE_FIELD}' file`);
    image = await part.toBuffer();
  }
  if (!image) throw new ApiError('invalid_multipart', `the form has no '${IMAGE_FIELD}' file field`);
  return image;
}
