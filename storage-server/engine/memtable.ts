// The memtable: the newest writes, in memory. Records are kept encoded (record-format.md)
// in append-only arena chunks — the very bytes the WAL frame of their group carries, as
// the group-commit leader encodes each group once, into the arena, and writes it to the
// WAL from there — so a flush copies them into table blocks without re-encoding them, and
// a write allocates no per-record object, key string or Map entry. A hash index (open
// addressing over typed arrays, keyed by the key's bloom hash) maps each key to its newest
// record; sorted order is computed on demand (an MSD radix sort on 4-byte digits) and kept
// until a new key arrives. Single-threaded; a frozen memtable is never written again.

import { compareBytes } from './coding.js';
import { bloomHashRange } from './bloom-filter.js';
import type { EngineRecord } from './record.js';
import { decodeRecord, RecordSpan, recordSize, scanRecord, writeRecord } from './record.js';

/** Index memory per entry, counted in `bytes`: 5 Int32/Uint32 arrays + 2 slots at load <= 1/2. */
const INDEX_BYTES_PER_ENTRY = 5 * 4 + 2 * 4;
const MAX_CHUNK_BYTES = 1024 * 1024;
const MEMTABLE_WHERE = { file: 'memtable', baseOffset: 0 };
const MIN_CHUNK_BYTES = 16 * 1024;

/** Where a group's bytes go: `buf[start, start + bytes)`, reserved by Memtable.reserve(). */
export interface ArenaArea {
  buf: Buffer;
  start: number;
}

export class Memtable {
  private readonly chunkBytes: number;
  private readonly chunks: Buffer[] = [];
  private chunk: Buffer | undefined;
  private chunkPos = 0;
  private arenaBytes = 0;

  // Entry i: the newest record of one key.
  private entChunk = new Int32Array(256);
  private entStart = new Int32Array(256);
  private entKeyStart = new Int32Array(256);
  private entKeyEnd = new Int32Array(256);
  private entHash = new Uint32Array(256);
  private count = 0;
  /** Open addressing: entry index + 1, 0 = empty. */
  private slots = new Int32Array(512);

  private sorted: Int32Array | undefined;
  private readonly span = new RecordSpan();
  minSeq = Number.MAX_SAFE_INTEGER;
  maxSeq = 0;

  /** `walNumber` is the WAL segment whose records this memtable holds; `sizeHint` its flush size. */
  constructor(
    readonly walNumber: number,
    sizeHint = 4 * 1024 * 1024,
  ) {
    this.chunkBytes = Math.max(MIN_CHUNK_BYTES, Math.min(MAX_CHUNK_BYTES, 2 ** Math.ceil(Math.log2(Math.max(1, sizeHint / 4)))));
  }

  /** Distinct keys. */
  get size(): number {
    return this.count;
  }

  /** Approximate memory held: arena bytes in use (records, including overwritten ones) plus the index. */
  get bytes(): number {
    return this.arenaBytes + this.count * INDEX_BYTES_PER_ENTRY;
  }

  /**
   * Reserves `bytes` contiguous bytes of arena for the caller to fill (a WAL frame: header,
   * then records); add its records with commit() once they are durable. A reservation not
   * committed is overwritten by the next one.
   */
  reserve(bytes: number): ArenaArea {
    if (!this.chunk || this.chunkPos + bytes > this.chunk.length) {
      this.chunk = Buffer.allocUnsafe(Math.max(this.chunkBytes, bytes));
      this.chunks.push(this.chunk);
      this.chunkPos = 0;
    }
    return { buf: this.chunk, start: this.chunkPos };
  }

  /**
   * Makes the records in `buf[start, end)` (back to back, in the area the last reserve()
   * returned) visible: each becomes the newest version of its key. Throws RangeError on
   * malformed records (a bug: the caller encoded them).
   */
  commit(buf: Buffer, start: number, end: number): void {
    if (buf !== this.chunk) throw new Error('Memtable.commit: not the reserved area');
    const c = this.chunks.length - 1;
    const s = this.span;
    let pos = start;
    while (pos < end) {
      scanRecord(buf, pos, end, s);
      this.index(c, s);
      pos = s.end;
    }
    this.arenaBytes += end - this.chunkPos;
    this.chunkPos = end;
  }

  /** Adds one record (WAL replay). */
  add(r: EngineRecord): void {
    const n = recordSize(r);
    const area = this.reserve(n);
    const end = writeRecord(area.buf, area.start, r);
    this.commit(area.buf, area.start, end);
  }

