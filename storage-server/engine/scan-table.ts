// A table opened only to be scanned from end to end (a compaction's input on the
// compaction thread): its footer and properties are verified, its bloom filter is never read
// (a merge does no point lookups) and its index is read as the cursor goes, a piece at a
// time, so that memory does not grow with the table. One cursor at a time; the caller closes it.

import { crc32, getVarint } from './coding.js';
import { CorruptionError } from './engine-errors.js';
import type { FileHandle } from './file-system.js';
import type { BlockPositions, ReadStats, ScanSource, TableProps } from './table.js';
import { readExact, readTableMeta, TableCursor } from './table.js';

/** Bytes of the index read at a time. */
export const INDEX_PIECE_BYTES = 64 * 1024;

/** The index block read in pieces: block positions from the one asked for on, CRC checked at the end. */
export class StreamedIndex implements BlockPositions {
  /** Entries [base, base + offsets.length) are in memory. */
  private base = 0;
  private offsets: number[] = [];
  private lengths: number[] = [];
  /** Index bytes read but not yet parsed (a part of an entry at the end of a piece). */
  private rest: Buffer = Buffer.alloc(0);
  /** Next byte of the index body to read (relative to its start). */
  private readPos: number;
  private crc: number;
  private done = false;

  private constructor(
    private readonly fh: FileHandle,
    /** File offset of the index block. */
    private readonly at: number,
    /** Its length without the CRC. */
    private readonly bodyLen: number,
    readonly count: number,
    first: Buffer,
    private readonly pieceBytes: number,
  ) {
    this.crc = crc32(first);
    this.readPos = first.length;
    this.rest = first.subarray(4);
  }

  /** Reads the index's entry count; entries come as load() asks for them. */
  static async open(fh: FileHandle, indexOffset: number, indexLenWithCrc: number, pieceBytes = INDEX_PIECE_BYTES): Promise<StreamedIndex> {
    const bodyLen = indexLenWithCrc - 4;
    if (bodyLen < 4) throw new CorruptionError('malformed table index: shorter than its count', { file: fh.path, offset: indexOffset });
    const first = await readExact(fh, indexOffset, Math.min(bodyLen, Math.max(4, pieceBytes)));
    if (first.length === bodyLen && crc32(first) !== (await readExact(fh, indexOffset + bodyLen, 4)).readUInt32LE(0)) {
      throw new CorruptionError('table index checksum mismatch', { file: fh.path, offset: indexOffset });
    }
    return new StreamedIndex(fh, indexOffset, bodyLen, first.readUInt32LE(0), first, pieceBytes);
  }

  /** Entries held in memory now (what the test measures). */
  get held(): number {
    return this.offsets.length;
  }

  load(b: number): Promise<void> | undefined {
    if (b < this.base + this.offsets.length) return undefined;
    return this.loadUntil(b);
  }

  release(below: number): void {
    const drop = Math.min(below - this.base, this.offsets.length);
    if (drop <= 0) return;
    this.offsets = this.offsets.slice(drop);
    this.lengths = this.lengths.slice(drop);
    this.base += drop;
  }

  offset(b: number): number {
    return this.offsets[b - this.base]!;
  }

  length(b: number): number {
    return this.lengths[b - this.base]!;
  }

  private corrupt(what: string): CorruptionError {
    return new CorruptionError(`malformed table index: ${what}`, { file: this.fh.path, offset: this.at });
  }

  private async loadUntil(b: number): Promise<void> {
    if (b >= this.count) throw new RangeError(`block ${b} past the table's ${this.count}`);
    for (;;) {
      this.parse();
      if (b < this.base + this.offsets.length) return;
      if (this.done) throw this.corrupt(`${this.base + this.offsets.length} entries where its count says ${this.count}`);
      const n = Math.min(this.pieceBytes, this.bodyLen - this.readPos);
      const piece = await readExact(this.fh, this.at + this.readPos, n);
      this.crc = crc32(piece, this.crc);
      this.readPos += n;
      this.rest = this.rest.length > 0 ? Buffer.concat([this.rest, piece]) : piece;
      if (this.readPos === this.bodyLen) {
        const stored = (await readExact(this.fh, this.at + this.bodyLen, 4)).readUInt32LE(0);
        if (stored !== this.crc) throw new CorruptionError('table index checksum mismatch', { file: this.fh.path, offset: this.at });
      }
    }
  }

  /** Parses the whole entries in `rest`; marks the index done once every byte is read and parsed. */
  private parse(): void {
    const buf = this.rest;
    const cursor = { pos: 0 };
    let used = 0;
    for (;;) {
      try {
        const kl = getVarint(buf, cursor);
        if (cursor.pos + kl > buf.length) break;
        cursor.pos += kl;
        const off = getVarint(buf, cursor);
        const len = getVarint(buf, cursor);
        this.offsets.push(off);
        this.lengths.push(len);
        used = cursor.pos;
      } catch (err) {
        if (err instanceof RangeError && err.message === 'truncated varint') break;
        throw this.corrupt((err as Error).message);
      }
      if (used === buf.length) break;
    }
    this.rest = used === buf.length ? Buffer.alloc(0) : Buffer.from(buf.subarray(used));
    if (this.readPos === this.bodyLen) {
      const parsed = this.base + this.offsets.length;
      if (this.rest.length > 0 || parsed > this.count) throw this.corrupt(`entries do not end where the block does (count ${this.count})`);
      this.done = true;
    }
  }
}

/** A table opened for one end-to-end scan: no filter, the index streamed (see above). */
export class ScanTable implements ScanSource {
  private constructor(
    private readonly fh: FileHandle,
    readonly props: TableProps,
    private readonly indexOffset: number,
    private readonly indexLen: number,
    private readonly stats: ReadStats,
  ) {}

  /** Opens `fh`, verifying its footer and properties. On error the handle is closed. */
  static async open(fh: FileHandle, stats: ReadStats): Promise<ScanTable> {
    try {
      const m = await readTableMeta(fh);
      return new ScanTable(fh, m.props, m.indexOffset, m.indexLen, stats);
    } catch (err) {
      await fh.close().catch(() => undefined);
      throw err;
    }
  }

  /** Opens the index stream and a cursor over it (await cursor.start() as with any table). */
  cursor(readaheadBytes = 256 * 1024, skip: ReadonlySet<number> = new Set()): TableCursor {
    return new TableCursor(this.fh, this.fh.path, new LazyIndex(this.fh, this.indexOffset, this.indexLen), this.stats, readaheadBytes, skip);
  }

  async close(): Promise<void> {
    await this.fh.close();
  }
}

/** Opens the StreamedIndex when the cursor starts (cursor() is synchronous, the open is not). */
class LazyIndex implements BlockPositions {
  private index: StreamedIndex | undefined;
  constructor(
    private readonly fh: FileHandle,
    private readonly at: number,
    private readonly len: number,
  ) {}
  async open(): Promise<void> {
    this.index ??= await StreamedIndex.open(this.fh, this.at, this.len);
  }
  private get opened(): StreamedIndex {
    if (!this.index) throw new Error('LazyIndex: used before open()');
    return this.index;
  }
  get count(): number {
    return this.opened.count;
  }
  load(b: number): Promise<void> | undefined {
    return this.opened.load(b);
  }
  release(below: number): void {
    this.opened.release(below);
  }
  offset(b: number): number {
    return this.opened.offset(b);
  }
  length(b: number): number {
    return this.opened.length(b);
  }
}
