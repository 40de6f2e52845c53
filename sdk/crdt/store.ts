// Dispatch over the stores of every type — empty store, join, reset (a remove of what a
// context saw), equality, value — and walks over the counters nested in maps (for settling,
// summing and folding). Pure functions on immutable inputs.

import type { CounterStore, CrdtValue, FieldType, Store } from './crdt-state.js';
import { EMPTY_COUNTER, counterEqual, counterValue, joinCounter, resetCounter } from './counter.js';
import { EMPTY_MAP, joinMap, mapEqual, mapValue, resetMap, mapCounters } from './crdt-map.js';
import { EMPTY_FLAG, flagDisable, flagEqual, flagValue, joinFlag } from './flag.js';
import { EMPTY_REGISTER, joinRegister, registerEqual, registerWinner, resetRegister } from './lww-register.js';
import { EMPTY_SET, joinSet, resetSet, setEqual, setValue } from './orswot.js';
import type { Dot, VersionVector } from './dots.js';

export function emptyStore(type: FieldType): Store {
  switch (type) {
    case 'counter':
      return EMPTY_COUNTER;
    case 'set':
      return EMPTY_SET;
    case 'register':
      return EMPTY_REGISTER;
    case 'flag':
      return EMPTY_FLAG;
    case 'map':
      return EMPTY_MAP;
  }
}

/** The join of two stores of one kind under their states' contexts. Returns `a` when unchanged. */
export function joinStore(a: Store, ca: VersionVector, b: Store, cb: VersionVector): Store {
  if (a === b) return a;
  switch (a.kind) {
    case 'counter':
      return joinCounter(a, ca, b as CounterStore, cb);
    case 'set':
      return joinSet(a, ca, b as typeof a, cb);
    case 'register':
      return joinRegister(a, ca, b as typeof a, cb);
    case 'flag':
      return joinFlag(a, ca, b as typeof a, cb);
    case 'map':
      return joinMap(a, ca, b as typeof a, cb);
  }
}

/** Removes every dot `ctx` covers, throughout the store: what a field remove does to the field. */
export function resetStore(store: Store, ctx: VersionVector): Store {
  switch (store.kind) {
    case 'counter':
      return resetCounter(store, ctx);
    case 'set':
      return resetSet(store, ctx);
    case 'register':
      return resetRegister(store, ctx);
    case 'flag':
      return flagDisable(store, ctx);
    case 'map':
      return resetMap(store, ctx);
  }
}

export function storeEqual(a: Store, b: Store): boolean {
  if (a === b) return true;
  if (a.kind !== b.kind) return false;
  switch (a.kind) {
    case 'counter':
      return counterEqual(a, b as typeof a);
    case 'set':
      return setEqual(a, b as typeof a);
    case 'register':
      return registerEqual(a, b as typeof a);
    case 'flag':
      return flagEqual(a, b as typeof a);
    case 'map':
      return mapEqual(a, b as typeof a);
  }
}

/** The value view of a store; counter entries whose dot is in `masked` do not count. */
export function storeValue(store: Store, masked: ReadonlySet<string>): CrdtValue {
  switch (store.kind) {
    case 'counter':
      return counterValue(store, masked);
    case 'set':
      return setValue(store);
    case 'register':
      return registerWinner(store)?.value ?? null;
    case 'flag':
      return flagValue(store);
    case 'map':
      return mapValue(store, masked);
  }
}

/**
 * Replaces every counter in the store (itself, or nested in map fields) by `fn` of it. When
 * `presenceDot` is given, each map field on the way to a counter that changed gets it as a
 * presence dot (a fold is an update of the counters it touches). Returns `store` when nothing changed.
 */
export function transformCounters(store: Store, fn: (c: CounterStore) => CounterStore, presenceDot?: Dot): Store {
  if (store.kind === 'counter') return fn(store);
  if (store.kind === 'map') return mapCounters(store, fn, presenceDot);
  return store;
}

/** Calls `fn` on every counter in the store. */
export function forEachCounter(store: Store, fn: (c: CounterStore) => void): void {
  if (store.kind === 'counter') fn(store);
  else if (store.kind === 'map') for (const f of store.fields.values()) forEachCounter(f.store, fn);
}
