// The enable-wins flag of map fields: enabled while it holds a dot. Enable replaces the dots
// with its own; disable drops the dots a context saw, so an enable concurrent with a disable
// wins. Pure functions on immutable inputs.

import type { FlagStore } from './crdt-state.js';
import { joinDots, sameDots, withoutCovered } from './dots.js';
import type { Dot, VersionVector } from './dots.js';

export const EMPTY_FLAG: FlagStore = Object.freeze({ kind: 'flag', dots: Object.freeze([]) as readonly Dot[] });

export function flagEnable(_store: FlagStore, dot: Dot): FlagStore {
  return { kind: 'flag', dots: [dot] };
}

/** Drops the dots `ctx` covers: a disable, or a field remove. */
export function flagDisable(store: FlagStore, ctx: VersionVector): FlagStore {
  const dots = withoutCovered(store.dots, ctx);
  return dots === store.dots ? store : { kind: 'flag', dots };
}

export function joinFlag(a: FlagStore, ca: VersionVector, b: FlagStore, cb: VersionVector): FlagStore {
  if (a === b) return a;
  const dots = joinDots(a.dots, ca, b.dots, cb);
  if (dots === a.dots) return a;
  if (dots === b.dots) return b;
  return { kind: 'flag', dots };
}

export function flagValue(store: FlagStore): boolean {
  return store.dots.length > 0;
}

export function flagEqual(a: FlagStore, b: FlagStore): boolean {
  return a === b || sameDots(a.dots, b.dots);
}
