// The data types' entry points: apply an operation at a coordinating node, merge two
// replicas' states, read the value, settle, fold a removed node into a survivor. Pure
// functions on immutable inputs; no I/O and no clock: node ids and times are parameters.

import { DataTypeTooLargeError, InvalidArgumentError, WrongTypeError } from '../errors.js';
import { MAX_VALUE_BYTES, checkNodeId } from '../limits.js';
import { contextCounter, contextsEqual, joinContext } from '../versioning/dvv.js';
import type {
  CounterStore,
  CrdtOp,
  CrdtState,
  CrdtType,
  CrdtValue,
  DeferredRemove,
  FieldKey,
  FieldType,
  MapStore,
  NestedOp,
  RegisterStore,
  SetStore,
  FlagStore,
  Store,
} from './crdt-state.js';
import { CRDT_TYPES, FIELD_TYPES, fieldKey } from './crdt-state.js';
import { MAX_MAP_DEPTH, crdtEncodedSize, encodeCrdtContext } from './crdt-codec.js';
import { removeField, touchField } from './crdt-map.js';
import { compactCounter, counterAdd, counterTotals, dropCounterDots, foldCounter } from './counter.js';
import { applyDeferred, coversContext, deferredKey, unionDeferred } from './deferred.js';
import { dotKey } from './dots.js';
import type { Dot, VersionVector } from './dots.js';
import { flagDisable, flagEnable } from './flag.js';
import { registerAssign } from './lww-register.js';
import {
  DEFAULT_MAX_OP_IDS,
  DEFAULT_OP_WINDOW_MS,
  MAX_OP_ID_BYTES,
  duplicateDots,
  expireApplied,
  hasApplied,
  joinWindows,
  recordApplied,
  sameRecords,
  windowDots,
} from './op-window.js';
import { setAdd, setRemove } from './orswot.js';
import { emptyStore, forEachCounter, joinStore, storeEqual, storeValue, transformCounters } from './store.js';

/** Options of crdtApply and crdtSettle. The same values should be used on every node. */
export interface CrdtOptions {
  /** How long an applied operation id is remembered, in ms. Default 600000 (10 minutes). */
  opWindowMs?: number;
  /** At most this many operation ids are remembered per key. Default 256. */
  maxOpIds?: number;
  /** Largest encoded state an update may produce, in bytes. Default 1 MiB (the value limit). */
  maxStateBytes?: number;
}

export interface ResolvedCrdtOptions {
  opWindowMs: number;
  maxOpIds: number;
  maxStateBytes: number;
}

/** Fills the defaults of {@link CrdtOptions} and validates them; throws InvalidArgumentError. */
export function resolveCrdtOptions(o: CrdtOptions = {}): ResolvedCrdtOptions {
  const r: ResolvedCrdtOptions = {
    opWindowMs: o.opWindowMs ?? DEFAULT_OP_WINDOW_MS,
    maxOpIds: o.maxOpIds ?? DEFAULT_MAX_OP_IDS,
    maxStateBytes: o.maxStateBytes ?? MAX_VALUE_BYTES,
  };
  if (!Number.isSafeInteger(r.opWindowMs) || r.opWindowMs < 0) throw new InvalidArgumentError(`opWindowMs must be a non-negative integer of ms, got ${String(r.opWindowMs)}`);
  if (!Number.isSafeInteger(r.maxOpIds) || r.maxOpIds < 1) throw new InvalidArgumentError(`maxOpIds must be a positive integer, got ${String(r.maxOpIds)}`);
  if (!Number.isSafeInteger(r.maxStateBytes) || r.maxStateBytes < 1) throw new InvalidArgumentError(`maxStateBytes must be a positive integer, got ${String(r.maxStateBytes)}`);
  return r;
}

/** The state of a key that has never been updated. */
export function emptyCrdt(type: CrdtType): CrdtState {
  if (!CRDT_TYPES.includes(type)) throw new InvalidArgumentError(`unknown data type ${JSON.stringify(type)}`);
  return { type, context: {}, horizonMs: 0, applied: [], deferred: [], store: emptyStore(type) };
}

