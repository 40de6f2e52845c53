// Little binary helpers shared by the WAL, the SSTable and the record format:
// LEB128 varints for non-negative integers up to 2^53 and CRC-32 (zlib's, native).
// Pure functions; no shared state.

import zlib from 'node:zlib';

/** Bytes needed to write `n` (0 <= n <= 2^53) as a varint. */
export function varintSize(n: number): number {
  let size = 1;
  while (n >= 0x80) {
    n = Math.floor(n / 128);
    size++;
  }
  return size;
}

/** Writes `n` as a varint at `pos`; returns the position after it. */
export function putVarint(buf: Buffer, pos: number, n: number): number {
  while (n >= 0x80) {
    buf[pos++] = (n % 128) | 0x80;
    n = Math.floor(n / 128);
  }
  buf[pos++] = n;
  return pos;
}

/**
 * Reads a varint at `pos`. Returns the value; the position after it is left in
 * `cursor.pos`. Throws RangeError on a truncated or overlong varint.
 */
export function getVarint(buf: Uint8Array, cursor: { pos: number }): number {
  let pos = cursor.pos;
  let result = 0;
  let mul = 1;
  for (let i = 0; i < 8; i++) {
    if (pos >= buf.length) throw new RangeError('truncated varint');
    const b = buf[pos++]!;
    result += (b & 0x7f) * mul;
    if (b < 0x80) {
      cursor.pos = pos;
      return result;
    }
    mul *= 128;
  }
  throw new RangeError('varint too long');
}

/** CRC-32 (IEEE) of `data`, continuing from `seed`. */
export function crc32(data: Uint8Array, seed = 0): number {
  return zlib.crc32(data, seed) >>> 0;
}

/** Writes a non-negative integer below 2^53 as 8 bytes little-endian. */
export function putUint64(buf: Buffer, pos: number, n: number): number {
  buf.writeUInt32LE(n % 0x100000000, pos);
  buf.writeUInt32LE(Math.floor(n / 0x100000000), pos + 4);
  return pos + 8;
}

export function getUint64(buf: Buffer, pos: number): number {
  return buf.readUInt32LE(pos) + buf.readUInt32LE(pos + 4) * 0x100000000;
}

/**
 * Compares a[aStart, aEnd) with b[bStart, bEnd) as unsigned bytes, like Buffer.compare
 * but without making subarrays or crossing into C++ (cheaper for short keys).
 */
export function compareBytes(a: Uint8Array, aStart: number, aEnd: number, b: Uint8Array, bStart: number, bEnd: number): number {
  const aLen = aEnd - aStart;
  const bLen = bEnd - bStart;
  const n = aLen < bLen ? aLen : bLen;
  for (let i = 0; i < n; i++) {
    const d = a[aStart + i]! - b[bStart + i]!;
    if (d !== 0) return d;
  }
  return aLen - bLen;
}
