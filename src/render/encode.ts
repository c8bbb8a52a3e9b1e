// Pictures sent back to the client: PNG or JPEG, encoded by sharp on libuv's threads.
import type { Sharp } from 'sharp';

export type ImageType = 'image/png' | 'image/jpeg';

export function encode(picture: Sharp, type: ImageType): Promise<Buffer> {
  return (type === 'image/jpeg' ? picture.jpeg({ quality: 90 }) : picture.png()).toBuffer();
}
