// Deferred removes: a remove whose context covers events the coordinator had not yet seen is
// kept with the state and re-applied at every merge, so those events are removed when they
// arrive; it is dropped once the state's context covers its own. Pure functions.

import type { DeferredRemove, Store } from './crdt-state.js';
import { removeField, updateAtPath } from './crdt-map.js';
import { compareStrings, contextCovers } from './dots.js';
import type { VersionVector } from './dots.js';
import { flagDisable } from './flag.js';
import { setRemove } from './orswot.js';

/** A canonical string naming a deferred remove: equal removes have equal keys; the list is sorted by it. */
export function deferredKey(d: DeferredRemove): string {
  const ctx: (string | number)[] = [];
  for (const n of Object.keys(d.context).sort(compareStrings)) if (d.context[n]! > 0) ctx.push(n, d.context[n]!);
  return JSON.stringify([ctx, d.path.map((k) => [k.name, k.type]), d.what, d.member ?? null]);
}

/** The sorted union (by key, without duplicates) of two lists of deferred removes. Returns `a` when unchanged. */
export function unionDeferred(a: readonly DeferredRemove[], b: readonly DeferredRemove[]): readonly DeferredRemove[] {
  if (b.length === 0 || a === b) return a;
  if (a.length === 0) return b;
  const byKey = new Map<string, DeferredRemove>();
  for (const d of a) byKey.set(deferredKey(d), d);
  let added = false;
  for (const d of b) {
    const k = deferredKey(d);
    if (!byKey.has(k)) {
      byKey.set(k, d);
      added = true;
    }
  }
  if (!added) return a;
  return [...byKey.keys()].sort(compareStrings).map((k) => byKey.get(k)!);
}

/** Applies one deferred remove to a key's store: removes the dots its context covers, at its target. */
export function applyDeferred(store: Store, d: DeferredRemove): Store {
  switch (d.what) {
    case 'member':
      return updateAtPath(store, d.path, (s) => (s.kind === 'set' ? setRemove(s, d.member!, d.context) : s));
    case 'flag':
      return updateAtPath(store, d.path, (s) => (s.kind === 'flag' ? flagDisable(s, d.context) : s));
    case 'field': {
      const key = d.path[d.path.length - 1]!;
      return updateAtPath(store, d.path.slice(0, -1), (s) => (s.kind === 'map' ? removeField(s, key, d.context) : s));
    }
  }
}

/** True when `a` covers every counter of `b`. */
export function coversContext(a: VersionVector, b: VersionVector): boolean {
  for (const n of Object.keys(b)) if (b[n]! > 0 && !contextCovers(a, [n, b[n]!])) return false;
  return true;
}
