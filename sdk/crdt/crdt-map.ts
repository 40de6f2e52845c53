// The map (Riak's semantics): fields named by (name, type), each with the dots of the updates
// that keep it present and a nested store. An update of a field replaces its presence dots
// with its own; a remove drops the presence dots and the nested dots a context saw, so an
// update concurrent with the remove keeps the field. Pure functions on immutable inputs.

import type { CounterStore, CrdtValue, FieldKey, FieldType, MapField, MapStore, Store } from './crdt-state.js';
import { TYPE_CODES, fieldKey, viewKey } from './crdt-state.js';
import { compareStrings, insertDot, joinDots, sameDots, withoutCovered } from './dots.js';
import type { Dot, VersionVector } from './dots.js';
import { emptyStore, joinStore, resetStore, storeEqual, storeValue } from './store.js';

export const EMPTY_MAP: MapStore = Object.freeze({ kind: 'map', fields: new Map<string, MapField>() });

/** The join of two maps: per field, the join of its presence dots and of its store; a field left without presence dots goes. */
export function joinMap(a: MapStore, ca: VersionVector, b: MapStore, cb: VersionVector): MapStore {
  if (a === b) return a;
  let next: Map<string, MapField> | undefined;
  const none: readonly Dot[] = [];
  for (const [k, fa] of a.fields) {
    const fb = b.fields.get(k);
    const presence = joinDots(fa.presence, ca, fb?.presence ?? none, cb);
    if (presence.length === 0) {
      next ??= new Map(a.fields);
      next.delete(k);
      continue;
    }
    const store = joinStore(fa.store, ca, fb?.store ?? emptyStore(fa.type), cb);
    if (presence === fa.presence && store === fa.store) continue;
    next ??= new Map(a.fields);
    next.set(k, fb !== undefined && presence === fb.presence && store === fb.store ? fb : { name: fa.name, type: fa.type, presence, store });
  }
  for (const [k, fb] of b.fields) {
    if (a.fields.has(k)) continue;
    const presence = joinDots(none, ca, fb.presence, cb);
    if (presence.length === 0) continue;
    const store = joinStore(emptyStore(fb.type), ca, fb.store, cb);
    next ??= new Map(a.fields);
    next.set(k, presence === fb.presence && store === fb.store ? fb : { name: fb.name, type: fb.type, presence, store });
  }
  if (next === undefined) return a;
  const out: MapStore = { kind: 'map', fields: next };
  return mapEqual(out, b) ? b : out;
}

/** Removes what `ctx` saw from every field; fields left without presence dots go. */
export function resetMap(store: MapStore, ctx: VersionVector): MapStore {
  let next: Map<string, MapField> | undefined;
  for (const [k, f] of store.fields) {
    const g = resetField(f, ctx);
    if (g === f) continue;
    next ??= new Map(store.fields);
    if (g === undefined) next.delete(k);
    else next.set(k, g);
  }
  return next === undefined ? store : { kind: 'map', fields: next };
}

/** Removes field `key` as far as `ctx` saw it: its presence dots and its nested dots that `ctx` covers. */
export function removeField(store: MapStore, key: FieldKey, ctx: VersionVector): MapStore {
  const k = fieldKey(key.name, key.type);
  const f = store.fields.get(k);
  if (f === undefined) return store;
  const g = resetField(f, ctx);
  if (g === f) return store;
  const next = new Map(store.fields);
  if (g === undefined) next.delete(k);
  else next.set(k, g);
  return { kind: 'map', fields: next };
}

/** Updates field (name, type) under the event `dot`: its presence becomes [dot] and its store `fn` of the old one (empty when new). */
export function touchField(store: MapStore, name: string, type: FieldType, dot: Dot, fn: (s: Store) => Store): MapStore {
  const k = fieldKey(name, type);
  const f = store.fields.get(k);
  const next = new Map(store.fields);
  next.set(k, { name, type, presence: [dot], store: fn(f?.store ?? emptyStore(type)) });
  return { kind: 'map', fields: next };
}

/**
 * Applies `fn` to the store at `path` (field keys from `store` down), when every field on the
 * path exists; presence dots are left as they are. Returns `store` when nothing changed.
 */
export function updateAtPath(store: Store, path: readonly FieldKey[], fn: (s: Store) => Store, depth = 0): Store {
  if (depth === path.length) return fn(store);
  if (store.kind !== 'map') return store;
  const key = path[depth]!;
  const k = fieldKey(key.name, key.type);
  const f = store.fields.get(k);
  if (f === undefined) return store;
  const nested = updateAtPath(f.store, path, fn, depth + 1);
  if (nested === f.store) return store;
  const next = new Map(store.fields);
  next.set(k, { ...f, store: nested });
  return { kind: 'map', fields: next };
}

/** Replaces each counter under the map by `fn` of it (see transformCounters in store.ts). */
export function mapCounters(store: MapStore, fn: (c: CounterStore) => CounterStore, presenceDot?: Dot): MapStore {
  let next: Map<string, MapField> | undefined;
  for (const [k, f] of store.fields) {
    let nested: Store;
    if (f.store.kind === 'counter') nested = fn(f.store);
    else if (f.store.kind === 'map') nested = mapCounters(f.store, fn, presenceDot);
    else continue;
    if (nested === f.store) continue;
    next ??= new Map(store.fields);
    next.set(k, { ...f, presence: presenceDot === undefined ? f.presence : insertDot(f.presence, presenceDot), store: nested });
  }
  return next === undefined ? store : { kind: 'map', fields: next };
}

/** The fields in canonical order: by name (code units), then type code. */
export function sortedFields(store: MapStore): MapField[] {
  return [...store.fields.values()].sort(compareFields);
}

export function compareFields(a: { name: string; type: FieldType }, b: { name: string; type: FieldType }): number {
  return compareStrings(a.name, b.name) || TYPE_CODES[a.type] - TYPE_CODES[b.type];
}

/** { `${name}_${type}`: value } for every field, in canonical order. */
export function mapValue(store: MapStore, masked: ReadonlySet<string>): { [field: string]: CrdtValue } {
  const out: { [field: string]: CrdtValue } = {};
  for (const f of sortedFields(store)) {
    Object.defineProperty(out, viewKey(f.name, f.type), { value: storeValue(f.store, masked), enumerable: true, writable: true, configurable: true });
  }
  return out;
}

export function mapEqual(a: MapStore, b: MapStore): boolean {
  if (a === b) return true;
  if (a.fields.size !== b.fields.size) return false;
  for (const [k, fa] of a.fields) {
    const fb = b.fields.get(k);
    if (fb === undefined) return false;
    if (fa === fb) continue;
    if (!sameDots(fa.presence, fb.presence) || !storeEqual(fa.store, fb.store)) return false;
  }
  return true;
}

function resetField(f: MapField, ctx: VersionVector): MapField | undefined {
  const presence = withoutCovered(f.presence, ctx);
  if (presence.length === 0) return undefined;
  const store = resetStore(f.store, ctx);
  if (presence === f.presence && store === f.store) return f;
  return { name: f.name, type: f.type, presence, store };
}
