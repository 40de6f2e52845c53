// Set completeness for the unique-key insert workload: after healing, every acknowledged insert
// is present, no failed one is, and nothing else appeared. Judged against final reads done at
// `all` once the cluster healed. Pure: no I/O, no state kept between calls.

import type { Anomaly, CheckResult, HistoryOp } from '../history.js';
import { showOp, showValue, splitByKey } from './per-key.js';

export const SET_COMPLETENESS = 'set-completeness';

/**
 * `finalReads`: for every key the history inserted (and any other key read at the end), the
 * value read at `all` after healing, null when absent. Reports:
 * - 'lost-insert': an ok insert whose value is not the key's final value;
 * - 'failed-insert-present': the final value is one only a `fail` insert wrote;
 * - 'phantom': a final value no insert of that key wrote;
 * - 'not-read': an inserted key missing from `finalReads` (a harness fault: nothing can be
 *   said of that insert, so the run cannot pass).
 * `unknown` inserts may be present or absent; both are counted. Reads and other operations in
 * the history are ignored.
 */
export function checkSetCompleteness(history: readonly HistoryOp[], finalReads: ReadonlyMap<string, string | null>): CheckResult {
  const anomalies: Anomaly[] = [];
  const stats = {
    acknowledged: 0,
    present: 0,
    lost: 0,
    unknownPresent: 0,
    unknownAbsent: 0,
    failed: 0,
    failedPresent: 0,
    phantoms: 0,
    notRead: 0,
  };
  let checked = 0;
  const report = (kind: string, key: string, ops: HistoryOp[], message: string): void => {
    anomalies.push({ kind, key, ops: ops.map((o) => o.id).sort((a, b) => a - b), message: `key ${JSON.stringify(key)}: ${message}` });
  };
  const inserts = splitByKey(history.filter((o) => o.f === 'insert'));
  for (const [key, ops] of inserts) {
    checked += ops.length;
    const read = finalReads.get(key);
    if (read === undefined) {
      stats.notRead += ops.length;
      report('not-read', key, ops, `the final reads lack this key, inserted by ${ops.map(showOp).join(', ')}`);
      continue;
    }
    for (const op of ops) {
      const present = read !== null && read === op.value;
      if (op.outcome === 'ok') {
        stats.acknowledged++;
        if (present) stats.present++;
        else {
          stats.lost++;
          report('lost-insert', key, [op], `${showOp(op)} was acknowledged, but the final read found ${showValue(read)}`);
        }
      } else if (op.outcome === 'unknown') {
        if (present) stats.unknownPresent++;
        else stats.unknownAbsent++;
      } else {
        stats.failed++;
      }
    }
    if (read === null) continue;
    const writers = ops.filter((o) => o.value === read);
    if (writers.length === 0) {
      stats.phantoms++;
      report('phantom', key, ops, `the final read found ${showValue(read)}, which no insert of this key wrote`);
    } else if (writers.every((o) => o.outcome === 'fail')) {
      stats.failedPresent++;
      report('failed-insert-present', key, writers, `the final read found ${showValue(read)}, written only by ${writers.map(showOp).join(', ')}, which failed`);
    }
  }
  for (const [key, read] of finalReads) {
    if (read === null || inserts.has(key)) continue;
    stats.phantoms++;
    report('phantom', key, [], `the final read found ${showValue(read)} under a key no insert wrote`);
  }
  return { checker: SET_COMPLETENESS, valid: anomalies.length === 0, anomalies, checked, stats };
}
