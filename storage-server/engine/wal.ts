// The write-ahead log: the writer (a segment header, then frames of records) and the
// reader (replays a segment of format 3, 2 or 1, truncating a torn tail, reporting damage
// anywhere else). Format in ./log-format.md. A WalWriter's seals and appends must not
// overlap: the engine's group-commit leader is its only caller and awaits each append.
// Format 3 (recyclable) is written into preallocated or recycled files: each frame carries
// the segment's number, so bytes left from the file's previous life are never replayed.

import { randomBytes } from 'node:crypto';
import { CorruptionError } from './engine-errors.js';
import { crc32, getUint64, putUint64 } from './coding.js';
import type { FileHandle, FileSystem } from './file-system.js';
import type { EngineRecord } from './record.js';
import { decodeRecord, recordSize, writeRecord } from './record.js';

/** The format WalWriter.create writes; replayWal also reads formats 1 and 3. */
export const WAL_FORMAT_VERSION = 2;
/** The recyclable format WalWriter.createRecyclable writes (frames carry the log number). */
export const WAL_RECYCLABLE_FORMAT_VERSION = 3;
const MAGIC = Buffer.from('RINGKVWL', 'latin1');
/** Segment header: magic, version u32, salt u32, segment number u64, CRC-32 u32. */
export const WAL_SEGMENT_HEADER_BYTES = 28;
/** Frame header (format 2): payload length u32, frame index u32, CRC-32 u32. */
export const WAL_FRAME_HEADER_BYTES = 12;
/** Frame header (format 3): payload length u32, frame index u32, log number u64, CRC-32 u32. */
export const WAL_RECYCLABLE_FRAME_HEADER_BYTES = 20;
/** The larger of the two frame headers: what a group reserves in front of its records. */
export const WAL_MAX_FRAME_HEADER_BYTES = WAL_RECYCLABLE_FRAME_HEADER_BYTES;
/** Largest frame payload a reader accepts (a batch of up to 64 MiB). */
export const WAL_MAX_FRAME_BYTES = 64 * 1024 * 1024;
const MAX_FRAME_INDEX = 0xffffffff;
/** Format 1 (read only): payload length u32, CRC-32 u32. */
const V1_FRAME_HEADER_BYTES = 8;

function encodeSegmentHeader(number: number, salt: number, version: 2 | 3): Buffer {
  const h = Buffer.alloc(WAL_SEGMENT_HEADER_BYTES);
  MAGIC.copy(h, 0);
  h.writeUInt32LE(version, 8);
  h.writeUInt32LE(salt, 12);
  putUint64(h, 16, number);
  h.writeUInt32LE(crc32(h.subarray(0, 24)), 24);
  return h;
}

/** The CRC a segment's frame checksums start from: CRC-32 of its salt (4 bytes LE). */
function saltSeed(salt: number): number {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(salt, 0);
  return crc32(b);
}

/**
 * Frames up to this size are appended with a synchronous write(): copying a few KiB into
 * the page cache takes microseconds, while an async write costs a thread-pool round trip
 * (~10-20 us of event-loop CPU, and the group waits for it). Larger frames go async so the
 * event loop never waits on a big copy.
 */
export const WAL_SYNC_WRITE_MAX_BYTES = 256 * 1024;

/** Zeros written at a time when a segment file is preallocated. */
const ZERO_CHUNK_BYTES = 1024 * 1024;

/** Appends frames to one WAL segment (format 2 or 3). Create with create() or createRecyclable(). */
export class WalWriter {
  private nextIndex = 0;
  private readonly seed: number;
  /** Bytes in front of each frame's payload: 12 (format 2) or 20 (format 3). */
  readonly frameHeaderBytes: number;
  /** Bytes made durable by the last successful sync (the header's, at creation). */
  private synced: number;
  /** An append failed: bytes past `offset` may hold part of a frame (see repairTail). */
  private dirtyTail = false;
  /** A sync failed: the file is never synced again (its dirty pages may be gone: fsyncgate). */
  private syncFailed = false;
  private closed = false;

