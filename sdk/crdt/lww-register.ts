// The last-write-wins register: assignments stamped with an HLC timestamp and the writer's
// id, each kept under its dot until an assignment that saw it and won supersedes it. The value
// is the greatest stamp. Pure functions on immutable inputs.

import type { RegisterEntry, RegisterStore } from './crdt-state.js';
import { compareDots, contextCovers, sameDot } from './dots.js';
import type { Dot, VersionVector } from './dots.js';

export const EMPTY_REGISTER: RegisterStore = Object.freeze({ kind: 'register', entries: Object.freeze([]) as readonly RegisterEntry[] });

/**
 * Order of assignments: higher ts, then greater writer, then greater value (code-unit order).
 * Positive when `a` wins. The last two steps only separate two different assignments with
 * the same stamp, which a correct HLC never makes; they keep every replica's choice the same.
 */
export function compareAssignments(a: Pick<RegisterEntry, 'ts' | 'writer' | 'value'>, b: Pick<RegisterEntry, 'ts' | 'writer' | 'value'>): number {
  if (a.ts !== b.ts) return a.ts > b.ts ? 1 : -1;
  if (a.writer !== b.writer) return a.writer > b.writer ? 1 : -1;
  if (a.value !== b.value) return a.value > b.value ? 1 : -1;
  return 0;
}

/**
 * Assigns under the event `dot`. The entries the coordinator holds with a lower stamp are
 * dropped (they can never win again); those with a higher stamp stay, and keep winning.
 */
export function registerAssign(store: RegisterStore, dot: Dot, ts: number, writer: string, value: string): RegisterStore {
  const entry: RegisterEntry = { dot, ts, writer, value };
  const entries = store.entries.filter((e) => compareAssignments(e, entry) > 0);
  entries.push(entry);
  entries.sort(byDot);
  return { kind: 'register', entries };
}

/** Drops the entries `ctx` covers (a field remove). */
export function resetRegister(store: RegisterStore, ctx: VersionVector): RegisterStore {
  const kept = store.entries.filter((e) => !contextCovers(ctx, e.dot));
  return kept.length === store.entries.length ? store : { kind: 'register', entries: kept };
}

/** The join: entries both hold stay; an entry one side holds stays unless the other has seen it. Returns `a` when unchanged. */
export function joinRegister(a: RegisterStore, ca: VersionVector, b: RegisterStore, cb: VersionVector): RegisterStore {
  if (a === b) return a;
  const out: RegisterEntry[] = [];
  const x = a.entries;
  const y = b.entries;
  let i = 0;
  let j = 0;
  while (i < x.length || j < y.length) {
    const c = i >= x.length ? 1 : j >= y.length ? -1 : compareDots(x[i]!.dot, y[j]!.dot);
    if (c === 0) {
      // One dot, one assignment; should two ever differ, every replica keeps the same one.
      out.push(compareAssignments(x[i]!, y[j]!) >= 0 ? x[i]! : y[j]!);
      i++;
      j++;
    } else if (c < 0) {
      if (!contextCovers(cb, x[i]!.dot)) out.push(x[i]!);
      i++;
    } else {
      if (!contextCovers(ca, y[j]!.dot)) out.push(y[j]!);
      j++;
    }
  }
  if (sameEntries(out, x)) return a;
  if (sameEntries(out, y)) return b;
  return { kind: 'register', entries: out };
}

/** The winning assignment, or undefined when there is none. */
export function registerWinner(store: RegisterStore): RegisterEntry | undefined {
  let best: RegisterEntry | undefined;
  for (const e of store.entries) if (best === undefined || compareAssignments(e, best) > 0) best = e;
  return best;
}

export function registerEqual(a: RegisterStore, b: RegisterStore): boolean {
  if (a === b) return true;
  if (a.entries.length !== b.entries.length) return false;
  for (let i = 0; i < a.entries.length; i++) {
    const x = a.entries[i]!;
    const y = b.entries[i]!;
    if (x !== y && (!sameDot(x.dot, y.dot) || compareAssignments(x, y) !== 0)) return false;
  }
  return true;
}

function sameEntries(x: readonly RegisterEntry[], y: readonly RegisterEntry[]): boolean {
  if (x.length !== y.length) return false;
  for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return false;
  return true;
}

function byDot(a: RegisterEntry, b: RegisterEntry): number {
  return compareDots(a.dot, b.dot);
}
