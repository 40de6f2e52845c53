// The stored object — one key's versioned state on a replica — and its codec to and from
// the storage engine's record fields (the layout is in ./versioning.md), plus small helpers
// (live siblings, merge dispatch, context tokens). Pure functions; safe to call from anywhere.

import { createHash } from 'node:crypto';
import { Packr } from 'msgpackr';
import { CorruptionError, InvalidArgumentError } from '../errors.js';
import { hlcToWallMs } from '../hlc.js';
import { mergeCrdtObjects } from '../crdt/crdt-object.js';
import { compareDots, dvvSync } from './dvv.js';
import { lwwCompare, lwwMerge } from './lww.js';

/** One version of a key's value; an object in 'dvv' mode may hold several concurrent ones. */
export interface Sibling {
  /** The value; empty for a tombstone. */
  value: Buffer;
  /** True for a deletion. */
  tombstone: boolean;
  /** When the value expires (ms since the epoch); 0 = never. */
  expiresAtMs: number;
  /** Content type; '' when unset. */
  contentType: string;
  /** Application flags, a non-negative integer. */
  flags: number;
  /** HLC timestamp (see sdk/hlc.ts) of the write that made this sibling. */
  ts: number;
  /** Id of the writer (client id or node id); the last-write-wins tie-break. */
  writer: string;
  /** 'dvv' only: the event that made this sibling. */
  dot?: Dot;
}

/**
 * An event: the actor that coordinated a write (a storage node incarnation,
 * `<node id>#<epoch>`; a plain node id in data written before epochs), and its counter.
 */
export type Dot = readonly [actor: string, counter: number];

/** Actor -> counter. Entries belong to storage nodes' actors, never to clients. */
export type VersionVector = Readonly<Record<string, number>>;

/** One key's stored state on a replica. */
export interface StoredObject {
  /**
   * How concurrent writes resolve: 'lww' keeps the last, 'dvv' keeps concurrent ones as
   * siblings, 'crdt' holds a data type (counter, set, register, map: ../crdt/) whose
   * states merge.
   */
  mode: 'lww' | 'dvv' | 'crdt';
  /**
   * 'lww': exactly 1. 'dvv': >= 1, each with a dot, sorted by dot actor then counter.
   * 'crdt': exactly 1, whose value is the state's encoding (../crdt/crdt-format.md), not a
   * tombstone, with no expiry, content type, flags, timestamp (0) or writer ('').
   */
  siblings: Sibling[];
  /** 'dvv': the causal context, the join of everything this object has seen. 'lww', 'crdt': {} (a data type's context is in its state). */
  context: VersionVector;
}

/** The fields of a storage-engine record (the engine treats `version` as opaque bytes). */
export interface RecordFields {
  value: Buffer;
  tombstone: boolean;
  expiresAtMs: number;
  contentType: string;
  flags: number;
  version: Buffer;
}

/** The leading format number of the `version` field. */
export const VERSION_FORMAT = 1;
/** The leading format number of a context token. */
export const CONTEXT_TOKEN_FORMAT = 1;
/** Longest context token decodeContextToken accepts, in characters. */
export const MAX_CONTEXT_TOKEN_CHARS = 16 * 1024;

const MODE_LWW = 0;
const MODE_DVV = 1;
const MODE_CRDT = 2;
/** Bytes of the state digest a 'crdt' version holds (the first bytes of the state's SHA-256). */
export const CRDT_DIGEST_BYTES = 16;

const packr = new Packr({ useRecords: false, mapsAsObjects: true, copyBuffers: true });

/**
 * Encodes an object as the fields of one engine record. The record carries the first sibling
 * in codec order — a live (non-tombstone) one when there is one: the lwwCompare winner among
 * the live siblings — so an engine-level reader sees a value. `tombstone` is true only when
 * every sibling is one; `expiresAtMs` never hides a live sibling (0 if one never expires,
 * else the latest live expiry; for all-tombstones the deletion time, hlcToWallMs(max ts)).
 * `version` holds everything else (see versioning.md).
 *
 * Throws InvalidArgumentError for an object with no siblings or an 'lww' object with more than one.
 */
