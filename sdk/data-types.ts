// The SDK's data types: typed handles on a key — kv.counter(key), kv.set(key),
// kv.register(key), kv.map(key) — that build operations and read values through the
// client's data-type path (sdk/client.ts: dataTypeUpdate, dataTypeFetch), and the JSON view
// of a state that the SDK and the HTTP API share. Handles hold no state: make one per use or
// keep it; safe to use concurrently.

import crypto from 'node:crypto';
import { InvalidArgumentError } from './errors.js';
import type { CrdtOp, CrdtState, CrdtType, CrdtValue, FieldKey, FieldType, FieldUpdate, MapOp, NestedOp, SetOp } from './crdt/crdt-state.js';
import { FIELD_TYPES, viewKey } from './crdt/crdt-state.js';
import { crdtValue } from './crdt/crdt.js';
import { decodeCrdtContext, encodeCrdtContext } from './crdt/crdt-codec.js';
import { MAX_OP_ID_BYTES } from './crdt/op-window.js';
import type { CallOptions, WriteCallOptions } from './client.js';
import type { VersionVector } from './versioning/index.js';

/** A JSON value (what a register holds). */
export type JsonValue = string | number | boolean | null | JsonValue[] | { [k: string]: JsonValue };

/** The value of a data type as the SDK and the HTTP API show it. */
export type DataTypeValue = number | string[] | JsonValue | { [field: string]: DataTypeValue };

/** What a fetch returns: the value, and the context to hand back with removes. */
export interface Fetched<T> {
  value: T;
  /** Opaque token of what this fetch saw; a remove made with it removes exactly that. */
  context: string;
}

/** A fetch of any type (HTTP's GET /api/v1/dt/{key}). */
export interface DataTypeView extends Fetched<DataTypeValue> {
  type: CrdtType;
}

/** Options of a data-type update. */
export interface DataTypeUpdateOptions extends WriteCallOptions {
  /**
   * The operation's id (1..64 bytes; a string counts as its UTF-8 bytes). Default: 16
   * random bytes per call, kept for the call's own retries. Give one to retry a call whose
   * outcome is unknown (a timeout) without applying it twice: replicas remember ids for
   * the applied-op window (10 minutes, 256 ids per key; sdk/crdt/README.md).
   */
  opId?: string | Uint8Array;
}

/** Options of an update that removes (set members, map fields). */
export interface RemoveOptions extends DataTypeUpdateOptions {
  /**
   * The `context` of a fetch: the remove removes what that fetch saw, and an add it did not
   * see survives (add wins). Without one, it removes what the coordinating replica has seen.
   */
  context?: string;
}

/** What a handle needs from the client. */
export interface DataTypeClient {
  dataTypeFetch(key: string | Uint8Array, expected: CrdtType | undefined, opts?: CallOptions): Promise<{ state: CrdtState } | undefined>;
  dataTypeUpdate(key: string | Uint8Array, op: CrdtOp, opts?: DataTypeUpdateOptions): Promise<{ state: CrdtState }>;
  /** A hybrid-logical-clock stamp for a register assignment. */
  registerStamp(): { ts: number; writer: string };
}

/** The operation id bytes of `opts.opId`, or 16 fresh random bytes. */
export function opIdOf(opId: string | Uint8Array | undefined): Buffer {
  if (opId === undefined) return crypto.randomBytes(16);
  const b = typeof opId === 'string' ? Buffer.from(opId, 'utf8') : opId instanceof Uint8Array ? Buffer.from(opId.buffer, opId.byteOffset, opId.byteLength) : undefined;
  if (!b || b.length === 0 || b.length > MAX_OP_ID_BYTES) throw new InvalidArgumentError(`opId must be 1 to ${MAX_OP_ID_BYTES} bytes (a string or bytes)`);
  return b;
}

/** The decoded context of a token for a key of type `type` (WRONG_TYPE for a token of another type). */
export function contextOf(token: string | undefined, type: CrdtType): VersionVector | undefined {
  if (token === undefined) return undefined;
  if (typeof token !== 'string') throw new InvalidArgumentError('context must be the string a fetch returned');
  return decodeCrdtContext(token, type).context;
}