  private constructor(
    readonly fh: FileHandle,
    readonly number: number,
    salt: number,
    private offset: number,
    readonly format: 2 | 3,
  ) {
    this.seed = saltSeed(salt);
    this.synced = offset;
    this.frameHeaderBytes = format === 3 ? WAL_RECYCLABLE_FRAME_HEADER_BYTES : WAL_FRAME_HEADER_BYTES;
  }

  /**
   * Creates segment `number` at `file` (which must not exist), writes its header with a
   * fresh random salt and fdatasyncs it, so that the header is on disk before any frame
   * is. The caller syncs the directory.
   */
  static async create(fs: FileSystem, file: string, number: number): Promise<WalWriter> {
    const fh = await fs.open(file, 'create');
    try {
      const salt = randomBytes(4).readUInt32LE(0);
      const header = encodeSegmentHeader(number, salt, 2);
      await fh.write(header, 0);
      await fh.sync();
      return new WalWriter(fh, number, salt, header.length, 2);
    } catch (err) {
      await fh.close().catch(() => undefined);
      // A segment that could not be made whole holds nothing: remove it, so that it never
      // sits before a later segment (at most a header's bytes, which replay skips anyway).
      await fs.unlink(file).catch(() => undefined);
      throw err;
    }
  }

  /**
   * Makes segment `number` (format 3) at `file` from `from`: a retired segment's file (a
   * recycled one: its old bytes stay behind the new header, and replay never takes them,
   * as their frames carry another log number) or a new temporary file. The file is first
   * filled with zeros up to `preallocateBytes` (only the part beyond its size: nothing for
   * a recycled file that large), then the header (a fresh salt) is written at offset 0,
   * the file fdatasync'd — so that later fdatasyncs of frames within that size commit no
   * file-size metadata — and only then renamed to `file`: the segment's name never appears
   * before its header is durable. The caller syncs the directory. On failure `from` is
   * removed (a retired segment or a temporary file: nobody needs it).
   * REQUIRES: `file` does not exist; `from` is not a live segment.
   */
  static async createRecyclable(
    fs: FileSystem,
    opts: { file: string; number: number; from: string; recycled: boolean; preallocateBytes: number },
  ): Promise<WalWriter> {
    if (!opts.recycled) await fs.unlink(opts.from); // a temporary file left by a crash
    const fh = await fs.open(opts.from, opts.recycled ? 'readwrite' : 'create');
    let salt: number;
    try {
      const size = await fh.size();
      if (size < opts.preallocateBytes) {
        const zeros = Buffer.alloc(Math.min(ZERO_CHUNK_BYTES, opts.preallocateBytes - size));
        for (let at = size; at < opts.preallocateBytes; at += zeros.length) {
          await fh.write(at + zeros.length <= opts.preallocateBytes ? zeros : zeros.subarray(0, opts.preallocateBytes - at), at);
        }
      }
      salt = randomBytes(4).readUInt32LE(0);
      await fh.write(encodeSegmentHeader(opts.number, salt, 3), 0);
      await fh.sync();
      await fh.close();
    } catch (err) {
      await fh.close().catch(() => undefined);
      await fs.unlink(opts.from).catch(() => undefined);
      throw err;
    }
    let named: FileHandle | undefined;
    try {
      await fs.rename(opts.from, opts.file);
      named = await fs.open(opts.file, 'readwrite');
      return new WalWriter(named, opts.number, salt, WAL_SEGMENT_HEADER_BYTES, 3);
    } catch (err) {
      await named?.close().catch(() => undefined);
      // Whichever name it has now, it holds no frame: remove it (replay would find it empty).
      await fs.unlink(opts.from).catch(() => undefined);
      await fs.unlink(opts.file).catch(() => undefined);
      throw err;
    }
  }

