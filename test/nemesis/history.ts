// The history a nemesis run records: one entry per client operation, with when it was
// invoked, when it completed and what came of it. The checkers (./checkers/) read these;
// the client workers (./client-worker.ts) write them, one JSON object per line. Pure data.
//
// Outcomes follow Jepsen's convention:
// - `ok`: the operation took effect (a write was acknowledged, a read returned `value`);
// - `fail`: the operation definitely did not take effect (a write refused before any replica
//   could have applied it — the SDK says so with `err.notApplied === true`);
// - `unknown`: it may or may not have taken effect, now or at any later time (a timeout, a
//   quorum not met after some replica was asked). An unknown write may be linearized
//   anywhere after its invocation, or never; an unknown read constrains nothing.

/** What came of an operation. */
export type Outcome = 'ok' | 'fail' | 'unknown';

/**
 * The operations the workloads issue:
 * - `write` (register): set `key` to `value` (unique within a history);
 * - `delete` (register): set `key` to absent (`value` is null);
 * - `read` (register or vector clocks): `value` is what was returned (null: absent); of a
 *   counter: the number as a string; of a data-type set: `members`;
 * - `insert` (set workload): create `key` with `value`; each key is inserted once;
 * - `incr` (counter workload): add `amount` to the counter `key`;
 * - `add` (data-type set workload): add the member `value` (unique within a history);
 * - `remove` (data-type set workload): remove the member `value` with the context of a
 *   fetch that returned `members`.
 */
export type OpFunction = 'read' | 'write' | 'delete' | 'insert' | 'incr' | 'add' | 'remove';

export interface HistoryOp {
  /** Unique within a history, in invocation order. */
  id: number;
  /** The client that ran it ("c1", "c2.3", …); a client runs one operation at a time. */
  process: string;
  f: OpFunction;
  key: string;
  /** write/insert: the value written. read: the value returned (null when absent). delete: null. */
  value: string | null;
  /** Vector-clock workload, reads: every live sibling value returned (value is one of them, or null). */
  siblings?: string[];
  /** Vector-clock workload, writes and deletes: the sibling values of the read whose context this write carried ([] for a blind write). */
  context?: string[];
  /** Counter workload, incr: what was added. */
  amount?: number;
  /** Data-type set workload: reads, the members returned; removes, the members of the fetch whose context the remove carried. */
  members?: string[];
  /** Consistency level of the call ('strong', 'linearizable', 'eventual', 'all', …). */
  level?: string;
  /** Milliseconds since the run started, on the recording machine's monotonic clock. */
  invokeMs: number;
  /** When the client saw the result (for `unknown`: when it gave up; the effect may come later). */
  completeMs: number;
  outcome: Outcome;
  /** The error code, when not ok. */
  error?: string;
}

/** One anomaly a checker found: which operations show it, and why. */
export interface Anomaly {
  /** Stable name of the kind of violation (e.g. 'not-linearizable', 'stale-read', 'lost-insert'). */
  kind: string;
  key?: string;
  /** Ids of the operations involved. */
  ops: number[];
  message: string;
}

export interface CheckResult {
  /** The checker's name. */
  checker: string;
  /** True when no anomaly was found. */
  valid: boolean;
  anomalies: Anomaly[];
  /** Operations the checker looked at. */
  checked: number;
  /**
   * Keys the checker could not decide within its budget (linearizability: the search gave up).
   * `valid` stays true for them: it is false only for proven violations; the runner decides
   * what an undecided key means.
   */
  undecided?: string[];
  /** Counts the checker reports beside its verdict (e.g. acknowledged / present / lost inserts). */
  stats?: Record<string, number>;
}

/** Parses a history written as JSON lines (blank lines skipped). */
export function parseHistory(text: string): HistoryOp[] {
  const out: HistoryOp[] = [];
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    out.push(JSON.parse(line) as HistoryOp);
  }
  return out;
}

/** Writes a history as JSON lines. */
export function formatHistory(ops: readonly HistoryOp[]): string {
  return ops.map((o) => JSON.stringify(o)).join('\n') + '\n';
}
