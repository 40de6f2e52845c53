// One fan-out of an operation to several replicas, resolved as soon as `required` of them
// succeed and rejected as soon as that has become impossible or the deadline passes.
// Answers that arrive after the quorum keep being collected (`settled`), so read repair
// can look at late replicas too. Per-call state only; nothing shared.

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

export interface QuorumOutcome {
  answers: ReplicaAnswer[];
  failures: ReplicaFailure[];
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
): Promise<QuorumOutcome> {
  const answers: ReplicaAnswer[] = [];
  const failures: ReplicaFailure[] = [];
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
      if (answers.length >= required) {
        done = true;
        resolve({ answers: [...answers], failures: [...failures], settled });
      } else if (failures.length > nodes.length - required) {
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
            failures.push({ node, error: errorFromWire(r.code, r.msg) });
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