  get sizeBytes(): number {
    return this.offset;
  }

  /** Bytes of the segment known durable: up to the end of the last successful sync. */
  get syncedBytes(): number {
    return this.synced;
  }

  /** True once a sync of this segment failed (it must not be synced again). */
  get failedSync(): boolean {
    return this.syncFailed;
  }

  /** True when the segment has used every frame index: the next frame needs a new segment. */
  get full(): boolean {
    return this.nextIndex > MAX_FRAME_INDEX;
  }

  /**
   * Seals the frame at buf[start, end) whose payload (records from start + frameHeaderBytes
   * on) is already in place — the group-commit leader encodes a group's records straight
   * into the memtable arena — giving it the next frame index (and, format 3, the segment's
   * number), and returns it as a view. Append the frames in the order they were sealed.
   */
  seal(buf: Buffer, start: number, end: number): Buffer {
    if (this.full) throw new Error(`WAL segment ${this.number} has no frame index left`);
    const frame = buf.subarray(start, end);
    const h = this.frameHeaderBytes;
    frame.writeUInt32LE(end - start - h, 0);
    frame.writeUInt32LE(this.nextIndex++, 4);
    if (this.format === 3) putUint64(frame, 8, this.number);
    frame.writeUInt32LE(crc32(frame.subarray(h), crc32(frame.subarray(0, h - 4), this.seed)), h - 4);
    return frame;
  }

  /** Encodes `records` as one sealed frame (the next index). */
  encode(records: readonly EngineRecord[]): Buffer {
    let len = 0;
    for (const r of records) len += recordSize(r);
    const buf = Buffer.allocUnsafe(this.frameHeaderBytes + len);
    let p = this.frameHeaderBytes;
    for (const r of records) p = writeRecord(buf, p, r);
    return this.seal(buf, 0, buf.length);
  }

  /**
   * Appends `buf` (one or more whole frames): synchronously when it is small (returns
   * undefined; the bytes are in the OS when it returns), else returns a promise. When the
   * append fails, the frame is given up: its index is handed to the next frame sealed, and
   * the bytes written past the end so far are cut off by repairTail() (or overwritten by
   * the next append, which goes to the same offset).
   * REQUIRES: the previous append has completed; `buf` holds the last frame sealed (one frame).
   */
  append(buf: Buffer): Promise<void> | undefined {
    const at = this.offset;
    if (buf.length <= WAL_SYNC_WRITE_MAX_BYTES) {
      try {
        this.fh.writeSync(buf, at);
      } catch (err) {
        this.giveUpFrame();
        throw err;
      }
      this.offset = at + buf.length;
      return undefined;
    }
    return this.fh.write(buf, at).then(
      () => {
        this.offset = at + buf.length;
      },
      (err: unknown) => {
        this.giveUpFrame();
        throw err;
      },
    );
  }

  private giveUpFrame(): void {
    this.nextIndex--;
    this.dirtyTail = true;
  }

  /**
   * Cuts off what a failed append may have left past the last whole frame, so the segment
   * ends on a frame boundary before another segment follows it (only the last segment may
   * end in a torn write). Not synced here: the sync before the next segment is made covers it.
   */
  async repairTail(): Promise<void> {
    if (!this.dirtyTail) return;
    await this.fh.truncate(this.offset);
    this.dirtyTail = false;
  }

  /**
   * Makes every appended frame durable (fdatasync). After a failure the file is never
   * synced again: its dirty pages may already be gone, and a later sync could succeed
   * over lost data (PostgreSQL's "fsyncgate"); the caller recovers from what is durable.
   */
  async sync(): Promise<void> {
    if (this.syncFailed) throw new Error(`WAL segment ${this.number} failed a sync before; it is not synced again`);
    const at = this.offset;
    try {
      await this.fh.sync();
    } catch (err) {
      this.syncFailed = true;
      throw err;
    }
    if (at > this.synced) this.synced = at;
  }

