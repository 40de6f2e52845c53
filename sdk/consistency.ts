// Consistency levels and the replica counts they mean for N replicas. Pure functions.

import { InvalidConsistencyError } from './errors.js';

/**
 * How many replicas must answer:
 * - `linearizable`: a majority, with the ABD protocol on top — a write first reads the
 *   newest version from a majority and stamps above it; a read writes what it returns back
 *   to a majority before returning. Last-write-wins mode only;
 * - `strong`: a majority for reads and writes (R = W = 2 of N = 3), so R + W > N;
 * - `eventual`: one (R = W = 1);
 * - `all`: every replica;
 * - `{ r, w }`: explicit counts, each in 1..N (an omitted one defaults to the majority).
 */
export type Consistency = 'linearizable' | 'strong' | 'eventual' | 'all' | { r?: number; w?: number };

export interface Quorum {
  r: number;
  w: number;
}

/** The R and W of `c` for `n` replicas; throws InvalidConsistencyError on anything else. */
export function quorumFor(c: Consistency, n: number): Quorum {
  const majority = Math.floor(n / 2) + 1;
  if (c === 'strong' || c === 'linearizable') return { r: majority, w: majority };
  if (c === 'eventual') return { r: 1, w: 1 };
  if (c === 'all') return { r: n, w: n };
  if (c && typeof c === 'object' && !Array.isArray(c)) {
    const r = c.r ?? majority;
    const w = c.w ?? majority;
    const ok = (x: unknown) => typeof x === 'number' && Number.isInteger(x) && x >= 1 && x <= n;
    if (ok(r) && ok(w)) return { r, w };
  }
  throw new InvalidConsistencyError(c);
}

/** Parses a Consistency header value (case-insensitive); throws InvalidConsistencyError. */
export function parseConsistency(s: string): Consistency {
  const v = s.trim().toLowerCase();
  if (v === 'linearizable') return 'linearizable';
  if (v === 'strong' || v === 'quorum') return 'strong';
  if (v === 'eventual' || v === 'one') return 'eventual';
  if (v === 'all') return 'all';
  throw new InvalidConsistencyError(s);
}
