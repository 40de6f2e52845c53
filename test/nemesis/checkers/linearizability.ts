// Per-key linearizability of a register history: Wing & Gong's search with Lowe's memoization
// (the algorithm Porcupine and Knossos "linear" use), run on each key alone, with exact
// reductions for a register. Semantics, cost and the budget rule are in ./README.md.
// Pure and synchronous: no I/O, nothing kept between calls.

import type { Anomaly, CheckResult, HistoryOp } from '../history.js';
import { showOp, showValue, splitByKey } from './per-key.js';

export const LINEARIZABILITY = 'linearizability';

/**
 * Default of `maxStatesPerKey`. A remembered state costs about 200 bytes of heap (a short
 * string in a Set), so the default bounds one key's search near 200 MB and some seconds.
 */
export const DEFAULT_MAX_STATES_PER_KEY = 1_000_000;

/** The most operation ids an anomaly lists. */
const WITNESS_MAX_OPS = 10;

export interface LinearizabilityOptions {
  /**
   * Distinct search states (set of linearized operations, register value) the search may visit
   * on one key before it gives up and reports the key in `undecided`. Default 1,000,000.
   */
  maxStatesPerKey?: number;
}

/**
 * Checks that each key's operations are linearizable as a register whose initial value is
 * absent: `write` and `insert` set it, `delete` makes it absent, `read` returns it.
 * - `ok` operations take effect once, between their invocation and their completion;
 * - `fail` operations never took effect and are ignored;
 * - `unknown` writes and deletes take effect once at any time after their invocation, or never;
 * - `unknown` reads constrain nothing and are ignored.
 * Intervals are closed: an operation completing in the same millisecond another is invoked is
 * taken as concurrent with it (the lenient reading of a millisecond clock).
 * `valid` is false only for proven violations; keys the search gave up on are in `undecided`.
 */
export function checkLinearizability(history: readonly HistoryOp[], options: LinearizabilityOptions = {}): CheckResult {
  const maxStates = options.maxStatesPerKey ?? DEFAULT_MAX_STATES_PER_KEY;
  if (!Number.isSafeInteger(maxStates) || maxStates < 1) {
    throw new RangeError(`maxStatesPerKey must be a positive integer, got ${maxStates}`);
  }
  const anomalies: Anomaly[] = [];
  const undecided: string[] = [];
  const stats = { keys: 0, states: 0, ignoredUnknownWrites: 0 };
  for (const [key, ops] of splitByKey(history)) {
    stats.keys++;
    const search = new KeySearch(key, ops, maxStates);
    stats.ignoredUnknownWrites += search.ignoredUnknownWrites;
    const verdict = search.run();
    stats.states += search.states;
    if (verdict === 'violation') anomalies.push(search.anomaly!);
    else if (verdict === 'undecided') undecided.push(key);
  }
  return { checker: LINEARIZABILITY, valid: anomalies.length === 0, anomalies, checked: history.length, undecided, stats };
}

/** An ok operation of the key, as the search sees it; its index is its rank by completion. */
interface OkOp {
  op: HistoryOp;
  isRead: boolean;
  /** The value written or returned, interned: 0 is absent (null). */
  value: number;
  /** A read, or a write whose value some ok read returned. Others are "blind" writes. */
  observed: boolean;
}

/** A step of the search: the ok operations it linearizes, in order, after an unknown write of group `group` if >= 0. */
interface Move {
  kind: 'read' | 'write' | 'unknown-then-read' | 'blind-writes';
  ranks: number[];
  group: number;
}

/** A configuration on the search's path: its moves, the next to try, and how to undo the one taken. */
interface Frame {
  moves: Move[];
  next: number;
  /** Ok ops whose invocation precedes the first pending completion (the minimal ones). */
  candidates: number[];
  /** The op of that first pending completion: it had to be linearized by then. */
  firstReturn: number;
  undo?: { state: number; setter: HistoryOp | undefined; frontier: number; beyond: number[] };
}