/** The JSON view of a state: its type, value (registers' JSON parsed) and context token. */
export function dataTypeView(state: CrdtState): DataTypeView {
  return { type: state.type, value: publicValue(state.type, crdtValue(state)), context: encodeCrdtContext(state.type, state.context) };
}

/** The view of a key that holds nothing yet: 0, [], null or {}, with an empty context. */
export function emptyView(type: CrdtType): DataTypeView {
  const value: DataTypeValue = type === 'counter' ? 0 : type === 'set' ? [] : type === 'register' ? null : {};
  return { type, value, context: encodeCrdtContext(type, {}) };
}

/** Registers hold JSON text (so that the SDK and HTTP agree on strings and numbers): parse it, in maps too. */
function publicValue(type: FieldType, v: CrdtValue): DataTypeValue {
  if (type === 'register') return v === null ? null : parseRegister(v as string);
  if (type === 'map') {
    const out: { [k: string]: DataTypeValue } = {};
    for (const [k, x] of Object.entries(v as Record<string, CrdtValue>)) {
      const t = k.slice(k.lastIndexOf('_') + 1) as FieldType;
      out[k] = publicValue(t, x);
    }
    return out;
  }
  return v as DataTypeValue;
}

function parseRegister(text: string): JsonValue {
  try {
    return JSON.parse(text) as JsonValue;
  } catch {
    return text; // written by another writer than the SDK or the HTTP API: shown as it is
  }
}

/** The JSON text a register stores for `value`. */
export function registerText(value: unknown): string {
  if (value === undefined || typeof value === 'function' || typeof value === 'symbol' || typeof value === 'bigint') {
    throw new InvalidArgumentError('a register holds a JSON value (string, number, boolean, null, array or object)');
  }
  let text: string | undefined;
  try {
    text = JSON.stringify(value);
  } catch (err) {
    throw new InvalidArgumentError(`the register value is not JSON-serializable: ${(err as Error).message}`);
  }
  if (text === undefined) throw new InvalidArgumentError('the register value is not JSON-serializable');
  return text;
}

/** Splits the trailing options object off a list of set members. */
function membersAndOptions<O>(args: (string | O)[]): { members: string[]; opts: O | undefined } {
  let opts: O | undefined;
  let list = args;
  const last = args[args.length - 1];
  if (last !== undefined && typeof last === 'object' && last !== null) {
    opts = last as O;
    list = args.slice(0, -1);
  }
  for (const m of list) if (typeof m !== 'string') throw new InvalidArgumentError('set members are strings');
  return { members: list as string[], opts };
}

function safeCount(n: unknown, what: string): number {
  if (typeof n !== 'number' || !Number.isSafeInteger(n)) throw new InvalidArgumentError(`${what} must be a safe integer, got ${String(n)}`);
  return n;
}

/** A counter (PN-counter): increments and decrements from anywhere add up. */
export class CounterHandle {
  constructor(
    private readonly kv: DataTypeClient,
    readonly key: string | Uint8Array,
  ) {}

  /** Adds `by` (default 1; negative subtracts); resolves with the value at the coordinating replica after it. */
  async increment(by = 1, opts: DataTypeUpdateOptions = {}): Promise<Fetched<number>> {
    const r = await this.kv.dataTypeUpdate(this.key, { type: 'counter', increment: safeCount(by, 'increment') }, opts);
    return fetched(r.state);
  }

  /** Subtracts `by` (default 1). */
  decrement(by = 1, opts: DataTypeUpdateOptions = {}): Promise<Fetched<number>> {
    return this.increment(-safeCount(by, 'decrement'), opts);
  }

  /** The value (0 for a counter never updated). */
  async value(opts: CallOptions = {}): Promise<number> {
    return (await this.fetch(opts)).value;
  }

  async fetch(opts: CallOptions = {}): Promise<Fetched<number>> {
    return fetchAs<number>(this.kv, this.key, 'counter', opts);
  }
}

