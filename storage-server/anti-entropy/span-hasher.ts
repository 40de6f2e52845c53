// Answers Merkle questions about this node's data: the hash of a token span (XOR of the
// digests of every entry in it: whole leaves come from the incremental leaf hashes, the
// partial leaves at a span's edges from a scan) and the (key, digest) list of a span.
// A span inside one leaf is always answered from a scan — the exact data — and a scan that
// covers a whole leaf also corrects that leaf's incremental hash when no write raced it.
// Long work yields to the event loop every few thousand leaves or entries, so a request
// covering much of the ring never holds the node (it stays bounded by the server's limits).
// A span that overlaps a quarantined (corrupt, unrepaired) range of this node is poisoned:
// its hash is XORed with a value random to this process, so it differs from every other
// replica's and a repair round descends into exactly those leaves.

import { randomBytes } from 'node:crypto';
import { setImmediate as yieldToLoop } from 'node:timers/promises';

import type { ReplicaStore } from '../replica-store.js';
import type { Digest } from './leaf-hashes.js';
import { LEAF_SPAN, leafOf } from './leaf-hashes.js';
import type { Span } from './token-ranges.js';

export class SpanHasher {
  readonly counters = { spanHashes: 0, scannedEntries: 0, leafCorrections: 0, poisonedSpans: 0 };
  /** XORed into the hash of a span that overlaps a suspect range (never zero). */
  private readonly poison: Digest = [randomBytes(4).readUInt32LE(0) | 1, randomBytes(4).readUInt32LE(0) | 1];

  constructor(private readonly store: ReplicaStore) {}

  get ready(): boolean {
    return this.store.leaves.ready;
  }

  /** XOR of the digests of every entry with a token in `s` (poisoned over a suspect range). */
  async spanHash(s: Span): Promise<Digest> {
    const d = await this.dataHash(s);
    for (const q of this.store.suspects()) {
      if (q.tokens[0] <= s[1] && q.tokens[1] >= s[0]) {
        this.counters.poisonedSpans++;
        return [(d[0] ^ this.poison[0]) >>> 0, (d[1] ^ this.poison[1]) >>> 0];
      }
    }
    return d;
  }

  /**
   * Sets the incremental hashes of the leaves of `s` to what a scan of their data finds
   * (after a suspect range was repaired: its writes could not take out the unreadable
   * versions' digests).
   */
  async correctLeaves(s: Span): Promise<void> {
    for (let l = leafOf(s[0]); l <= leafOf(s[1]); l++) await this.scanHash([l * LEAF_SPAN, (l + 1) * LEAF_SPAN - 1], l);
  }

  private async dataHash(s: Span): Promise<Digest> {
    this.counters.spanHashes++;
    let hi = 0;
    let lo = 0;
    const firstLeaf = Math.floor(s[0] / LEAF_SPAN);
    const lastLeaf = Math.floor(s[1] / LEAF_SPAN);
    const single = firstLeaf === lastLeaf;
    for (let l = firstLeaf; l <= lastLeaf; l++) {
      if (((l - firstLeaf) & 4095) === 4095) await yieldToLoop();
      const from = Math.max(s[0], l * LEAF_SPAN);
      const to = Math.min(s[1], (l + 1) * LEAF_SPAN - 1);
      const whole = from === l * LEAF_SPAN && to === (l + 1) * LEAF_SPAN - 1;
      let d: Digest;
      if (whole && !single) d = this.store.leaves.leaf(l);
      else d = await this.scanHash([from, to], whole ? l : -1);
      hi ^= d[0];
      lo ^= d[1];
    }
    return [hi >>> 0, lo >>> 0];
  }

  /** Hash of a span from the data itself; fixes the leaf's incremental hash when `leaf` >= 0. */
  private async scanHash(s: Span, leaf: number): Promise<Digest> {
    const writesBefore = leaf >= 0 ? this.store.leaves.writesTo(leaf) : 0;
    let hi = 0;
    let lo = 0;
    let n = 0;
    for await (const e of this.store.scan(s[0], s[1])) {
      hi ^= e.digest[0];
      lo ^= e.digest[1];
      this.counters.scannedEntries++;
      if ((++n & 8191) === 0) await yieldToLoop();
    }
    const d: Digest = [hi >>> 0, lo >>> 0];
    if (leaf >= 0 && this.store.leaves.ready && this.store.leaves.writesTo(leaf) === writesBefore) {
      if (this.store.leaves.correct(leaf, d)) this.counters.leafCorrections++;
    }
    return d;
  }

  /** The entries of a span as [key, digest] pairs, in token order (at most `limit`). */
  async spanKeys(s: Span, limit: number): Promise<[Buffer, number, number][]> {
    const out: [Buffer, number, number][] = [];
    for await (const e of this.store.scan(s[0], s[1], { limit })) {
      out.push([e.key, e.digest[0], e.digest[1]]);
      this.counters.scannedEntries++;
      if ((out.length & 8191) === 0) await yieldToLoop();
    }
    return out;
  }
}