  private index(c: number, s: RecordSpan): void {
    const buf = this.chunks[c]!;
    const hash = bloomHashRange(buf, s.keyStart, s.keyEnd);
    if (s.seq < this.minSeq) this.minSeq = s.seq;
    if (s.seq > this.maxSeq) this.maxSeq = s.seq;
    const e = this.find(buf, s.keyStart, s.keyEnd, hash);
    if (e >= 0) {
      // A newer version of a key we hold: point the entry at it (the old bytes stay in the arena).
      this.entChunk[e] = c;
      this.entStart[e] = s.start;
      this.entKeyStart[e] = s.keyStart;
      this.entKeyEnd[e] = s.keyEnd;
      return;
    }
    if (this.count === this.entStart.length) this.growEntries();
    if ((this.count + 1) * 2 > this.slots.length) this.growSlots();
    const id = this.count++;
    this.entChunk[id] = c;
    this.entStart[id] = s.start;
    this.entKeyStart[id] = s.keyStart;
    this.entKeyEnd[id] = s.keyEnd;
    this.entHash[id] = hash;
    this.insertSlot(id, hash);
    this.sorted = undefined;
  }

  /** The entry holding key buf[keyStart, keyEnd) (with bloom hash `hash`), or -1. */
  private find(buf: Uint8Array, keyStart: number, keyEnd: number, hash: number): number {
    const mask = this.slots.length - 1;
    for (let i = hash & mask; ; i = (i + 1) & mask) {
      const slot = this.slots[i]!;
      if (slot === 0) return -1;
      const e = slot - 1;
      if (
        this.entHash[e] === hash &&
        compareBytes(this.chunks[this.entChunk[e]!]!, this.entKeyStart[e]!, this.entKeyEnd[e]!, buf, keyStart, keyEnd) === 0
      ) {
        return e;
      }
    }
  }

  private insertSlot(id: number, hash: number): void {
    const mask = this.slots.length - 1;
    let i = hash & mask;
    while (this.slots[i] !== 0) i = (i + 1) & mask;
    this.slots[i] = id + 1;
  }

  private growEntries(): void {
    const n = this.entStart.length * 2;
    const grow = <T extends Int32Array | Uint32Array>(a: T, make: (n: number) => T): T => {
      const b = make(n);
      b.set(a);
      return b;
    };
    this.entChunk = grow(this.entChunk, (k) => new Int32Array(k));
    this.entStart = grow(this.entStart, (k) => new Int32Array(k));
    this.entKeyStart = grow(this.entKeyStart, (k) => new Int32Array(k));
    this.entKeyEnd = grow(this.entKeyEnd, (k) => new Int32Array(k));
    this.entHash = grow(this.entHash, (k) => new Uint32Array(k));
  }

  private growSlots(): void {
    this.slots = new Int32Array(this.slots.length * 2);
    for (let id = 0; id < this.count; id++) this.insertSlot(id, this.entHash[id]!);
  }

  /** The newest record for `key` (whose bloomHash is `hash`), or undefined. It owns its bytes. */
  get(key: Buffer, hash: number): EngineRecord | undefined {
    if (this.count === 0) return undefined;
    const e = this.find(key, 0, key.length, hash);
    return e < 0 ? undefined : this.decode(e, true);
  }

  /** Entry e's record; without `copy` its buffers point into the arena. */
  private decode(e: number, copy = false): EngineRecord {
    return decodeRecord(this.chunks[this.entChunk[e]!]!, { pos: this.entStart[e]! }, MEMTABLE_WHERE, copy);
  }

  /** Entry ids in key order (cached until a new key arrives). */
  sortedIds(): Int32Array {
    if (!this.sorted) {
      const ids = this.identity();
      sortByKey(ids, 0, this.count, 0, this.keySource());
      this.sorted = ids;
    }
    return this.sorted;
  }

  /**
   * sortedIds() of a frozen memtable, computed in slices of about `sliceMs` with turns of
   * the event loop between them (a flush). REQUIRES: no write until it resolves.
   */
  async sortedIdsSliced(sliceMs = 4): Promise<Int32Array> {
    if (!this.sorted) {
      const count = this.count;
      const ids = this.identity();
      await sortByKeySliced(ids, this.keySource(), sliceMs);
      if (this.count !== count) throw new Error('Memtable.sortedIdsSliced: the memtable was written to while it was being sorted');
      this.sorted = ids;
    }
    return this.sorted;
  }

  private identity(): Int32Array {
    const ids = new Int32Array(this.count);
    for (let i = 0; i < this.count; i++) ids[i] = i;
    return ids;
  }

  private keySource(): KeySource {
    return { chunks: this.chunks, entChunk: this.entChunk, keyStart: this.entKeyStart, keyEnd: this.entKeyEnd };
  }

  /**
   * Points `span` at entry `id`'s record and returns the buffer it is in (for a flush:
   * TableBuilder.addRaw(buf, span)).
   */
  spanOf(id: number, span: RecordSpan): Buffer {
    const buf = this.chunks[this.entChunk[id]!]!;
    scanRecord(buf, this.entStart[id]!, buf.length, span);
    return buf;
  }

