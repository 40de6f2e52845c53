// The `strong` level's promise, checked per key on real time: no read returns a value older than
// a write acknowledged before the read was invoked, nor older than what a read that completed
// before it returned. Weaker than linearizability; see ./README.md. Pure: no I/O, no state kept.

import type { Anomaly, CheckResult, HistoryOp } from '../history.js';
import { showOp, showValue, splitByKey } from './per-key.js';

export const STRONG_CONTRACT = 'strong-contract';

export interface StrongContractOptions {
  /**
   * The levels whose reads are judged (and may serve as the earlier read of 'read-went-back').
   * Default: every read. Writes of every level count, whatever this says.
   */
  readLevels?: readonly string[];
}

/**
 * Where a read's value may have come from, if the read was not stale: writes of that value (not
 * `fail`) invoked no later than the read completed, or, for absent, deletes likewise and the
 * initial state; minus those that precede an ok write acknowledged before the read began.
 * `lo`: the earliest invocation among them (-Infinity with the initial state);
 * `hi`: the latest completion (+Infinity with an unknown write, which never completes;
 * -Infinity for the initial state alone). Every source precedes write w (completed before w
 * was invoked) exactly when hi < w.invokeMs; write w precedes every source when w.completeMs < lo.
 */
interface Sources {
  ops: HistoryOp[];
  lo: number;
  hi: number;
}

/**
 * Reports, per key:
 * - 'phantom-read': a read returned a value no write of the key wrote, or only `fail` ones;
 * - 'future-read': a read returned a value whose every write was invoked after the read completed;
 * - 'stale-read': a read returned v although an ok write (or delete) w completed before the read
 *   was invoked and every write that can be the source of v completed before w was invoked;
 * - 'read-went-back': a read returned a value whose every possible source completed before
 *   every possible source of what an earlier read (completed before it was invoked) returned.
 *   A read's possible sources leave out those that would make it stale: the stale case is
 *   reported as such, so both can be assumed away when judging the order of two reads. A
 *   stale read is reported once, as stale, and not compared with other reads.
 * "Precedes" is strict: writes whose intervals touch are concurrent. Unknown writes never
 * complete, so they precede nothing; the initial state precedes every write.
 */
