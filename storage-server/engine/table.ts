// SSTables: the builder (writes one sorted, immutable table file) and the reader (point
// lookups through the bloom filter, sparse index and block cache; sequential scans) of
// the format in ./table-format.md. A TableReader is shared by concurrent gets, scans and
// compactions; it is reference-counted so that a table replaced by compaction is closed
// and deleted only after the last reader lets go. A data block that fails its checksum is
// quarantined in its reader: gets that need it fail with CORRUPTION (naming file and
// offset), scans may pass over it, and once its keys are repaired it reads as empty.

import { LRUCache } from 'lru-cache';
import { CorruptionError } from './engine-errors.js';
import { Block, BlockBuilder } from './block.js';
import { bloomHash, bloomHashRange, bloomMayContain, buildBloomFilter } from './bloom-filter.js';
import { compareBytes, crc32, getUint64, getVarint, putUint64, putVarint, varintSize } from './coding.js';
import type { BlockReadGovernor } from './block-read-governor.js';
import type { FileHandle } from './file-system.js';
import type { EngineRecord } from './record.js';
import { decodeRecord, RECORD_TOMBSTONE, RecordSpan, scanRecord } from './record.js';

export const TABLE_MAGIC = Buffer.from('RKVTABLE', 'latin1');
export const TABLE_FORMAT_VERSION = 1;
export const FOOTER_BYTES = 52;
const EMPTY = Buffer.alloc(0);

/** Facts about a table, stored in its properties block. */
export interface TableProps {
  format: number;
  entries: number;
  tombstones: number;
  /** Puts that carry an expiry. */
  expiring: number;
  /** Smallest and largest keys, base64. */
  smallestKey: string;
  largestKey: string;
  minSeq: number;
  maxSeq: number;
  dataBytes: number;
  blocks: number;
  createdAtMs: number;
}

export interface TableBuilderOptions {
  blockSizeBytes: number;
  bloomBitsPerKey: number;
  nowMs: number;
  /**
   * At most how many records will be added (a compaction: its inputs' entries), when known:
   * the filter's key hashes are allocated for that many at once instead of doubling from 1,024
   * (a doubling holds the old and the new array together). More records still fit.
   */
  expectedEntries?: number;
}

/** Finished blocks are written to the file once this many bytes have gathered. */
const DRAIN_BYTES = 256 * 1024;

/**
 * Writes a table to `fh` from records added in strictly increasing key order.
 * Usage: add() or addRaw() records; whenever `needsDrain` is true, await drain(); finally
 * await finish().
 */
export class TableBuilder {
  private readonly block = new BlockBuilder();
  /** Finished data blocks not yet written; out[0] is at file offset writtenBytes. Reused after each drain. */
  private out = Buffer.allocUnsafe(DRAIN_BYTES + 16 * 1024);
  private outPos = 0;
  private writtenBytes = 0;
  // The index block, encoded as blocks finish (count written at finish): a few bytes per
  // data block, where a Buffer per block key cost ~100-200 bytes of heap — in a compaction
  // writing one large table, memory that grew with the table (~3% of its size).
  private index = Buffer.allocUnsafe(4096);
  private indexPos = 4;
  private indexCount = 0;
  private lastKey: Buffer | undefined;
  private hashes = new Uint32Array(1024);
  private firstKey: Buffer | undefined;
  private entries = 0;
  private tombstones = 0;
  private expiring = 0;
  private minSeq = Number.MAX_SAFE_INTEGER;
  private maxSeq = 0;

  constructor(
    private readonly fh: FileHandle,
    private readonly opts: TableBuilderOptions,
    /** Called with each chunk size before it is written (compaction's rate limiter). */
    private readonly throttle?: (bytes: number) => Promise<void>,
  ) {
    if (opts.expectedEntries !== undefined && opts.expectedEntries > 0) this.hashes = new Uint32Array(opts.expectedEntries);
  }

  get count(): number {
    return this.entries;
  }

  /** Bytes written so far plus bytes buffered. */
  get bytes(): number {
    return this.writtenBytes + this.outPos + this.block.estimatedSize;
  }

  get needsDrain(): boolean {
    return this.outPos >= DRAIN_BYTES;
  }

  /** REQUIRES: r.key > every key added before. */
  add(r: EngineRecord): void {
    if (this.block.count > 0 && this.block.estimatedSize >= this.opts.blockSizeBytes) this.finishBlock();
    this.block.add(r);
    this.noteKey(bloomHash(r.key), r.seq);
    if (r.tombstone) this.tombstones++;
    else if (r.expiresAtMs > 0) this.expiring++;
    if (!this.firstKey) this.firstKey = Buffer.from(r.key);
  }

