// The incremental part of a node's Merkle trees: the token circle (2^32) cut into 2^16 fixed
// leaves of 65,536 tokens, and for each leaf the XOR of a 64-bit digest of every (key,
// version) the node stores in it. XOR makes the hash of a set updatable in O(1) per write
// (remove the old digest, add the new one), so trees are never rebuilt from the data to
// answer a comparison. A full rebuild by scanning (rate-limited, in the background) is the
// safety net for anything the incremental path cannot see (compaction dropping purged
// tombstones). Single-threaded; writes and rebuilds are plain synchronous updates.

import murmurhash from 'murmurhash';

export const LEAF_BITS = 16;
export const LEAF_COUNT = 1 << LEAF_BITS;
/** Tokens per leaf. */
export const LEAF_SPAN = 2 ** (32 - LEAF_BITS);

/** A 64-bit digest as two 32-bit halves. */
export type Digest = readonly [number, number];

/** The digest of one stored (key, version): murmur3 of key and version with two seeds. */
export function entryDigest(key: Buffer, version: Buffer): Digest {
  const buf = Buffer.allocUnsafe(4 + key.length + version.length);
  buf.writeUInt32BE(key.length, 0);
  key.copy(buf, 4);
  version.copy(buf, 4 + key.length);
  const m = murmurhash.v3 as unknown as (k: Uint8Array, seed: number) => number;
  return [m(buf, 0x9747b28c) >>> 0, m(buf, 0x5bd1e995) >>> 0];
}

export function leafOf(token: number): number {
  return token >>> (32 - LEAF_BITS);
}

export class LeafHashes {
  private hi = new Uint32Array(LEAF_COUNT);
  private lo = new Uint32Array(LEAF_COUNT);
  /** Deltas recorded while a rebuild scans, applied to its result (see rebuild()). */
  private recording: { leaf: number; d: Digest }[] | undefined;
  /** Updates per leaf, so a scan can tell whether a write raced it. */
  private readonly writes = new Uint32Array(LEAF_COUNT);
  /** True once a full build has completed since start. */
  ready = false;

  /** Adds (or removes: XOR is its own inverse) one entry's digest. */
  toggle(token: number, d: Digest): void {
    const leaf = leafOf(token);
    this.hi[leaf]! ^= d[0];
    this.lo[leaf]! ^= d[1];
    this.writes[leaf]!++;
    this.recording?.push({ leaf, d });
  }

  /** Updates applied to a leaf since start (wraps; compare for equality only). */
  writesTo(leaf: number): number {
    return this.writes[leaf]!;
  }

  /**
   * Sets a leaf to the hash a scan of its data found (when no write raced the scan and no
   * rebuild is running). Returns true when the incremental hash had drifted.
   */
  correct(leaf: number, d: Digest): boolean {
    if (this.recording) return false;
    if (this.hi[leaf] === d[0] && this.lo[leaf] === d[1]) return false;
    this.hi[leaf] = d[0];
    this.lo[leaf] = d[1];
    return true;
  }

  leaf(i: number): Digest {
    return [this.hi[i]!, this.lo[i]!];
  }

  /**
   * Replaces the leaves with the result of a full scan. `scan` must iterate a snapshot taken
   * synchronously when its first item is requested (the engine's iterate() does); updates
   * made after that moment are recorded and replayed on top of the scan's result.
   */
  async rebuild(scan: () => AsyncIterator<{ token: number; digest: Digest }>): Promise<number> {
    const hi = new Uint32Array(LEAF_COUNT);
    const lo = new Uint32Array(LEAF_COUNT);
    this.recording = [];
    let n = 0;
    try {
      const it = scan();
      for (let r = await it.next(); !r.done; r = await it.next()) {
        const leaf = leafOf(r.value.token);
        hi[leaf]! ^= r.value.digest[0];
        lo[leaf]! ^= r.value.digest[1];
        n++;
      }
      for (const { leaf, d } of this.recording) {
        hi[leaf]! ^= d[0];
        lo[leaf]! ^= d[1];
      }
      this.hi = hi;
      this.lo = lo;
      this.ready = true;
      return n;
    } finally {
      this.recording = undefined;
    }
  }
}
