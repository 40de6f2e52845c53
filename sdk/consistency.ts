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

/**
 * Parses a Consistency header value (case-insensitive): `linearizable`, `strong` (or
 * `quorum`), `eventual` (or `one`), `all`, or explicit counts as `r=2,w=1` (either may be
 * left out) or the JSON `{"r": 2, "w": 1}`. Counts are checked against N by quorumFor.
 * Throws InvalidConsistencyError on anything else.
 */
export function parseConsistency(s: string): Consistency {
  const v = s.trim().toLowerCase();
  if (v === 'linearizable') return 'linearizable';
  if (v === 'strong' || v === 'quorum') return 'strong';
  if (v === 'eventual' || v === 'one') return 'eventual';
  if (v === 'all') return 'all';
  if (v.startsWith('{')) {
    let o: unknown;
    try {
      o = JSON.parse(v);
    } catch {
      throw new InvalidConsistencyError(s);
    }
    if (!o || typeof o !== 'object' || Array.isArray(o)) throw new InvalidConsistencyError(s);
    const keys = Object.keys(o);
    if (keys.length === 0 || keys.some((k) => k !== 'r' && k !== 'w')) throw new InvalidConsistencyError(s);
    const { r, w } = o as { r?: unknown; w?: unknown };
    return countsOf(s, r, w);
  }
  const m = /^(?:([rw])\s*=\s*(\d{1,3}))(?:\s*[,;]\s*([rw])\s*=\s*(\d{1,3}))?$/.exec(v);
  if (m && m[1] !== m[3]) {
    const counts: { r?: number; w?: number } = {};
    counts[m[1] as 'r' | 'w'] = Number(m[2]);
    if (m[3]) counts[m[3] as 'r' | 'w'] = Number(m[4]);
    return countsOf(s, counts.r, counts.w);
  }
  throw new InvalidConsistencyError(s);
}

function countsOf(given: string, r: unknown, w: unknown): { r?: number; w?: number } {
  const ok = (x: unknown) => x === undefined || (typeof x === 'number' && Number.isInteger(x) && x >= 1);
  if (!ok(r) || !ok(w)) throw new InvalidConsistencyError(given);
  const out: { r?: number; w?: number } = {};
  if (r !== undefined) out.r = r as number;
  if (w !== undefined) out.w = w as number;
  return out;
}
