// The PN-counter store: one entry per update event (dot -> positive and negative parts), the
// entries of a node that have left the applied-op window summed under its latest dot, and
// entries of a removed node folded into a survivor. Pure functions on immutable inputs.

import type { CounterEntry, CounterStore } from './crdt-state.js';
import { compareDots, contextCovers, dotKey, sameDot } from './dots.js';
import type { Dot, VersionVector } from './dots.js';

export const EMPTY_COUNTER: CounterStore = Object.freeze({ kind: 'counter', entries: Object.freeze([]) as readonly CounterEntry[] });

/** Adds an entry for a new event (`dot` is new to the store). An increment of 0 adds nothing. */
export function counterAdd(store: CounterStore, dot: Dot, increment: number): CounterStore {
  if (increment === 0) return store;
  const entry: CounterEntry = increment > 0 ? { dot, p: increment, n: 0 } : { dot, p: 0, n: -increment };
  const entries = [...store.entries, entry];
  entries.sort(byDot);
  return { kind: 'counter', entries };
}

/**
 * The join of two replicas' counters. An entry both hold keeps the larger parts (the same
 * event, or a sum under the same dot that grew as its node summed more of its own entries);
 * an entry one side holds survives unless the other side has seen its dot (then it was
 * removed or summed there). Returns `a` itself when nothing changes it.
 */
export function joinCounter(a: CounterStore, ca: VersionVector, b: CounterStore, cb: VersionVector): CounterStore {
  if (a === b) return a;
  const out: CounterEntry[] = [];
  const x = a.entries;
  const y = b.entries;
  let i = 0;
  let j = 0;
  let changedA = false;
  let changedB = false;
  while (i < x.length || j < y.length) {
    const c = i >= x.length ? 1 : j >= y.length ? -1 : compareDots(x[i]!.dot, y[j]!.dot);
    if (c === 0) {
      const ea = x[i]!;
      const eb = y[j]!;
      const p = Math.max(ea.p, eb.p);
      const n = Math.max(ea.n, eb.n);
      if (p === ea.p && n === ea.n) {
        out.push(ea);
        if (p !== eb.p || n !== eb.n) changedB = true;
      } else if (p === eb.p && n === eb.n) {
        out.push(eb);
        changedA = true;
      } else {
        out.push({ dot: ea.dot, p, n });
        changedA = changedB = true;
      }
      i++;
      j++;
    } else if (c < 0) {
      if (!contextCovers(cb, x[i]!.dot)) {
        out.push(x[i]!);
        changedB = true;
      } else {
        changedA = true;
      }
      i++;
    } else {
      if (!contextCovers(ca, y[j]!.dot)) {
        out.push(y[j]!);
        changedA = true;
      } else {
        changedB = true;
      }
      j++;
    }
  }
  if (!changedA) return a;
  if (!changedB) return b;
  return { kind: 'counter', entries: out };
}

/** Drops the entries whose dot `ctx` covers (a field remove: resets what the context saw). */
export function resetCounter(store: CounterStore, ctx: VersionVector): CounterStore {
  const kept = store.entries.filter((e) => !contextCovers(ctx, e.dot));
  return kept.length === store.entries.length ? store : { kind: 'counter', entries: kept };
}

/** Drops the entries whose dot is in `dots` (dot keys): duplicate applications of an operation. */
export function dropCounterDots(store: CounterStore, dots: ReadonlySet<string>): CounterStore {
  if (dots.size === 0) return store;
  const kept = store.entries.filter((e) => !dots.has(dotKey(e.dot)));
  return kept.length === store.entries.length ? store : { kind: 'counter', entries: kept };
}

/**
 * Sums the entries of `node` whose dot is not in `keep` (dot keys of the events still in the
 * applied-op window) into the latest of them, when there are two or more. Only `node` itself
 * does this to its entries: the sum under a dot then only grows, which the join's maximum
 * relies on.
 */
export function compactCounter(store: CounterStore, node: string, keep: ReadonlySet<string>): CounterStore {
  let count = 0;
  let p = 0;
  let n = 0;
  let last: Dot | undefined;
  for (const e of store.entries) {
    if (e.dot[0] !== node || keep.has(dotKey(e.dot))) continue;
    count++;
    p += e.p;
    n += e.n;
    last = e.dot;
  }
  if (count < 2) return store;
  const entries: CounterEntry[] = [];
  for (const e of store.entries) {
    if (e.dot[0] !== node || keep.has(dotKey(e.dot))) entries.push(e);
    else if (sameDot(e.dot, last!)) entries.push({ dot: last!, p, n });
  }
  return { kind: 'counter', entries };
}

/**
 * Moves the entries of `from` whose dot is not in `keep` into one new entry under `dot` (an
 * event of the survivor). Returns the store itself when `from` has no such entries.
 */
export function foldCounter(store: CounterStore, from: string, keep: ReadonlySet<string>, dot: Dot): CounterStore {
  let p = 0;
  let n = 0;
  let moved = false;
  const entries: CounterEntry[] = [];
  for (const e of store.entries) {
    if (e.dot[0] === from && !keep.has(dotKey(e.dot))) {
      p += e.p;
      n += e.n;
      moved = true;
    } else {
      entries.push(e);
    }
  }
  if (!moved) return store;
  if (p !== 0 || n !== 0) {
    entries.push({ dot, p, n });
    entries.sort(byDot);
  }
  return { kind: 'counter', entries };
}

/** The value: the sum of p - n over the entries whose dot is not in `masked`. */
export function counterValue(store: CounterStore, masked: ReadonlySet<string>): number {
  let v = 0;
  for (const e of store.entries) if (masked.size === 0 || !masked.has(dotKey(e.dot))) v += e.p - e.n;
  return v;
}

/** The sums of the positive and of the negative parts, for the overflow check. */
export function counterTotals(store: CounterStore): { p: number; n: number } {
  let p = 0;
  let n = 0;
  for (const e of store.entries) {
    p += e.p;
    n += e.n;
  }
  return { p, n };
}

export function counterEqual(a: CounterStore, b: CounterStore): boolean {
  if (a === b) return true;
  if (a.entries.length !== b.entries.length) return false;
  for (let i = 0; i < a.entries.length; i++) {
    const x = a.entries[i]!;
    const y = b.entries[i]!;
    if (x !== y && (!sameDot(x.dot, y.dot) || x.p !== y.p || x.n !== y.n)) return false;
  }
  return true;
}

function byDot(a: CounterEntry, b: CounterEntry): number {
  return compareDots(a.dot, b.dot);
}
