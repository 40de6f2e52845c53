// The definition of linearizability, checked literally, for cross-checking the real checker on
// small histories (<= 20 operations that matter): tries every order of all ok operations plus
// any subset of the unknown writes. Test helper only; exponential, pure.

import type { HistoryOp } from './history.js';

/** The most operations (after dropping fail ops and unknown reads) the brute force accepts. */
export const BRUTE_FORCE_MAX_OPS = 20;

/**
 * True when some total order of all `ok` operations plus any subset of the `unknown` writes and
 * deletes (fail operations and unknown reads left out) respects real time and the semantics of
 * one register per key (initially absent). Real time: if `a` is ok and a.completeMs <
 * b.invokeMs, `a` comes before `b` (equal times are concurrent).
 *
 * The orders are built op by op, abandoning a prefix as soon as it breaks a rule; a prefix that
 * could not be completed is remembered (by the set of ops placed and the registers) so that
 * another ordering of the same ops is not completed again. Nothing else is pruned.
 */
export function bruteForceLinearizable(history: readonly HistoryOp[]): boolean {
  const ops = history.filter((o) => o.outcome !== 'fail' && !(o.f === 'read' && o.outcome === 'unknown'));
  if (ops.length > BRUTE_FORCE_MAX_OPS) throw new Error(`brute force is for small histories, got ${ops.length} ops`);
  const keys = [...new Set(ops.map((o) => o.key))];
  const register = new Map<string, string | null>(keys.map((k) => [k, null]));
  const okCount = ops.filter((o) => o.outcome === 'ok').length;
  const failed = new Set<string>();

  const extend = (placed: number, okPlaced: number): boolean => {
    if (okPlaced === okCount) return true; // unknown writes not placed never happened
    const memo = `${placed}:${JSON.stringify(keys.map((k) => register.get(k)))}`;
    if (failed.has(memo)) return false;
    for (let i = 0; i < ops.length; i++) {
      if (placed & (1 << i)) continue;
      const x = ops[i]!;
      // Every ok op that completed before x was invoked must already be in the order.
      if (ops.some((y, j) => !(placed & (1 << j)) && y.outcome === 'ok' && y.completeMs < x.invokeMs)) continue;
      const before = register.get(x.key)!;
      if (x.f === 'read') {
        if (x.value !== before) continue;
      } else {
        register.set(x.key, x.f === 'delete' ? null : x.value);
      }
      const found = extend(placed | (1 << i), okPlaced + (x.outcome === 'ok' ? 1 : 0));
      register.set(x.key, before);
      if (found) return true;
    }
    failed.add(memo);
    return false;
  };
  return extend(0, 0);
}