export function toRecordFields(obj: StoredObject): RecordFields {
  const sibs = obj.siblings;
  if (sibs.length === 0) throw new InvalidArgumentError('a stored object needs at least one sibling');
  if ((obj.mode === 'lww' || obj.mode === 'crdt') && sibs.length !== 1) {
    throw new InvalidArgumentError(`an '${obj.mode}' object holds exactly one sibling, got ${sibs.length}`);
  }
  if (obj.mode === 'crdt') return crdtRecordFields(sibs[0]!.value);
  if (obj.mode !== 'lww' && obj.mode !== 'dvv') throw new InvalidArgumentError(`unknown mode ${JSON.stringify(obj.mode)}`);

  let first = -1;
  let anyLive = false;
  let neverExpires = false;
  let maxExpiry = 0;
  let maxSiblingTs = 0;
  for (let i = 0; i < sibs.length; i++) {
    const s = sibs[i]!;
    if (s.ts > maxSiblingTs) maxSiblingTs = s.ts;
    if (s.tombstone) continue;
    anyLive = true;
    if (s.expiresAtMs === 0) neverExpires = true;
    else if (s.expiresAtMs > maxExpiry) maxExpiry = s.expiresAtMs;
    if (first < 0 || lwwCompare(s, sibs[first]!) > 0) first = i;
  }
  if (first < 0) first = 0;
  const head = sibs[first]!;

  const ctx: (string | number)[] = [];
  const nodes = Object.keys(obj.context).sort(compareStrings);
  for (const n of nodes) ctx.push(n, obj.context[n]!);
  const out: unknown[] = [
    VERSION_FORMAT,
    obj.mode === 'lww' ? MODE_LWW : MODE_DVV,
    ctx,
    head.ts,
    head.writer,
    head.tombstone,
    head.expiresAtMs,
    head.dot === undefined ? null : [head.dot[0], head.dot[1]],
  ];
  for (let i = 0; i < sibs.length; i++) {
    if (i === first) continue;
    const s = sibs[i]!;
    out.push([s.value, s.tombstone, s.expiresAtMs, s.contentType, s.flags, s.ts, s.writer, s.dot === undefined ? null : [s.dot[0], s.dot[1]]]);
  }
  return {
    value: head.value,
    tombstone: !anyLive,
    expiresAtMs: anyLive ? (neverExpires ? 0 : maxExpiry) : hlcToWallMs(maxSiblingTs),
    contentType: head.contentType,
    flags: head.flags,
    version: packr.pack(out),
  };
}

/**
 * Decodes the fields of an engine record back into the object {@link toRecordFields} encoded,
 * with the canonical sibling order restored. The record's own `tombstone` and `expiresAtMs`
 * are aggregates and are not read back (the version holds each sibling's own).
 * Throws CorruptionError when the version is not a valid format-1 encoding.
 */
