// The add-wins set checker for the data-type set workload (unique members, removes made with
// the context of a fetch): after healing, every acknowledged add that no remove targeted is a
// member, and every member was added by an add that did not fail; during the run, a read
// contains every member acknowledged before it began and not targeted by a remove invoked
// before it completed (at levels whose reads see acknowledged updates), and nothing no add
// had begun to write. A removed member may stay (an add applied twice by the SDK's retry at
// another replica is a second add the remove's context did not see: add wins), so presence
// after a remove is counted, not reported. Pure: no I/O, no state kept between calls.

import type { Anomaly, CheckResult, HistoryOp } from '../history.js';
import { showOp, splitByKey } from './per-key.js';

export const ADD_WINS_SET = 'add-wins-set';

export interface AddWinsSetOptions {
  /** Reads must see every add acknowledged before they began (strong, all). Default true. */
  readsSeeAcknowledged?: boolean;
}

/**
 * `finalMembers`: each set's members read at `all` after healing. Reports 'lost-add',
 * 'failed-add-present', 'phantom-member' (in the final state), 'stale-read', 'phantom-read'
 * (during the run) and 'not-read' (a set with adds missing from `finalMembers`).
 */
export function checkAddWinsSet(history: readonly HistoryOp[], finalMembers: ReadonlyMap<string, readonly string[]>, opts: AddWinsSetOptions = {}): CheckResult {
  const anomalies: Anomaly[] = [];
  const stats = { acknowledged: 0, present: 0, lost: 0, removedAbsent: 0, removedPresent: 0, unknownPresent: 0, unknownAbsent: 0, reads: 0, notRead: 0 };
  let checked = 0;
  const readsSee = opts.readsSeeAcknowledged ?? true;
  const relevant = history.filter((o) => o.process !== 'final' && (o.f === 'add' || o.f === 'remove' || (o.f === 'read' && o.members !== undefined)));
  for (const [key, ops] of splitByKey(relevant)) {
    checked += ops.length;
    const adds = new Map<string, HistoryOp>();
    for (const o of ops) if (o.f === 'add' && o.value !== null) adds.set(o.value, o);
    // Removes that may have happened (a failed one did not).
    const removes = ops.filter((o) => o.f === 'remove' && o.outcome !== 'fail');
    const removedAt = (m: string) => removes.filter((o) => o.value === m);
    const final = finalMembers.get(key);
    if (final === undefined) {
      if (adds.size > 0) {
        stats.notRead++;
        anomalies.push({ kind: 'not-read', key, ops: [], message: `key ${JSON.stringify(key)}: the final reads lack this set` });
      }
    } else {
      const present = new Set(final);
      for (const [m, add] of adds) {
        const removed = removedAt(m).length > 0;
        if (add.outcome === 'ok') stats.acknowledged++;
        if (removed) {
          stats[present.has(m) ? 'removedPresent' : 'removedAbsent']++;
          continue;
        }
        if (add.outcome === 'ok') {
          if (present.has(m)) stats.present++;
          else {
            stats.lost++;
            anomalies.push({ kind: 'lost-add', key, ops: [add.id], message: `key ${JSON.stringify(key)}: ${showOp(add)} was acknowledged and never removed, but is not a member` });
          }
        } else if (add.outcome === 'unknown') stats[present.has(m) ? 'unknownPresent' : 'unknownAbsent']++;
      }
      for (const m of final) {
        const add = adds.get(m);
        if (!add) anomalies.push({ kind: 'phantom-member', key, ops: [], message: `key ${JSON.stringify(key)}: member ${JSON.stringify(m)} was never added` });
        else if (add.outcome === 'fail') anomalies.push({ kind: 'failed-add-present', key, ops: [add.id], message: `key ${JSON.stringify(key)}: ${showOp(add)} failed, but its member is present` });
      }
    }
    for (const r of ops) {
      if (r.f !== 'read' || r.outcome !== 'ok') continue;
      stats.reads++;
      const seen = new Set(r.members);
      if (readsSee) {
        for (const [m, add] of adds) {
          if (add.outcome !== 'ok' || add.completeMs >= r.invokeMs || seen.has(m)) continue;
          if (removedAt(m).some((o) => o.invokeMs < r.completeMs)) continue;
          anomalies.push({ kind: 'stale-read', key, ops: [add.id, r.id], message: `key ${JSON.stringify(key)}: ${showOp(r)} lacks ${JSON.stringify(m)}, acknowledged by ${showOp(add)} before it began and not removed` });
        }
      }
      for (const m of seen) {
        const add = adds.get(m);
        if (!add || add.invokeMs >= r.completeMs) {
          anomalies.push({ kind: 'phantom-read', key, ops: [r.id], message: `key ${JSON.stringify(key)}: ${showOp(r)} returned ${JSON.stringify(m)}, which no add had begun to write` });
        }
      }
    }
  }
  return { checker: ADD_WINS_SET, valid: anomalies.length === 0, anomalies, checked, stats };
}
