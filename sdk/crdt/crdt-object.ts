// A data type's state as a replica's stored object (mode 'crdt'): one sibling whose value is
// the state's canonical encoding (crdt-format.md), so every path that moves stored objects —
// replica writes, read repair, hints, anti-entropy, streaming — carries data types unchanged,
// and merges them with crdtMerge instead of making siblings. Pure functions; safe anywhere.

import { CorruptionError, InvalidArgumentError } from '../errors.js';
import type { Sibling, StoredObject } from '../versioning/stored-object.js';
import type { CrdtState, CrdtType } from './crdt-state.js';
import { CRDT_TYPES, TYPE_CODES } from './crdt-state.js';
import { crdtMerge } from './crdt.js';
import { decodeCrdt, encodeCrdt } from './crdt-codec.js';

const EMPTY_CONTEXT = Object.freeze({});

/** The stored object of a state (`bytes`: its encoding, when the caller has it already). */
export function crdtToObject(state: CrdtState, bytes: Buffer = encodeCrdt(state)): StoredObject {
  const sib: Sibling = { value: bytes, tombstone: false, expiresAtMs: 0, contentType: '', flags: 0, ts: 0, writer: '' };
  return { mode: 'crdt', siblings: [sib], context: EMPTY_CONTEXT };
}

/** The encoded state a 'crdt' object carries. Throws InvalidArgumentError for another mode. */
export function crdtBytesOf(obj: StoredObject): Buffer {
  if (obj.mode !== 'crdt' || obj.siblings.length !== 1) throw new InvalidArgumentError(`expected a data-type object, got mode ${JSON.stringify(obj.mode)}`);
  return obj.siblings[0]!.value;
}

/** The state a 'crdt' object carries. Throws CorruptionError when its bytes are not a valid state. */
export function crdtStateOf(obj: StoredObject): CrdtState {
  return decodeCrdt(crdtBytesOf(obj));
}

/**
 * The type of an encoded state, read from its first bytes (a format-1 state is a msgpack
 * array of 8 whose first two elements are 1 and the type code); the full decoder decides
 * when the bytes do not look like that. Throws CorruptionError for bytes that are no state.
 */
export function crdtTypeOf(bytes: Buffer): CrdtType {
  if (bytes.length >= 3 && bytes[0] === 0x98 && bytes[1] === 0x01 && bytes[2]! < CRDT_TYPES.length) return CRDT_TYPES[bytes[2]!]!;
  return decodeCrdt(bytes).type;
}

/**
 * Merges two replicas' 'crdt' objects of one key. Equal bytes: `a` (no decoding). Two states
 * of one type: crdtMerge, returning `a` (or `b`) itself when the merge adds nothing to it.
 * Two types (the key was created concurrently as two types): the state of the greater type
 * code (counter 0 < set 1 < register 2 < map 3) wins whole, so that replicas converge — a
 * commutative, associative, idempotent choice; the operations that meet it report WRONG_TYPE.
 * Throws CorruptionError when either state does not decode.
 */
export function mergeCrdtObjects(a: StoredObject, b: StoredObject): StoredObject {
  if (a === b) return a;
  const ba = crdtBytesOf(a);
  const bb = crdtBytesOf(b);
  if (ba.equals(bb)) return a;
  const sa = decodeCrdt(ba);
  const sb = decodeCrdt(bb);
  if (sa.type !== sb.type) return TYPE_CODES[sb.type] > TYPE_CODES[sa.type] ? b : a;
  const m = crdtMerge(sa, sb);
  if (m === sa) return a;
  if (m === sb) return b;
  const bytes = encodeCrdt(m);
  // crdtMerge returns a new object for a join equal to an input only when it could not tell;
  // the canonical bytes can.
  if (bytes.equals(ba)) return a;
  if (bytes.equals(bb)) return b;
  return crdtToObject(m, bytes);
}

/** A CorruptionError of a data-type state received over the wire, as the INVALID_ARGUMENT it is there. */
export function asWireArgumentError(err: unknown): unknown {
  return err instanceof CorruptionError ? new InvalidArgumentError(`malformed data-type state: ${err.message}`) : err;
}
