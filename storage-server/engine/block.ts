// Data blocks of an SSTable: the builder and the reader of one format (table-format.md,
// "Data block"). A block holds records in key order, then a u32 offset per record, the
// record count and a CRC-32 of everything before it. A Block is immutable after parsing
// and safe to share between concurrent readers (it sits in the block cache).

import { CorruptionError } from './engine-errors.js';
import { compareBytes, crc32, varintSize } from './coding.js';
import type { EngineRecord } from './record.js';
import type { RecordSpan } from './record.js';
import { decodeRecord, recordKeyStart, recordSize, writeRecord } from './record.js';

/** Accumulates records into one block. Not reentrant. */
export class BlockBuilder {
  private buf: Buffer;
  private pos = 0;
  private offsets: number[] = [];
  private lastKeyStart = 0;
  private lastKeyEnd = 0;

  constructor(initialBytes = 8192) {
    this.buf = Buffer.allocUnsafe(initialBytes);
  }

  get count(): number {
    return this.offsets.length;
  }

  /** Bytes the block would take if finished now. */
  get estimatedSize(): number {
    return this.pos + this.offsets.length * 4 + 8;
  }

  private reserve(need: number): void {
    if (this.pos + need > this.buf.length) {
      const grown = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.pos + need + 1024));
      this.buf.copy(grown, 0, 0, this.pos);
      this.buf = grown;
    }
  }

  /** REQUIRES: keys are added in strictly increasing order. */
  add(r: EngineRecord): void {
    this.reserve(recordSize(r));
    this.offsets.push(this.pos);
    const end = writeRecord(this.buf, this.pos, r);
    this.lastKeyStart = this.pos + 1 + varintSize(r.seq) + varintSize(r.key.length);
    this.lastKeyEnd = this.lastKeyStart + r.key.length;
    this.pos = end;
  }

  /**
   * Adds the encoded record src[span.start, span.end) as it is (compaction copies records
   * without decoding them). REQUIRES: as for add().
   */
  addRaw(src: Buffer, span: RecordSpan): void {
    const len = span.end - span.start;
    this.reserve(len);
    this.offsets.push(this.pos);
    copyBytes(src, span.start, span.end, this.buf, this.pos);
    this.lastKeyStart = this.pos + (span.keyStart - span.start);
    this.lastKeyEnd = this.pos + (span.keyEnd - span.start);
    this.pos += len;
  }

  /** A copy of the key added last. REQUIRES: count > 0. */
  lastKey(): Buffer {
    return Buffer.from(this.buf.subarray(this.lastKeyStart, this.lastKeyEnd));
  }

  /**
   * Writes the finished block (records, offsets, count, CRC) into `out` at `at`, which must
   * have estimatedSize bytes free, and returns the position after it. The builder is reset.
   */
  finishInto(out: Buffer, at: number): number {
    const n = this.offsets.length;
    this.buf.copy(out, at, 0, this.pos);
    let p = at + this.pos;
    for (let i = 0; i < n; i++) {
      out.writeUInt32LE(this.offsets[i]!, p);
      p += 4;
    }
    out.writeUInt32LE(n, p);
    p += 4;
    out.writeUInt32LE(crc32(out.subarray(at, p)), p);
    this.pos = 0;
    this.offsets.length = 0;
    return p + 4;
  }

  /** The finished block bytes in a new buffer; the builder is reset for the next block. */
  finish(): Buffer {
    const out = Buffer.allocUnsafe(this.estimatedSize);
    this.finishInto(out, 0);
    return out;
  }
}

/** Copies src[start, end) to dst at `at`: a plain loop for short ranges, where it beats Buffer.copy's per-call cost. */
function copyBytes(src: Buffer, start: number, end: number, dst: Buffer, at: number): void {
  if (end - start > 64) {
    src.copy(dst, at, start, end);
    return;
  }
  for (let i = start; i < end; i++) dst[at++] = src[i]!;
}

const scratch = { pos: 0, end: 0 };

/** A parsed, checksum-verified data block. */
export class Block {
  readonly count: number;
  private readonly offsetsAt: number;

  /**
   * Verifies the checksum of `buf` (a whole block as stored) and parses its trailer.
   * Throws CorruptionError naming `file` and `fileOffset` on damage.
   */
  constructor(
    readonly buf: Buffer,
    readonly file: string,
    readonly fileOffset: number,
  ) {
    if (buf.length < 8) throw new CorruptionError('block shorter than its trailer', { file, offset: fileOffset });
    const crcAt = buf.length - 4;
    const stored = buf.readUInt32LE(crcAt);
    if (crc32(buf.subarray(0, crcAt)) !== stored) {
      throw new CorruptionError('data block checksum mismatch', { file, offset: fileOffset, length: buf.length });
    }
    this.count = buf.readUInt32LE(crcAt - 4);
    this.offsetsAt = crcAt - 4 - this.count * 4;
    if (this.offsetsAt < 0) throw new CorruptionError('block record count out of range', { file, offset: fileOffset });
  }

  /** Where the records end (the offsets array starts) within buf. */
  get recordsEnd(): number {
    return this.offsetsAt;
  }

  private offsetOf(i: number): number {
    return this.buf.readUInt32LE(this.offsetsAt + i * 4);
  }

  /** Compares the key of record i with `key` (like Buffer.compare(recordKey, key)). */
  compareKeyAt(i: number, key: Buffer): number {
    const start = recordKeyStart(this.buf, this.offsetOf(i), scratch);
    return compareBytes(this.buf, start, scratch.end, key, 0, key.length);
  }

  /** Index of the first record whose key is >= `key` (count when none). */
  seek(key: Buffer): number {
    let lo = 0;
    let hi = this.count;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.compareKeyAt(mid, key) < 0) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /** The record with exactly `key`, or undefined. */
  find(key: Buffer, copy: boolean): EngineRecord | undefined {
    const i = this.seek(key);
    if (i >= this.count || this.compareKeyAt(i, key) !== 0) return undefined;
    return this.recordAt(i, copy);
  }

  /**
   * Decodes record i. With `copy`, the record owns its bytes; without, it points into the
   * block (cheap, but keeps the whole block alive while the record lives).
   */
  recordAt(i: number, copy: boolean): EngineRecord {
    const cursor = { pos: this.offsetOf(i) };
    return decodeRecord(this.buf, cursor, this, copy);
  }

  /** For decodeRecord's error location. */
  get baseOffset(): number {
    return this.fileOffset;
  }
}