  /** Closes the file (once: later calls resolve at once). */
  close(): Promise<void> {
    if (this.closed) return Promise.resolve();
    this.closed = true;
    return this.fh.close();
  }
}

export interface WalReplay {
  records: number;
  frames: number;
  /** The segment's format (1: written by an engine before log format 2; 3: recyclable). */
  format: 1 | 2 | 3;
  /** Bytes at the end that were a torn write (cut off, except in format 3). */
  tornTailBytes: number;
  /** Offset where valid data ends. */
  validBytes: number;
  /**
   * Format 3: bytes after the log's end that are not this segment's (zeros of the
   * preallocation, or frames of the file's previous life). 0 in formats 1 and 2.
   */
  spareBytes: number;
}

/** Format 1: the frame's total length when a whole, checksum-valid frame starts at pos; else -1. */
function frameAtV1(buf: Buffer, pos: number): number {
  if (pos + V1_FRAME_HEADER_BYTES > buf.length) return -1;
  const len = buf.readUInt32LE(pos);
  if (len === 0 || len > WAL_MAX_FRAME_BYTES || pos + V1_FRAME_HEADER_BYTES + len > buf.length) return -1;
  const want = buf.readUInt32LE(pos + 4);
  const got = crc32(buf.subarray(pos + V1_FRAME_HEADER_BYTES, pos + V1_FRAME_HEADER_BYTES + len), crc32(buf.subarray(pos, pos + 4)));
  return got === want ? V1_FRAME_HEADER_BYTES + len : -1;
}

/**
 * Format 2: the frame's total length when a whole frame with index `index`, checksum-valid
 * under the segment's salt (`seed`), starts at pos; else -1.
 */
function frameAtV2(buf: Buffer, pos: number, index: number, seed: number): number {
  if (pos + WAL_FRAME_HEADER_BYTES > buf.length) return -1;
  const len = buf.readUInt32LE(pos);
  if (len === 0 || len > WAL_MAX_FRAME_BYTES || pos + WAL_FRAME_HEADER_BYTES + len > buf.length) return -1;
  if (buf.readUInt32LE(pos + 4) !== index) return -1;
  const got = crc32(buf.subarray(pos + WAL_FRAME_HEADER_BYTES, pos + WAL_FRAME_HEADER_BYTES + len), crc32(buf.subarray(pos, pos + 8), seed));
  return got === buf.readUInt32LE(pos + 8) ? WAL_FRAME_HEADER_BYTES + len : -1;
}

/** Format 3: true when a whole frame header at pos carries log number `logNumber`. */
function namesLog(buf: Buffer, pos: number, logNumber: number): boolean {
  return pos + WAL_RECYCLABLE_FRAME_HEADER_BYTES <= buf.length && buf.readUInt32LE(pos + 8) === logNumber % 0x1_0000_0000 && getUint64(buf, pos + 8) === logNumber;
}

/**
 * Format 3: the frame's total length when a whole frame with index `index` and log number
 * `logNumber` (the segment's), checksum-valid under the segment's salt, starts at pos;
 * else -1. A frame of another log number — left from the file's previous life — is never
 * valid here, even if its checksum is.
 */
function frameAtV3(buf: Buffer, pos: number, index: number, seed: number, logNumber: number): number {
  const h = WAL_RECYCLABLE_FRAME_HEADER_BYTES;
  if (pos + h > buf.length) return -1;
  const len = buf.readUInt32LE(pos);
  if (len === 0 || len > WAL_MAX_FRAME_BYTES || pos + h + len > buf.length) return -1;
  if (buf.readUInt32LE(pos + 4) !== index) return -1;
  if (!namesLog(buf, pos, logNumber)) return -1;
  const got = crc32(buf.subarray(pos + h, pos + h + len), crc32(buf.subarray(pos, pos + h - 4), seed));
  return got === buf.readUInt32LE(pos + h - 4) ? h + len : -1;
}

