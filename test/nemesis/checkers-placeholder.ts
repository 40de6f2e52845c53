// PLACEHOLDER, on the h/nemesis branch only: stand-ins with the shape of the real checkers
// (test/nemesis/checkers/index.ts, written separately) until those land on main, so that
// the runner can be wired and run. They check only simple necessary conditions: stale
// reads (an acknowledged write that later reads no longer see), lost inserts, lost
// vector-clock writes. Pure functions over a history. Delete when the real ones land.

import type { Anomaly, CheckResult, HistoryOp } from './history.js';

function byKey(history: readonly HistoryOp[]): Map<string, HistoryOp[]> {
  const m = new Map<string, HistoryOp[]>();
  for (const op of history) {
    let l = m.get(op.key);
    if (!l) m.set(op.key, (l = []));
    l.push(op);
  }
  return m;
}

function at(op: HistoryOp): string {
  return `${op.id} (${op.process}, ${op.invokeMs.toFixed(1)}-${op.completeMs.toFixed(1)} ms, ${op.outcome})`;
}

/** Stale and phantom reads: a read must not return a value older than a write acknowledged before it began. */
function staleReads(history: readonly HistoryOp[], checker: string): CheckResult {
  const anomalies: Anomaly[] = [];
  let checked = 0;
  for (const [key, ops] of byKey(history)) {
    const writes = ops.filter((o) => o.f === 'write' || o.f === 'delete' || o.f === 'insert');
    const byValue = new Map<string, HistoryOp>();
    for (const w of writes) if (w.value !== null) byValue.set(w.value, w);
    for (const r of ops) {
      if (r.f !== 'read' || r.outcome !== 'ok') continue;
      checked++;
      if (r.value !== null) {
        const src = byValue.get(r.value);
        if (!src || src.outcome === 'fail') {
          anomalies.push({ kind: 'phantom-read', key, ops: src ? [r.id, src.id] : [r.id], message: `read ${at(r)} returned ${r.value}, which no write that may have happened wrote` });
          continue;
        }
        if (src.outcome !== 'ok') continue;
        const newer = writes.find((w) => w !== src && w.outcome === 'ok' && w.completeMs < r.invokeMs && src.completeMs < w.invokeMs);
        if (newer) {
          anomalies.push({
            kind: 'stale-read',
            key,
            ops: [r.id, src.id, newer.id],
            message: `read ${at(r)} of ${key} returned ${r.value} (write ${at(src)}), but ${newer.f === 'delete' ? `delete ${at(newer)}` : `${newer.f} ${at(newer)} of ${newer.value}`} was acknowledged after that write and before the read began`,
          });
        }
      } else {
        const newer = writes.find((w) => w.f !== 'delete' && w.outcome === 'ok' && w.completeMs < r.invokeMs);
        if (!newer) continue;
        const cover = writes.some((d) => d.f === 'delete' && d.outcome !== 'fail' && d.invokeMs < r.completeMs && (d.outcome === 'unknown' || d.completeMs > newer.invokeMs));
        if (!cover) {
          anomalies.push({
            kind: 'stale-read',
            key,
            ops: [r.id, newer.id],
            message: `read ${at(r)} of ${key} found nothing, but write ${at(newer)} of ${newer.value} was acknowledged before the read began and no delete can have followed it`,
          });
        }
      }
    }
  }
  return { checker, valid: anomalies.length === 0, anomalies, checked };
}

/** PLACEHOLDER: stale reads only (a necessary condition of linearizability). */
export function checkLinearizable(history: readonly HistoryOp[], _opts?: unknown): CheckResult {
  return staleReads(history, 'linearizable (placeholder: stale reads only)');
}

/** PLACEHOLDER: stale reads only. */
export function checkStrongContract(history: readonly HistoryOp[]): CheckResult {
  return staleReads(history, 'strong-contract (placeholder: stale reads only)');
}

/** PLACEHOLDER: every acknowledged insert is found by the final reads, with its value. */
export function checkSetCompleteness(history: readonly HistoryOp[], finalReads: Map<string, string | null>): CheckResult {
  const anomalies: Anomaly[] = [];
  let checked = 0;
  for (const op of history) {
    if (op.f !== 'insert') continue;
    checked++;
    const got = finalReads.get(op.key);
    if (op.outcome === 'ok' && got !== op.value) {
      anomalies.push({ kind: 'lost-insert', key: op.key, ops: [op.id], message: `insert ${at(op)} of ${op.key} was acknowledged, the final read found ${got ?? 'nothing'}` });
    }
    if (op.outcome === 'fail' && got != null) {
      anomalies.push({ kind: 'phantom-insert', key: op.key, ops: [op.id], message: `insert ${at(op)} of ${op.key} failed as not applied, the final read found ${got}` });
    }
  }
  return { checker: 'set-completeness (placeholder)', valid: anomalies.length === 0, anomalies, checked };
}

/** PLACEHOLDER: an acknowledged write survives as a final sibling unless a later write's context covered it. */
export function checkVectorClock(history: readonly HistoryOp[], finalSiblings: Map<string, string[]>): CheckResult {
  const anomalies: Anomaly[] = [];
  let checked = 0;
  for (const [key, ops] of byKey(history)) {
    const covered = new Set<string>();
    const written = new Set<string>();
    for (const o of ops) {
      if (o.f === 'write' || o.f === 'delete') for (const v of o.context ?? []) if (o.outcome !== 'fail') covered.add(v);
      if (o.f === 'write' && o.value !== null && o.outcome !== 'fail') written.add(o.value);
    }
    const final = new Set(finalSiblings.get(key) ?? []);
    for (const o of ops) {
      if (o.f !== 'write' || o.outcome !== 'ok' || o.value === null) continue;
      checked++;
      if (!final.has(o.value) && !covered.has(o.value)) {
        anomalies.push({ kind: 'lost-write', key, ops: [o.id], message: `write ${at(o)} of ${o.value} was acknowledged, is not a final sibling of ${key} and no write or delete read it` });
      }
    }
    for (const v of final) {
      if (!written.has(v)) anomalies.push({ kind: 'phantom-sibling', key, ops: [], message: `final sibling ${v} of ${key} was never written (or its write failed as not applied)` });
    }
  }
  return { checker: 'vector-clock (placeholder)', valid: anomalies.length === 0, anomalies, checked };
}
