// One fan-out of an operation to several replicas, resolved as soon as `required` of them
// succeed and rejected as soon as that has become impossible or the deadline passes.
// Answers that arrive after the quorum keep being collected (`settled`), so read repair
// can look at late replicas too. A refusal for authentication or permissions ends the call
// at once with that error: every replica would answer the same. With `hedge` (reads), a
// request still outstanding past its replica's delay brings in the next node not asked yet,
// once per call, when the hedge policy allows it (sdk/hedging.ts). Per-call state only.

import type { RingkvError } from './errors.js';
import { QuorumNotMetError, TimeoutError, errorFromWire } from './errors.js';
import type { StoredObject } from './versioning/index.js';
import type { WireResult } from './wire/protocol.js';

export interface ReplicaAnswer {
  node: string;
  obj: StoredObject | null;
  /** Extra fields a replica may add (e.g. `created`). */
  result: WireResult & { ok: true };
}

export interface ReplicaFailure {
  node: string;
  error: RingkvError | Error;
}

/**
 * Error answers that excuse a replica instead of failing it: it holds nothing it can vouch
 * for (SUSPECT_RANGE: its copy is quarantined), so it counts toward `required` — once every
 * replica has answered and at least `minAnswers` gave real answers. It still brings in the
 * next replica, like any failure. With `minAnswers` = the majority, a read at `all` stays
 * correct with one such replica (any write quorum meets the other replicas), and a read at
 * R <= majority never counts it (minAnswers = R).
 */
export interface QuorumExcuse {
  codes: ReadonlySet<string>;
  minAnswers: number;
}

export interface QuorumOutcome {
  answers: ReplicaAnswer[];
  failures: ReplicaFailure[];
  /** Replicas excused (see QuorumExcuse); also in `failures`. */
  excused: string[];
  /** Nodes asked as hedges (at most one). */
  hedged: string[];
  /** True when a hedge's answer is among the answers that met the quorum. */
  hedgeWon: boolean;
  /** Resolves once every replica answered or failed (never rejects). */
  settled: Promise<{ answers: ReplicaAnswer[]; failures: ReplicaFailure[] }>;
}

/** How a call hedges: when a request is late, whether to send a hedge, and the clock and timers. */
export interface QuorumHedge {
  /** Milliseconds after its start at which a request to `node` is late. */
  delayFor(node: string): number;
  /** Asked once per call, when a request has been outstanding `waitedMs` past its delay's start: true sends `candidate`. */
  allow(candidate: string, waitedMs: number): boolean;
  /** Monotonic milliseconds. */
  nowMs(): number;
  /** Runs `fn` after `ms`; returns a cancel function. Default setTimeout. */
  schedule?: (fn: () => void, ms: number) => () => void;
}

const realSchedule = (fn: () => void, ms: number): (() => void) => {
  const t = setTimeout(fn, ms);
  return () => clearTimeout(t);
};

/**
 * Sends `send(node)` to the first `initial` nodes (default all) and waits for `required`
 * successes; each failure starts the next node not asked yet, and so does a hedge (see
 * QuorumHedge). Rejects with QuorumNotMetError when too many failed, TimeoutError at
 * `timeoutMs`.
 */