  /**
   * Adds the encoded record src[span.start, span.end) byte for byte (no decode, no
   * re-encode). REQUIRES: as for add(); `span` was filled by scanRecord over `src`.
   */
  addRaw(src: Buffer, span: RecordSpan): void {
    if (this.block.count > 0 && this.block.estimatedSize >= this.opts.blockSizeBytes) this.finishBlock();
    this.block.addRaw(src, span);
    this.noteKey(bloomHashRange(src, span.keyStart, span.keyEnd), span.seq);
    if (span.bits & RECORD_TOMBSTONE) this.tombstones++;
    else if (span.expiresAtMs > 0) this.expiring++;
    if (!this.firstKey) this.firstKey = Buffer.from(src.subarray(span.keyStart, span.keyEnd));
  }

  private noteKey(hash: number, seq: number): void {
    if (this.entries === this.hashes.length) {
      const grown = new Uint32Array(this.hashes.length * 2);
      grown.set(this.hashes);
      this.hashes = grown;
    }
    this.hashes[this.entries++] = hash;
    if (seq < this.minSeq) this.minSeq = seq;
    if (seq > this.maxSeq) this.maxSeq = seq;
  }

  private finishBlock(): void {
    const size = this.block.estimatedSize;
    if (this.outPos + size > this.out.length) {
      const grown = Buffer.allocUnsafe(Math.max(this.out.length * 2, this.outPos + size));
      this.out.copy(grown, 0, 0, this.outPos);
      this.out = grown;
    }
    const key = this.block.lastKey();
    const need = varintSize(key.length) + key.length + varintSize(this.writtenBytes + this.outPos) + varintSize(size);
    if (this.indexPos + need > this.index.length) {
      const grown = Buffer.allocUnsafe(Math.max(this.index.length * 2, this.indexPos + need));
      this.index.copy(grown, 0, 0, this.indexPos);
      this.index = grown;
    }
    let p = putVarint(this.index, this.indexPos, key.length);
    p += key.copy(this.index, p);
    p = putVarint(this.index, p, this.writtenBytes + this.outPos);
    this.indexPos = putVarint(this.index, p, size);
    this.indexCount++;
    this.lastKey = key;
    this.outPos = this.block.finishInto(this.out, this.outPos);
  }

  /** Writes finished blocks to the file. */
  async drain(): Promise<void> {
    if (this.outPos === 0) return;
    const n = this.outPos;
    if (this.throttle) await this.throttle(n);
    await this.fh.write(this.out.subarray(0, n), this.writtenBytes);
    this.writtenBytes += n;
    this.outPos = 0;
  }

  /**
   * Writes the filter, properties, index and footer, syncs the file and returns the table's
   * properties and size. REQUIRES: at least one record was added.
   */
  async finish(): Promise<{ props: TableProps; sizeBytes: number }> {
    if (this.entries === 0) throw new Error('TableBuilder.finish: no records');
    if (this.block.count > 0) this.finishBlock();
    await this.drain();
    const dataBytes = this.writtenBytes;
    // The pieces are written one after the other, each block's CRC after it: copying the
    // filter and index (~1.2% of the table) with their CRCs and then into one tail buffer
    // held them three times over at the end of a large compaction.
    const meta: Buffer[] = [];
    let metaBytes = 0;
    const enqueue = (buf: Buffer): number => {
      const at = dataBytes + metaBytes;
      meta.push(buf);
      metaBytes += buf.length;
      return at;
    };
    const enqueueWithCrc = (buf: Buffer): number => {
      const at = enqueue(buf);
      const crc = Buffer.allocUnsafe(4);
      crc.writeUInt32LE(crc32(buf), 0);
      enqueue(crc);
      return at;
    };

    const filter = buildBloomFilter(this.hashes, this.entries, this.opts.bloomBitsPerKey);
    this.hashes = new Uint32Array(0);
    const filterOffset = enqueueWithCrc(filter);

    const props: TableProps = {
      format: TABLE_FORMAT_VERSION,
      entries: this.entries,
      tombstones: this.tombstones,
      expiring: this.expiring,
      smallestKey: this.firstKey!.toString('base64'),
      largestKey: this.lastKey!.toString('base64'),
      minSeq: this.minSeq,
      maxSeq: this.maxSeq,
      dataBytes,
      blocks: this.indexCount,
      createdAtMs: this.opts.nowMs,
    };
    const propsOffset = enqueueWithCrc(Buffer.from(JSON.stringify(props), 'utf8'));

    this.index.writeUInt32LE(this.indexCount, 0);
    const index = this.index.subarray(0, this.indexPos);
    const indexOffset = enqueueWithCrc(index);

    const footer = Buffer.alloc(FOOTER_BYTES);
    let f = 0;
    f = putUint64(footer, f, filterOffset);
    f = footer.writeUInt32LE(filter.length + 4, f);
    f = putUint64(footer, f, propsOffset);
    f = footer.writeUInt32LE(indexOffset - propsOffset, f);
    f = putUint64(footer, f, indexOffset);
    f = footer.writeUInt32LE(index.length + 4, f);
    f = footer.writeUInt32LE(TABLE_FORMAT_VERSION, f);
    f = footer.writeUInt32LE(crc32(footer.subarray(0, f)), f);
    TABLE_MAGIC.copy(footer, f);
    enqueue(footer);

    if (this.throttle) await this.throttle(metaBytes);
    for (const buf of meta) {
      await this.fh.write(buf, this.writtenBytes);
      this.writtenBytes += buf.length;
    }
    await this.fh.sync();
    return { props, sizeBytes: this.writtenBytes };
  }
}