/**
 * Applies `op` at the coordinating storage node `actor`, at time `nowMs` (ms since the epoch,
 * the node's clock), as operation `opId` (client-chosen, 1..64 bytes). `state` is the node's
 * current state of the key, or undefined when it has none.
 *
 * - An operation whose id is in the state's window (applied at any node, at most opWindowMs
 *   before `nowMs`) was applied already: `state` itself is returned (nothing to write).
 * - Otherwise the update is one new event `[actor, context[actor] + 1]`. Before it, duplicate
 *   applications visible in the window are settled and `actor`'s own counter entries that left
 *   the window are summed (see crdtSettle).
 * - Removes (set members, flag disables, map fields) remove what `op.context` saw, or, without
 *   a context, what this state has seen. A context this state has not fully seen is also kept
 *   as a deferred remove, applied to what arrives later.
 *
 * REQUIRES: only node `actor` applies operations as `actor`, on its own latest state (dots
 * must be unique). Throws WrongTypeError when the key holds another type; InvalidArgumentError
 * for a malformed operation, node id, op id or time, or a counter past ±(2^53 - 1);
 * DataTypeTooLargeError (VALUE_TOO_LARGE) when the new state would encode to more than
 * maxStateBytes and is larger than the old one. Nothing changes when it throws.
 */
export function crdtApply(state: CrdtState | undefined, op: CrdtOp, actor: string, opId: Uint8Array, nowMs: number, options?: CrdtOptions): CrdtState {
  const o = resolveCrdtOptions(options);
  checkNodeId(actor, 'actor');
  if (!(opId instanceof Uint8Array) || opId.length === 0 || opId.length > MAX_OP_ID_BYTES) {
    throw new InvalidArgumentError(`an operation id is 1 to ${MAX_OP_ID_BYTES} bytes`);
  }
  checkTime(nowMs);
  const removeContext = checkOp(op);
  if (state !== undefined && state.type !== op.type) throw new WrongTypeError(state.type, op.type);
  const base = state ?? emptyCrdt(op.type);
  // Forgotten records (older than the window, even if nobody has expired them yet) do not count.
  if (hasApplied(expireApplied(base.horizonMs, base.applied, nowMs, o.opWindowMs).applied, opId)) return base;

  const seq = contextCounter(base.context, actor) + 1;
  if (!Number.isSafeInteger(seq)) throw new InvalidArgumentError(`the event counter of ${actor} is exhausted`);
  const dot: Dot = [actor, seq];
  const window = recordApplied(base.horizonMs, base.applied, Buffer.from(opId), dot, nowMs, o.opWindowMs, o.maxOpIds);
  let store = settleStore(base.store, duplicateDots(base.applied), actor, windowDots(window.applied));
  const removes: Omit<DeferredRemove, 'context'>[] = [];
  store = applyOp(store, op, dot, removeContext ?? base.context, [], removes);
  let deferred = base.deferred;
  if (removeContext !== undefined && removes.length > 0 && !coversContext(base.context, removeContext)) {
    deferred = unionDeferred(
      deferred,
      removes.map((r) => ({ ...r, context: removeContext })).sort((a, b) => (deferredKey(a) < deferredKey(b) ? -1 : 1)),
    );
  }
  const next: CrdtState = {
    type: base.type,
    context: joinContext(base.context, { [actor]: seq }),
    horizonMs: window.horizonMs,
    applied: window.applied,
    deferred,
    store,
  };
  forEachCounter(next.store, (c) => {
    const t = counterTotals(c);
    if (!Number.isSafeInteger(t.p) || !Number.isSafeInteger(t.n)) {
      throw new InvalidArgumentError('the counter would pass ±(2^53 - 1), which a counter cannot hold exactly');
    }
  });
  const size = crdtEncodedSize(next);
  if (size > o.maxStateBytes && size > (state === undefined ? 0 : crdtEncodedSize(state))) {
    throw new DataTypeTooLargeError(next.type, size, o.maxStateBytes);
  }
  return next;
}

/**
 * Merges two replicas' states of one key: the join of their contexts, windows (union above
 * the higher horizon), deferred removes and stores, with every deferred remove applied.
 * Commutative, associative and idempotent. Returns `a` itself when the merge adds nothing to
 * it (and `b` when it adds nothing to `b`), so `merged === local` means "nothing to write".
 * Throws WrongTypeError when the states are of different types.
 */