export function quorumCall(
  opName: string,
  nodes: readonly string[],
  required: number,
  timeoutMs: number,
  send: (node: string) => Promise<WireResult>,
  initial = nodes.length,
  excuse?: QuorumExcuse,
  hedge?: QuorumHedge,
): Promise<QuorumOutcome> {
  const answers: ReplicaAnswer[] = [];
  const failures: ReplicaFailure[] = [];
  const excused: string[] = [];
  let settleAll!: (v: { answers: ReplicaAnswer[]; failures: ReplicaFailure[] }) => void;
  const settled = new Promise<{ answers: ReplicaAnswer[]; failures: ReplicaFailure[] }>((r) => (settleAll = r));
  return new Promise<QuorumOutcome>((resolve, reject) => {
    let done = false;
    let started = 0;
    let pending = 0;
    // Hedging: when each outstanding request started; the hedge timer; the one decision.
    const outstanding = new Map<string, number>();
    const hedged: string[] = [];
    let hedgeDecided = false;
    let cancelHedge: (() => void) | undefined;
    const schedule = hedge?.schedule ?? realSchedule;
    const stopHedging = () => {
      cancelHedge?.();
      cancelHedge = undefined;
    };
    const timer = setTimeout(() => {
      if (done) return;
      done = true;
      stopHedging();
      reject(
        new TimeoutError(opName, timeoutMs, {
          required,
          succeeded: answers.length,
          failed: failures.length,
          failures: failures.map((f) => `${f.node}: ${(f.error as RingkvError).code ?? f.error.message}`),
        }),
      );
    }, timeoutMs);
    const finishOne = () => {
      if (--pending === 0 && (started === nodes.length || done)) {
        clearTimeout(timer);
        settleAll({ answers, failures });
      }
    };
    const check = () => {
      if (done) return;
      const last = failures[failures.length - 1]?.error as RingkvError | undefined;
      if (last && (last.code === 'UNAUTHENTICATED' || last.code === 'PERMISSION_DENIED') && answers.length < required) {
        done = true;
        clearTimeout(timer);
        reject(last);
        return;
      }
      // Replicas that may still answer (asked and pending, or not asked yet).
      const open = nodes.length - answers.length - failures.length;
      const minAnswers = excuse?.minAnswers ?? required;
      if (answers.length >= required || (open === 0 && answers.length >= minAnswers && answers.length + excused.length >= required)) {
        done = true;
        stopHedging();
        const hedgeWon = hedged.some((h) => answers.some((a) => a.node === h));
        resolve({ answers: [...answers], failures: [...failures], excused: [...excused], hedged, hedgeWon, settled });
      } else if (answers.length + open < required && (answers.length + open < minAnswers || answers.length + open + excused.length < required)) {
        done = true;
        stopHedging();
        clearTimeout(timer);
        reject(new QuorumNotMetError(opName, required, answers.length, failures.length, failures[0]?.error));
      }
    };
    if (nodes.length < required) {
      done = true;
      clearTimeout(timer);
      settleAll({ answers, failures });
      reject(new QuorumNotMetError(opName, required, 0, 0, new Error(`only ${nodes.length} replicas are available`)));
      return;
    }
    /** Arms the hedge timer for the outstanding request that becomes late first. */
    const armHedge = () => {
      stopHedging();
      if (!hedge || hedgeDecided || done || started >= nodes.length) return;
      let due = Infinity;
      for (const [node, t0] of outstanding) due = Math.min(due, t0 + hedge.delayFor(node));
      if (due === Infinity) return;
      cancelHedge = schedule(() => {
        cancelHedge = undefined;
        fireHedge();
      }, Math.max(0, due - hedge.nowMs()));
    };
    /** The hedge timer fired: the longest-late outstanding request decides, once. */
    const fireHedge = () => {
      if (!hedge || hedgeDecided || done || started >= nodes.length) return;
      const now = hedge.nowMs();
      let waited = -1;
      // (t0 + delay, as armHedge computed it: the same floating-point sum.)
      for (const [node, t0] of outstanding) if (now >= t0 + hedge.delayFor(node)) waited = Math.max(waited, now - t0);
      if (waited < 0) return armHedge();
      hedgeDecided = true;
      const candidate = nodes[started]!;
      if (hedge.allow(candidate, waited)) {
        hedged.push(candidate);
        start(candidate);
      }
    };
    const start = (node: string) => {
      started++;
      pending++;
      if (hedge) outstanding.set(node, hedge.nowMs());
      send(node).then(
        (r) => {
          outstanding.delete(node);
          if (r.ok) answers.push({ node, obj: r.obj ?? null, result: r });
          else {
            failures.push({ node, error: errorFromWire(r.code, r.msg, r.details) });
            if (excuse?.codes.has(r.code)) excused.push(node);
            if (!done && started < nodes.length) start(nodes[started]!);
          }
          check();
          if (hedge && !done) armHedge();
          finishOne();
        },
        (err: Error) => {
          outstanding.delete(node);
          failures.push({ node, error: err });
          // A failure brings in the next replica not asked yet (serial fallback).
          if (!done && started < nodes.length) start(nodes[started]!);
          check();
          if (hedge && !done) armHedge();
          finishOne();
        },
      );
    };
    const first = Math.min(nodes.length, Math.max(initial, required));
    for (let i = 0; i < first; i++) start(nodes[i]!);
    if (hedge) armHedge();
    // Nobody asked (no nodes, or nothing required and `initial` 0): settled now, and with
    // nothing required the quorum is met before any answer, which might never come.
    if (pending === 0) {
      clearTimeout(timer);
      settleAll({ answers, failures });
    }
    check();
  });
}
