// One fan-out of an operation to several replicas, resolved as soon as `required` of them
// succeed and rejected as soon as that has become impossible or the deadline passes.
// Answers that arrive after the quorum keep being collected (`settled`), so read repair
// can look at late replicas too. A refusal for authentication or permissions ends the call
// at once with that error: every replica would answer the same. With `hedge` (reads), a
// request still outstanding past its replica's delay brings in the next node not asked yet
// (of its own data center, with groups), once per call, when the hedge policy allows it
// (sdk/hedging.ts). A call short only because replicas shed load (OVERLOADED, from them or
// from the client's queue for them) fails with OVERLOADED, not QUORUM_NOT_MET or TIMEOUT
// (sdk/shed-verdict.ts). Per-call state only.

import type { RingkvError } from './errors.js';
import { QuorumNotMetError, TimeoutError, errorFromWire } from './errors.js';
import { overloadedIfShed } from './shed-verdict.js';
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
 * R <= majority never counts it (minAnswers = R). Group counts (data centers) take real
 * answers only.
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
 * Answers needed within groups of the nodes (data centers): a call with groups succeeds only
 * once every group has its count as well as the total, and fails as soon as one group cannot.
 */
export interface QuorumGroups {
  /** The group of a node. */
  of(node: string): string;
  /** Successes needed within each group; a group not listed needs none. */
  need: ReadonlyMap<string, number>;
}

/**
 * Sends `send(node)` to the first `initial` nodes (default all) and waits for `required`
 * successes; each failure starts the next node not asked yet, and so does a hedge (see
 * QuorumHedge). Rejects with QuorumNotMetError when too many failed, TimeoutError at `timeoutMs`. With `groups`, the
 * first nodes started include each group's count (its first nodes in `nodes` order), a
 * failure starts the next node of its own group first, and success also needs every
 * group's count (a group that cannot reach it fails the call, naming the group).
 */
