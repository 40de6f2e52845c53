// Splits a history into one history per key, after checking that every operation's interval is
// well formed. Every checker works key by key. Pure: no I/O, no state kept between calls.

import type { HistoryOp } from '../history.js';

/**
 * The operations of each key, in history order. Throws a RangeError for an operation whose
 * interval is not a pair of finite times with invokeMs <= completeMs: the history is
 * malformed, and no verdict on it would mean anything.
 */
export function splitByKey(history: readonly HistoryOp[]): Map<string, HistoryOp[]> {
  const byKey = new Map<string, HistoryOp[]>();
  for (const op of history) {
    if (!Number.isFinite(op.invokeMs) || !Number.isFinite(op.completeMs) || op.completeMs < op.invokeMs) {
      throw new RangeError(`op ${op.id}: malformed interval [${op.invokeMs}, ${op.completeMs}]`);
    }
    let ops = byKey.get(op.key);
    if (ops === undefined) byKey.set(op.key, (ops = []));
    ops.push(op);
  }
  return byKey;
}

/** A value for messages: quoted, or `absent` for null. */
export function showValue(v: string | null | undefined): string {
  return v === null || v === undefined ? 'absent' : JSON.stringify(v);
}

/** An operation for messages: `op 12 (c3 write "v7" [100, 130] ok)`. */
export function showOp(op: HistoryOp): string {
  const what = op.f === 'delete' ? 'delete' : `${op.f} ${showValue(op.value)}`;
  return `op ${op.id} (${op.process} ${what} [${op.invokeMs}, ${op.completeMs}] ${op.outcome})`;
}