/** Counters shared by every table of an engine. */
export interface ReadStats {
  /** Data blocks read from disk by point lookups. */
  blockReads: number;
  /** Data blocks read from disk by scans and compactions. */
  scanBlockReads: number;
  blockCacheHits: number;
  bloomNegatives: number;
  bloomPositives: number;
}

/** Buffers up to this size are recycled by the block cache; larger blocks are left to the GC. */
const RECYCLE_MAX_BYTES = 64 * 1024;
/** Recycled buffers come in sizes rounded up to a multiple of this. */
const RECYCLE_STEP = 256;

/**
 * A byte-bounded LRU of parsed data blocks, shared by every table of one engine. The
 * buffers of evicted blocks are kept on a free list and reused by the next block reads
 * (a get copies what it returns, so no record points into a cached block; nothing else
 * holds a block past the synchronous code that looked it up). Single-threaded.
 */
export class BlockCache {
  private readonly lru: LRUCache<number, Block>;
  /** Free buffers by capacity (a multiple of RECYCLE_STEP). */
  private readonly free = new Map<number, ArrayBuffer[]>();
  private freeBytes = 0;
  private readonly maxFreeBytes: number;

  constructor(maxBytes: number) {
    this.maxFreeBytes = Math.min(1024 * 1024, Math.floor(maxBytes / 8));
    this.lru = new LRUCache<number, Block>({
      maxSize: Math.max(1, maxBytes),
      sizeCalculation: (b) => b.buf.buffer.byteLength + 64,
      dispose: (b) => this.recycle(b.buf),
    });
  }

  get(key: number): Block | undefined {
    return this.lru.get(key);
  }

  /** Caches `block`. Its buffer must not be used by anyone else afterwards (it may be recycled). */
  set(key: number, block: Block): void {
    this.lru.set(key, block);
  }

  /** Entries cached. */
  get size(): number {
    return this.lru.size;
  }

  /** Bytes cached (buffer capacity + 64 per entry). */
  get calculatedSize(): number {
    return this.lru.calculatedSize;
  }

  /** A buffer of `length` bytes for a block read (contents undefined). */
  allocate(length: number): Buffer {
    if (length > RECYCLE_MAX_BYTES) return Buffer.allocUnsafe(length);
    const cap = Math.ceil(length / RECYCLE_STEP) * RECYCLE_STEP;
    const list = this.free.get(cap);
    const ab = list?.pop();
    if (ab) {
      this.freeBytes -= cap;
      return Buffer.from(ab, 0, length);
    }
    return Buffer.from(new ArrayBuffer(cap), 0, length);
  }

  private recycle(buf: Buffer): void {
    const ab = buf.buffer as ArrayBuffer;
    const cap = ab.byteLength;
    if (buf.byteOffset !== 0 || cap > RECYCLE_MAX_BYTES || cap % RECYCLE_STEP !== 0 || this.freeBytes + cap > this.maxFreeBytes) return;
    let list = this.free.get(cap);
    if (!list) this.free.set(cap, (list = []));
    list.push(ab);
    this.freeBytes += cap;
  }
}

/** A block cache bounded to `maxBytes`. */
export function createBlockCache(maxBytes: number): BlockCache {
  return new BlockCache(maxBytes);
}

/**
 * A data block that failed its checksum (or could not be parsed), kept out of reads. The
 * block's own keys are unreadable; the range it can hold is known from the index: after
 * the previous block's last key, up to its own last key.
 */
export interface BadBlock {
  /** The block's index in its table. */
  index: number;
  offset: number;
  length: number;
  /** Smallest key the block can hold (inclusive): the previous block's last key + 0x00, or the table's smallest. */
  first: Buffer;
  /** Its last key (inclusive), from the index. */
  last: Buffer;
  reason: string;
  detectedAtMs: number;
  /**
   * Set once the keys of its range were repaired from other replicas (Engine.markRepaired):
   * gets, scans and compactions then pass over the block as if it were empty.
   */
  repaired: boolean;
}

