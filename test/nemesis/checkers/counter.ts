// The counter checker for the counter workload: every counter's final value (read at `all`
// after healing) lies between the sum of its acknowledged increments and that sum plus its
// increments of unknown outcome; and every read during the run lies between the increments
// acknowledged before it began (at levels whose reads see every acknowledged update: strong,
// all) and those invoked before it completed. Pure: no I/O, no state kept between calls.

import type { Anomaly, CheckResult, HistoryOp } from '../history.js';
import { showOp, splitByKey } from './per-key.js';

export const COUNTER = 'counter';

export interface CounterOptions {
  /** Reads must see every increment acknowledged before they began (strong, all). Default true. */
  readsSeeAcknowledged?: boolean;
}

/**
 * `finalValues`: each counter's value read at `all` after healing. Reports:
 * - 'lost-increment': a final value below the acknowledged sum;
 * - 'phantom-increment': a final value above the acknowledged plus unknown sum (an increment
 *   counted twice, or one that failed applied anyway);
 * - 'stale-read': a read below the increments acknowledged before it began;
 * - 'phantom-read': a read above every increment invoked before it completed;
 * - 'not-read': a key incremented but missing from `finalValues` (a harness fault).
 */
export function checkCounters(history: readonly HistoryOp[], finalValues: ReadonlyMap<string, number>, opts: CounterOptions = {}): CheckResult {
  const anomalies: Anomaly[] = [];
  const stats = { acknowledged: 0, unknown: 0, failed: 0, reads: 0, keys: 0, notRead: 0 };
  let checked = 0;
  const readsSee = opts.readsSeeAcknowledged ?? true;
  for (const [key, ops] of splitByKey(history.filter((o) => o.f === 'incr' || (o.f === 'read' && o.process !== 'final')))) {
    stats.keys++;
    checked += ops.length;
    const incrs = ops.filter((o) => o.f === 'incr' && o.outcome !== 'fail');
    for (const o of ops) if (o.f === 'incr') stats[o.outcome === 'ok' ? 'acknowledged' : o.outcome === 'unknown' ? 'unknown' : 'failed']++;
    const acked = sum(incrs.filter((o) => o.outcome === 'ok'));
    const possible = sum(incrs);
    const final = finalValues.get(key);
    if (final === undefined) {
      if (incrs.length > 0) {
        stats.notRead++;
        anomalies.push({ kind: 'not-read', key, ops: [], message: `key ${JSON.stringify(key)}: the final reads lack this counter` });
      }
    } else if (final < acked) {
      anomalies.push({ kind: 'lost-increment', key, ops: [], message: `key ${JSON.stringify(key)}: the final value ${final} is below the ${acked} acknowledged` });
    } else if (final > possible) {
      anomalies.push({ kind: 'phantom-increment', key, ops: [], message: `key ${JSON.stringify(key)}: the final value ${final} is above the ${possible} acknowledged or of unknown outcome` });
    }
    for (const r of ops) {
      if (r.f !== 'read' || r.outcome !== 'ok') continue;
      stats.reads++;
      const v = Number(r.value ?? '0');
      const before = sum(incrs.filter((o) => o.outcome === 'ok' && o.completeMs < r.invokeMs));
      const invoked = sum(incrs.filter((o) => o.invokeMs < r.completeMs));
      if (readsSee && v < before) {
        anomalies.push({ kind: 'stale-read', key, ops: [r.id], message: `key ${JSON.stringify(key)}: ${showOp(r)} read ${v}, below the ${before} acknowledged before it began` });
      } else if (v > invoked) {
        anomalies.push({ kind: 'phantom-read', key, ops: [r.id], message: `key ${JSON.stringify(key)}: ${showOp(r)} read ${v}, above the ${invoked} invoked before it completed` });
      }
    }
  }
  for (const [key] of finalValues) if (!history.some((o) => o.key === key && o.f === 'incr') && finalValues.get(key) !== 0) {
    anomalies.push({ kind: 'phantom-increment', key, ops: [], message: `key ${JSON.stringify(key)}: never incremented, but reads ${finalValues.get(key)}` });
  }
  return { checker: COUNTER, valid: anomalies.length === 0, anomalies, checked, stats };
}

function sum(ops: readonly HistoryOp[]): number {
  let s = 0;
  for (const o of ops) s += o.amount ?? 0;
  return s;
}
