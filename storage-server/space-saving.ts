// Space-Saving (Metwally, Agrawal, El Abbadi, "Efficient computation of frequent and top-k
// elements in data streams", ICDT 2005): the most frequent items of a stream in a fixed
// number of counters. A counted item adds one to its counter; a new item, when every counter
// is taken, takes over the smallest one (count min + 1, error min). Every item whose true
// count exceeds the total / capacity is held, and a held item's true count lies in
// [count - error, count]. Counters sit in a binary min-heap by count (O(log capacity) per
// item). Each counter also splits its own hits into reads and writes (since it was taken).
// Single-threaded; no I/O.

export interface SpaceSavingEntry {
  /** The item (a key as a latin1 string: one char per byte). */
  item: string;
  /** Estimated count: at least the true count, at most `error` above it. */
  count: number;
  /** Most the count may exceed the true count by. */
  error: number;
  /** Reads and writes counted since this counter took the item (lower bounds). */
  reads: number;
  writes: number;
}

interface Counter extends SpaceSavingEntry {
  /** Position in the heap. */
  at: number;
}

export class SpaceSaving {
  private readonly byItem = new Map<string, Counter>();
  private readonly heap: Counter[] = [];
  /** Items counted in all. */
  total = 0;

  constructor(readonly capacity: number) {
    if (!Number.isInteger(capacity) || capacity < 1) throw new RangeError(`capacity must be a positive integer, got ${capacity}`);
  }

  /** Counts one occurrence of `item` (a write when `write`). */
  offer(item: string, write = false): void {
    this.total++;
    let c = this.byItem.get(item);
    if (c) {
      c.count++;
    } else if (this.heap.length < this.capacity) {
      c = { item, count: 1, error: 0, reads: 0, writes: 0, at: this.heap.length };
      this.heap.push(c);
      this.byItem.set(item, c);
      this.up(c.at);
    } else {
      // Take over the smallest counter.
      c = this.heap[0]!;
      this.byItem.delete(c.item);
      c.item = item;
      c.error = c.count;
      c.count++;
      c.reads = 0;
      c.writes = 0;
      this.byItem.set(item, c);
    }
    if (write) c.writes++;
    else c.reads++;
    this.down(c.at);
  }

  /** The smallest count held (0 while counters are free): the most an item not held can have occurred. */
  get minCount(): number {
    return this.heap.length < this.capacity ? 0 : this.heap[0]!.count;
  }

  /** True when `item` holds a counter. */
  has(item: string): boolean {
    return this.byItem.has(item);
  }

  get size(): number {
    return this.heap.length;
  }

  /** The held items, most frequent first (copies). */
  entries(): SpaceSavingEntry[] {
    return this.heap
      .map(({ item, count, error, reads, writes }) => ({ item, count, error, reads, writes }))
      .sort((a, b) => b.count - a.count || (a.item < b.item ? -1 : a.item > b.item ? 1 : 0));
  }

  private up(i: number): void {
    const h = this.heap;
    const c = h[i]!;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (h[p]!.count <= c.count) break;
      h[i] = h[p]!;
      h[i]!.at = i;
      i = p;
    }
    h[i] = c;
    c.at = i;
  }

  private down(i: number): void {
    const h = this.heap;
    const n = h.length;
    const c = h[i]!;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= n) break;
      const r = l + 1;
      const m = r < n && h[r]!.count < h[l]!.count ? r : l;
      if (h[m]!.count >= c.count) break;
      h[i] = h[m]!;
      h[i]!.at = i;
      i = m;
    }
    h[i] = c;
    c.at = i;
  }
}