/** TableReader.getNow: the block must be read from disk asynchronously. */
export const NEEDS_READ: unique symbol = Symbol('needs-read');

const NO_BLOCKS: ReadonlySet<number> = new Set();
const NO_BAD_BLOCKS: readonly BadBlock[] = [];

// Block cache keys: file number and block index packed into one safe integer.
const BLOCK_INDEX_SPAN = 2 ** 26;

/** Where a table's meta blocks are (from its verified footer), and its verified properties. */
export interface TableMeta {
  size: number;
  filterOffset: number;
  /** Length with the CRC. */
  filterLen: number;
  indexOffset: number;
  /** Length with the CRC. */
  indexLen: number;
  props: TableProps;
}

/** Reads and verifies a table's footer and properties block (not its filter or index). */
export async function readTableMeta(fh: FileHandle): Promise<TableMeta> {
  const file = fh.path;
  const size = await fh.size();
  if (size < FOOTER_BYTES) throw new CorruptionError('table shorter than its footer', { file, offset: 0, size });
  const footer = await readExact(fh, size - FOOTER_BYTES, FOOTER_BYTES);
  const where = { file, offset: size - FOOTER_BYTES };
  if (!footer.subarray(44, 52).equals(TABLE_MAGIC)) throw new CorruptionError('bad table magic', where);
  if (crc32(footer.subarray(0, 40)) !== footer.readUInt32LE(40)) throw new CorruptionError('table footer checksum mismatch', where);
  const version = footer.readUInt32LE(36);
  if (version !== TABLE_FORMAT_VERSION) throw new CorruptionError(`unsupported table format version ${version}`, where);
  const filterOffset = getUint64(footer, 0);
  const filterLen = footer.readUInt32LE(8);
  const propsOffset = getUint64(footer, 12);
  const propsLen = footer.readUInt32LE(20);
  const indexOffset = getUint64(footer, 24);
  const indexLen = footer.readUInt32LE(32);
  const metaEnd = size - FOOTER_BYTES;
  for (const [o, l] of [[filterOffset, filterLen], [propsOffset, propsLen], [indexOffset, indexLen]] as const) {
    if (l < 4 || o + l > metaEnd) throw new CorruptionError('table footer points outside the file', where);
  }
  const propsBuf = checkCrc(await readExact(fh, propsOffset, propsLen), file, propsOffset, 'properties');
  let props: TableProps;
  try {
    props = JSON.parse(propsBuf.toString('utf8')) as TableProps;
  } catch {
    throw new CorruptionError('table properties are not valid JSON', { file, offset: propsOffset });
  }
  return { size, filterOffset, filterLen, indexOffset, indexLen, props };
}

/**
 * Where each data block of a table is, for a cursor walking them in order. load(b) makes
 * entry b available (a promise only when it has to read); entries below the one given to
 * release() may be forgotten.
 */
export interface BlockPositions {
  /** Called once, when the cursor starts, before anything else. */
  open?(): Promise<void>;
  readonly count: number;
  load(b: number): Promise<void> | undefined;
  release(below: number): void;
  offset(b: number): number;
  length(b: number): number;
}

/** The positions of a table whose whole index is in memory. */
class IndexPositions implements BlockPositions {
  constructor(
    private readonly offsets: readonly number[],
    private readonly lengths: readonly number[],
  ) {}
  get count(): number {
    return this.offsets.length;
  }
  load(): undefined {
    return undefined;
  }
  release(): void {}
  offset(b: number): number {
    return this.offsets[b]!;
  }
  length(b: number): number {
    return this.lengths[b]!;
  }
}

/** What a compaction merges: anything that gives a raw cursor over its records. */
export interface ScanSource {
  cursor(readaheadBytes?: number, skip?: ReadonlySet<number>): TableCursor;
}

/** An open table. */
export class TableReader implements ScanSource {
  /** Largest key in each block, as latin1 strings (compare like bytes). */
  /** Largest key in each block: bytes [keyStarts[i], keyEnds[i]) of the index block. */
  private indexBuf: Buffer;
  private keyStarts: Int32Array;
  private keyEnds: Int32Array;
  private readonly blocks: number;
  private blockOffsets: number[];
  private blockLengths: number[];
  readonly smallest: Buffer;
  readonly largest: Buffer;
  private refs = 1;
  private onRelease: (() => void) | undefined;
  /** Quarantined data blocks, by index. */
  private readonly bad = new Map<number, BadBlock>();
  /** Called once for each block quarantined (the engine logs it and tells its listeners). */
  onBadBlock: ((t: TableReader, b: BadBlock) => void) | undefined;

