// One fan-out of an operation to several replicas, resolved as soon as `required` of them
// succeed and rejected as soon as that has become impossible or the deadline passes.
// Answers that arrive after the quorum keep being collected (`settled`), so read repair
// can look at late replicas too. A refusal for authentication or permissions ends the call
// at once with that error: every replica would answer the same. Per-call state only.

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
  /** Resolves once every replica answered or failed (never rejects). */
  settled: Promise<{ answers: ReplicaAnswer[]; failures: ReplicaFailure[] }>;
}

/**
 * Sends `send(node)` to the first `initial` nodes (default all) and waits for `required`
 * successes; each failure starts the next node not asked yet. Rejects with
 * QuorumNotMetError when too many failed, TimeoutError at `timeoutMs`.
 */
export function quorumCall(
  opName: string,
  nodes: readonly string[],
  required: number,
  timeoutMs: number,
  send: (node: string) => Promise<WireResult>,
  initial = nodes.length,
  excuse?: QuorumExcuse,
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
    const timer = setTimeout(() => {
      if (done) return;
      done = true;
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
        resolve({ answers: [...answers], failures: [...failures], excused: [...excused], settled });
      } else if (answers.length + open < required && (answers.length + open < minAnswers || answers.length + open + excused.length < required)) {
        done = true;
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
    const start = (node: string) => {
      started++;
      pending++;
      send(node).then(
        (r) => {
          if (r.ok) answers.push({ node, obj: r.obj ?? null, result: r });
          else {
            failures.push({ node, error: errorFromWire(r.code, r.msg, r.details) });
            if (excuse?.codes.has(r.code)) excused.push(node);
            if (!done && started < nodes.length) start(nodes[started]!);
          }
          check();
          finishOne();
        },
        (err: Error) => {
          failures.push({ node, error: err });
          // A failure brings in the next replica not asked yet (serial fallback).
          if (!done && started < nodes.length) start(nodes[started]!);
          check();
          finishOne();
        },
      );
    };
    const first = Math.min(nodes.length, Math.max(initial, required));
    for (let i = 0; i < first; i++) start(nodes[i]!);
    // Nobody asked (no nodes, or nothing required and `initial` 0): settled now, and with
    // nothing required the quorum is met before any answer, which might never come.
    if (pending === 0) {
      clearTimeout(timer);
      settleAll({ answers, failures });
    }
    check();
  });
}