export function checkStrongContract(history: readonly HistoryOp[], options: StrongContractOptions = {}): CheckResult {
  const levels = options.readLevels === undefined ? undefined : new Set(options.readLevels);
  const anomalies: Anomaly[] = [];
  const stats = { reads: 0, 'phantom-read': 0, 'future-read': 0, 'stale-read': 0, 'read-went-back': 0 };
  for (const [key, ops] of splitByKey(history)) {
    const reads = ops.filter((o) => o.f === 'read' && o.outcome === 'ok' && (levels === undefined || levels.has(o.level ?? '')));
    if (reads.length === 0) continue;
    stats.reads += reads.length;
    const writes = ops.filter((o) => o.f !== 'read');
    const byValue = new Map<string, HistoryOp[]>();
    for (const w of writes) {
      if (w.f === 'delete' || w.value === null) continue;
      let ws = byValue.get(w.value);
      if (ws === undefined) byValue.set(w.value, (ws = []));
      ws.push(w);
    }
    const deletes = writes.filter((w) => (w.f === 'delete' || w.value === null) && w.outcome !== 'fail');
    const report = (kind: keyof typeof stats, opsInvolved: HistoryOp[], message: string): void => {
      stats[kind]++;
      const ids = [...new Set(opsInvolved.map((o) => o.id))].sort((a, b) => a - b);
      anomalies.push({ kind, key, ops: ids, message: `key ${JSON.stringify(key)}: ${message}` });
    };

    // For each read, the latest-invoked ok write acknowledged before it was invoked: a source
    // that completed before that write was invoked would make the read stale.
    const acked = writes.filter((w) => w.outcome === 'ok').sort((a, b) => a.completeMs - b.completeMs);
    const ackedLatest = prefixArgMax(acked, (w) => w.invokeMs);
    const newestAckedBefore = (r: HistoryOp): HistoryOp | undefined => {
      const k = countBefore(acked, (w) => w.completeMs, r.invokeMs);
      return k === 0 ? undefined : acked[ackedLatest[k - 1]!]!;
    };

    // Sources of each read's value. Reads with none are phantom, future or stale reads.
    const judged: { read: HistoryOp; src: Sources }[] = [];
    for (const r of reads) {
      let candidates: HistoryOp[];
      let initial = false;
      if (r.value === null) {
        candidates = deletes.filter((d) => d.invokeMs <= r.completeMs);
        initial = true;
      } else {
        const all = byValue.get(r.value) ?? [];
        const applied = all.filter((w) => w.outcome !== 'fail');
        if (applied.length === 0) {
          const why = all.length === 0 ? 'no write of this key wrote it' : `only failed write(s) wrote it (${all.map((w) => `op ${w.id}`).join(', ')})`;
          report('phantom-read', [...all, r], `${showOp(r)} returned ${showValue(r.value)}, but ${why}`);
          continue;
        }
        candidates = applied.filter((w) => w.invokeMs <= r.completeMs);
        if (candidates.length === 0) {
          report('future-read', [...applied, r], `${showOp(r)} returned ${showValue(r.value)} before any write of it was invoked (${applied.map(showOp).join(', ')})`);
          continue;
        }
      }
      // A source that precedes wa (an ok write acknowledged before r began) would make r stale:
      // r is only not stale if it read from another one, so only those count as its sources.
      const wa = newestAckedBefore(r);
      const completes = (s: HistoryOp): number => (s.outcome === 'unknown' ? Infinity : s.completeMs);
      const fresh = wa === undefined ? candidates : candidates.filter((s) => !(completes(s) < wa.invokeMs));
      if (wa !== undefined && fresh.length === 0) {
        const from = candidates.length === 0 ? 'the initial state' : `${candidates.map((s) => `op ${s.id}`).join(' or ')}${initial ? ' or the initial state' : ''}`;
        report(
          'stale-read',
          [...candidates.slice(0, 4), wa, r],
          `${showOp(r)} returned ${showValue(r.value)} (from ${from}), older than ${showOp(wa)}, acknowledged before the read was invoked`,
        );
        continue;
      }
      const withInitial = initial && wa === undefined;
      let lo = withInitial ? -Infinity : Infinity;
      let hi = -Infinity;
      for (const s of fresh) {
        lo = Math.min(lo, s.invokeMs);
        hi = Math.max(hi, completes(s));
      }
      judged.push({ read: r, src: { ops: fresh, lo, hi } });
    }

    // read-went-back: among judged reads completed before r2 was invoked, the one whose sources
    // started latest (largest lo).
    const byCompletion = [...judged].sort((a, b) => a.read.completeMs - b.read.completeMs);
    const latestSource = prefixArgMax(byCompletion, (j) => j.src.lo);
    for (const { read: r2, src: s2 } of judged) {
      const k = countBefore(byCompletion, (j) => j.read.completeMs, r2.invokeMs);
      if (k === 0) continue;
      const { read: r1, src: s1 } = byCompletion[latestSource[k - 1]!]!;
      if (s2.hi < s1.lo) {
        report(
          'read-went-back',
          [r1, ...s1.ops.slice(0, 2), ...s2.ops.slice(0, 2), r2],
          `${showOp(r2)} returned ${showValue(r2.value)}, older than ${showValue(r1.value)} that ${showOp(r1)} returned before it was invoked`,
        );
      }
    }
  }
  return { checker: STRONG_CONTRACT, valid: anomalies.length === 0, anomalies, checked: history.length, stats };
}

/** For each prefix xs[0..i], the index of its element with the largest f (first one on ties). */
function prefixArgMax<T>(xs: readonly T[], f: (x: T) => number): number[] {
  const out: number[] = [];
  let best = -1;
  for (let i = 0; i < xs.length; i++) {
    if (best < 0 || f(xs[i]!) > f(xs[best]!)) best = i;
    out.push(best);
  }
  return out;
}

/** How many elements of xs (sorted by f) have f(x) < limit. */
function countBefore<T>(xs: readonly T[], f: (x: T) => number, limit: number): number {
  let lo = 0;
  let hi = xs.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (f(xs[mid]!) < limit) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