  private constructor(
    readonly fileNumber: number,
    readonly file: string,
    private readonly fh: FileHandle,
    readonly sizeBytes: number,
    readonly props: TableProps,
    private filter: Buffer,
    index: ParsedIndex,
    private readonly cache: BlockCache,
    private readonly stats: ReadStats,
  ) {
    this.indexBuf = index.buf;
    this.keyStarts = index.keyStarts;
    this.keyEnds = index.keyEnds;
    this.blocks = index.offsets.length;
    this.blockOffsets = index.offsets;
    this.blockLengths = index.lengths;
    this.smallest = Buffer.from(props.smallestKey, 'base64');
    this.largest = Buffer.from(props.largestKey, 'base64');
  }

  /** Opens `file`, verifying its footer, filter, properties and index. */
  static async open(fh: FileHandle, fileNumber: number, cache: BlockCache, stats: ReadStats): Promise<TableReader> {
    const file = fh.path;
    try {
      const m = await readTableMeta(fh);
      const filter = checkCrc(await readExact(fh, m.filterOffset, m.filterLen), file, m.filterOffset, 'filter');
      const indexBuf = checkCrc(await readExact(fh, m.indexOffset, m.indexLen), file, m.indexOffset, 'index');
      const index = parseIndex(indexBuf, file, m.indexOffset);
      return new TableReader(fileNumber, file, fh, m.size, m.props, filter, index, cache, stats);
    } catch (err) {
      await fh.close().catch(() => undefined);
      throw err;
    }
  }

  get blockCount(): number {
    return this.blocks;
  }

  /** Bytes of memory pinned by this table (filter + index). */
  get pinnedBytes(): number {
    if (this.refs === 0) return 0;
    let n = this.filter.length;
    n += this.indexBuf.length + this.blocks * 24;
    return n;
  }

  /** Cheap, in-memory check: false means the table certainly does not hold `key`. */
  mayContain(key: Buffer, hash: number): boolean {
    if (compareBytes(key, 0, key.length, this.smallest, 0, this.smallest.length) < 0) return false;
    if (compareBytes(key, 0, key.length, this.largest, 0, this.largest.length) > 0) return false;
    if (!bloomMayContain(this.filter, hash)) {
      this.stats.bloomNegatives++;
      return false;
    }
    this.stats.bloomPositives++;
    return true;
  }

  /**
   * Point lookup without waiting: the record (which owns its bytes), undefined when the
   * table does not hold the key, or NEEDS_READ when the block is not cached and `reads`
   * says to read it asynchronously (then use get()). Otherwise a missing block is read on
   * this thread.
   * REQUIRES: mayContain(key, hash) was true.
   */
  getNow(key: Buffer, reads: BlockReadGovernor): EngineRecord | undefined | typeof NEEDS_READ {
    const i = this.blockFor(key);
    if (i >= this.blocks) return undefined;
    if (this.bad.size > 0) {
      const b = this.bad.get(i);
      if (b) return this.passBad(b);
    }
    const cacheKey = this.fileNumber * BLOCK_INDEX_SPAN + i;
    const hit = this.cache.get(cacheKey);
    if (hit) {
      this.stats.blockCacheHits++;
      return hit.find(key, true);
    }
    if (!reads.useSync()) return NEEDS_READ;
    let block: Block;
    let r: EngineRecord | undefined;
    try {
      if (!reads.measures) block = this.readBlockSync(i);
      else {
        const t0 = performance.now();
        block = this.readBlockSync(i);
        reads.observe((performance.now() - t0) * 1000);
      }
      // Find before caching: once cached, an eviction may recycle the buffer.
      r = block.find(key, true);
    } catch (err) {
      throw this.readFailed(i, err);
    }
    this.cache.set(cacheKey, block);
    return r;
  }

  /** A get that needs quarantined block `b`: a miss once it is repaired, else CORRUPTION. */
  private passBad(b: BadBlock): undefined {
    if (b.repaired) return undefined;
    throw this.quarantinedError(b);
  }

  private quarantinedError(b: BadBlock): CorruptionError {
    return new CorruptionError(`data block ${b.index} is quarantined (${b.reason}); its keys are unreadable here until repaired`, {
      file: this.file,
      offset: b.offset,
      length: b.length,
      block: b.index,
      quarantined: true,
    });
  }

  /**
   * A read of block `i` failed with `err`: damage (a checksum mismatch, a record that does
   * not parse) quarantines the block and becomes its quarantine error; anything else (an
   * I/O error) is returned as it is.
   */
  private readFailed(i: number, err: unknown): unknown {
    if (!(err instanceof CorruptionError) && !(err instanceof RangeError)) return err;
    return this.quarantinedError(this.quarantine(i, (err as Error).message));
  }

