// The engine's record: one version of one key, as stored in the memtable, the WAL and
// SSTable data blocks. The binary layout is documented in ./record-format.md; the writer
// (encodeRecord) and the readers (decodeRecord, recordKeyBounds) live here together.
// Records are immutable once built; share them freely.

import { CorruptionError } from './engine-errors.js';
import { getVarint, putVarint, varintSize } from './coding.js';

/** One version of one key. */
export interface EngineRecord {
  readonly key: Buffer;
  /** Engine sequence number; higher is newer. Assigned by the engine on write. */
  readonly seq: number;
  /** True for a deletion marker. */
  readonly tombstone: boolean;
  /**
   * For a put: when the value expires (ms since epoch); 0 = never.
   * For a tombstone: when the deletion was written (the tombstone grace period counts from it).
   */
  readonly expiresAtMs: number;
  /** Application flags (metadata). */
  readonly flags: number;
  /** Content type (metadata); '' when not set. */
  readonly contentType: string;
  /** The replication version, opaque to the engine (the SDK's version codec writes it). */
  readonly version: Buffer;
  /** The value; empty for a tombstone. */
  readonly value: Buffer;
}

const F_TOMBSTONE = 0x01;
const F_EXPIRES = 0x02;
const F_FLAGS = 0x04;
const F_CONTENT_TYPE = 0x08;
const F_VERSION = 0x10;
const KNOWN_BITS = 0x1f;

/** The tombstone bit of a record's flag byte (RecordSpan.bits). */
export const RECORD_TOMBSTONE = F_TOMBSTONE;

const EMPTY = Buffer.alloc(0);

/** Encoded size of `r` in bytes. */
export function recordSize(r: EngineRecord): number {
  let n = 1 + varintSize(r.seq) + varintSize(r.key.length) + r.key.length;
  if (r.expiresAtMs > 0) n += varintSize(r.expiresAtMs);
  if (r.flags !== 0) n += varintSize(r.flags);
  if (r.contentType.length > 0) n += 1 + Buffer.byteLength(r.contentType, 'latin1');
  if (r.version.length > 0) n += varintSize(r.version.length) + r.version.length;
  n += varintSize(r.value.length) + r.value.length;
  return n;
}

/** Writes `r` into `buf` at `pos`; returns the position after it. `buf` must have recordSize(r) bytes free. */
export function writeRecord(buf: Buffer, pos: number, r: EngineRecord): number {
  let bits = 0;
  if (r.tombstone) bits |= F_TOMBSTONE;
  if (r.expiresAtMs > 0) bits |= F_EXPIRES;
  if (r.flags !== 0) bits |= F_FLAGS;
  if (r.contentType.length > 0) bits |= F_CONTENT_TYPE;
  if (r.version.length > 0) bits |= F_VERSION;
  buf[pos++] = bits;
  pos = putVarint(buf, pos, r.seq);
  pos = putVarint(buf, pos, r.key.length);
  pos += r.key.copy(buf, pos);
  if (bits & F_EXPIRES) pos = putVarint(buf, pos, r.expiresAtMs);
  if (bits & F_FLAGS) pos = putVarint(buf, pos, r.flags);
  if (bits & F_CONTENT_TYPE) {
    const len = buf.write(r.contentType, pos + 1, 'latin1');
    buf[pos] = len;
    pos += 1 + len;
  }
  if (bits & F_VERSION) {
    pos = putVarint(buf, pos, r.version.length);
    pos += r.version.copy(buf, pos);
  }
  pos = putVarint(buf, pos, r.value.length);
  pos += r.value.copy(buf, pos);
  return pos;
}

/** Encodes `r` into a new buffer. */
export function encodeRecord(r: EngineRecord): Buffer {
  const buf = Buffer.allocUnsafe(recordSize(r));
  writeRecord(buf, 0, r);
  return buf;
}

/**
 * Decodes the record at `cursor.pos` in `buf` and advances the cursor. Slices of `buf`
 * are copied when `copy` is true (use it when `buf` is reused or very large).
 * Throws CorruptionError (with `file` and `baseOffset + pos`) on malformed bytes.
 */
