// Routes that can answer with a picture instead of JSON. An explicit `format` wins; otherwise the
// Accept header decides, q-values included (RFC 9110, section 12.5.1), and a client that accepts
// none of the answers gets 406. Decided before any work, so a request that cannot be answered
// costs nothing. (@fastify/accept-negotiator matches tokens only: no media ranges such as image/*.)
import type { ImageType } from '../render/encode.js';
import { ApiError } from './errors.js';

export type AnswerType = 'application/json' | ImageType;

/** In the server's order of preference, for a client that likes several equally. */
const ANSWERS: readonly AnswerType[] = ['application/json', 'image/png', 'image/jpeg'];
const PICTURES: readonly ImageType[] = ['image/png', 'image/jpeg'];

interface MediaRange {
  type: string;
  subtype: string;
  q: number;
}

/** Accept's media ranges and their q-values; other parameters are ignored, a malformed q counts as 0. */
function mediaRanges(accept: string): MediaRange[] {
  return accept.split(',').flatMap((part) => {
    const [range, ...parameters] = part.split(';').map((p) => p.trim());
    const [type, subtype] = (range ?? '').toLowerCase().split('/');
    if (!type || !subtype) return [];
    const q = parameters.find((p) => /^q\s*=/i.test(p));
    const value = q === undefined ? 1 : Number(q.split('=')[1]);
    return [{ type, subtype, q: Number.isFinite(value) && value >= 0 && value <= 1 ? value : 0 }];
  });
}

/** The q-value the client gives a media type: that of the most specific range that matches it (0 when none does). */
function qualityOf(ranges: readonly MediaRange[], mediaType: string): number {
  const [type, subtype] = mediaType.split('/');
  let best: { specificity: number; q: number } = { specificity: -1, q: 0 };
  for (const range of ranges) {
    const specificity = range.type === type && range.subtype === subtype ? 2 : range.type === type && range.subtype === '*' ? 1 : range.type === '*' && range.subtype === '*' ? 0 : -1;
    if (specificity > best.specificity) best = { specificity, q: range.q };
  }
  return best.q;
}

/** Of `offers`, the one the client prefers (ties to the earlier offer), or undefined when it accepts none. No Accept header accepts anything. */
export function preferredType<T extends string>(accept: string | undefined, offers: readonly T[]): T | undefined {
  if (accept === undefined || accept.trim() === '') return offers[0];
  const ranges = mediaRanges(accept);
  let chosen: { offer: T; q: number } | undefined;
  for (const offer of offers) {
    const q = qualityOf(ranges, offer);
    if (q > 0 && (!chosen || q > chosen.q)) chosen = { offer, q };
  }
  return chosen?.offer;
}

/**
 * What to answer. `format=json` gives JSON and `format=image` a picture, whatever Accept says
 * (the picture PNG or JPEG as Accept prefers, PNG when it prefers neither); without `format`,
 * the answer Accept prefers of JSON, PNG and JPEG, JSON first among equals.
 */
export function answerType(accept: string | undefined, format: 'json' | 'image' | undefined): AnswerType {
  if (format === 'json') return 'application/json';
  if (format === 'image') return preferredType(accept, PICTURES) ?? 'image/png';
  const chosen = preferredType(accept, ANSWERS);
  if (!chosen) {
    throw new ApiError('not_acceptable', `the Accept header '${accept}' accepts none of ${ANSWERS.join(', ')}; accept one, or choose with the format parameter`);
  }
  return chosen;
}
