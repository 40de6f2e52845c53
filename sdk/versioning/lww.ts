// Last-write-wins: the total order over siblings that makes every replica pick the same
// winner, and the merge of two 'lww' objects. Pure functions on immutable inputs; safe to
// call from anywhere. The rules are in ./versioning.md.

import { InvalidArgumentError } from '../errors.js';
import type { Sibling, StoredObject } from './stored-object.js';

/**
 * Orders two siblings for last-write-wins: positive when `a` wins, negative when `b` wins,
 * 0 only when they are identical in every field that is compared.
 *
 * Order: higher `ts`; then greater `writer` (code-unit order); then a tombstone over a
 * value; then Buffer.compare of the values; then the greater expiresAtMs (0 = never counts
 * as greatest), contentType, flags. The tail is only reached by two different writes with
 * the same ts and writer, which a correct HLC never produces; it exists so that even then
 * all replicas pick the same winner.
 */
export function lwwCompare(a: Sibling, b: Sibling): number {
  if (a.ts !== b.ts) return a.ts > b.ts ? 1 : -1;
  if (a.writer !== b.writer) return a.writer > b.writer ? 1 : -1;
  if (a.tombstone !== b.tombstone) return a.tombstone ? 1 : -1;
  const byValue = Buffer.compare(a.value, b.value);
  if (byValue !== 0) return byValue;
  if (a.expiresAtMs !== b.expiresAtMs) return expiryRank(a.expiresAtMs) > expiryRank(b.expiresAtMs) ? 1 : -1;
  if (a.contentType !== b.contentType) return a.contentType > b.contentType ? 1 : -1;
  if (a.flags !== b.flags) return a.flags > b.flags ? 1 : -1;
  return 0;
}

/**
 * The last-write-wins merge of two 'lww' objects: the one whose sibling wins
 * {@link lwwCompare}. Returns one of the inputs unchanged (`a` when they tie), so a caller
 * detects "nothing changed" with `merged === local`. Throws InvalidArgumentError when an
 * object is not an 'lww' object with exactly one sibling.
 */
export function lwwMerge(a: StoredObject, b: StoredObject): StoredObject {
  const sa = lwwSibling(a);
  const sb = lwwSibling(b);
  return lwwCompare(sa, sb) >= 0 ? a : b;
}

function lwwSibling(obj: StoredObject): Sibling {
  if (obj.mode !== 'lww') throw new InvalidArgumentError(`lwwMerge: expected an 'lww' object, got mode ${JSON.stringify(obj.mode)}`);
  if (obj.siblings.length !== 1) {
    throw new InvalidArgumentError(`lwwMerge: an 'lww' object holds exactly one sibling, got ${obj.siblings.length}`);
  }
  return obj.siblings[0]!;
}

function expiryRank(expiresAtMs: number): number {
  return expiresAtMs === 0 ? Number.POSITIVE_INFINITY : expiresAtMs;
}
