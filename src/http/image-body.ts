// The image bytes of a request: the one file field `image` of a multipart form, or the raw body.
import type { FastifyRequest } from 'fastify';
import { ApiError } from './errors.js';
import { untilAborted } from '../pipeline/lifetime.js';

export const IMAGE_FIELD = 'image';

/** `signal` ends the wait for a multipart upload (deadline, disconnect); a raw body is already read. */
export async function readImageBody(request: FastifyRequest, signal: AbortSignal): Promise<Buffer> {
  if (!request.isMultipart()) {
    if (request.body === undefined || request.body === null) throw new ApiError('empty_body', 'the request has no image');
    if (!Buffer.isBuffer(request.body)) throw new ApiError('unsupported_media_type', 'the body is not an image');
    return request.body;
  }
  return untilAborted(readImageField(request), signal);
}

async function readImageField(request: FastifyRequest): Promise<Buffer> {
  let image: Buffer | undefined;
  try {
    for await (const part of request.parts()) {
      if (part.fieldname !== IMAGE_FIELD) {
        throw new ApiError('invalid_multipart', `unexpected form field '${part.fieldname}'; send only the file field '${IMAGE_FIELD}'`);
      }
      if (part.type !== 'file') throw new ApiError('invalid_multipart', `'${IMAGE_FIELD}' must be a file, not a text field`);
      if (image) throw new ApiError('invalid_multipart', `send exactly one '${IMAGE_FIELD}' file`);
      image = await part.toBuffer();
    }
  } catch (err) {
    // Size limits keep their own codes (413); anything else the parser throws is a broken form.
    if (err instanceof ApiError || (err as { statusCode?: number }).statusCode === 413) throw err;
    throw new ApiError('invalid_multipart', `the multipart body cannot be parsed: ${(err as Error).message}`);
  }
  if (!image) throw new ApiError('invalid_multipart', `the form has no '${IMAGE_FIELD}' file field`);
  return image;
}
