// Token ranges of the ring and the spans a Merkle comparison walks. A vnode token t owns
// (previous token, t]; the first token also owns the range that wraps past 2^32 - 1, so
// every range is one or two inclusive spans [from, to]. Spans split along the fixed
// Merkle leaves (anti-entropy/leaf-hashes.ts) into at most 16 children, down to one leaf.
// Pure functions.

import type { Ring } from '../../sdk/ring.js';
import { LEAF_SPAN } from './leaf-hashes.js';

/** An inclusive span of tokens. */
export type Span = readonly [from: number, to: number];

export const MAX_TOKEN = 0xffffffff;

/** A range of the ring with its replicas (the placement of its end token). */
export interface TokenRange {
  /** Exclusive start (the previous vnode token). */
  start: number;
  /** Inclusive end (the vnode token). */
  end: number;
  /** The range as one or two inclusive spans. */
  spans: Span[];
  replicas: string[];
}

/**
 * Every range of `ring` with its replicas, in token order: the ring's placement (every data
 * center's replicas; the ring must have replication settings), or with `n`, the flat
 * preference list of N (ring-balance figures).
 */
export function ringRanges(ring: Ring, n?: number): TokenRange[] {
  const tokens = ring.tokens();
  const out: TokenRange[] = [];
  for (let i = 0; i < tokens.length; i++) {
    const end = tokens[i]!.token;
    const start = i === 0 ? tokens[tokens.length - 1]!.token : tokens[i - 1]!.token;
    if (i > 0 && start === end) continue; // two vnodes on one token: the second owns nothing
    let spans: Span[];
    if (tokens.length === 1) spans = [[0, MAX_TOKEN]];
    else if (i === 0) {
      spans = [];
      if (start < MAX_TOKEN) spans.push([start + 1, MAX_TOKEN]);
      spans.push([0, end]);
    } else spans = [[start + 1, end]];
    out.push({ start, end, spans, replicas: n === undefined ? [...ring.replicasForToken(end)] : ring.preferenceListForToken(end, n) });
  }
  return out;
}

/** The ranges of `ring` with their replicas in data center `dc` only (anti-entropy, streaming and full sync work within one). */
export function dcRanges(ring: Ring, dc: string): TokenRange[] {
  return ringRanges(ring).map((r) => ({ ...r, replicas: [...ring.replicasInDcForToken(r.end, dc)] }));
}

/** Number of tokens in a span. */
export function spanWidth(s: Span): number {
  return s[1] - s[0] + 1;
}

/** True when the span lies inside one Merkle leaf. */
export function withinOneLeaf(s: Span): boolean {
  return Math.floor(s[0] / LEAF_SPAN) === Math.floor(s[1] / LEAF_SPAN);
}

/**
 * Splits a span that covers several leaves into at most 16 children, cut on leaf
 * boundaries (each child covers about the same number of leaves).
 */
export function splitSpan(s: Span, fanout = 16): Span[] {
  const firstLeaf = Math.floor(s[0] / LEAF_SPAN);
  const lastLeaf = Math.floor(s[1] / LEAF_SPAN);
  const leaves = lastLeaf - firstLeaf + 1;
  if (leaves <= 1) return [s];
  const per = Math.ceil(leaves / fanout);
  const out: Span[] = [];
  for (let l = firstLeaf; l <= lastLeaf; l += per) {
    const from = Math.max(s[0], l * LEAF_SPAN);
    const to = Math.min(s[1], (l + per) * LEAF_SPAN - 1);
    out.push([from, to]);
  }
  return out;
}

/** The ranges `node` replicates (it is one of the replicas). */
export function rangesOf(ranges: readonly TokenRange[], node: string): TokenRange[] {
  return ranges.filter((r) => r.replicas.includes(node));
}

/** True when `token` falls in the range. */
export function rangeContains(r: TokenRange, token: number): boolean {
  return r.spans.some((s) => token >= s[0] && token <= s[1]);
}
