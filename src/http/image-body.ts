// The image bytes of a request: the one file field `image` of a multipart form, or the raw body.
import type { IncomingMessage } from 'node:http';
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

/** How long a refused request's remaining body is read and discarded before its answer. */
export const LINGER_MS = 5_000;

/**
 * Reads and discards what is left of a request's body, so that an answer sent before the body
 * was read reaches a client that writes the whole body before it reads: closing with unread data
 * would reset the connection, and the client would see EPIPE instead of the answer. Bounded in
 * time, as nginx's lingering close is; false when the body did not end within it.
 */
export function discardBody(raw: IncomingMessage, maxMs = LINGER_MS): Promise<boolean> {
  if (raw.complete) return Promise.resolve(true);
  if (raw.destroyed || raw.readableEnded) return Promise.resolve(false);
  return new Promise((resolve) => {
    const finish = (drained: boolean) => {
      clearTimeout(timer);
      raw.off('end', onEnd);
      raw.off('close', onClose);
      resolve(drained);
    };
    const onEnd = () => finish(true);
    const onClose = () => finish(raw.complete);
    const timer = setTimeout(() => finish(false), maxMs);
    // Whoever was reading (the body parser, the form parser) has given up on it.
    raw.unpipe();
    raw.on('data', () => {});
    raw.once('end', onEnd);
    raw.once('close', onClose);
    raw.resume();
  });
}