export function crdtMerge(a: CrdtState, b: CrdtState): CrdtState {
  if (a === b) return a;
  if (a.type !== b.type) throw new WrongTypeError(a.type, b.type, "other replica's state");
  const context = joinContext(a.context, b.context);
  const window = joinWindows(a.horizonMs, a.applied, b.horizonMs, b.applied);
  let store = joinStore(a.store, a.context, b.store, b.context);
  const all = unionDeferred(a.deferred, b.deferred);
  const deferred: DeferredRemove[] = [];
  for (const d of all) {
    store = applyDeferred(store, d);
    if (!coversContext(context, d.context)) deferred.push(d);
  }
  const merged: CrdtState = { type: a.type, context, horizonMs: window.horizonMs, applied: window.applied, deferred, store };
  if (crdtEqual(merged, a)) return a;
  if (crdtEqual(merged, b)) return b;
  return merged;
}

/**
 * The value view: counter -> number; set -> members sorted in code-unit order; register ->
 * the winning value (null when none); map -> { `${name}_${type}`: value } (flags are booleans).
 * Counter entries of duplicate applications visible in the window do not count.
 */
export function crdtValue(state: CrdtState): CrdtValue {
  return storeValue(state.store, duplicateDots(state.applied));
}

/** What a fetch returns: the type, the value, and the context token to hand back with removes. */
export function crdtView(state: CrdtState): { type: CrdtType; value: CrdtValue; context: string } {
  return { type: state.type, value: crdtValue(state), context: encodeCrdtContext(state.type, state.context) };
}

/** True when two states are the same: type, context, horizon, window, deferred removes and store. */
export function crdtEqual(a: CrdtState, b: CrdtState): boolean {
  if (a === b) return true;
  if (a.type !== b.type || a.horizonMs !== b.horizonMs) return false;
  if (!contextsEqual(a.context, b.context) || !sameRecords(a.applied, b.applied)) return false;
  if (a.deferred.length !== b.deferred.length) return false;
  for (let i = 0; i < a.deferred.length; i++) {
    if (a.deferred[i] !== b.deferred[i] && deferredKey(a.deferred[i]!) !== deferredKey(b.deferred[i]!)) return false;
  }
  return storeEqual(a.store, b.store);
}

/** True when the state's window holds operation `opId`: applying it again would do nothing. */
export function crdtHasApplied(state: CrdtState, opId: Uint8Array): boolean {
  return hasApplied(state.applied, opId);
}

/**
 * Housekeeping that needs no new event, for node `actor` to run on its state (after a merge,
 * say): drops the counter entries of duplicate applications visible in the window (so the
 * duplicate stays uncounted after the window forgets it), forgets window records older than
 * `nowMs - opWindowMs`, and sums `actor`'s own counter entries that left the window. crdtApply
 * does the same before every update. Returns `state` itself when nothing changed.
 */
export function crdtSettle(state: CrdtState, actor: string, nowMs: number, options?: CrdtOptions): CrdtState {
  const o = resolveCrdtOptions(options);
  checkNodeId(actor, 'actor');
  checkTime(nowMs);
  const window = expireApplied(state.horizonMs, state.applied, nowMs, o.opWindowMs);
  const store = settleStore(state.store, duplicateDots(state.applied), actor, windowDots(window.applied));
  if (store === state.store && window.applied === state.applied && window.horizonMs === state.horizonMs) return state;
  return { ...state, horizonMs: window.horizonMs, applied: window.applied, store };
}

/**
 * Folds the counter entries of node `from` (decommissioned or removed) into node `into`: the
 * entries of `from` whose operations have left the window are summed into one new entry under
 * a new event of `into` (duplicates visible in the window are dropped first); entries still in
 * the window stay, for a later fold. Map fields whose counters received a folded entry get the
 * new event as a presence dot. The value is unchanged, and stays so after merges with stale
 * copies: the new context covers every folded entry, so the join drops them where they turn
 * up again. Sets, registers and flags keep one dot per event, not per node, and have nothing
 * to fold. Returns `state` itself when there is nothing to fold.
 *
 * REQUIRES: run by node `into` on its own latest state (the fold is an event of `into`), one
 * survivor per removed node and key; `from` has stopped updating and settling (it has left),
 * and `into` has merged every copy that holds entries of `from` — its last state, pushed when
 * it left, or, after a removenode, the repair round. A node sums its own old entries under its
 * latest one; folding before seeing that sum would count what it holds twice (README.md,
 * "Folding a removed node").
 */
