// Dots and dot sets, the names of update events that every data type's entries carry, and
// their join under two replicas' causal contexts (the "dot store" join of Almeida et al.,
// Delta State Replicated Data Types). Pure functions on immutable inputs; safe anywhere.

import { compareDots, contextCovers } from '../versioning/dvv.js';
import type { Dot, VersionVector } from '../versioning/stored-object.js';

export type { Dot, VersionVector };
export { compareDots, contextCovers };

/** A string naming a dot, for sets and maps: `${counter}:${node}` (the counter has no colon). */
export function dotKey(d: Dot): string {
  return `${d[1]}:${d[0]}`;
}

/** True when two dots are the same event. */
export function sameDot(a: Dot, b: Dot): boolean {
  return a === b || (a[1] === b[1] && a[0] === b[0]);
}

/** True when two sorted dot lists hold the same dots. */
export function sameDots(a: readonly Dot[], b: readonly Dot[]): boolean {
  if (a === b) return true;
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (!sameDot(a[i]!, b[i]!)) return false;
  return true;
}

/**
 * The join of two replicas' dot sets (each sorted, unique): a dot survives when both hold it,
 * or when the side that lacks it has not seen it (its context does not cover it: it cannot
 * have removed it). Returns `a` itself when the result equals `a`, `b` when it equals `b`.
 */
export function joinDots(a: readonly Dot[], ca: VersionVector, b: readonly Dot[], cb: VersionVector): readonly Dot[] {
  if (a === b) return a;
  const out: Dot[] = [];
  let i = 0;
  let j = 0;
  while (i < a.length || j < b.length) {
    const c = i >= a.length ? 1 : j >= b.length ? -1 : compareDots(a[i]!, b[j]!);
    if (c === 0) {
      out.push(a[i]!);
      i++;
      j++;
    } else if (c < 0) {
      if (!contextCovers(cb, a[i]!)) out.push(a[i]!);
      i++;
    } else {
      if (!contextCovers(ca, b[j]!)) out.push(b[j]!);
      j++;
    }
  }
  if (sameDots(out, a)) return a;
  if (sameDots(out, b)) return b;
  return out;
}

/** The dots that `ctx` does not cover; `dots` itself when it covers none. */
export function withoutCovered(dots: readonly Dot[], ctx: VersionVector): readonly Dot[] {
  let out: Dot[] | undefined;
  for (let i = 0; i < dots.length; i++) {
    const d = dots[i]!;
    if (contextCovers(ctx, d)) {
      out ??= dots.slice(0, i);
    } else if (out !== undefined) {
      out.push(d);
    }
  }
  return out ?? dots;
}

/** `dots` with `d` inserted in order (unchanged when present). */
export function insertDot(dots: readonly Dot[], d: Dot): readonly Dot[] {
  let i = 0;
  while (i < dots.length && compareDots(dots[i]!, d) < 0) i++;
  if (i < dots.length && sameDot(dots[i]!, d)) return dots;
  return [...dots.slice(0, i), d, ...dots.slice(i)];
}

/** Code-unit string order (never locale order), the order of every canonical list here. */
export function compareStrings(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