/**
 * The search on one key. Configurations are (set of linearized ops, register value).
 * Events (an invocation and a completion per ok op) sit in a doubly linked list in time order,
 * invocations before completions at equal times. The ops invoked before the first pending
 * completion are the minimal ones: only they may be linearized next (Wing & Gong). Linearizing
 * lifts an op's events out of the list; backtracking puts them back (dancing links, in stack
 * order). Configurations already explored are remembered and never explored again (Lowe): since
 * the set only grows along a path, a configuration seen before has failed.
 *
 * Exact reductions, each a transformation of any valid linearization into one the search
 * tries (see ./README.md for the arguments):
 * 1. a minimal read that returns the current value is linearized at once, with no alternative;
 * 2. an unknown write is linearized only right before a read of its value, as one move; of the
 *    unknown writes of one value, only the earliest-invoked one left is tried;
 * 3. blind ok writes (values no ok read returned) are linearized all minimal ones at once, in
 *    one move, never one by one;
 * 4. a register value no pending read returns is "dead": all dead values are one state;
 * 5. the linearized set is keyed as a frontier in completion order (every op before it is
 *    linearized) plus the few linearized ops beyond it, and unknown writes count only while a
 *    read of their value is pending.
 * Success: every observed ok op linearized (the blind writes left go last, unknown writes left
 * never happened).
 */
class KeySearch {
  states = 0;
  ignoredUnknownWrites = 0;
  anomaly: Anomaly | undefined;

  readonly #key: string;
  readonly #maxStates: number;
  readonly #values: (string | null)[] = [null];
  readonly #ok: OkOp[] = [];
  /** Per value: the ok and unknown writes of it (for witnesses). */
  readonly #writersOf = new Map<number, HistoryOp[]>();
  /** Per value: unknown writes of it, by invocation; per group: its value. */
  readonly #groups: HistoryOp[][] = [];
  readonly #groupValue: number[] = [];
  #groupOfValue = new Int32Array(0);
  #groupNext = new Int32Array(0);
  /** Groups with at least one member linearized, in the order they got their first. */
  readonly #usedGroups: number[] = [];
  /** Per value: ok reads returning it not yet linearized. */
  #pendingReads = new Int32Array(0);
  #observedLeft = 0;

  // Linked list of events: 2i is the invocation of ok op i, 2i+1 its completion; HEAD = 2n.
  #next = new Int32Array(0);
  #prev = new Int32Array(0);
  #head = 0;

  #state = 0;
  #setter: HistoryOp | undefined;
  #frontier = 0;
  #beyond: number[] = [];
  #linearized = 0;
  readonly #seen = new Set<string>();
  #deepest = -1;

