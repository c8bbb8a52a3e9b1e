// Draws labelled boxes on the photo, as the user sees it (EXIF orientation applied).
import sharp, { type Sharp } from 'sharp';
import type { PhotoRegion } from '../decode/decode.js';
import type { Detection } from '../tasks.js';
import type { Labels } from './labels.js';

export interface PixelBox {
  x: number;
  y: number;
  width: number;
  height: number;
}

export interface LabelledBox {
  label: string;
  classId: number;
  score: number;
  box: PixelBox;
}

/** Distinct, readable colours, one per class id. */
const PALETTE = ['#e6194b', '#3cb44b', '#4363d8', '#f58231', '#911eb4', '#46f0f0', '#f032e6', '#bcf60c', '#008080', '#9a6324'];

const escapeXml = (text: string) => text.replace(/[<>&"']/g, (c) => `&#${c.charCodeAt(0)};`);

export function drawBoxes(photo: Uint8Array, width: number, height: number, boxes: readonly LabelledBox[]): Sharp {
  const stroke = Math.max(2, Math.round(Math.min(width, height) / 200));
  const fontSize = Math.max(12, Math.round(Math.min(width, height) / 40));
  const shapes = boxes.map(({ label, classId, score, box: b }) => {
    const colour = PALETTE[classId % PALETTE.length]!;
    const caption = `${escapeXml(label)} ${score.toFixed(2)}`;
    const captionY = b.y >= fontSize + 4 ? b.y - fontSize - 4 : b.y;
    return `<rect x="${b.x}" y="${b.y}" width="${b.width}" height="${b.height}" fill="none" stroke="${colour}" stroke-width="${stroke}"/>` +
      `<rect x="${b.x}" y="${captionY}" width="${caption.length * fontSize * 0.6 + 6}" height="${fontSize + 4}" fill="${colour}"/>` +
      `<text x="${b.x + 3}" y="${captionY + fontSize}" font-family="sans-serif" font-size="${fontSize}" fill="#ffffff">${caption}</text>`;
  });
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}">${shapes.join('')}</svg>`;
  return sharp(photo).rotate().composite([{ input: Buffer.from(svg), top: 0, left: 0 }]);
}

/** Normalized corners of the model input to a pixel box of the photo as seen; `view` is the part of the photo the input showed. */
export function toPixelBox({ classId, score, box }: Detection, labels: Labels, view: PhotoRegion): LabelledBox {
  const clamp = (v: number) => Math.min(1, Math.max(0, v));
  const [x0, x1] = [view.x + clamp(box.xmin) * view.width, view.x + clamp(box.xmax) * view.width];
  const [y0, y1] = [view.y + clamp(box.ymin) * view.height, view.y + clamp(box.ymax) * view.height];
  return { label: labels.of(classId), classId, score, box: { x: x0, y: y0, width: x1 - x0, height: y1 - y0 } };
}
