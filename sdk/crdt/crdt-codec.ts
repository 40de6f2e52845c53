// The binary encoding of a data type's state (msgpack, versioned, with a type tag) and the
// opaque context token a fetch returns. Canonical: equal states encode to equal bytes. The
// layout is in ./crdt-format.md. Pure functions; safe to call from anywhere.

import { Packr } from 'msgpackr';
import { CorruptionError, InvalidArgumentError, WrongTypeError } from '../errors.js';
import type {
  AppliedOp,
  CounterEntry,
  CrdtState,
  CrdtType,
  DeferredRemove,
  FieldKey,
  FieldType,
  MapField,
  RegisterEntry,
  Store,
} from './crdt-state.js';
import { CRDT_TYPES, FIELD_TYPES, TYPE_CODES, fieldKey } from './crdt-state.js';
import { compareFields, sortedFields } from './crdt-map.js';
import { deferredKey } from './deferred.js';
import { compareDots, compareStrings } from './dots.js';
import type { Dot, VersionVector } from './dots.js';
import { MAX_OP_ID_BYTES, compareApplied } from './op-window.js';

/** The leading format number of an encoded state; a reader rejects any other. */
export const CRDT_FORMAT = 1;
/** The leading format number of a context token. */
export const CRDT_CONTEXT_FORMAT = 1;
/** Longest context token decodeCrdtContext accepts, in characters. */
export const MAX_CRDT_CONTEXT_CHARS = 16 * 1024;
/** Deepest nesting of maps in a state or an operation. */
export const MAX_MAP_DEPTH = 32;

const WHAT_CODES = { member: 0, field: 1, flag: 2 } as const;
const WHATS = ['member', 'field', 'flag'] as const;

const packr = new Packr({ useRecords: false, mapsAsObjects: true, copyBuffers: true });

/** Encodes a state (crdt-format.md). Throws InvalidArgumentError for a state that breaks its invariants (a dot its context does not cover). */
export function encodeCrdt(state: CrdtState): Buffer {
  const names = new Set<string>();
  for (const n of Object.keys(state.context)) if (state.context[n]! > 0) names.add(n);
  for (const d of state.deferred) for (const n of Object.keys(d.context)) if (d.context[n]! > 0) names.add(n);
  const actors = [...names].sort(compareStrings);
  const index = new Map<string, number>();
  actors.forEach((a, i) => index.set(a, i));
  const pushDot = (out: unknown[], d: Dot): void => {
    const i = index.get(d[0]);
    if (i === undefined || d[1] > (state.context[d[0]] ?? 0)) throw new InvalidArgumentError(`the state holds the event ${d[0]}:${d[1]}, which its context does not cover`);
    out.push(i, d[1]);
  };
  const dotList = (dots: readonly Dot[]): unknown[] => {
    const out: unknown[] = [];
    for (const d of dots) pushDot(out, d);
    return out;
  };
  const encodeStore = (s: Store): unknown[] => {
    const out: unknown[] = [];
    switch (s.kind) {
      case 'counter':
        for (const e of s.entries) {
          pushDot(out, e.dot);
          out.push(e.p, e.n);
        }
        break;
      case 'set':
        for (const m of [...s.members.keys()].sort(compareStrings)) out.push(m, dotList(s.members.get(m)!));
        break;
      case 'register':
        for (const e of s.entries) {
          pushDot(out, e.dot);
          out.push(e.ts, e.writer, e.value);
        }
        break;
      case 'flag':
        return dotList(s.dots);
      case 'map':
        for (const f of sortedFields(s)) out.push(f.name, TYPE_CODES[f.type], dotList(f.presence), encodeStore(f.store));
        break;
    }
    return out;
  };
  const applied: unknown[] = [];
  for (const r of state.applied) {
    applied.push(r.id);
    pushDot(applied, r.dot);
    applied.push(r.atMs);
  }
  const deferred = state.deferred.map((d) => {
    const ctx: number[] = [];
    for (const n of Object.keys(d.context).sort(compareStrings)) if (d.context[n]! > 0) ctx.push(index.get(n)!, d.context[n]!);
    const path: unknown[] = [];
    for (const k of d.path) path.push(k.name, TYPE_CODES[k.type]);
    return [ctx, path, WHAT_CODES[d.what], d.what === 'member' ? d.member! : null];
  });
  return packr.pack([
    CRDT_FORMAT,
    TYPE_CODES[state.type],
    actors,
    actors.map((a) => state.context[a] ?? 0),
    state.horizonMs,
    applied,
    deferred,
    encodeStore(state.store),
  ]);
}