/** How a segment's header reads: format 2 or 3 with its salt, format 1 (no header), or why it is unreadable. */
type SegmentHead = { format: 2 | 3; seed: number } | { format: 1 } | { format: 'bad'; why: string; offset: number; tornIfLast: boolean };

function readSegmentHead(data: Buffer, segmentNumber: number, format1Allowed: boolean): SegmentHead {
  const n = Math.min(MAGIC.length, data.length);
  if (!data.subarray(0, n).equals(MAGIC.subarray(0, n))) {
    // No magic: a format-1 segment, where one may exist; else a damaged (or torn) header.
    return format1Allowed ? { format: 1 } : { format: 'bad', why: 'segment header magic missing', offset: 0, tornIfLast: true };
  }
  if (data.length < WAL_SEGMENT_HEADER_BYTES) return { format: 'bad', why: 'segment header incomplete', offset: 0, tornIfLast: true };
  if (crc32(data.subarray(0, 24)) !== data.readUInt32LE(24)) return { format: 'bad', why: 'segment header checksum mismatch', offset: 0, tornIfLast: true };
  const version = data.readUInt32LE(8);
  if (version !== WAL_FORMAT_VERSION && version !== WAL_RECYCLABLE_FORMAT_VERSION) {
    return {
      format: 'bad',
      why: `segment format version ${version} is not one this engine reads (1, ${WAL_FORMAT_VERSION}, ${WAL_RECYCLABLE_FORMAT_VERSION})`,
      offset: 8,
      tornIfLast: false,
    };
  }
  const number = getUint64(data, 16);
  if (number !== segmentNumber) return { format: 'bad', why: `segment header names segment ${number}`, offset: 16, tornIfLast: false };
  return { format: version === WAL_RECYCLABLE_FORMAT_VERSION ? 3 : 2, seed: saltSeed(data.readUInt32LE(12)) };
}

/**
 * Replays segment `segmentNumber` from `fh`, calling `onRecord` for every record in
 * order (formats 2 and 3, and format 1 when `format1Allowed`: the manifest predates
 * format 2). The first invalid frame ends the log when nothing valid follows it (a torn
 * tail, from a crash mid-write): when `truncateTail` it is cut off (formats 1 and 2) and
 * counted in `tornTailBytes`. A bad frame followed by a valid later one (formats 2 and 3:
 * checksum-valid under the segment's secret salt, with a higher index, so user bytes
 * inside the torn frame cannot pass for one) is damage inside the log and throws
 * CorruptionError naming the file and offset. `isLastSegment` false makes any bad frame an
 * error — except, in format 3, where the log ends at bytes that are not this segment's
 * frames (preallocated zeros, a previous life's frames, which carry another log number):
 * that is the normal end of a preallocated or recycled segment. Format in ./log-format.md.
 */
