// The keys a node serves most, over a sliding window: one Space-Saving sketch
// (space-saving.ts) per sub-window (default 6 of 10 s: the last 50-60 s), rotated by the
// clock; the top-k merges the sub-windows. Fed by every operation of the batch requests the
// node applies (client reads and writes, read repairs, hint replays) and read by /metrics
// (the top 10, keys truncated and escaped), the status route (the dashboard's panel) and
// GET /internal/v1/hot-keys (`ringkv hotkeys`). Memory is fixed: subWindows x capacity
// counters. Single-threaded; time comes from the injected clock.

import { SpaceSaving } from './space-saving.js';

export interface HotKeysOptions {
  /** Length of one sub-window. Default 10,000 ms. */
  subWindowMs: number;
  /** Sub-windows kept: the window is (subWindows - 1) to subWindows of them. Default 6. */
  subWindows: number;
  /** Counters per sub-window (the top-k asked for should stay well below it). Default 256. */
  capacity: number;
}

export const hotKeysDefaults: HotKeysOptions = { subWindowMs: 10_000, subWindows: 6, capacity: 256 };

/** One hot key as the routes report it. */
export interface HotKey {
  /** The key, base64 (exact: merge on this). */
  key: string;
  /** The key for people: printable ASCII as is, other bytes as \xHH, truncated with "…". */
  display: string;
  /** Estimated operations on the key in the window. */
  count: number;
  /** The true count is within ±error of count. */
  error: number;
  /** Reads and writes seen (lower bounds). */
  reads: number;
  writes: number;
}

export interface HotKeysReport {
  /** The time the counts cover, ms. */
  windowMs: number;
  /** Operations counted in that time (all keys). */
  total: number;
  keys: HotKey[];
}

interface SubWindow {
  index: number;
  sketch: SpaceSaving;
}

export class HotKeys {
  private readonly o: HotKeysOptions;
  private readonly windows: SubWindow[] = [];

  constructor(
    private readonly nowMs: () => number,
    opts: Partial<HotKeysOptions> = {},
  ) {
    this.o = { ...hotKeysDefaults, ...opts };
    if (!(this.o.subWindowMs > 0) || !Number.isInteger(this.o.subWindows) || this.o.subWindows < 1) throw new RangeError('bad hot-key window options');
  }

  get options(): Readonly<HotKeysOptions> {
    return this.o;
  }

  /** Counts one operation on `key` (a write when `write`). */
  record(key: Uint8Array, write: boolean): void {
    const b = Buffer.isBuffer(key) ? key : Buffer.from(key.buffer, key.byteOffset, key.byteLength);
    this.current().sketch.offer(b.toString('latin1'), write);
  }

  /** The `k` most frequent keys of the window, most frequent first. */
  top(k: number): HotKeysReport {
    this.current();
    const merged = new Map<string, { count: number; error: number; reads: number; writes: number; seen: number }>();
    let total = 0;
    for (const w of this.windows) {
      total += w.sketch.total;
      for (const e of w.sketch.entries()) {
        const m = merged.get(e.item);
        if (m) {
          m.count += e.count;
          m.error += e.error;
          m.reads += e.reads;
          m.writes += e.writes;
          m.seen++;
        } else merged.set(e.item, { count: e.count, error: e.error, reads: e.reads, writes: e.writes, seen: 1 });
      }
    }
    // A key missing from a full sub-window's sketch may have occurred there up to its minimum count.
    const missing = (item: string) => {
      let add = 0;
      for (const w of this.windows) if (!w.sketch.has(item)) add += w.sketch.minCount;
      return add;
    };
    const ranked = [...merged].sort((a, b) => b[1].count - a[1].count || (a[0] < b[0] ? -1 : 1)).slice(0, Math.max(0, k));
    const keys = ranked.map(([item, m]): HotKey => {
      const raw = Buffer.from(item, 'latin1');
      return {
        key: raw.toString('base64'),
        display: displayKey(raw),
        count: m.count,
        error: m.error + (m.seen < this.windows.length ? missing(item) : 0),
        reads: m.reads,
        writes: m.writes,
      };
    });
    const oldest = this.windows[0];
    const windowMs = oldest ? Math.max(0, this.nowMs() - oldest.index * this.o.subWindowMs) : 0;
    return { windowMs: Math.min(windowMs, this.o.subWindows * this.o.subWindowMs), total, keys };
  }

  /** The sub-window of now (dropping those that left the window). */
  private current(): SubWindow {
    const index = Math.floor(this.nowMs() / this.o.subWindowMs);
    while (this.windows.length > 0 && this.windows[0]!.index <= index - this.o.subWindows) this.windows.shift();
    let last = this.windows[this.windows.length - 1];
    if (!last || last.index !== index) {
      last = { index, sketch: new SpaceSaving(this.o.capacity) };
      this.windows.push(last);
    }
    return last;
  }
}

/**
 * A key for people and metric labels: printable ASCII kept (a backslash doubled), other
 * bytes as \xHH, cut at `maxChars` with "…".
 */
export function displayKey(key: Buffer, maxChars = 48): string {
  let out = '';
  for (const b of key) {
    const s = b === 0x5c ? '\\\\' : b >= 0x20 && b < 0x7f ? String.fromCharCode(b) : `\\x${b.toString(16).padStart(2, '0')}`;
    if (out.length + s.length > maxChars) return `${out}…`;
    out += s;
  }
  return out;
}