  /** A snapshot of the records with keys in [from, to) (undefined = unbounded), in key order. */
  range(from: Buffer | undefined, to: Buffer | undefined): EngineRecord[] {
    const ids = this.sortedIds();
    let lo = 0;
    if (from !== undefined) {
      let hi = ids.length;
      while (lo < hi) {
        const mid = (lo + hi) >>> 1;
        if (this.compareKey(ids[mid]!, from) < 0) lo = mid + 1;
        else hi = mid;
      }
    }
    const out: EngineRecord[] = [];
    for (let i = lo; i < ids.length; i++) {
      const id = ids[i]!;
      if (to !== undefined && this.compareKey(id, to) >= 0) break;
      out.push(this.decode(id));
    }
    return out;
  }

  private compareKey(id: number, key: Buffer): number {
    return compareBytes(this.chunks[this.entChunk[id]!]!, this.entKeyStart[id]!, this.entKeyEnd[id]!, key, 0, key.length);
  }
}

const POSITION_SPAN = 2 ** 21;
const SMALL_RUN = 16;

/** The arrays a sort reads keys through. */
interface KeySource {
  chunks: readonly Buffer[];
  entChunk: Int32Array;
  keyStart: Int32Array;
  keyEnd: Int32Array;
}

/**
 * One level of the sort of ids[lo, hi), all keys equal in their first 4 × depth bytes. Most
 * significant digit first: a native sort of (4-byte digit × 2^21 + position) numbers
 * orders the range by its digit at this depth; calls `run(lo, hi)` for each run of equal
 * digits of two or more, which the caller sorts one level deeper. Keys are padded with
 * zero bytes to make the digits, so a range whose keys are all used up (or a small one) is
 * sorted here by comparing bytes (shorter first), and no run is reported.
 */
function sortLevel(ids: Int32Array, lo: number, hi: number, depth: number, k: KeySource, run: (lo: number, hi: number) => void): void {
  const n = hi - lo;
  if (n < 2) return;
  const { chunks, entChunk, keyStart, keyEnd } = k;
  const cmp = (a: number, b: number): number =>
    compareBytes(chunks[entChunk[a]!]!, keyStart[a]!, keyEnd[a]!, chunks[entChunk[b]!]!, keyStart[b]!, keyEnd[b]!);
  if (n <= SMALL_RUN || n >= POSITION_SPAN) {
    const sorted = Array.from(ids.subarray(lo, hi));
    sorted.sort(cmp);
    ids.set(sorted, lo);
    return;
  }
  const at = depth * 4;
  const keys = new Float64Array(n);
  let anyLeft = false;
  for (let i = 0; i < n; i++) {
    const id = ids[lo + i]!;
    const buf = chunks[entChunk[id]!]!;
    const p = keyStart[id]! + at;
    const left = keyEnd[id]! - p;
    let digit = 0;
    if (left >= 4) digit = buf.readUInt32BE(p);
    else if (left > 0) {
      for (let j = 0; j < 4; j++) digit = digit * 256 + (j < left ? buf[p + j]! : 0);
    }
    if (left > 4) anyLeft = true;
    keys[i] = digit * POSITION_SPAN + i;
  }
  if (!anyLeft) {
    // No key has bytes past this digit: equal digits can only differ in length.
    const sorted = Array.from(ids.subarray(lo, hi));
    sorted.sort(cmp);
    ids.set(sorted, lo);
    return;
  }
  keys.sort();
  const before = ids.slice(lo, hi);
  for (let i = 0; i < n; i++) ids[lo + i] = before[keys[i]! % POSITION_SPAN]!;
  let a = 0;
  while (a < n) {
    const digit = Math.floor(keys[a]! / POSITION_SPAN);
    let b = a + 1;
    while (b < n && Math.floor(keys[b]! / POSITION_SPAN) === digit) b++;
    if (b - a > 1) run(lo + a, lo + b);
    a = b;
  }
}

/** Sorts ids[lo, hi) by key bytes, all keys equal in their first 4 × depth bytes. */
function sortByKey(ids: Int32Array, lo: number, hi: number, depth: number, k: KeySource): void {
  sortLevel(ids, lo, hi, depth, k, (a, b) => sortByKey(ids, a, b, depth + 1, k));
}

/**
 * sortByKey of all of ids, in slices: the first level at once (one native sort of the
 * range), then the runs it leaves, giving the event loop a turn whenever `sliceMs` has
 * passed. A flush sorts a full memtable (tens of thousands of keys, tens of ms) this way
 * so requests are not held up behind it.
 */
async function sortByKeySliced(ids: Int32Array, k: KeySource, sliceMs: number): Promise<void> {
  const runs: number[] = [];
  sortLevel(ids, 0, ids.length, 0, k, (a, b) => runs.push(a, b));
  let sliceStart = performance.now();
  for (let i = 0; i < runs.length; i += 2) {
    sortByKey(ids, runs[i]!, runs[i + 1]!, 1, k);
    if (performance.now() - sliceStart >= sliceMs) {
      await new Promise<void>((resolve) => setImmediate(resolve));
      sliceStart = performance.now();
    }
  }
}
