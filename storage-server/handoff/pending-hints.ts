// What the hint store holds, counted: live hints and their bytes per target node, each
// hint counted in the bucket of its expiry time so that hints leave the counts the moment
// the engine stops returning them (expired), as well as when they are deleted (delivered,
// dropped) or rewritten with a later expiry. Expired buckets are swept lazily, on every
// read of the counts, through a min-heap of expiry times. Synchronous; single-threaded.

interface Bucket {
  count: number;
  bytes: number;
}

/** One expiry bucket in the heap: target and expiry time (ms since epoch). */
interface HeapEntry {
  atMs: number;
  target: string;
}

export class PendingHints {
  /** target -> expiresAtMs -> hints expiring then. */
  private readonly buckets = new Map<string, Map<number, Bucket>>();
  private readonly totals = new Map<string, Bucket>();
  /** Min-heap by atMs; an entry may outlive its bucket (then it is skipped). */
  private readonly heap: HeapEntry[] = [];
  /** Hints that left the counts by expiring, since start. */
  expired = 0;

  /** Counts one live hint for `target` expiring at `expiresAtMs` (0 = never) holding `bytes`. */
  add(target: string, expiresAtMs: number, bytes: number): void {
    let byExpiry = this.buckets.get(target);
    if (!byExpiry) this.buckets.set(target, (byExpiry = new Map()));
    let b = byExpiry.get(expiresAtMs);
    if (!b) {
      byExpiry.set(expiresAtMs, (b = { count: 0, bytes: 0 }));
      if (expiresAtMs > 0) this.push({ atMs: expiresAtMs, target });
    }
    b.count++;
    b.bytes += bytes;
    const tot = this.totals.get(target);
    if (tot) {
      tot.count++;
      tot.bytes += bytes;
    } else this.totals.set(target, { count: 1, bytes });
  }

  /**
   * Uncounts one hint that add() counted with the same arguments and that is being deleted
   * or rewritten. A hint whose bucket was already swept (it expired meanwhile) is not
   * counted any more, so nothing changes.
   */
  remove(target: string, expiresAtMs: number, bytes: number): void {
    const b = this.buckets.get(target)?.get(expiresAtMs);
    if (!b || b.count === 0) return;
    b.count--;
    b.bytes -= bytes;
    if (b.count === 0) this.buckets.get(target)!.delete(expiresAtMs);
    this.subtract(target, 1, bytes);
  }

  /** Live hints per target at `nowMs` (targets with none are left out). */
  byTarget(nowMs: number): Map<string, number> {
    this.sweep(nowMs);
    const out = new Map<string, number>();
    for (const [t, b] of this.totals) out.set(t, b.count);
    return out;
  }

  /** Live hints for every target at `nowMs`. */
  total(nowMs: number): number {
    this.sweep(nowMs);
    let n = 0;
    for (const b of this.totals.values()) n += b.count;
    return n;
  }

  /** Bytes of the live hints at `nowMs` (what the byte budget limits). */
  bytes(nowMs: number): number {
    this.sweep(nowMs);
    let n = 0;
    for (const b of this.totals.values()) n += b.bytes;
    return n;
  }

  /** Uncounts every bucket that expired at or before `nowMs` (the engine's rule: live while expiresAtMs > now). */
  private sweep(nowMs: number): void {
    const h = this.heap;
    while (h.length > 0 && h[0]!.atMs <= nowMs) {
      const e = this.pop();
      const byExpiry = this.buckets.get(e.target);
      const b = byExpiry?.get(e.atMs);
      if (!b) continue;
      byExpiry!.delete(e.atMs);
      if (byExpiry!.size === 0) this.buckets.delete(e.target);
      this.expired += b.count;
      this.subtract(e.target, b.count, b.bytes);
    }
  }

  private subtract(target: string, count: number, bytes: number): void {
    const tot = this.totals.get(target);
    if (!tot) return;
    tot.count -= count;
    tot.bytes -= bytes;
    if (tot.count <= 0) {
      this.totals.delete(target);
      if (this.buckets.get(target)?.size === 0) this.buckets.delete(target);
    }
  }

  private push(e: HeapEntry): void {
    const h = this.heap;
    h.push(e);
    let i = h.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (h[p]!.atMs <= e.atMs) break;
      h[i] = h[p]!;
      i = p;
    }
    h[i] = e;
  }

  private pop(): HeapEntry {
    const h = this.heap;
    const top = h[0]!;
    const last = h.pop()!;
    if (h.length > 0) {
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        if (l >= h.length) break;
        const r = l + 1;
        const c = r < h.length && h[r]!.atMs < h[l]!.atMs ? r : l;
        if (h[c]!.atMs >= last.atMs) break;
        h[i] = h[c]!;
        i = c;
      }
      h[i] = last;
    }
    return top;
  }
}
