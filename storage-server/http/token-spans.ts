// The token spans a merkle, merkle-keys, stream or scan request names: checked before any
// work, at most MAX_SPANS_PER_REQUEST of them, each [from, to] with 0 <= from <= to < 2^32.
// Pure functions.

import { MalformedRequestError } from '../../sdk/errors.js';

/** Most token spans in one merkle, merkle-keys, stream or scan request. */
export const MAX_SPANS_PER_REQUEST = 4096;

/** The request's spans, or MALFORMED_REQUEST. */
export function checkSpans(spans: unknown): [number, number][] {
  if (!Array.isArray(spans) || spans.length > MAX_SPANS_PER_REQUEST) {
    throw new MalformedRequestError(`spans must be an array of at most ${MAX_SPANS_PER_REQUEST} [from, to]`);
  }
  for (const s of spans) {
    if (!Array.isArray(s) || s.length !== 2 || !isToken(s[0]) || !isToken(s[1]) || s[0] > s[1]) {
      throw new MalformedRequestError('a span is [from, to] with 0 <= from <= to < 2^32');
    }
  }
  return spans as [number, number][];
}

function isToken(n: unknown): n is number {
  return typeof n === 'number' && Number.isInteger(n) && n >= 0 && n <= 0xffffffff;
}