/** The size of the encoding, in bytes: what the 1 MiB bound is checked against. */
export function crdtEncodedSize(state: CrdtState): number {
  return encodeCrdt(state).length;
}

/**
 * Decodes what {@link encodeCrdt} made. Accepts only canonical encodings of valid states and
 * throws CorruptionError (code CORRUPTION) for anything else: another format number, an
 * unknown type, bad shapes, unsorted or duplicate entries, a dot the context does not cover.
 */
export function decodeCrdt(bytes: Uint8Array): CrdtState {
  let raw: unknown;
  try {
    raw = packr.unpack(bytes);
  } catch (err) {
    throw corrupt(`cannot decode: ${(err as Error).message}`);
  }
  if (!Array.isArray(raw) || raw.length !== 8) throw corrupt('not a data-type array');
  if (raw[0] !== CRDT_FORMAT) throw corrupt(`unknown format ${String(raw[0])}`);
  const type = CRDT_TYPES.find((t) => TYPE_CODES[t] === raw[1]);
  if (type === undefined) throw corrupt(`unknown type code ${String(raw[1])}`);

  const actors = expectArray(raw[2], 'actors');
  for (let i = 0; i < actors.length; i++) {
    const a = actors[i];
    if (typeof a !== 'string' || a.length === 0) throw corrupt('bad actor');
    if (i > 0 && !((actors[i - 1] as string) < a)) throw corrupt('actors not sorted');
  }
  const names = actors as string[];
  const counters = expectArray(raw[3], 'context');
  if (counters.length !== names.length) throw corrupt('context does not match the actors');
  const entries: [string, number][] = [];
  const top: number[] = [];
  for (let i = 0; i < names.length; i++) {
    const c = expectUint(counters[i]);
    top.push(c);
    if (c > 0) entries.push([names[i]!, c]);
  }
  const context: VersionVector = Object.fromEntries(entries);
  const used = new Array<boolean>(names.length).fill(false);
  for (let i = 0; i < names.length; i++) if (top[i]! > 0) used[i] = true;
  const dotAt = (arr: unknown[], i: number): Dot => {
    const ix = arr[i];
    const seq = arr[i + 1];
    if (typeof ix !== 'number' || !Number.isInteger(ix) || ix < 0 || ix >= names.length) throw corrupt('bad actor index');
    if (!isUint(seq) || seq === 0) throw corrupt('bad event counter');
    if (seq > top[ix]!) throw corrupt('an event the context does not cover');
    return [names[ix]!, seq];
  };
  const dots = (v: unknown, nonEmpty: boolean): Dot[] => {
    const arr = expectArray(v, 'dots');
    if (arr.length % 2 !== 0 || (nonEmpty && arr.length === 0)) throw corrupt('bad dot list');
    const out: Dot[] = [];
    for (let i = 0; i < arr.length; i += 2) {
      const d = dotAt(arr, i);
      if (out.length > 0 && compareDots(out[out.length - 1]!, d) >= 0) throw corrupt('dots not sorted');
      out.push(d);
    }
    return out;
  };

  const horizonMs = expectUint(raw[4]);
  const appliedRaw = expectArray(raw[5], 'applied');
  if (appliedRaw.length % 4 !== 0) throw corrupt('bad applied list');
  const applied: AppliedOp[] = [];
  for (let i = 0; i < appliedRaw.length; i += 4) {
    const id = appliedRaw[i];
    if (!(id instanceof Uint8Array) || id.length === 0 || id.length > MAX_OP_ID_BYTES) throw corrupt('bad operation id');
    const rec: AppliedOp = { id: Buffer.isBuffer(id) ? id : Buffer.from(id), dot: dotAt(appliedRaw, i + 1), atMs: expectUint(appliedRaw[i + 3]) };
    if (rec.atMs < horizonMs) throw corrupt('an applied operation below the horizon');
    if (applied.length > 0 && compareApplied(applied[applied.length - 1]!, rec) >= 0) throw corrupt('applied operations not sorted');
    applied.push(rec);
  }

  const deferredRaw = expectArray(raw[6], 'deferred');
  const deferred: DeferredRemove[] = [];
  let lastKey: string | undefined;
  for (const dr of deferredRaw) {
    const d = expectArray(dr, 'deferred remove');
    if (d.length !== 4) throw corrupt('bad deferred remove');
    const ctxRaw = expectArray(d[0], 'deferred context');
    if (ctxRaw.length === 0 || ctxRaw.length % 2 !== 0) throw corrupt('bad deferred context');
    const ctxEntries: [string, number][] = [];
    let lastIx = -1;
    for (let i = 0; i < ctxRaw.length; i += 2) {
      const ix = ctxRaw[i];
      const c = ctxRaw[i + 1];
      if (typeof ix !== 'number' || !Number.isInteger(ix) || ix <= lastIx || ix >= names.length || !isUint(c) || c === 0) throw corrupt('bad deferred context entry');
      lastIx = ix;
      used[ix] = true;
      ctxEntries.push([names[ix]!, c]);
    }
    const pathRaw = expectArray(d[1], 'deferred path');
    if (pathRaw.length % 2 !== 0 || pathRaw.length > 2 * MAX_MAP_DEPTH) throw corrupt('bad deferred path');
    const path: FieldKey[] = [];
    for (let i = 0; i < pathRaw.length; i += 2) path.push({ name: expectName(pathRaw[i]), type: expectFieldType(pathRaw[i + 1]) });
    const what = WHATS[d[2] as number];
    if (what === undefined) throw corrupt('bad deferred kind');
    const rem: DeferredRemove =
      what === 'member'
        ? { context: Object.fromEntries(ctxEntries), path, what, member: expectString(d[3]) }
        : { context: Object.fromEntries(ctxEntries), path, what };
    if (what !== 'member' && d[3] !== null) throw corrupt('bad deferred remove');
    checkDeferredTarget(type, rem);
    const key = deferredKey(rem);
    if (lastKey !== undefined && !(lastKey < key)) throw corrupt('deferred removes not sorted');
    lastKey = key;
    deferred.push(rem);
  }
  if (used.some((u) => !u)) throw corrupt('an actor no context names');

  const decodeStore = (t: FieldType, v: unknown, depth: number): Store => {
    const arr = expectArray(v, 'store');
    switch (t) {
      case 'counter': {
        if (arr.length % 4 !== 0) throw corrupt('bad counter');
        const es: CounterEntry[] = [];
        for (let i = 0; i < arr.length; i += 4) {
          const e: CounterEntry = { dot: dotAt(arr, i), p: expectUint(arr[i + 2]), n: expectUint(arr[i + 3]) };
          if (e.p === 0 && e.n === 0) throw corrupt('an empty counter entry');
          if (es.length > 0 && compareDots(es[es.length - 1]!.dot, e.dot) >= 0) throw corrupt('counter entries not sorted');
          es.push(e);
        }
        return { kind: 'counter', entries: es };
      }
      case 'set': {
        if (arr.length % 2 !== 0) throw corrupt('bad set');
        const members = new Map<string, readonly Dot[]>();
        let last: string | undefined;
        for (let i = 0; i < arr.length; i += 2) {
          const m = expectString(arr[i]);
          if (last !== undefined && !(last < m)) throw corrupt('members not sorted');
          last = m;
          members.set(m, dots(arr[i + 1], true));
        }
        return { kind: 'set', members };
      }
      case 'register': {
        if (arr.length % 5 !== 0) throw corrupt('bad register');
        const es: RegisterEntry[] = [];
        for (let i = 0; i < arr.length; i += 5) {
          const e: RegisterEntry = { dot: dotAt(arr, i), ts: expectUint(arr[i + 2]), writer: expectString(arr[i + 3]), value: expectString(arr[i + 4]) };
          if (es.length > 0 && compareDots(es[es.length - 1]!.dot, e.dot) >= 0) throw corrupt('register entries not sorted');
          es.push(e);
        }
        return { kind: 'register', entries: es };
      }
      case 'flag':
        return { kind: 'flag', dots: dots(arr, false) };
      case 'map': {
        if (depth >= MAX_MAP_DEPTH) throw corrupt('maps nested too deep');
        if (arr.length % 4 !== 0) throw corrupt('bad map');
        const fields = new Map<string, MapField>();
        let last: MapField | undefined;
        for (let i = 0; i < arr.length; i += 4) {
          const name = expectName(arr[i]);
          const ft = expectFieldType(arr[i + 1]);
          const f: MapField = { name, type: ft, presence: dots(arr[i + 2], true), store: decodeStore(ft, arr[i + 3], depth + 1) };
          if (last !== undefined && compareFields(last, f) >= 0) throw corrupt('fields not sorted');
          last = f;
          fields.set(fieldKey(name, ft), f);
        }
        return { kind: 'map', fields };
      }
    }
  };
  const store = decodeStore(type, raw[7], 0);
  return { type, context, horizonMs, applied, deferred, store };
}