export function foldActor(state: CrdtState, from: string, into: string): CrdtState {
  checkNodeId(from, 'from');
  checkNodeId(into, 'into');
  if (from === into) throw new InvalidArgumentError('foldActor: from and into are the same node');
  const keep = windowDots(state.applied);
  const dups = duplicateDots(state.applied);
  const settled = dups.size === 0 ? state.store : transformCounters(state.store, (c) => dropCounterDots(c, dups));
  let found = false;
  forEachCounter(settled, (c) => {
    for (const e of c.entries) if (e.dot[0] === from && !keep.has(dotKey(e.dot))) found = true;
  });
  if (!found) return settled === state.store ? state : { ...state, store: settled };
  const seq = contextCounter(state.context, into) + 1;
  const dot: Dot = [into, seq];
  const store = transformCounters(settled, (c) => foldCounter(c, from, keep, dot), dot);
  return { ...state, context: joinContext(state.context, { [into]: seq }), store };
}

// ---- internals ---------------------------------------------------------------------------

function settleStore(store: Store, dups: ReadonlySet<string>, actor: string, keep: ReadonlySet<string>): Store {
  return transformCounters(store, (c) => compactCounter(dups.size === 0 ? c : dropCounterDots(c, dups), actor, keep));
}

function applyOp(store: Store, op: NestedOp, dot: Dot, rctx: VersionVector, path: readonly FieldKey[], removes: Omit<DeferredRemove, 'context'>[]): Store {
  switch (op.type) {
    case 'counter':
      return counterAdd(store as CounterStore, dot, op.increment);
    case 'set': {
      let s = store as SetStore;
      for (const m of op.remove ?? []) {
        s = setRemove(s, m, rctx);
        removes.push({ path, what: 'member', member: m });
      }
      return setAdd(s, op.add ?? [], dot);
    }
    case 'register':
      return registerAssign(store as RegisterStore, dot, op.ts, op.writer, op.assign);
    case 'flag':
      if (op.enable) return flagEnable(store as FlagStore, dot);
      removes.push({ path, what: 'flag' });
      return flagDisable(store as FlagStore, rctx);
    case 'map': {
      let m = store as MapStore;
      for (const k of op.removes ?? []) {
        const key: FieldKey = { name: k.name, type: k.type };
        m = removeField(m, key, rctx);
        removes.push({ path: [...path, key], what: 'field' });
      }
      for (const u of op.updates ?? []) {
        const key: FieldKey = { name: u.name, type: u.op.type };
        m = touchField(m, u.name, u.op.type, dot, (nested) => applyOp(nested, u.op, dot, rctx, [...path, key], removes));
      }
      return m;
    }
  }
}

/** Validates an operation; returns its (normalized) remove context, if it has one. */
function checkOp(op: CrdtOp): VersionVector | undefined {
  if (op === null || typeof op !== 'object') throw new InvalidArgumentError('an operation must be an object');
  if (!CRDT_TYPES.includes(op.type)) {
    throw new InvalidArgumentError(
      (op.type as string) === 'flag' ? 'a flag lives in a map field; a key cannot hold one' : `unknown data type ${JSON.stringify(op.type)}`,
    );
  }
  checkNested(op, 0, 'operation');
  const ctx = (op as { context?: unknown }).context;
  return ctx === undefined ? undefined : checkContext(ctx);
}