export function fromRecordFields(f: RecordFields): StoredObject {
  let raw: unknown;
  try {
    raw = packr.unpack(f.version);
  } catch (err) {
    throw corrupt(`cannot decode: ${(err as Error).message}`);
  }
  if (!Array.isArray(raw) || (raw.length < 8 && raw[1] !== MODE_CRDT)) throw corrupt('not a version array');
  if (raw[0] !== VERSION_FORMAT) throw corrupt(`unknown version format ${String(raw[0])}`);
  const modeCode = raw[1];
  if (modeCode === MODE_CRDT) {
    if (raw.length !== 3 || !(raw[2] instanceof Uint8Array) || raw[2].length !== CRDT_DIGEST_BYTES) throw corrupt('bad data-type version');
    const sib: Sibling = { value: f.value, tombstone: false, expiresAtMs: 0, contentType: '', flags: 0, ts: 0, writer: '' };
    return { mode: 'crdt', siblings: [sib], context: {} };
  }
  if (modeCode !== MODE_LWW && modeCode !== MODE_DVV) throw corrupt(`unknown mode ${String(modeCode)}`);
  const mode = modeCode === MODE_LWW ? 'lww' : 'dvv';

  const ctxRaw = raw[2];
  if (!Array.isArray(ctxRaw) || ctxRaw.length % 2 !== 0) throw corrupt('bad context');
  const entries: [string, number][] = [];
  for (let i = 0; i < ctxRaw.length; i += 2) {
    const n = ctxRaw[i];
    const c = ctxRaw[i + 1];
    if (typeof n !== 'string' || !isCounter(c)) throw corrupt('bad context entry');
    entries.push([n, c]);
  }
  const context: VersionVector = Object.fromEntries(entries);

  const head: Sibling = {
    value: f.value,
    tombstone: expectBool(raw[5]),
    expiresAtMs: expectUint(raw[6]),
    contentType: f.contentType,
    flags: f.flags,
    ts: expectUint(raw[3]),
    writer: expectString(raw[4]),
  };
  const headDot = decodeDot(raw[7]);
  if (headDot !== undefined) head.dot = headDot;
  const siblings: Sibling[] = [head];
  for (let i = 8; i < raw.length; i++) {
    const r = raw[i];
    if (!Array.isArray(r) || r.length !== 8) throw corrupt('bad sibling');
    const value = r[0];
    if (!(value instanceof Uint8Array)) throw corrupt('bad sibling value');
    const s: Sibling = {
      value: Buffer.isBuffer(value) ? value : Buffer.from(value.buffer, value.byteOffset, value.byteLength),
      tombstone: expectBool(r[1]),
      expiresAtMs: expectUint(r[2]),
      contentType: expectString(r[3]),
      flags: expectUint(r[4]),
      ts: expectUint(r[5]),
      writer: expectString(r[6]),
    };
    const dot = decodeDot(r[7]);
    if (dot !== undefined) s.dot = dot;
    siblings.push(s);
  }
  if (mode === 'lww') {
    if (siblings.length !== 1) throw corrupt(`an 'lww' version holds ${siblings.length} siblings`);
  } else {
    for (const s of siblings) if (s.dot === undefined) throw corrupt("a 'dvv' sibling has no dot");
    siblings.sort((a, b) => compareDots(a.dot!, b.dot!));
  }
  return { mode, siblings, context };
}

/** The siblings that are values (not tombstones) and have not expired at `nowMs`. */
export function liveSiblings(obj: StoredObject, nowMs: number): Sibling[] {
  return obj.siblings.filter((s) => !s.tombstone && (s.expiresAtMs === 0 || s.expiresAtMs > nowMs));
}

/**
 * Merges an incoming object into the local one: lwwMerge for 'lww', dvvSync for 'dvv', the
 * data type's merge for 'crdt' (../crdt/crdt-object.ts); `b` when there is no local object.
 * A data type wins whole over a plain value ('lww' or 'dvv'): a key holds one data type,
 * and a plain write never lands on a replica that holds one (WRONG_TYPE), so a plain
 * version met here was written before the data type, or concurrently with its creation.
 * Returns `a` itself when nothing changed. Throws InvalidArgumentError when the modes are
 * 'lww' and 'dvv'.
 */
export function mergeObjects(a: StoredObject | undefined, b: StoredObject): StoredObject {
  if (a === undefined) return b;
  if (a.mode === 'crdt' || b.mode === 'crdt') {
    if (a.mode !== b.mode) return a.mode === 'crdt' ? a : b;
    return mergeCrdtObjects(a, b);
  }
  if (a.mode !== b.mode) throw new InvalidArgumentError(`cannot merge a '${a.mode}' object with a '${b.mode}' object`);
  return a.mode === 'lww' ? lwwMerge(a, b) : dvvSync(a, b);
}

/** The largest sibling timestamp (0 for no siblings); the client feeds it to its HLC. */
export function maxTs(obj: StoredObject): number {
  let m = 0;
  for (const s of obj.siblings) if (s.ts > m) m = s.ts;
  return m;
}

/**
 * An opaque, URL-safe token (base64url without padding) of a causal context, which an
 * application hands back with its next put. Deterministic: equal contexts give equal tokens.
 */