export function decodeRecord(
  buf: Buffer,
  cursor: { pos: number },
  where: { file: string; baseOffset: number },
  copy = false,
): EngineRecord {
  const start = cursor.pos;
  try {
    const bits = buf[cursor.pos++]!;
    if ((bits & ~KNOWN_BITS) !== 0) throw new RangeError(`unknown record flag bits 0x${bits.toString(16)}`);
    const seq = getVarint(buf, cursor);
    const key = take(buf, cursor, getVarint(buf, cursor), copy);
    const expiresAtMs = bits & F_EXPIRES ? getVarint(buf, cursor) : 0;
    const flags = bits & F_FLAGS ? getVarint(buf, cursor) : 0;
    let contentType = '';
    if (bits & F_CONTENT_TYPE) {
      const len = buf[cursor.pos++]!;
      if (cursor.pos + len > buf.length) throw new RangeError('truncated content type');
      contentType = buf.toString('latin1', cursor.pos, cursor.pos + len);
      cursor.pos += len;
    }
    const version = bits & F_VERSION ? take(buf, cursor, getVarint(buf, cursor), copy) : EMPTY;
    const value = take(buf, cursor, getVarint(buf, cursor), copy);
    return { key, seq, tombstone: (bits & F_TOMBSTONE) !== 0, expiresAtMs, flags, contentType, version, value };
  } catch (err) {
    if (err instanceof CorruptionError) throw err;
    throw new CorruptionError(`malformed record: ${(err as Error).message}`, { file: where.file, offset: where.baseOffset + start });
  }
}

function take(buf: Buffer, cursor: { pos: number }, len: number, copy: boolean): Buffer {
  const end = cursor.pos + len;
  if (end > buf.length) throw new RangeError('record runs past the end of its block');
  let out: Buffer;
  if (copy) {
    out = Buffer.allocUnsafe(len);
    buf.copy(out, 0, cursor.pos, end);
  } else out = buf.subarray(cursor.pos, end);
  cursor.pos = end;
  return out;
}

/**
 * Locates the key of the record at `pos` without decoding the rest: returns the key's
 * start offset, and leaves its end in `out.end`. Used by binary search in data blocks.
 */
export function recordKeyStart(buf: Buffer, pos: number, out: { pos: number; end: number }): number {
  out.pos = pos + 1;
  getVarint(buf, out); // seq
  const len = getVarint(buf, out);
  const start = out.pos;
  out.end = start + len;
  return start;
}

/** Where a record sits in a buffer and its header fields, filled by scanRecord() without allocating. */
export class RecordSpan {
  /** First byte of the record. */
  start = 0;
  /** One past its last byte. */
  end = 0;
  keyStart = 0;
  keyEnd = 0;
  seq = 0;
  /** The flag byte (tombstone, has-expiry, ...). */
  bits = 0;
  /** The expires/deleted-at field; 0 when absent. */
  expiresAtMs = 0;

  get tombstone(): boolean {
    return (this.bits & F_TOMBSTONE) !== 0;
  }
}

/**
 * Parses the record at `pos` (which must end by `limit`) into `out` without decoding the
 * value or copying anything: enough to merge and copy records as raw bytes. Throws
 * RangeError on malformed bytes (callers turn it into a CorruptionError with a location).
 */
export function scanRecord(buf: Uint8Array, pos: number, limit: number, out: RecordSpan): void {
  out.start = pos;
  if (pos >= limit) throw new RangeError('record starts past the end of its block');
  const bits = buf[pos]!;
  if ((bits & ~KNOWN_BITS) !== 0) throw new RangeError(`unknown record flag bits 0x${bits.toString(16)}`);
  const c = spanCursor;
  c.pos = pos + 1;
  out.bits = bits;
  out.seq = getVarint(buf, c);
  const keyLen = getVarint(buf, c);
  out.keyStart = c.pos;
  out.keyEnd = c.pos + keyLen;
  c.pos = out.keyEnd;
  out.expiresAtMs = bits & F_EXPIRES ? getVarint(buf, c) : 0;
  if (bits & F_FLAGS) getVarint(buf, c);
  if (bits & F_CONTENT_TYPE) {
    if (c.pos >= limit) throw new RangeError('truncated content type');
    c.pos += 1 + buf[c.pos]!;
  }
  if (bits & F_VERSION) {
    const n = getVarint(buf, c);
    c.pos += n;
  }
  const valueLen = getVarint(buf, c);
  out.end = c.pos + valueLen;
  if (out.end > limit) throw new RangeError('record runs past the end of its block');
}

const spanCursor = { pos: 0 };

/** True when the record is a value that has not expired at `nowMs`. */
export function isLive(r: EngineRecord, nowMs: number): boolean {
  return !r.tombstone && (r.expiresAtMs === 0 || r.expiresAtMs > nowMs);
}
