// The applied-op window: the ids of recently applied operations with their dot and time, so a
// retried operation is applied once. A horizon (ms) says what has been forgotten; the join is
// the union above the larger horizon. Pure functions on immutable inputs; no clock is read.

import type { AppliedOp } from './crdt-state.js';
import { compareDots, dotKey, sameDot } from './dots.js';

/** Default length of the window: 10 minutes. */
export const DEFAULT_OP_WINDOW_MS = 10 * 60 * 1000;
/** Default bound on the operations remembered per key. */
export const DEFAULT_MAX_OP_IDS = 256;
/** Longest operation id, in bytes. */
export const MAX_OP_ID_BYTES = 64;

/** Canonical order: atMs, then dot, then id bytes. */
export function compareApplied(a: AppliedOp, b: AppliedOp): number {
  if (a.atMs !== b.atMs) return a.atMs - b.atMs;
  return compareDots(a.dot, b.dot) || Buffer.compare(a.id, b.id);
}

/**
 * The join of two windows: the larger horizon, and the union of the records (an operation
 * applied at two nodes is two records) that are not below it. Returns `ra` when unchanged.
 */
export function joinWindows(ha: number, ra: readonly AppliedOp[], hb: number, rb: readonly AppliedOp[]): { horizonMs: number; applied: readonly AppliedOp[] } {
  const h = Math.max(ha, hb);
  if (ra === rb) return { horizonMs: h, applied: h === ha ? ra : ra.filter((r) => r.atMs >= h) };
  const out: AppliedOp[] = [];
  let i = 0;
  let j = 0;
  while (i < ra.length || j < rb.length) {
    const c = i >= ra.length ? 1 : j >= rb.length ? -1 : compareApplied(ra[i]!, rb[j]!);
    const r = c <= 0 ? ra[i]! : rb[j]!;
    if (c <= 0) i++;
    if (c >= 0) j++;
    if (r.atMs >= h) out.push(r);
  }
  if (sameRecords(out, ra)) return { horizonMs: h, applied: ra };
  if (sameRecords(out, rb)) return { horizonMs: h, applied: rb };
  return { horizonMs: h, applied: out };
}

/** True when the window holds operation `id` (applied at any node). */
export function hasApplied(applied: readonly AppliedOp[], id: Uint8Array): boolean {
  for (const r of applied) if (r.id.length === id.length && r.id.equals(id)) return true;
  return false;
}

/**
 * Records a newly applied operation and forgets what is out of the window: the horizon rises
 * to `nowMs - windowMs`, and further when more than `maxOps` records remain, up to the time of
 * the newest (records of one millisecond are kept or dropped together). The record's time is
 * `max(nowMs, horizon)`, so it is never forgotten at once.
 */
export function recordApplied(
  horizonMs: number,
  applied: readonly AppliedOp[],
  id: Buffer,
  dot: AppliedOp['dot'],
  nowMs: number,
  windowMs: number,
  maxOps: number,
): { horizonMs: number; applied: readonly AppliedOp[] } {
  let h = Math.max(horizonMs, nowMs - windowMs);
  const rec: AppliedOp = { id, dot, atMs: Math.max(nowMs, h) };
  let recs = applied.filter((r) => r.atMs >= h);
  recs.push(rec);
  recs.sort(compareApplied);
  if (recs.length > maxOps) {
    const boundary = recs[recs.length - maxOps - 1]!.atMs;
    const newest = recs[recs.length - 1]!.atMs;
    h = Math.max(h, Math.min(boundary + 1, newest));
    recs = recs.filter((r) => r.atMs >= h);
  }
  return { horizonMs: h, applied: recs };
}

/** Raises the horizon to `nowMs - windowMs` (forgetting older records). */
export function expireApplied(horizonMs: number, applied: readonly AppliedOp[], nowMs: number, windowMs: number): { horizonMs: number; applied: readonly AppliedOp[] } {
  const h = Math.max(horizonMs, nowMs - windowMs);
  if (h === horizonMs) return { horizonMs, applied };
  const recs = applied.filter((r) => r.atMs >= h);
  return { horizonMs: h, applied: recs.length === applied.length ? applied : recs };
}

/**
 * The dots (dot keys) of duplicate applications: of the records that share an operation id,
 * every one but the first in canonical order (earliest atMs, then dot). Counter entries under
 * these dots do not count, and are dropped at the next update or settle.
 */
export function duplicateDots(applied: readonly AppliedOp[]): Set<string> {
  const out = new Set<string>();
  if (applied.length < 2) return out;
  const seen = new Set<string>();
  for (const r of applied) {
    const k = r.id.toString('hex');
    if (seen.has(k)) out.add(dotKey(r.dot));
    else seen.add(k);
  }
  return out;
}

/** The dot keys of every record: events still in the window, whose counter entries stay apart. */
export function windowDots(applied: readonly AppliedOp[]): Set<string> {
  const out = new Set<string>();
  for (const r of applied) out.add(dotKey(r.dot));
  return out;
}

export function sameRecords(x: readonly AppliedOp[], y: readonly AppliedOp[]): boolean {
  if (x === y) return true;
  if (x.length !== y.length) return false;
  for (let i = 0; i < x.length; i++) {
    const a = x[i]!;
    const b = y[i]!;
    if (a !== b && (a.atMs !== b.atMs || !sameDot(a.dot, b.dot) || !a.id.equals(b.id))) return false;
  }
  return true;
}