  /** Quarantines data block `i` (idempotent) and returns it. */
  quarantine(i: number, reason: string): BadBlock {
    let b = this.bad.get(i);
    if (b) return b;
    b = {
      index: i,
      offset: this.blockOffsets[i]!,
      length: this.blockLengths[i]!,
      first: i === 0 ? Buffer.from(this.smallest) : Buffer.concat([this.indexBuf.subarray(this.keyStarts[i - 1]!, this.keyEnds[i - 1]!), Buffer.from([0])]),
      last: Buffer.from(this.indexBuf.subarray(this.keyStarts[i]!, this.keyEnds[i]!)),
      reason,
      detectedAtMs: Date.now(),
      repaired: false,
    };
    this.bad.set(i, b);
    this.onBadBlock?.(this, b);
    return b;
  }

  /** The quarantined blocks of this table. */
  get badBlocks(): readonly BadBlock[] {
    return this.bad.size === 0 ? NO_BAD_BLOCKS : [...this.bad.values()];
  }

  /** True when a block of this table is quarantined and not yet repaired. */
  get hasUnrepairedBlocks(): boolean {
    for (const b of this.bad.values()) if (!b.repaired) return true;
    return false;
  }

  /** The data block holding file offset `offset`, or -1 when it is outside the data blocks. */
  blockAtOffset(offset: number): number {
    for (let i = 0; i < this.blocks; i++) {
      const o = this.blockOffsets[i]!;
      if (offset >= o && offset < o + this.blockLengths[i]!) return i;
    }
    return -1;
  }

  /** Reads block `i` from the file on this thread (not cached yet). */
  private readBlockSync(i: number): Block {
    const offset = this.blockOffsets[i]!;
    const length = this.blockLengths[i]!;
    const buf = this.cache.allocate(length);
    let done = 0;
    while (done < length) {
      const n = this.fh.readSync(buf, done, length - done, offset + done);
      if (n === 0) throw new CorruptionError(`unexpected end of file reading ${length} bytes`, { file: this.file, offset: offset + done });
      done += n;
    }
    this.stats.blockReads++;
    return new Block(buf, this.file, offset);
  }