/** An add-wins set of strings. */
export class SetHandle {
  constructor(
    private readonly kv: DataTypeClient,
    readonly key: string | Uint8Array,
  ) {}

  /** Adds members: `add('a', 'b')`, with options last: `add('a', { consistency: 'all' })`. */
  add(...args: (string | DataTypeUpdateOptions)[]): Promise<Fetched<string[]>> {
    const { members, opts } = membersAndOptions<DataTypeUpdateOptions>(args);
    return this.update({ add: members }, opts);
  }

  /** Removes members: those the `context` option's fetch saw, or without it those the coordinating replica has seen. */
  remove(...args: (string | RemoveOptions)[]): Promise<Fetched<string[]>> {
    const { members, opts } = membersAndOptions<RemoveOptions>(args);
    return this.update({ remove: members }, opts);
  }

  /** Adds and removes in one operation. */
  async update(change: { add?: string[]; remove?: string[] }, opts: RemoveOptions = {}): Promise<Fetched<string[]>> {
    const op: { -readonly [K in keyof SetOp]: SetOp[K] } = { type: 'set' };
    if (change.add?.length) op.add = change.add;
    if (change.remove?.length) op.remove = change.remove;
    const ctx = contextOf(opts.context, 'set');
    if (ctx !== undefined) op.context = ctx;
    const r = await this.kv.dataTypeUpdate(this.key, op, opts);
    return fetched(r.state);
  }

  /** The members, sorted (code-unit order). */
  async members(opts: CallOptions = {}): Promise<string[]> {
    return (await this.fetch(opts)).value;
  }

  async fetch(opts: CallOptions = {}): Promise<Fetched<string[]>> {
    return fetchAs<string[]>(this.kv, this.key, 'set', opts);
  }
}

/** A last-write-wins register holding a JSON value (stamped by this client's hybrid clock). */
export class RegisterHandle {
  constructor(
    private readonly kv: DataTypeClient,
    readonly key: string | Uint8Array,
  ) {}

  async set(value: JsonValue, opts: DataTypeUpdateOptions = {}): Promise<Fetched<JsonValue>> {
    const r = await this.kv.dataTypeUpdate(this.key, { type: 'register', assign: registerText(value), ...this.kv.registerStamp() }, opts);
    return fetched(r.state);
  }

  /** The value (null for a register never assigned). */
  async value(opts: CallOptions = {}): Promise<JsonValue> {
    return (await this.fetch(opts)).value;
  }

  async fetch(opts: CallOptions = {}): Promise<Fetched<JsonValue>> {
    return fetchAs<JsonValue>(this.kv, this.key, 'register', opts);
  }
}

/** A map of fields, each a counter, set, register, flag or map, named by (name, type). */
export class MapHandle {
  constructor(
    private readonly kv: DataTypeClient,
    readonly key: string | Uint8Array,
  ) {}

  /**
   * Updates fields in one operation: `update(m => { m.register('name').set('Ada');
   * m.counter('visits').increment(); m.remove('old', 'set') })`. Field removes remove what
   * the `context` option's fetch saw (without one: what the coordinating replica has seen).
   */
  async update(build: (m: MapUpdate) => void, opts: RemoveOptions = {}): Promise<Fetched<Record<string, DataTypeValue>>> {
    const m = new MapUpdate(() => this.kv.registerStamp());
    build(m);
    const op = m.toOp() as { -readonly [K in keyof MapOp]: MapOp[K] };
    const ctx = contextOf(opts.context, 'map');
    if (ctx !== undefined) op.context = ctx;
    const r = await this.kv.dataTypeUpdate(this.key, op, opts);
    return fetched(r.state);
  }

  /** The value: `{ name_type: value }` (nested maps as objects, flags as booleans). */
  async value(opts: CallOptions = {}): Promise<Record<string, DataTypeValue>> {
    return (await this.fetch(opts)).value;
  }

  async fetch(opts: CallOptions = {}): Promise<Fetched<Record<string, DataTypeValue>>> {
    return fetchAs<Record<string, DataTypeValue>>(this.kv, this.key, 'map', opts);
  }
}