/** An opaque, URL-safe token (base64url, no padding) of a state's type and context; a client hands it back with removes. */
export function encodeCrdtContext(type: CrdtType, ctx: VersionVector): string {
  const flat: (string | number)[] = [];
  for (const n of Object.keys(ctx).sort(compareStrings)) {
    const c = ctx[n]!;
    if (!isUint(c)) throw new InvalidArgumentError(`context entry ${JSON.stringify(n)} is not a non-negative safe integer`);
    if (c > 0) flat.push(n, c);
  }
  return packr.pack([CRDT_CONTEXT_FORMAT, TYPE_CODES[type], flat]).toString('base64url');
}

/**
 * Decodes a token made by {@link encodeCrdtContext}. Throws InvalidArgumentError for anything
 * else, and WrongTypeError when `expected` is given and the token is of another type.
 */
export function decodeCrdtContext(token: string, expected?: CrdtType): { type: CrdtType; context: VersionVector } {
  if (typeof token !== 'string' || token.length === 0 || token.length > MAX_CRDT_CONTEXT_CHARS || !/^[A-Za-z0-9_-]+$/.test(token)) throw badToken();
  const bytes = Buffer.from(token, 'base64url');
  if (bytes.toString('base64url') !== token) throw badToken();
  let raw: unknown;
  try {
    raw = packr.unpack(bytes);
  } catch {
    throw badToken();
  }
  if (!Array.isArray(raw) || raw.length !== 3 || raw[0] !== CRDT_CONTEXT_FORMAT) throw badToken();
  const type = CRDT_TYPES.find((t) => TYPE_CODES[t] === raw[1]);
  if (type === undefined) throw badToken();
  const flat = raw[2];
  if (!Array.isArray(flat) || flat.length % 2 !== 0) throw badToken();
  const entries: [string, number][] = [];
  for (let i = 0; i < flat.length; i += 2) {
    const n = flat[i];
    const c = flat[i + 1];
    if (typeof n !== 'string' || n.length === 0 || !isUint(c) || c === 0) throw badToken();
    if (i > 0 && !(entries[entries.length - 1]![0] < n)) throw badToken();
    entries.push([n, c]);
  }
  if (expected !== undefined && type !== expected) throw new WrongTypeError(expected, type, 'context token');
  return { type, context: Object.fromEntries(entries) };
}