function checkNested(op: NestedOp, depth: number, where: string): void {
  if (op === null || typeof op !== 'object') throw new InvalidArgumentError(`${where}: an operation must be an object`);
  if (depth > 0 && (op as { context?: unknown }).context !== undefined) {
    throw new InvalidArgumentError(`${where}: a context belongs to the key's operation, not to a field's`);
  }
  switch (op.type) {
    case 'counter':
      if (!Number.isSafeInteger(op.increment)) throw new InvalidArgumentError(`${where}: increment must be a safe integer, got ${String(op.increment)}`);
      return;
    case 'set': {
      const add = checkStrings(op.add, `${where}.add`);
      const remove = checkStrings(op.remove, `${where}.remove`);
      if (add.length + remove.length === 0) throw new InvalidArgumentError(`${where}: a set operation adds or removes at least one member`);
      const seen = new Set<string>();
      for (const m of [...add, ...remove]) {
        if (seen.has(m)) throw new InvalidArgumentError(`${where}: member ${JSON.stringify(m)} appears twice`);
        seen.add(m);
      }
      return;
    }
    case 'register':
      if (typeof op.assign !== 'string' || !wellFormed(op.assign)) throw new InvalidArgumentError(`${where}: assign must be a well-formed string`);
      if (!Number.isSafeInteger(op.ts) || op.ts < 0) throw new InvalidArgumentError(`${where}: ts must be a non-negative safe integer (an HLC timestamp)`);
      if (typeof op.writer !== 'string' || !wellFormed(op.writer)) throw new InvalidArgumentError(`${where}: writer must be a well-formed string`);
      return;
    case 'flag':
      if (depth === 0) throw new InvalidArgumentError('a flag lives in a map field; a key cannot hold one');
      if (typeof op.enable !== 'boolean') throw new InvalidArgumentError(`${where}: enable must be a boolean`);
      return;
    case 'map': {
      if (depth >= MAX_MAP_DEPTH) throw new InvalidArgumentError(`${where}: maps nest at most ${MAX_MAP_DEPTH} deep`);
      const updates = op.updates ?? [];
      const removes = op.removes ?? [];
      if (!Array.isArray(updates) || !Array.isArray(removes)) throw new InvalidArgumentError(`${where}: updates and removes must be arrays`);
      if (updates.length + removes.length === 0) throw new InvalidArgumentError(`${where}: a map operation updates or removes at least one field`);
      const seen = new Set<string>();
      const once = (name: string, type: FieldType, w: string): void => {
        const k = fieldKey(name, type);
        if (seen.has(k)) throw new InvalidArgumentError(`${w}: field ${JSON.stringify(name)} (${type}) appears twice in one operation`);
        seen.add(k);
      };
      removes.forEach((k, i) => {
        const w = `${where}.removes[${i}]`;
        if (k === null || typeof k !== 'object') throw new InvalidArgumentError(`${w}: a field key is { name, type }`);
        checkFieldName(k.name, w);
        if (!FIELD_TYPES.includes(k.type)) throw new InvalidArgumentError(`${w}: unknown field type ${JSON.stringify(k.type)}`);
        once(k.name, k.type, w);
      });
      updates.forEach((u, i) => {
        const w = `${where}.updates[${i}]`;
        if (u === null || typeof u !== 'object' || u.op === null || typeof u.op !== 'object') throw new InvalidArgumentError(`${w}: a field update is { name, op }`);
        checkFieldName(u.name, w);
        if (!FIELD_TYPES.includes(u.op.type)) throw new InvalidArgumentError(`${w}: unknown field type ${JSON.stringify(u.op.type)}`);
        once(u.name, u.op.type, w);
        checkNested(u.op, depth + 1, `${w}.op`);
      });
      return;
    }
    default:
      throw new InvalidArgumentError(`${where}: unknown type ${JSON.stringify((op as { type?: unknown }).type)}`);
  }
}

/** Longest map field name, in UTF-8 bytes. */
export const MAX_FIELD_NAME_BYTES = 1024;

function checkFieldName(name: unknown, where: string): void {
  if (typeof name !== 'string' || name.length === 0 || !wellFormed(name) || Buffer.byteLength(name) > MAX_FIELD_NAME_BYTES) {
    throw new InvalidArgumentError(`${where}: a field name is a well-formed string of 1 to ${MAX_FIELD_NAME_BYTES} bytes`);
  }
}

function checkStrings(v: unknown, where: string): readonly string[] {
  if (v === undefined) return [];
  if (!Array.isArray(v)) throw new InvalidArgumentError(`${where} must be an array of strings`);
  for (const s of v) if (typeof s !== 'string' || !wellFormed(s)) throw new InvalidArgumentError(`${where} must hold well-formed strings`);
  return v as string[];
}

function checkContext(v: unknown): VersionVector {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new InvalidArgumentError('a context is { node: counter }');
  const entries: [string, number][] = [];
  for (const [n, c] of Object.entries(v)) {
    if (n.length === 0 || !wellFormed(n) || !Number.isSafeInteger(c) || (c as number) < 0) {
      throw new InvalidArgumentError(`context entry ${JSON.stringify(n)} is not a node with a non-negative safe-integer counter`);
    }
    if ((c as number) > 0) entries.push([n, c as number]);
  }
  entries.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  return Object.fromEntries(entries);
}

function checkTime(nowMs: number): void {
  if (!Number.isSafeInteger(nowMs) || nowMs < 0) throw new InvalidArgumentError(`nowMs must be a non-negative safe integer of ms, got ${String(nowMs)}`);
}

/** No lone surrogates: such strings do not survive UTF-8, so they would not round-trip. */
function wellFormed(s: string): boolean {
  return !/[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/.test(s);
}