  constructor(key: string, ops: readonly HistoryOp[], maxStates: number) {
    this.#key = key;
    this.#maxStates = maxStates;
    const ids = new Map<string, number>();
    const intern = (v: string | null): number => {
      if (v === null) return 0;
      let n = ids.get(v);
      if (n === undefined) {
        n = this.#values.length;
        this.#values.push(v);
        ids.set(v, n);
      }
      return n;
    };
    const readValues = new Set<number>();
    for (const op of ops) if (op.f === 'read' && op.outcome === 'ok') readValues.add(intern(op.value));
    const unknownByValue = new Map<number, HistoryOp[]>();
    for (const op of ops) {
      if (op.outcome === 'fail' || (op.f === 'read' && op.outcome === 'unknown')) continue;
      const isRead = op.f === 'read';
      const value = intern(op.f === 'delete' ? null : op.value);
      if (!isRead) {
        let ws = this.#writersOf.get(value);
        if (ws === undefined) this.#writersOf.set(value, (ws = []));
        ws.push(op);
      }
      if (op.outcome === 'unknown') {
        // An unknown write no ok read observed can always be taken as never having happened.
        if (!readValues.has(value)) this.ignoredUnknownWrites++;
        else {
          let g = unknownByValue.get(value);
          if (g === undefined) unknownByValue.set(value, (g = []));
          g.push(op);
        }
        continue;
      }
      this.#ok.push({ op, isRead, value, observed: isRead || readValues.has(value) });
    }
    this.#ok.sort((a, b) => a.op.completeMs - b.op.completeMs || a.op.invokeMs - b.op.invokeMs || a.op.id - b.op.id);

    this.#groupOfValue = new Int32Array(this.#values.length).fill(-1);
    for (const [value, members] of unknownByValue) {
      members.sort((a, b) => a.invokeMs - b.invokeMs || a.id - b.id);
      this.#groupOfValue[value] = this.#groups.length;
      this.#groups.push(members);
      this.#groupValue.push(value);
    }
    this.#groupNext = new Int32Array(this.#groups.length);
    this.#pendingReads = new Int32Array(this.#values.length);
    for (const o of this.#ok) {
      if (o.isRead) this.#pendingReads[o.value]!++;
      if (o.observed) this.#observedLeft++;
    }

    const n = this.#ok.length;
    const events: number[] = [];
    for (let i = 0; i < n; i++) events.push(2 * i, 2 * i + 1);
    const timeOf = (e: number): number => ((e & 1) === 0 ? this.#ok[e >> 1]!.op.invokeMs : this.#ok[e >> 1]!.op.completeMs);
    events.sort((a, b) => timeOf(a) - timeOf(b) || (a & 1) - (b & 1) || a - b);
    this.#head = 2 * n;
    this.#next = new Int32Array(2 * n + 1).fill(-1);
    this.#prev = new Int32Array(2 * n + 1).fill(-1);
    let last = this.#head;
    for (const e of events) {
      this.#next[last] = e;
      this.#prev[e] = last;
      last = e;
    }
  }

  run(): 'linearizable' | 'violation' | 'undecided' {
    if (this.#observedLeft === 0) return 'linearizable';
    const stack: Frame[] = [this.#frame()];
    for (;;) {
      const top = stack[stack.length - 1]!;
      if (top.next >= top.moves.length) {
        // Every move from here failed: this configuration cannot be completed.
        if (this.#linearized > this.#deepest) {
          this.#deepest = this.#linearized;
          this.anomaly = this.#witness(top);
        }
        stack.pop();
        if (stack.length === 0) return 'violation';
        const parent = stack[stack.length - 1]!;
        this.#undo(parent.moves[parent.next]!, parent.undo!);
        parent.next++;
        continue;
      }
      const move = top.moves[top.next]!;
      top.undo = this.#apply(move);
      if (this.#observedLeft === 0) return 'linearizable';
      const memo = this.#memoKey();
      if (this.#seen.has(memo)) {
        this.#undo(move, top.undo);
        top.next++;
        continue;
      }
      this.#seen.add(memo);
      if (++this.states > this.#maxStates) return 'undecided';
      stack.push(this.#frame());
    }
  }

  /** The moves from the current configuration. */
  #frame(): Frame {
    const candidates: number[] = [];
    let e = this.#next[this.#head]!;
    for (; e !== -1 && (e & 1) === 0; e = this.#next[e]!) candidates.push(e >> 1);
    // Some observed op is pending, so some completion is in the list.
    const firstReturn = e >> 1;
    const horizon = this.#ok[firstReturn]!.op.completeMs;
    const moves: Move[] = [];
    const blind: number[] = [];
    for (const i of candidates) {
      const o = this.#ok[i]!;
      if (o.isRead) {
        if (o.value === this.#state) {
          // Reduction 1: linearizing it now loses nothing.
          return { moves: [{ kind: 'read', ranks: [i], group: -1 }], next: 0, candidates, firstReturn };
        }
        const g = this.#groupOfValue[o.value]!;
        if (g >= 0 && this.#groupNext[g]! < this.#groups[g]!.length && this.#groups[g]![this.#groupNext[g]!]!.invokeMs <= horizon) {
          moves.push({ kind: 'unknown-then-read', ranks: [i], group: g });
        }
      } else if (o.observed) {
        moves.push({ kind: 'write', ranks: [i], group: -1 });
      } else {
        blind.push(i);
      }
    }
    if (blind.length > 0) moves.push({ kind: 'blind-writes', ranks: blind, group: -1 });
    return { moves, next: 0, candidates, firstReturn };
  }

  #apply(move: Move): NonNullable<Frame['undo']> {
    const undo = { state: this.#state, setter: this.#setter, frontier: this.#frontier, beyond: this.#beyond };
    this.#beyond = this.#beyond.slice();
    if (move.group >= 0) {
      const g = move.group;
      const w = this.#groups[g]![this.#groupNext[g]!]!;
      if (this.#groupNext[g]!++ === 0) this.#usedGroups.push(g);
      this.#state = this.#groupValue[g]!;
      this.#setter = w;
    }
    for (const i of move.ranks) {
      const o = this.#ok[i]!;
      this.#lift(i);
      this.#linearized++;
      if (o.observed) this.#observedLeft--;
      if (o.isRead) this.#pendingReads[o.value]!--;
      else {
        this.#state = o.value;
        this.#setter = o.op;
      }
      if (i === this.#frontier) {
        this.#frontier++;
        while (this.#beyond.length > 0 && this.#beyond[0] === this.#frontier) {
          this.#beyond.shift();
          this.#frontier++;
        }
      } else {
        let k = this.#beyond.length;
        while (k > 0 && this.#beyond[k - 1]! > i) k--;
        this.#beyond.splice(k, 0, i);
      }
    }
    return undo;
  }

  #undo(move: Move, undo: NonNullable<Frame['undo']>): void {
    for (let k = move.ranks.length - 1; k >= 0; k--) {
      const i = move.ranks[k]!;
      const o = this.#ok[i]!;
      this.#unlift(i);
      this.#linearized--;
      if (o.observed) this.#observedLeft++;
      if (o.isRead) this.#pendingReads[o.value]!++;
    }
    if (move.group >= 0 && --this.#groupNext[move.group]! === 0) this.#usedGroups.pop();
    this.#state = undo.state;
    this.#setter = undo.setter;
    this.#frontier = undo.frontier;
    this.#beyond = undo.beyond;
  }

  /** The configuration, canonically: reductions 4 and 5. */
  #memoKey(): string {
    const state = this.#pendingReads[this.#state]! > 0 ? this.#state : -1;
    let key = `${this.#frontier}:${this.#beyond.join(',')}:${state}`;
    let live: number[] | undefined;
    for (const g of this.#usedGroups) {
      if (this.#pendingReads[this.#groupValue[g]!]! > 0) (live ??= []).push(g);
    }
    if (live !== undefined) {
      live.sort((a, b) => a - b);
      for (const g of live) key += `:${g}.${this.#groupNext[g]}`;
    }
    return key;
  }

  // Lifted and restored in stack order, so dancing links restore the list exactly.
  #lift(i: number): void {
    this.#unlink(2 * i);
    this.#unlink(2 * i + 1);
  }

  #unlift(i: number): void {
    this.#relink(2 * i + 1);
    this.#relink(2 * i);
  }

  #unlink(e: number): void {
    const p = this.#prev[e]!;
    const n = this.#next[e]!;
    this.#next[p] = n;
    if (n !== -1) this.#prev[n] = p;
  }

  #relink(e: number): void {
    const p = this.#prev[e]!;
    const n = this.#next[e]!;
    this.#next[p] = e;
    if (n !== -1) this.#prev[n] = e;
  }

  /** The anomaly for a configuration the search could not get past. */
  #witness(frame: Frame): Anomaly {
    const blocked = this.#ok[frame.firstReturn]!;
    const ids = new Set<number>([blocked.op.id]);
    if (this.#setter !== undefined) ids.add(this.#setter.id);
    let source = '';
    if (blocked.isRead) {
      const writers = this.#writersOf.get(blocked.value) ?? [];
      for (const w of writers.slice(0, 3)) ids.add(w.id);
      const v = showValue(this.#values[blocked.value]);
      source =
        writers.length > 0
          ? `; ${v} is written by ${writers.slice(0, 3).map((w) => `op ${w.id}`).join(', ')}${writers.length > 3 ? ', …' : ''}`
          : blocked.value === 0
            ? '; absent is the initial state, and no delete can come between'
            : `; no write of this key writes ${v}`;
    }
    // Observed ops first: blind writes matter less.
    const pending = frame.candidates
      .map((i) => this.#ok[i]!)
      .filter((o) => o !== blocked)
      .sort((a, b) => Number(b.observed) - Number(a.observed) || a.op.id - b.op.id)
      .map((o) => o.op.id);
    for (const id of pending) {
      if (ids.size >= WITNESS_MAX_OPS) break;
      ids.add(id);
    }
    const setBy = this.#setter === undefined ? 'the initial state' : `op ${this.#setter.id}`;
    return {
      kind: 'not-linearizable',
      key: this.#key,
      ops: [...ids].sort((a, b) => a - b),
      message:
        `key ${JSON.stringify(this.#key)}: no linearization exists. At the deepest point of the search ` +
        `(${this.#linearized} acknowledged op(s) linearized) the register holds ${showValue(this.#values[this.#state])} ` +
        `(set by ${setBy}), and ${showOp(blocked.op)} must take effect by ${blocked.op.completeMs} ms${source}; ` +
        `other ops that could still come before it: ${pending.length === 0 ? 'none' : pending.sort((a, b) => a - b).join(', ')}`,
    };
  }
}
