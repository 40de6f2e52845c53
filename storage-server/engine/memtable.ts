// The memtable: the newest writes, in memory, keyed by the latin1 string of the key
// bytes (a latin1 string compares like its bytes, and hashes fast in a Map). Sorted order
// is computed on demand and cached until a new key arrives. Single-threaded by nature;
// an immutable memtable (being flushed) is never written again.

import type { EngineRecord } from './record.js';
import { recordMemoryBytes } from './record.js';

export class Memtable {
  private readonly map = new Map<string, EngineRecord>();
  private sorted: string[] | undefined;
  /** Approximate bytes held. */
  bytes = 0;
  minSeq = Number.MAX_SAFE_INTEGER;
  maxSeq = 0;

  /** `walNumber` is the WAL segment whose records this memtable holds. */
  constructor(readonly walNumber: number) {}

  get size(): number {
    return this.map.size;
  }

  put(k: string, r: EngineRecord): void {
    const prev = this.map.get(k);
    if (prev) this.bytes -= recordMemoryBytes(prev);
    else this.sorted = undefined;
    this.map.set(k, r);
    this.bytes += recordMemoryBytes(r);
    if (r.seq < this.minSeq) this.minSeq = r.seq;
    if (r.seq > this.maxSeq) this.maxSeq = r.seq;
  }

  get(k: string): EngineRecord | undefined {
    return this.map.get(k);
  }

  /** Keys in byte order (cached). */
  sortedKeys(): string[] {
    if (!this.sorted) this.sorted = [...this.map.keys()].sort();
    return this.sorted;
  }

  /** A snapshot of the records with keys in [from, to) (latin1 strings; undefined = unbounded), sorted. */
  range(from: string | undefined, to: string | undefined): EngineRecord[] {
    const keys = this.sortedKeys();
    let lo = 0;
    if (from !== undefined) lo = lowerBound(keys, from);
    const out: EngineRecord[] = [];
    for (let i = lo; i < keys.length; i++) {
      const k = keys[i]!;
      if (to !== undefined && k >= to) break;
      out.push(this.map.get(k)!);
    }
    return out;
  }
}

/** First index i with keys[i] >= k. */
export function lowerBound(keys: readonly string[], k: string): number {
  let lo = 0;
  let hi = keys.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (keys[mid]! < k) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