/** The builder of one map operation. A field may be named once per operation (updated or removed). */
export class MapUpdate {
  private readonly updates = new Map<string, { name: string; op: () => NestedOp; handle: unknown }>();
  private readonly removes: FieldKey[] = [];

  constructor(private readonly stamp: () => { ts: number; writer: string }) {}

  private field<T>(name: string, type: FieldType, make: () => { handle: T; op: () => NestedOp }): T {
    if (typeof name !== 'string') throw new InvalidArgumentError('a field name is a string');
    const k = `${type}/${name}`;
    const cur = this.updates.get(k);
    if (cur) return cur.handle as T;
    const f = make();
    this.updates.set(k, { name, op: f.op, handle: f.handle });
    return f.handle;
  }

  counter(name: string): { increment(by?: number): void; decrement(by?: number): void } {
    return this.field(name, 'counter', () => {
      let sum = 0;
      const handle = {
        increment: (by = 1) => void (sum += safeCount(by, 'increment')),
        decrement: (by = 1) => void (sum -= safeCount(by, 'decrement')),
      };
      return { handle, op: () => ({ type: 'counter', increment: sum }) };
    });
  }

  set(name: string): { add(...members: string[]): void; remove(...members: string[]): void } {
    return this.field(name, 'set', () => {
      const add: string[] = [];
      const remove: string[] = [];
      const handle = {
        add: (...m: string[]) => void add.push(...m),
        remove: (...m: string[]) => void remove.push(...m),
      };
      return {
        handle,
        op: () => {
          const op: { -readonly [K in keyof SetOp]: SetOp[K] } = { type: 'set' };
          if (add.length) op.add = add;
          if (remove.length) op.remove = remove;
          return op;
        },
      };
    });
  }

  register(name: string): { set(value: JsonValue): void } {
    return this.field(name, 'register', () => {
      let text: string | undefined;
      const handle = { set: (v: JsonValue) => void (text = registerText(v)) };
      return {
        handle,
        op: () => {
          if (text === undefined) throw new InvalidArgumentError(`register ${JSON.stringify(name)} named without a value`);
          return { type: 'register', assign: text, ...this.stamp() };
        },
      };
    });
  }

  flag(name: string): { enable(): void; disable(): void } {
    return this.field(name, 'flag', () => {
      let enable: boolean | undefined;
      const handle = { enable: () => void (enable = true), disable: () => void (enable = false) };
      return {
        handle,
        op: () => {
          if (enable === undefined) throw new InvalidArgumentError(`flag ${JSON.stringify(name)} named without enable() or disable()`);
          return { type: 'flag', enable };
        },
      };
    });
  }

  /** A nested map field. */
  map(name: string): MapUpdate {
    return this.field(name, 'map', () => {
      const inner = new MapUpdate(this.stamp);
      return { handle: inner, op: () => inner.toOp() };
    });
  }

  /** Removes field (name, type). */
  remove(name: string, type: FieldType): void {
    if (!FIELD_TYPES.includes(type)) throw new InvalidArgumentError(`unknown field type ${JSON.stringify(type)}`);
    this.removes.push({ name, type });
  }

  /** The operation built so far. */
  toOp(): MapOp {
    const updates: FieldUpdate[] = [...this.updates.values()].map((u) => ({ name: u.name, op: u.op() }));
    const op: { -readonly [K in keyof MapOp]: MapOp[K] } = { type: 'map' };
    if (updates.length) op.updates = updates;
    if (this.removes.length) op.removes = [...this.removes];
    return op;
  }
}

/** The field name in a map's JSON view (`${name}_${type}`). */
export { viewKey };

function fetched<T>(state: CrdtState): Fetched<T> {
  const v = dataTypeView(state);
  return { value: v.value as T, context: v.context };
}

async function fetchAs<T>(kv: DataTypeClient, key: string | Uint8Array, type: CrdtType, opts: CallOptions): Promise<Fetched<T>> {
  const r = await kv.dataTypeFetch(key, type, opts);
  const v = r ? dataTypeView(r.state) : emptyView(type);
  return { value: v.value as T, context: v.context };
}
