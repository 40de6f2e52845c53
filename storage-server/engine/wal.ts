// The write-ahead log: the writer (appends frames of records) and the reader (replays a
// segment, truncating a torn tail, reporting damage anywhere else). Format in
// ./log-format.md. A WalWriter's appends must not overlap: the engine's group-commit
// leader is its only caller and awaits each append before the next.

import { CorruptionError } from '../../sdk/errors.js';
import { crc32 } from './coding.js';
import type { FileHandle } from './file-system.js';
import type { EngineRecord } from './record.js';
import { decodeRecord, recordSize, writeRecord } from './record.js';

export const WAL_FRAME_HEADER_BYTES = 8;
/** Largest frame payload a reader accepts (a batch of up to 64 MiB). */
export const WAL_MAX_FRAME_BYTES = 64 * 1024 * 1024;

/** Encodes a batch of records as one frame. */
export function encodeFrame(records: readonly EngineRecord[]): Buffer {
  let len = 0;
  for (const r of records) len += recordSize(r);
  const buf = Buffer.allocUnsafe(WAL_FRAME_HEADER_BYTES + len);
  let p = WAL_FRAME_HEADER_BYTES;
  for (const r of records) p = writeRecord(buf, p, r);
  sealFrame(buf);
  return buf;
}

/** Fills in the length and checksum of a frame whose payload is already in place. */
function sealFrame(frame: Buffer): void {
  sealFrameAt(frame, 0, frame.length);
}

/**
 * Seals the frame at buf[start, end) whose payload (records from start + 8 on) is already
 * in place — the group-commit leader encodes a group's records straight into the memtable
 * arena — and returns it as a view.
 */
export function sealFrameAt(buf: Buffer, start: number, end: number): Buffer {
  const frame = buf.subarray(start, end);
  frame.writeUInt32LE(end - start - WAL_FRAME_HEADER_BYTES, 0);
  frame.writeUInt32LE(crc32(frame.subarray(WAL_FRAME_HEADER_BYTES), crc32(frame.subarray(0, 4))), 4);
  return frame;
}

/**
 * Frames up to this size are appended with a synchronous write(): copying a few KiB into
 * the page cache takes microseconds, while an async write costs a thread-pool round trip
 * (~10-20 us of event-loop CPU, and the group waits for it). Larger frames go async so the
 * event loop never waits on a big copy.
 */
export const WAL_SYNC_WRITE_MAX_BYTES = 256 * 1024;

/** Appends frames to one WAL segment. */
export class WalWriter {
  constructor(
    readonly fh: FileHandle,
    readonly number: number,
    private offset = 0,
  ) {}

  get sizeBytes(): number {
    return this.offset;
  }

  /**
   * Appends `buf` (one or more whole frames): synchronously when it is small (returns
   * undefined; the bytes are in the OS when it returns), else returns a promise.
   * REQUIRES: the previous append has completed.
   */
  append(buf: Buffer): Promise<void> | undefined {
    const at = this.offset;
    if (buf.length <= WAL_SYNC_WRITE_MAX_BYTES) {
      this.fh.writeSync(buf, at);
      this.offset = at + buf.length;
      return undefined;
    }
    return this.fh.write(buf, at).then(() => {
      this.offset = at + buf.length;
    });
  }

  sync(): Promise<void> {
    return this.fh.sync();
  }

  close(): Promise<void> {
    return this.fh.close();
  }
}

export interface WalReplay {
  records: number;
  frames: number;
  /** Bytes at the end that were a torn write and have been cut off. */
  tornTailBytes: number;
  /** Offset where valid data ends. */
  validBytes: number;
}

function frameAt(buf: Buffer, pos: number): number {
  // Returns the frame's total length when a whole, checksum-valid frame starts at pos; else -1.
  if (pos + WAL_FRAME_HEADER_BYTES > buf.length) return -1;
  const len = buf.readUInt32LE(pos);
  if (len === 0 || len > WAL_MAX_FRAME_BYTES || pos + WAL_FRAME_HEADER_BYTES + len > buf.length) return -1;
  const want = buf.readUInt32LE(pos + 4);
  const got = crc32(buf.subarray(pos + WAL_FRAME_HEADER_BYTES, pos + WAL_FRAME_HEADER_BYTES + len), crc32(buf.subarray(pos, pos + 4)));
  return got === want ? WAL_FRAME_HEADER_BYTES + len : -1;
}

/**
 * Replays the segment `fh`, calling `onRecord` for every record in order. The first
 * invalid frame ends the log when nothing valid follows it (a torn tail, from a crash
 * mid-write): when `truncateTail` it is cut off and counted in `tornTailBytes`. A bad
 * frame followed by a valid one is damage inside the log and throws CorruptionError
 * naming the file and offset. `isLastSegment` false makes any bad frame an error.
 */
export async function replayWal(
  fh: FileHandle,
  opts: { isLastSegment: boolean; truncateTail: boolean },
  onRecord: (r: EngineRecord) => void,
): Promise<WalReplay> {
  const size = await fh.size();
  const buf = Buffer.allocUnsafe(size);
  let got = 0;
  while (got < size) {
    const n = await fh.read(buf, got, size - got, got);
    if (n === 0) break;
    got += n;
  }
  const data = buf.subarray(0, got);
  let pos = 0;
  let frames = 0;
  let records = 0;
  while (pos < data.length) {
    const flen = frameAt(data, pos);
    if (flen < 0) break;
    const end = pos + flen;
    const cursor = { pos: pos + WAL_FRAME_HEADER_BYTES };
    while (cursor.pos < end) {
      onRecord(decodeRecord(data, cursor, { file: fh.path, baseOffset: 0 }, true));
      records++;
    }
    if (cursor.pos !== end) throw new CorruptionError('frame payload does not end on a record boundary', { file: fh.path, offset: pos });
    frames++;
    pos = end;
  }
  if (pos < data.length) {
    // Something invalid at pos. Is there a valid frame after it? Then it is damage, not a tear.
    let damaged = !opts.isLastSegment;
    if (!damaged) {
      for (let p = pos + 1; p + WAL_FRAME_HEADER_BYTES <= data.length; p++) {
        if (frameAt(data, p) > 0) {
          damaged = true;
          break;
        }
      }
    }
    if (damaged) {
      throw new CorruptionError('WAL frame checksum mismatch or malformed frame before valid data', {
        file: fh.path,
        offset: pos,
      });
    }
    if (opts.truncateTail) {
      await fh.truncate(pos);
      await fh.sync();
    }
  }
  return { records, frames, tornTailBytes: data.length - pos, validBytes: pos };
}
