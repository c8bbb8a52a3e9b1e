// Content negotiation by HTTP's rules (RFC 9110, 12.5.1), each expectation worked out by hand.
import { describe, expect, it } from 'vitest';
import { ApiError } from '../src/http/errors.js';
import { answerType, preferredType } from '../src/http/negotiate.js';

describe('answerType', () => {
  it.each([
    [undefined, 'application/json'],
    ['', 'application/json'],
    ['*/*', 'application/json'],
    ['image/png', 'image/png'],
    ['Image/PNG', 'image/png'],
    ['image/jpeg', 'image/jpeg'],
    // Ranges: image/* gives both pictures q 1, PNG comes first among equals.
    ['image/*', 'image/png'],
    ['image/jpeg, image/png;q=0.5', 'image/jpeg'],
    ['application/json;q=0.2, image/*;q=0.5', 'image/png'],
    // The most specific range decides: PNG refused, */* still takes JSON and JPEG.
    ['image/png;q=0, */*', 'application/json'],
    ['image/png;q=0, image/*;q=0.4, application/json;q=0.3', 'image/jpeg'],
    ['application/json; charset=utf-8', 'application/json'],
    // A browser's: */* at 0.8 for all three, so JSON.
    ['text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8', 'application/json'],
  ] as const)('Accept %j without format: %s', (accept, expected) => {
    expect(answerType(accept, undefined)).toBe(expected);
  });

  it.each(['text/html', 'image/png;q=0', 'image/*;q=0, application/json;q=0', 'application/xml, image/gif'])('Accept %j without format: 406 not_acceptable', (accept) => {
    expect(() => answerType(accept, undefined)).toThrow(ApiError);
    try {
      answerType(accept, undefined);
    } catch (err) {
      expect((err as ApiError).code).toBe('not_acceptable');
      expect((err as ApiError).statusCode).toBe(406);
      expect((err as ApiError).message).toContain(accept);
    }
  });

  it('an explicit format wins over Accept; with format=image, Accept only picks PNG or JPEG', () => {
    expect(answerType('image/png', 'json')).toBe('application/json');
    expect(answerType('text/html', 'json')).toBe('application/json');
    expect(answerType('application/json', 'image')).toBe('image/png');
    expect(answerType(undefined, 'image')).toBe('image/png');
    expect(answerType('image/jpeg', 'image')).toBe('image/jpeg');
    expect(answerType('image/png;q=0.1, image/jpeg;q=0.9', 'image')).toBe('image/jpeg');
    expect(answerType('image/png;q=0, image/jpeg;q=0', 'image')).toBe('image/png');
  });

  it('preferredType takes the first offer among equals and nothing at q=0', () => {
    expect(preferredType('a/b;q=0.5, c/d;q=0.5', ['c/d', 'a/b'])).toBe('c/d');
    expect(preferredType('a/b;q=0', ['a/b'])).toBeUndefined();
    expect(preferredType('a/b;q=bad', ['a/b'])).toBeUndefined();
  });
});
