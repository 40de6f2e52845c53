// The add-wins set without tombstones (ORSWOT): each member with the dots of its current adds,
// the key's causal context saying which adds were seen. A remove drops the dots a context saw,
// so an add concurrent with it survives. Pure functions on immutable inputs.

import type { SetStore } from './crdt-state.js';
import { compareStrings, joinDots, withoutCovered } from './dots.js';
import type { Dot, VersionVector } from './dots.js';

export const EMPTY_SET: SetStore = Object.freeze({ kind: 'set', members: new Map<string, readonly Dot[]>() });

/** Adds members with the event `dot`; it replaces the dots they had (the coordinator saw those). */
export function setAdd(store: SetStore, members: readonly string[], dot: Dot): SetStore {
  if (members.length === 0) return store;
  const next = new Map(store.members);
  const dots = [dot];
  for (const m of members) next.set(m, dots);
  return { kind: 'set', members: next };
}

/** Removes the dots of `member` that `ctx` covers; the member goes when none is left. */
export function setRemove(store: SetStore, member: string, ctx: VersionVector): SetStore {
  const dots = store.members.get(member);
  if (dots === undefined) return store;
  const left = withoutCovered(dots, ctx);
  if (left === dots) return store;
  const next = new Map(store.members);
  if (left.length === 0) next.delete(member);
  else next.set(member, left);
  return { kind: 'set', members: next };
}

/** Removes every dot `ctx` covers, of every member (a field remove). */
export function resetSet(store: SetStore, ctx: VersionVector): SetStore {
  let next: Map<string, readonly Dot[]> | undefined;
  for (const [m, dots] of store.members) {
    const left = withoutCovered(dots, ctx);
    if (left === dots) continue;
    next ??= new Map(store.members);
    if (left.length === 0) next.delete(m);
    else next.set(m, left);
  }
  return next === undefined ? store : { kind: 'set', members: next };
}

/** The join of two replicas' sets: per member, the join of its dot sets; members left without dots go. Returns `a` when unchanged. */
export function joinSet(a: SetStore, ca: VersionVector, b: SetStore, cb: VersionVector): SetStore {
  if (a === b) return a;
  let next: Map<string, readonly Dot[]> | undefined;
  const none: readonly Dot[] = [];
  for (const [m, da] of a.members) {
    const db = b.members.get(m) ?? none;
    const j = joinDots(da, ca, db, cb);
    if (j === da) continue;
    next ??= new Map(a.members);
    if (j.length === 0) next.delete(m);
    else next.set(m, j);
  }
  for (const [m, db] of b.members) {
    if (a.members.has(m)) continue;
    const j = joinDots(none, ca, db, cb);
    if (j.length === 0) continue;
    next ??= new Map(a.members);
    next.set(m, j);
  }
  if (next === undefined) return a;
  return setEqual({ kind: 'set', members: next }, b) ? b : { kind: 'set', members: next };
}

/** The members, sorted in code-unit order. */
export function setValue(store: SetStore): string[] {
  return [...store.members.keys()].sort(compareStrings);
}

export function setEqual(a: SetStore, b: SetStore): boolean {
  if (a === b) return true;
  if (a.members.size !== b.members.size) return false;
  for (const [m, da] of a.members) {
    const db = b.members.get(m);
    if (db === undefined || db.length !== da.length) return false;
    for (let i = 0; i < da.length; i++) if (da[i]![0] !== db[i]![0] || da[i]![1] !== db[i]![1]) return false;
  }
  return true;
}
