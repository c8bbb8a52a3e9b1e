// Pictures sent back to the client: PNG or JPEG, encoded by sharp on libuv's threads.
import type { Sharp } from 'sharp';

export type ImageType = 'image/png' | 'image/jpeg';

/** `timeoutMs` bounds libvips' work on it (whole seconds, at least one). */
export function encode(picture: Sharp, type: ImageType, timeoutMs: number): Promise<Buffer> {
  const timed = picture.timeout({ seconds: Math.max(1, Math.ceil(timeoutMs / 1000)) });
  return (type === 'image/jpeg' ? timed.jpeg({ quality: 90 }) : timed.png()).toBuffer();
}