export async function replayWal(
  fh: FileHandle,
  opts: {
    isLastSegment: boolean;
    truncateTail: boolean;
    segmentNumber: number;
    format1Allowed: boolean;
    /** Read only the segment's first `endOffset` bytes (what is known durable). Default: all of it. */
    endOffset?: number;
  },
  onRecord: (r: EngineRecord) => void,
): Promise<WalReplay> {
  const size = Math.min(await fh.size(), opts.endOffset ?? Infinity);
  const buf = Buffer.allocUnsafe(size);
  let got = 0;
  while (got < size) {
    const n = await fh.read(buf, got, size - got, got);
    if (n === 0) break;
    got += n;
  }
  const data = buf.subarray(0, got);
  const where = (offset: number) => ({ file: fh.path, offset });
  let records = 0;
  let frames = 0;
  let format: 1 | 2 | 3 = WAL_FORMAT_VERSION;
  const done = (pos: number, tornTailBytes: number, spareBytes = 0): WalReplay => ({ records, frames, tornTailBytes, validBytes: pos, format, spareBytes });
  const cutTail = async (pos: number): Promise<WalReplay> => {
    if (opts.truncateTail) {
      await fh.truncate(pos);
      await fh.sync();
    }
    return done(pos, data.length - pos);
  };
  if (data.length === 0) return done(0, 0);

  const head = readSegmentHead(data, opts.segmentNumber, opts.format1Allowed);
  if (head.format === 'bad') {
    // The header is written and synced before any frame: a bad one with nothing after it is
    // a segment whose creation was cut short (last or not: a creation that failed is
    // unlinked, but a crash may keep its name and lose the unlink); with frames after it, damage.
    if (head.tornIfLast && data.length <= WAL_SEGMENT_HEADER_BYTES) return cutTail(0);
    throw new CorruptionError(`WAL ${head.why}`, where(head.offset));
  }
  format = head.format;
  const headerBytes = format === 3 ? WAL_RECYCLABLE_FRAME_HEADER_BYTES : format === 2 ? WAL_FRAME_HEADER_BYTES : V1_FRAME_HEADER_BYTES;
  const seed = head.format === 1 ? 0 : head.seed;
  const logNumber = opts.segmentNumber;
  const frameAt = (p: number, index: number) =>
    format === 3 ? frameAtV3(data, p, index, seed, logNumber) : format === 2 ? frameAtV2(data, p, index, seed) : frameAtV1(data, p);
  let pos = format === 1 ? 0 : WAL_SEGMENT_HEADER_BYTES;
  while (pos < data.length) {
    const flen = frameAt(pos, frames);
    if (flen < 0) break;
    const end = pos + flen;
    const cursor = { pos: pos + headerBytes };
    while (cursor.pos < end) {
      onRecord(decodeRecord(data, cursor, { file: fh.path, baseOffset: 0 }, true));
      records++;
    }
    if (cursor.pos !== end) throw new CorruptionError('frame payload does not end on a record boundary', where(pos));
    frames++;
    pos = end;
  }
  if (pos === data.length) return done(pos, 0);

  if (format === 3) {
    // Only frames of this segment's life count: a later one (higher index, this log number,
    // valid under the salt) means the log was damaged, not ended.
    const lo = logNumber % 0x1_0000_0000;
    for (let p = pos + 1; p + headerBytes <= data.length; p++) {
      if (data.readUInt32LE(p + 8) !== lo) continue;
      const index = data.readUInt32LE(p + 4);
      if (index > frames && frameAtV3(data, p, index, seed, logNumber) > 0) {
        throw new CorruptionError('WAL frame checksum mismatch or malformed frame before valid data', where(pos));
      }
    }
    // A frame header of this segment that is not valid: a write of this life was torn (the
    // last segment) or damaged (any other). Anything else is where this life's log ends.
    if (namesLog(data, pos, logNumber) && data.readUInt32LE(pos) !== 0) {
      if (!opts.isLastSegment) throw new CorruptionError('WAL frame checksum mismatch or malformed frame in a segment before the last', where(pos));
      const len = data.readUInt32LE(pos);
      const claimed = len <= WAL_MAX_FRAME_BYTES ? headerBytes + len : headerBytes;
      return done(pos, Math.min(claimed, data.length - pos), Math.max(0, data.length - pos - claimed));
    }
    return done(pos, 0, data.length - pos);
  }

  // Something invalid at pos. Is there a valid frame after it? Then it is damage, not a tear.
  let damaged = !opts.isLastSegment;
  for (let p = pos + 1; !damaged && p + headerBytes <= data.length; p++) {
    if (format === 2) {
      // Only a later frame of this segment counts: a higher index, and valid under the salt.
      const index = data.readUInt32LE(p + 4);
      damaged = index > frames && frameAtV2(data, p, index, seed) > 0;
    } else {
      damaged = frameAtV1(data, p) > 0;
    }
  }
  if (damaged) throw new CorruptionError('WAL frame checksum mismatch or malformed frame before valid data', where(pos));
  return cutTail(pos);
}