  /** The first block whose largest key is >= `key` (blockCount when none). */
  private blockFor(key: Buffer): number {
    let lo = 0;
    let hi = this.blocks;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (compareBytes(this.indexBuf, this.keyStarts[mid]!, this.keyEnds[mid]!, key, 0, key.length) < 0) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /**
   * Point lookup, reading the block asynchronously when it is not cached. The record owns
   * its bytes. REQUIRES: mayContain(key, hash) was true.
   */
  async get(key: Buffer): Promise<EngineRecord | undefined> {
    const i = this.blockFor(key);
    if (i >= this.blocks) return undefined;
    if (this.bad.size > 0) {
      const b = this.bad.get(i);
      if (b) return this.passBad(b);
    }
    const cacheKey = this.fileNumber * BLOCK_INDEX_SPAN + i;
    const hit = this.cache.get(cacheKey);
    if (hit) {
      this.stats.blockCacheHits++;
      return hit.find(key, true);
    }
    const offset = this.blockOffsets[i]!;
    const buf = this.cache.allocate(this.blockLengths[i]!);
    await readInto(this.fh, buf, offset);
    this.stats.blockReads++;
    let block: Block;
    let r: EngineRecord | undefined;
    try {
      block = new Block(buf, this.file, offset);
      // Find before caching: once cached, an eviction may recycle the buffer.
      r = block.find(key, true);
    } catch (err) {
      throw this.readFailed(i, err);
    }
    this.cache.set(cacheKey, block);
    return r;
  }

  /**
   * Records with keys in [from, to) in key order (undefined bounds are open). Reads ahead
   * `readaheadBytes` at a time from disk, bypassing the block cache so a scan does not
   * evict the working set. A damaged block throws CORRUPTION (and is quarantined) — with
   * `skipCorrupt`, it is quarantined and passed over instead, as repaired blocks always are.
   * REQUIRES: the caller holds a ref for the whole iteration.
   */
  async *scan(from: Buffer | undefined, to: Buffer | undefined, readaheadBytes = 256 * 1024, skipCorrupt = false): AsyncGenerator<EngineRecord> {
    let bi = from === undefined ? 0 : this.blockFor(from);
    let first = true;
    while (bi < this.blocks) {
      // Gather a run of consecutive blocks up to the readahead size and read them at once.
      const startOffset = this.blockOffsets[bi]!;
      let end = bi;
      let bytes = 0;
      do {
        bytes += this.blockLengths[end]!;
        end++;
      } while (end < this.blocks && bytes + this.blockLengths[end]! <= readaheadBytes);
      const chunk = await readExact(this.fh, startOffset, bytes);
      this.stats.scanBlockReads += end - bi;
      for (let b = bi; b < end; b++) {
        const known = this.bad.get(b);
        if (known) {
          if (!known.repaired && !skipCorrupt) throw this.quarantinedError(known);
          first = false;
          continue;
        }
        const rel = this.blockOffsets[b]! - startOffset;
        let block: Block;
        try {
          block = new Block(chunk.subarray(rel, rel + this.blockLengths[b]!), this.file, this.blockOffsets[b]!);
        } catch (err) {
          const e = this.readFailed(b, err);
          if (skipCorrupt && this.bad.has(b)) {
            first = false;
            continue;
          }
          throw e;
        }
        let i = first && from ? block.seek(from) : 0;
        first = false;
        for (; i < block.count; i++) {
          if (to && block.compareKeyAt(i, to) >= 0) return;
          yield block.recordAt(i, false);
        }
      }
      bi = end;
    }
  }

  /**
   * A raw cursor over every record (compaction), passing over the data blocks in `skip`
   * (repaired quarantined blocks). REQUIRES: the caller holds a ref while it is used.
   */
  cursor(readaheadBytes = 256 * 1024, skip: ReadonlySet<number> = NO_BLOCKS): TableCursor {
    return new TableCursor(this.fh, this.file, new IndexPositions(this.blockOffsets, this.blockLengths), this.stats, readaheadBytes, skip);
  }

  /** Takes a reference; every ref() needs one unref(). */
  ref(): void {
    this.refs++;
  }

  /** Drops a reference; the last one closes the file (and deletes it when obsolete). */
  unref(): void {
    if (--this.refs === 0) {
      void this.fh.close().catch(() => undefined);
      // Its filter and index go now, not when the last object naming this reader does (a
      // compaction's inputs, the table set it was in): nothing may read through it any more.
      this.filter = EMPTY;
      this.indexBuf = EMPTY;
      this.keyStarts = this.keyEnds = new Int32Array(0);
      this.blockOffsets = this.blockLengths = [];
      this.onRelease?.();
    }
  }

  /** Marks the table as replaced: `onRelease` (which deletes the file) runs when the last reference goes. */
  markObsolete(onRelease: () => void): void {
    this.onRelease = onRelease;
  }
}

/**
 * Walks every record of one table in key order as raw spans over the bytes read (no
 * decoding, no per-record allocation), reading ahead `readaheadBytes` at a time and
 * bypassing the block cache; every block's CRC is checked. Compaction merges these.
 * Usage: await start(); while (valid) { use buf + span; const p = next(); if (p) await p; }
 * REQUIRES: the caller holds a ref on the table until done; one caller at a time.
 */
export class TableCursor {
  /** The bytes the current record is in (valid until the next call to next()). */
  buf: Buffer = Buffer.alloc(0);
  /**
   * The memory every chunk is read into, reused: a buffer per chunk left ~256 KiB of garbage
   * per read that the GC (counting it as external memory) let pile up by tens of MiB during a
   * large compaction.
   */
  private store: Buffer = Buffer.alloc(0);
  /** The current record within buf. */
  readonly span = new RecordSpan();
  valid = false;
  /** Next block to read from the file. */
  private nextBlock = 0;
  /** One past the last block of the current chunk. */
  private chunkEnd = 0;
  private chunkFileOffset = 0;
  private block = 0;
  private recordsEnd = 0;
  private recordsLeft = 0;

  constructor(
    private readonly fh: FileHandle,
    private readonly file: string,
    private readonly pos: BlockPositions,
    private readonly stats: ReadStats,
    private readonly readaheadBytes: number,
    /** Data blocks to pass over (never read into a record; a compaction drops them). */
    private readonly skip: ReadonlySet<number>,
  ) {}

  /** Positions the cursor on the first record. */
  async start(): Promise<void> {
    if (this.pos.open) await this.pos.open();
    await this.loadChunk();
  }

  /** Moves to the next record; returns a promise only when it has to read from the file. */
  next(): Promise<void> | undefined {
    if (--this.recordsLeft > 0) {
      this.scan(this.span.end);
      return undefined;
    }
    if (this.span.end !== this.recordsEnd) throw this.corrupt('block records do not end where its offsets begin', this.span.end);
    return this.nextBlockFrom(this.block + 1);
  }

  /** Opens the first block from `b` on that is not skipped, reading the next chunk when needed. */
  private nextBlockFrom(b: number): Promise<void> | undefined {
    while (b < this.chunkEnd && this.skip.has(b)) b++;
    if (b < this.chunkEnd) {
      this.openBlock(b);
      return undefined;
    }
    if (this.nextBlock < this.pos.count) return this.loadChunk();
    this.valid = false;
    return undefined;
  }