export function quorumCall(
  opName: string,
  nodes: readonly string[],
  required: number,
  timeoutMs: number,
  send: (node: string) => Promise<WireResult>,
  initial = nodes.length,
  groups?: QuorumGroups,
  excuse?: QuorumExcuse,
  hedge?: QuorumHedge,
): Promise<QuorumOutcome> {
  const answers: ReplicaAnswer[] = [];
  const failures: ReplicaFailure[] = [];
  const excused: string[] = [];
  let settleAll!: (v: { answers: ReplicaAnswer[]; failures: ReplicaFailure[] }) => void;
  const settled = new Promise<{ answers: ReplicaAnswer[]; failures: ReplicaFailure[] }>((r) => (settleAll = r));
  // Per group (only with groups): nodes, answers and failures.
  const groupOf = groups ? nodes.map((n) => groups.of(n)) : undefined;
  const size = new Map<string, number>();
  const ok = new Map<string, number>();
  const bad = new Map<string, number>();
  if (groupOf) for (const g of groupOf) size.set(g, (size.get(g) ?? 0) + 1);
  const bump = (m: Map<string, number>, g: string) => m.set(g, (m.get(g) ?? 0) + 1);
  return new Promise<QuorumOutcome>((resolve, reject) => {
    let done = false;
    let startedCount = 0;
    let pending = 0;
    const started = new Uint8Array(nodes.length);
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
      // Replicas that shed were refused fast: had they answered, would the quorum be met?
      const shed = overloadedIfShed(opName, required, answers.length, 0, failures);
      if (shed) return reject(shed);
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
      if (--pending === 0 && (startedCount === nodes.length || done)) {
        clearTimeout(timer);
        settleAll({ answers, failures });
      }
    };
    /** The group that can no longer reach its count, if any. */
    const groupShort = (): string | undefined => {
      if (!groups) return undefined;
      for (const [g, need] of groups.need) {
        if (need > 0 && (bad.get(g) ?? 0) > (size.get(g) ?? 0) - need) return g;
      }
      return undefined;
    };
    const groupsMet = (): boolean => {
      if (!groups) return true;
      for (const [g, need] of groups.need) if ((ok.get(g) ?? 0) < need) return false;
      return true;
    };
    const check = () => {
      if (done) return;
      const last = failures[failures.length - 1]?.error as RingkvError | undefined;
      if (last && (last.code === 'UNAUTHENTICATED' || last.code === 'PERMISSION_DENIED') && answers.length < required) {
        done = true;
        stopHedging();
        clearTimeout(timer);
        reject(last);
        return;
      }
      // Replicas that may still answer (asked and pending, or not asked yet).
      const open = nodes.length - answers.length - failures.length;
      const minAnswers = excuse?.minAnswers ?? required;
      if ((answers.length >= required || (open === 0 && answers.length >= minAnswers && answers.length + excused.length >= required)) && groupsMet()) {
        done = true;
        stopHedging();
        const hedgeWon = hedged.some((h) => answers.some((a) => a.node === h));
        resolve({ answers: [...answers], failures: [...failures], excused: [...excused], hedged, hedgeWon, settled });
        return;
      }
      const short = groupShort();
      const totalShort = answers.length + open < required && (answers.length + open < minAnswers || answers.length + open + excused.length < required);
      if (totalShort || short !== undefined) {
        done = true;
        stopHedging();
        clearTimeout(timer);
        if (short !== undefined) {
          const inGroup = failures.filter((f) => groups!.of(f.node) === short);
          const need = groups!.need.get(short)!;
          const okInGroup = ok.get(short) ?? 0;
          const openInGroup = (size.get(short) ?? 0) - okInGroup - inGroup.length;
          reject(overloadedIfShed(opName, need, okInGroup, openInGroup, inGroup) ?? new QuorumNotMetError(opName, need, okInGroup, inGroup.length, inGroup[0]?.error, short));
        } else reject(overloadedIfShed(opName, required, answers.length, open, failures) ?? new QuorumNotMetError(opName, required, answers.length, failures.length, failures[0]?.error));
      }
    };
    if (nodes.length < required) {
      done = true;
      clearTimeout(timer);
      settleAll({ answers, failures });
      reject(new QuorumNotMetError(opName, required, 0, 0, new Error(`only ${nodes.length} replicas are available`)));
      return;
    }
    if (groups) {
      for (const [g, need] of groups.need) {
        if ((size.get(g) ?? 0) < need) {
          done = true;
          clearTimeout(timer);
          settleAll({ answers, failures });
          reject(new QuorumNotMetError(opName, need, 0, 0, new Error(`only ${size.get(g) ?? 0} replicas of data center ${g} are available`), g));
          return;
        }
      }
    }
    /** The next node not started: of `group` when it has one, else the first in order. */
    const nextIndex = (group?: string): number => {
      let first = -1;
      for (let i = 0; i < nodes.length; i++) {
        if (started[i]) continue;
        if (group === undefined || groupOf![i] === group) return i;
        if (first < 0) first = i;
      }
      return first;
    };
    /** Arms the hedge timer for the outstanding request that becomes late first. */
    const armHedge = () => {
      stopHedging();
      if (!hedge || hedgeDecided || done || startedCount >= nodes.length) return;
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
      if (!hedge || hedgeDecided || done || startedCount >= nodes.length) return;
      const now = hedge.nowMs();
      let waited = -1;
      let late: string | undefined;
      // (t0 + delay, as armHedge computed it: the same floating-point sum.)
      for (const [node, t0] of outstanding) {
        if (now >= t0 + hedge.delayFor(node) && now - t0 > waited) {
          waited = now - t0;
          late = node;
        }
      }
      if (late === undefined) return armHedge();
      hedgeDecided = true;
      // With groups, the hedge stands in for the late replica within its own data center.
      const next = nextIndex(groups ? groups.of(late) : undefined);
      if (next < 0) return;
      const candidate = nodes[next]!;
      if (hedge.allow(candidate, waited)) {
        hedged.push(candidate);
        start(next);
      }
    };
    const start = (i: number) => {
      const node = nodes[i]!;
      started[i] = 1;
      startedCount++;
      pending++;
      if (hedge) outstanding.set(node, hedge.nowMs());
      const g = groupOf?.[i];
      const onFailure = (error: RingkvError | Error, code?: string) => {
        failures.push({ node, error });
        if (code !== undefined && excuse?.codes.has(code)) excused.push(node);
        if (g !== undefined) bump(bad, g);
        // A failure brings in the next replica not asked yet (serial fallback).
        if (!done && startedCount < nodes.length) {
          const next = nextIndex(g);
          if (next >= 0) start(next);
        }
      };
      send(node).then(
        (r) => {
          outstanding.delete(node);
          if (r.ok) {
            answers.push({ node, obj: r.obj ?? null, result: r });
            if (g !== undefined) bump(ok, g);
          } else onFailure(errorFromWire(r.code, r.msg, r.details), r.code);
          check();
          if (hedge && !done) armHedge();
          finishOne();
        },
        (err: Error) => {
          outstanding.delete(node);
          onFailure(err);
          check();
          if (hedge && !done) armHedge();
          finishOne();
        },
      );
    };
    const first = Math.min(nodes.length, Math.max(initial, required));
    if (groups) {
      // Each group's count first (its first nodes), then the others in order up to `first`.
      const taken = new Map<string, number>();
      const chosen: number[] = [];
      for (let i = 0; i < nodes.length; i++) {
        const g = groupOf![i]!;
        if ((taken.get(g) ?? 0) < (groups.need.get(g) ?? 0)) {
          bump(taken, g);
          chosen.push(i);
        }
      }
      for (let i = 0; i < nodes.length && chosen.length < first; i++) if (!chosen.includes(i)) chosen.push(i);
      chosen.sort((a, b) => a - b);
      for (const i of chosen) if (!started[i]) start(i);
    } else {
      for (let i = 0; i < first; i++) start(i);
    }
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