export function encodeContextToken(ctx: VersionVector): string {
  const flat: (string | number)[] = [];
  for (const n of Object.keys(ctx).sort(compareStrings)) {
    const c = ctx[n]!;
    if (!isCounter(c)) throw new InvalidArgumentError(`context entry ${JSON.stringify(n)} is not a non-negative safe integer`);
    if (c > 0) flat.push(n, c);
  }
  return packr.pack([CONTEXT_TOKEN_FORMAT, flat]).toString('base64url');
}

/** Decodes a token made by {@link encodeContextToken}. Throws InvalidArgumentError on anything else. */
export function decodeContextToken(s: string): VersionVector {
  if (typeof s !== 'string' || s.length === 0 || s.length > MAX_CONTEXT_TOKEN_CHARS || !/^[A-Za-z0-9_-]+$/.test(s)) {
    throw badToken();
  }
  const bytes = Buffer.from(s, 'base64url');
  if (bytes.toString('base64url') !== s) throw badToken();
  let raw: unknown;
  try {
    raw = packr.unpack(bytes);
  } catch {
    throw badToken();
  }
  if (!Array.isArray(raw) || raw.length !== 2 || raw[0] !== CONTEXT_TOKEN_FORMAT) throw badToken();
  const flat = raw[1];
  if (!Array.isArray(flat) || flat.length % 2 !== 0) throw badToken();
  const entries: [string, number][] = [];
  for (let i = 0; i < flat.length; i += 2) {
    const n = flat[i];
    const c = flat[i + 1];
    if (typeof n !== 'string' || n.length === 0 || !isCounter(c) || c === 0) throw badToken();
    if (i > 0 && !(entries[entries.length - 1]![0] < n)) throw badToken(); // sorted, no duplicates
    entries.push([n, c]);
  }
  return Object.fromEntries(entries);
}

/**
 * A short version string for people and HTTP (an ETag, say): `${ts}-${writer}` for 'lww';
 * the context token for 'dvv'; the state's digest (hex) for 'crdt'.
 */
export function versionString(obj: StoredObject): string {
  if (obj.mode === 'crdt') return crdtDigest(obj.siblings[0]!.value).toString('hex');
  if (obj.mode === 'lww') {
    const s = obj.siblings[0];
    if (s === undefined) throw new InvalidArgumentError("an 'lww' object holds exactly one sibling, got 0");
    return `${s.ts}-${s.writer}`;
  }
  return encodeContextToken(obj.context);
}

/** The digest of a data type's encoded state that its record's version holds. */
function crdtDigest(state: Buffer): Buffer {
  return createHash('sha256').update(state).digest().subarray(0, CRDT_DIGEST_BYTES);
}

/**
 * The record of a 'crdt' object: the encoded state is the value; the version is
 * [1, 2, digest], the digest standing for the state in the Merkle leaf hashes (which cover
 * the key and the version), so replicas whose states differ have different digests.
 */
function crdtRecordFields(state: Buffer): RecordFields {
  return { value: state, tombstone: false, expiresAtMs: 0, contentType: '', flags: 0, version: packr.pack([VERSION_FORMAT, MODE_CRDT, crdtDigest(state)]) };
}

function decodeDot(v: unknown): Dot | undefined {
  if (v === null) return undefined;
  if (!Array.isArray(v) || v.length !== 2 || typeof v[0] !== 'string' || !isCounter(v[1])) throw corrupt('bad dot');
  return [v[0], v[1]];
}

function expectUint(v: unknown): number {
  if (!isCounter(v)) throw corrupt('expected a non-negative integer');
  return v;
}

function expectBool(v: unknown): boolean {
  if (typeof v !== 'boolean') throw corrupt('expected a boolean');
  return v;
}

function expectString(v: unknown): string {
  if (typeof v !== 'string') throw corrupt('expected a string');
  return v;
}

function isCounter(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}

function corrupt(message: string): CorruptionError {
  return new CorruptionError(`stored object version: ${message}`, { file: '(record version field)' });
}

function badToken(): InvalidArgumentError {
  return new InvalidArgumentError('malformed context token');
}

function compareStrings(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
