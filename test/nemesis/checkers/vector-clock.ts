// No lost writes in vector-clock mode: after healing, every acknowledged write is a live sibling
// or was superseded by a write whose context covered it. Judged against final sibling sets read at
// `all` once the cluster healed. Pure: no I/O, no state kept between calls.

import type { Anomaly, CheckResult, HistoryOp } from '../history.js';
import { showOp, showValue, splitByKey } from './per-key.js';

export const VECTOR_CLOCK = 'vector-clock';

export interface VectorClockOptions {
  /**
   * When the final reads were invoked, on the history's clock. Default: after every operation
   * of the history (the final reads follow the workload). Only 'resurrected-sibling' uses it.
   */
  finalReadsInvokedMs?: number;
}

/**
 * `finalSiblings`: for every key the history wrote, the sibling values read at `all` after
 * healing ([] when absent). Writers read, then write with that read's context: a write's
 * `context` lists the sibling values it superseded. Reports:
 * - 'lost-write': an ok write whose value is no final sibling, and that no write which may have
 *   applied (ok or unknown) superseded (had its value in its context);
 * - 'phantom-sibling': a sibling (final, or returned by an ok read) no write of the key wrote,
 *   or only `fail` writes did;
 * - 'resurrected-sibling': a final sibling that an ok write, completed before the final reads
 *   were invoked, had in its context (the overwrite or delete was undone);
 * - 'not-read': a written key missing from `finalSiblings` (a harness fault).
 * Deletes write no value, so only their context matters (a delete undone shows as a
 * resurrected sibling).
 */
export function checkVectorClocks(
  history: readonly HistoryOp[],
  finalSiblings: ReadonlyMap<string, readonly string[]>,
  options: VectorClockOptions = {},
): CheckResult {
  const finalMs = options.finalReadsInvokedMs ?? Infinity;
  const anomalies: Anomaly[] = [];
  const stats = { okWrites: 0, present: 0, superseded: 0, lost: 0, finalSiblings: 0, phantoms: 0, resurrected: 0, notRead: 0 };
  const byKey = splitByKey(history);
  const keys = new Set([...byKey.keys(), ...finalSiblings.keys()]);
  for (const key of keys) {
    const ops = byKey.get(key) ?? [];
    const report = (kind: string, involved: HistoryOp[], message: string): void => {
      const ids = [...new Set(involved.map((o) => o.id))].sort((a, b) => a - b);
      anomalies.push({ kind, key, ops: ids, message: `key ${JSON.stringify(key)}: ${message}` });
    };
    const writes = ops.filter((o) => o.f !== 'read');
    const writersOf = new Map<string, HistoryOp[]>();
    const coveringOf = new Map<string, HistoryOp[]>(); // value -> writes (not fail) whose context holds it
    for (const w of writes) {
      if (w.f !== 'delete' && w.value !== null) {
        let ws = writersOf.get(w.value);
        if (ws === undefined) writersOf.set(w.value, (ws = []));
        ws.push(w);
      }
      if (w.outcome === 'fail') continue;
      for (const c of w.context ?? []) {
        let cs = coveringOf.get(c);
        if (cs === undefined) coveringOf.set(c, (cs = []));
        cs.push(w);
      }
    }
    const isPhantom = (v: string): { phantom: boolean; why: string; writers: HistoryOp[] } => {
      const ws = writersOf.get(v) ?? [];
      if (ws.length === 0) return { phantom: true, why: 'no write of this key wrote it', writers: ws };
      if (ws.every((w) => w.outcome === 'fail')) return { phantom: true, why: `only failed write(s) wrote it (${ws.map((w) => `op ${w.id}`).join(', ')})`, writers: ws };
      return { phantom: false, why: '', writers: ws };
    };

    for (const r of ops) {
      if (r.f !== 'read' || r.outcome !== 'ok') continue;
      const returned = new Set(r.siblings ?? []);
      if (r.value !== null) returned.add(r.value);
      for (const v of returned) {
        const p = isPhantom(v);
        if (p.phantom) {
          stats.phantoms++;
          report('phantom-sibling', [...p.writers, r], `${showOp(r)} returned sibling ${showValue(v)}, but ${p.why}`);
        }
      }
    }

    const final = finalSiblings.get(key);
    const okWrites = writes.filter((w) => w.outcome === 'ok' && w.f !== 'delete' && w.value !== null);
    if (final === undefined) {
      stats.notRead++;
      report('not-read', writes.slice(0, 10), `the final reads lack this key, written by ${writes.length} op(s)`);
      continue;
    }
    const finalSet = new Set(final);
    for (const w of okWrites) {
      stats.okWrites++;
      if (finalSet.has(w.value!)) stats.present++;
      else if ((coveringOf.get(w.value!) ?? []).length > 0) stats.superseded++;
      else {
        stats.lost++;
        report('lost-write', [w], `${showOp(w)} was acknowledged, but it is no final sibling (${final.map(showValue).join(', ') || 'none'}) and no write had it in its context`);
      }
    }
    for (const v of finalSet) {
      stats.finalSiblings++;
      const p = isPhantom(v);
      if (p.phantom) {
        stats.phantoms++;
        report('phantom-sibling', p.writers, `the final read found sibling ${showValue(v)}, but ${p.why}`);
        continue;
      }
      const covering = (coveringOf.get(v) ?? []).filter((c) => c.outcome === 'ok' && c.completeMs < finalMs);
      if (covering.length > 0) {
        stats.resurrected++;
        report(
          'resurrected-sibling',
          [...p.writers, ...covering.slice(0, 3)],
          `the final read found sibling ${showValue(v)}, which ${covering.slice(0, 3).map(showOp).join(', ')} superseded (had it in its context) and was acknowledged before the final read`,
        );
      }
    }
  }
  return { checker: VECTOR_CLOCK, valid: anomalies.length === 0, anomalies, checked: history.length, stats };
}