  private async loadChunk(): Promise<void> {
    const pos = this.pos;
    let first = this.nextBlock;
    while (first < pos.count && this.skip.has(first)) first++;
    if (first >= pos.count) {
      this.valid = false;
      return;
    }
    // The blocks before this chunk are done with: a streamed index may forget them.
    pos.release(first);
    let end = first;
    let bytes = 0;
    do {
      const p = pos.load(end);
      if (p) await p;
      bytes += pos.length(end);
      end++;
      if (end < pos.count) {
        const q = pos.load(end);
        if (q) await q;
      }
    } while (end < pos.count && bytes + pos.length(end) <= this.readaheadBytes);
    this.chunkFileOffset = pos.offset(first);
    if (this.store.length < bytes) this.store = Buffer.allocUnsafe(Math.max(bytes, this.readaheadBytes));
    this.buf = this.store.subarray(0, bytes);
    await readInto(this.fh, this.buf, this.chunkFileOffset);
    this.stats.scanBlockReads += end - first;
    this.nextBlock = end;
    this.chunkEnd = end;
    this.openBlock(first);
  }

  private openBlock(b: number): void {
    this.block = b;
    const off = this.pos.offset(b);
    const rel = off - this.chunkFileOffset;
    // Block verifies the CRC and the trailer; records start at the block's first byte.
    const block = new Block(this.buf.subarray(rel, rel + this.pos.length(b)), this.file, off);
    if (block.count === 0) throw this.corrupt('empty data block', rel);
    this.recordsEnd = rel + block.recordsEnd;
    this.recordsLeft = block.count;
    this.valid = true;
    this.scan(rel);
  }

  /** Decodes the current record (its buffers point into buf). */
  decode(): EngineRecord {
    return decodeRecord(this.buf, { pos: this.span.start }, { file: this.file, baseOffset: this.chunkFileOffset }, false);
  }

  private scan(pos: number): void {
    try {
      scanRecord(this.buf, pos, this.recordsEnd, this.span);
    } catch (err) {
      throw this.corrupt(`malformed record: ${(err as Error).message}`, pos);
    }
  }

  private corrupt(what: string, pos: number): CorruptionError {
    return new CorruptionError(what, { file: this.file, offset: this.chunkFileOffset + pos });
  }
}

export async function readExact(fh: FileHandle, position: number, length: number): Promise<Buffer> {
  const buf = Buffer.allocUnsafe(length);
  await readInto(fh, buf, position);
  return buf;
}

/** Fills `buf` from `position`; a short file is corruption. */
async function readInto(fh: FileHandle, buf: Buffer, position: number): Promise<void> {
  const length = buf.length;
  let done = 0;
  while (done < length) {
    const n = await fh.read(buf, done, length - done, position + done);
    if (n === 0) throw new CorruptionError(`unexpected end of file reading ${length} bytes`, { file: fh.path, offset: position + done });
    done += n;
  }
}

export function checkCrc(buf: Buffer, file: string, offset: number, what: string): Buffer {
  const body = buf.subarray(0, buf.length - 4);
  if (crc32(body) !== buf.readUInt32LE(buf.length - 4)) throw new CorruptionError(`table ${what} checksum mismatch`, { file, offset });
  return body;
}

interface ParsedIndex {
  /** The index block; block i's largest key is buf[keyStarts[i], keyEnds[i]). */
  buf: Buffer;
  keyStarts: Int32Array;
  keyEnds: Int32Array;
  offsets: number[];
  lengths: number[];
}

function parseIndex(buf: Buffer, file: string, offset: number): ParsedIndex {
  try {
    const n = buf.readUInt32LE(0);
    const cursor = { pos: 4 };
    const keyStarts = new Int32Array(n);
    const keyEnds = new Int32Array(n);
    const offsets: number[] = new Array(n);
    const lengths: number[] = new Array(n);
    for (let i = 0; i < n; i++) {
      const kl = getVarint(buf, cursor);
      if (cursor.pos + kl > buf.length) throw new RangeError('index key out of range');
      keyStarts[i] = cursor.pos;
      keyEnds[i] = cursor.pos + kl;
      cursor.pos += kl;
      offsets[i] = getVarint(buf, cursor);
      lengths[i] = getVarint(buf, cursor);
    }
    // The index's own buffer (it was read for this table alone), kept for the lookups.
    return { buf, keyStarts, keyEnds, offsets, lengths };
  } catch (err) {
    if (err instanceof CorruptionError) throw err;
    throw new CorruptionError(`malformed table index: ${(err as Error).message}`, { file, offset });
  }
}
