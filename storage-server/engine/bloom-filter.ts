// A bloom filter that is stored as raw bytes inside an SSTable and used in place, with no
// parsing on load. Double hashing from one 32-bit murmur3 hash (the LevelDB scheme:
// h += delta, delta = rotr(h, 17)). With 10 bits per key and k = 7 the false-positive
// rate is about 0.8%. Format: bit array, then one byte holding k. Immutable once built.

import murmurhash from 'murmurhash';

/** The hash every filter uses: compute once per lookup and pass to mayContain(). */
export function bloomHash(key: Uint8Array): number {
  return murmurhash.v3(key as unknown as string, 0xbc9f1d34);
}

/** Builds a filter from key hashes. */
export function buildBloomFilter(hashes: ArrayLike<number>, count: number, bitsPerKey: number): Buffer {
  const k = Math.max(1, Math.min(30, Math.round(bitsPerKey * 0.69)));
  let bits = Math.max(64, count * bitsPerKey);
  const bytes = Math.ceil(bits / 8);
  bits = bytes * 8;
  const out = Buffer.alloc(bytes + 1);
  for (let i = 0; i < count; i++) {
    let h = hashes[i]! >>> 0;
    const delta = ((h >>> 17) | (h << 15)) >>> 0;
    for (let j = 0; j < k; j++) {
      const pos = h % bits;
      out[pos >>> 3]! |= 1 << (pos & 7);
      h = (h + delta) >>> 0;
    }
  }
  out[bytes] = k;
  return out;
}

/** True when the key with hash `hash` may be in the filter; false means certainly not. */
export function bloomMayContain(filter: Buffer, hash: number): boolean {
  const bytes = filter.length - 1;
  if (bytes <= 0) return true;
  const k = filter[bytes]!;
  if (k > 30) return true; // reserved for future encodings: treat as "match everything"
  const bits = bytes * 8;
  let h = hash >>> 0;
  const delta = ((h >>> 17) | (h << 15)) >>> 0;
  for (let j = 0; j < k; j++) {
    const pos = h % bits;
    if ((filter[pos >>> 3]! & (1 << (pos & 7))) === 0) return false;
    h = (h + delta) >>> 0;
  }
  return true;
}
