// Routes that can answer with a picture instead of JSON: `format=image` or an Accept header
// that asks for PNG or JPEG.
import type { FastifyRequest } from 'fastify';
import type { ImageType } from '../render/encode.js';

/** The picture type the client asked for, or undefined for JSON. */
export function requestedImageType(request: FastifyRequest, format: string | undefined): ImageType | undefined {
  const accept = request.headers.accept ?? '';
  const jpeg = /\bimage\/jpeg\b/.test(accept);
  const png = /\bimage\/png\b/.test(accept);
  if (format === 'image' || jpeg || png) {
    // A client that names only JPEG gets JPEG; PNG keeps thin lines and text crisp otherwise.
    return jpeg && !png ? 'image/jpeg' : 'image/png';
  }
  return undefined;
}
