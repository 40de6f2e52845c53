// The shapes of the conflict-free data types: a key's state (causal context, applied-op
// window, deferred removes, and the store of its type), the stores, the operations and the
// value views. Types and constants only. Semantics: ./README.md; encoding: ./crdt-format.md.

import type { Dot, VersionVector } from './dots.js';

/** The data types a key can hold. */
export type CrdtType = 'counter' | 'set' | 'register' | 'map';
/** The types a map field can hold: the key types and the flag. */
export type FieldType = CrdtType | 'flag';

/** Type codes of the encoding (crdt-format.md). Append-only. */
export const TYPE_CODES: Readonly<Record<FieldType, number>> = Object.freeze({ counter: 0, set: 1, register: 2, map: 3, flag: 4 });
export const FIELD_TYPES: readonly FieldType[] = Object.freeze(['counter', 'set', 'register', 'map', 'flag']);
export const CRDT_TYPES: readonly CrdtType[] = Object.freeze(['counter', 'set', 'register', 'map']);

/**
 * Counter contributions. Each entry is one update event's increment, or — once the events of
 * one node have left the applied-op window — their sum, kept under the latest of their dots.
 * p and n are the sums of the positive and negative parts (both >= 0, not both 0).
 */
export interface CounterEntry {
  readonly dot: Dot;
  readonly p: number;
  readonly n: number;
}
export interface CounterStore {
  readonly kind: 'counter';
  /** Sorted by dot. */
  readonly entries: readonly CounterEntry[];
}

/** Add-wins set without tombstones: each member with the dots of the adds that are current. */
export interface SetStore {
  readonly kind: 'set';
  /** member -> its dots (sorted, non-empty). Iteration order is not canonical; encode sorts. */
  readonly members: ReadonlyMap<string, readonly Dot[]>;
}

/** A last-write-wins register: the assignments not yet superseded, each under its dot. */
export interface RegisterEntry {
  readonly dot: Dot;
  /** HLC timestamp of the assignment (sdk/hlc.ts). */
  readonly ts: number;
  /** Who stamped it; the tie-break. */
  readonly writer: string;
  readonly value: string;
}
export interface RegisterStore {
  readonly kind: 'register';
  /** Sorted by dot. The value is the greatest by (ts, writer, value). */
  readonly entries: readonly RegisterEntry[];
}

/** An enable-wins flag (maps only): enabled while it holds a dot. */
export interface FlagStore {
  readonly kind: 'flag';
  /** Sorted. */
  readonly dots: readonly Dot[];
}

/** A map field: its name and type, the dots of the updates that keep it present, and its store. */
export interface MapField {
  readonly name: string;
  readonly type: FieldType;
  /** Sorted, non-empty: a field whose presence dots are all removed is gone. */
  readonly presence: readonly Dot[];
  readonly store: Store;
}
export interface MapStore {
  readonly kind: 'map';
  /** fieldKey(name, type) -> field. Iteration order is not canonical; encode sorts. */
  readonly fields: ReadonlyMap<string, MapField>;
}

export type Store = CounterStore | SetStore | RegisterStore | FlagStore | MapStore;

/** One applied operation in the idempotence window. */
export interface AppliedOp {
  /** The client's operation id (1..64 bytes). */
  readonly id: Buffer;
  /** The event the operation made. */
  readonly dot: Dot;
  /** When it was applied (ms since the epoch, from the coordinator's nowMs), never below the horizon. */
  readonly atMs: number;
}

/** A field inside nested maps: its name and type. */
export interface FieldKey {
  readonly name: string;
  readonly type: FieldType;
}

/**
 * A remove made with a context the coordinator had not fully seen: it removes, wherever they
 * turn up, the dots the context covers, until the state's own context covers the remove's.
 */
export interface DeferredRemove {
  readonly context: VersionVector;
  /** From the key's map down to the target: the set ('member'), the flag ('flag') or the removed field itself ('field'). */
  readonly path: readonly FieldKey[];
  readonly what: 'member' | 'field' | 'flag';
  /** For 'member': the member. */
  readonly member?: string;
}

/** One key's data-type state on a replica. Immutable; every function returns a new one. */
export interface CrdtState {
  readonly type: CrdtType;
  /** Everything this state has seen: node -> the last of its events (a version vector). */
  readonly context: VersionVector;
  /** Applied operations with atMs < horizonMs are forgotten. */
  readonly horizonMs: number;
  /** The applied-op window, sorted by (atMs, dot, id). */
  readonly applied: readonly AppliedOp[];
  /** Sorted by their canonical key (see deferredKey). */
  readonly deferred: readonly DeferredRemove[];
  /** Of kind === type. */
  readonly store: Store;
}

// ---- operations -----------------------------------------------------------------------

/** Adds `increment` (a safe integer, may be negative). */
export interface CounterOp {
  readonly type: 'counter';
  readonly increment: number;
}
/** Adds and removes members (distinct; a member in both is refused). */
export interface SetOp {
  readonly type: 'set';
  readonly add?: readonly string[];
  readonly remove?: readonly string[];
  /** Key level only: the context a fetch returned; removes remove what it saw. Absent: what the coordinator has seen. */
  readonly context?: VersionVector;
}
/** Assigns `assign`, stamped by the writer's hybrid logical clock. */
export interface RegisterOp {
  readonly type: 'register';
  readonly assign: string;
  readonly ts: number;
  readonly writer: string;
}
/** Enables or disables a flag (map fields only). */
export interface FlagOp {
  readonly type: 'flag';
  readonly enable: boolean;
}
/** Updates and removes fields, all in one event. A field may appear once per operation. */
export interface MapOp {
  readonly type: 'map';
  readonly updates?: readonly FieldUpdate[];
  readonly removes?: readonly FieldKey[];
  /** Key level only: as for SetOp. */
  readonly context?: VersionVector;
}
export interface FieldUpdate {
  readonly name: string;
  /** The field's type is the operation's type. */
  readonly op: NestedOp;
}
export type NestedOp = CounterOp | SetOp | RegisterOp | FlagOp | MapOp;
/** An operation on a key. */
export type CrdtOp = CounterOp | SetOp | RegisterOp | MapOp;

/** The value views: counter -> number, set -> sorted members, register -> value (null when none), map -> object. */
export type CrdtValue = number | string[] | string | null | boolean | { [field: string]: CrdtValue };

/** The key used in MapStore.fields. */
export function fieldKey(name: string, type: FieldType): string {
  return `${type}/${name}`;
}

/** The property name of a field in a map's value view: `${name}_${type}` (Riak's convention). */
export function viewKey(name: string, type: FieldType): string {
  return `${name}_${type}`;
}