function checkDeferredTarget(type: CrdtType, d: DeferredRemove): void {
  if (type !== 'map' && type !== 'set') throw corrupt(`a deferred remove in a ${type}`);
  if (type === 'set' && (d.path.length !== 0 || d.what !== 'member')) throw corrupt('a bad deferred remove in a set');
  if (type === 'map' && d.path.length === 0) throw corrupt('a deferred remove without a path in a map');
  for (let i = 0; i < d.path.length - 1; i++) if (d.path[i]!.type !== 'map') throw corrupt('a deferred path through a field that is not a map');
  const last = d.path[d.path.length - 1];
  if (last !== undefined && ((d.what === 'member' && last.type !== 'set') || (d.what === 'flag' && last.type !== 'flag'))) {
    throw corrupt('a deferred remove of the wrong kind for its field');
  }
}

function expectArray(v: unknown, what: string): unknown[] {
  if (!Array.isArray(v)) throw corrupt(`${what} is not an array`);
  return v;
}

function expectUint(v: unknown): number {
  if (!isUint(v)) throw corrupt('expected a non-negative safe integer');
  return v;
}

function expectString(v: unknown): string {
  if (typeof v !== 'string') throw corrupt('expected a string');
  return v;
}

function expectName(v: unknown): string {
  if (typeof v !== 'string' || v.length === 0) throw corrupt('bad field name');
  return v;
}

function expectFieldType(v: unknown): FieldType {
  const t = FIELD_TYPES.find((x) => TYPE_CODES[x] === v);
  if (t === undefined) throw corrupt(`unknown field type code ${String(v)}`);
  return t;
}

function isUint(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}

function corrupt(message: string): CorruptionError {
  return new CorruptionError(`data type state: ${message}`, { file: '(data type value)' });
}

function badToken(): InvalidArgumentError {
  return new InvalidArgumentError('malformed data-type context token');
}
