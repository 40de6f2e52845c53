// Per-replica read latency as this client sees it (from handing a Get to the batcher to its
// answer), over a sliding window, for hedged reads (sdk/hedging.ts). Each node has three
// HdrHistograms (hdr-histogram-js, 2 significant digits, 1 µs to 60 s: ~11 KiB each): the
// current half-window, the previous one, and their sum, which percentiles are read from;
// when a half-window ends, the oldest half is subtracted from the sum. So memory is fixed
// per node (~34 KiB) and a percentile covers the last half to whole window. Percentiles are
// cached per node for `refreshMs` (reading one walks the histogram: a few µs). Single-
// threaded like the client that owns it; time comes from the injected monotonic clock.

import * as hdr from 'hdr-histogram-js';
import type { Histogram } from 'hdr-histogram-js';

export interface ReplicaLatencyOptions {
  /** The window percentiles cover (between half of it and all of it). Default 10,000 ms. */
  windowMs: number;
  /** A node with fewer samples in the window has no estimate (undefined). Default 20. */
  minSamples: number;
  /** How long a computed percentile is reused. Default 100 ms. */
  refreshMs: number;
}

export const replicaLatencyDefaults: ReplicaLatencyOptions = { windowMs: 10_000, minSamples: 20, refreshMs: 100 };

/** Longest latency a histogram holds (longer samples are recorded as this). */
const HIGHEST_MICROS = 60_000_000;

function newHistogram(): Histogram {
  return hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: HIGHEST_MICROS, numberOfSignificantValueDigits: 2 });
}

class NodeWindow {
  current = newHistogram();
  previous = newHistogram();
  sum = newHistogram();
  currentStartMs: number;
  /** Cached percentiles: percentile -> [computed at, value in ms]. */
  readonly cache = new Map<number, [number, number]>();

  constructor(nowMs: number) {
    this.currentStartMs = nowMs;
  }
}

export class ReplicaLatency {
  private readonly nodes = new Map<string, NodeWindow>();
  private readonly o: ReplicaLatencyOptions;

  constructor(
    /** Monotonic milliseconds (performance.now in the client; a fake clock in tests). */
    private readonly nowMs: () => number,
    opts: Partial<ReplicaLatencyOptions> = {},
  ) {
    this.o = { ...replicaLatencyDefaults, ...opts };
    if (!(this.o.windowMs > 0) || !(this.o.minSamples >= 1) || !(this.o.refreshMs >= 0)) throw new RangeError('bad replica latency options');
  }

  /** Records that a read from `node` took `ms`. */
  record(node: string, ms: number): void {
    const w = this.window(node);
    const micros = Math.min(HIGHEST_MICROS, Math.max(1, Math.round(ms * 1000)));
    w.current.recordValue(micros);
    w.sum.recordValue(micros);
  }

  /** Samples of `node` in the window. */
  samples(node: string): number {
    const w = this.nodes.get(node);
    if (!w) return 0;
    this.rotate(w);
    return w.sum.totalCount;
  }

  /**
   * The `percentile` (0 < p <= 100) of `node`'s read latency in ms over the window, or
   * undefined with fewer than minSamples samples.
   */
  percentileMs(node: string, percentile: number): number | undefined {
    const w = this.nodes.get(node);
    if (!w) return undefined;
    const now = this.nowMs();
    if (this.rotate(w)) w.cache.clear();
    if (w.sum.totalCount < this.o.minSamples) return undefined;
    const hit = w.cache.get(percentile);
    if (hit && now - hit[0] < this.o.refreshMs) return hit[1];
    const v = w.sum.getValueAtPercentile(percentile) / 1000;
    w.cache.set(percentile, [now, v]);
    return v;
  }

  /** Forgets nodes not in `keep` (members that left). */
  retain(keep: (node: string) => boolean): void {
    for (const n of [...this.nodes.keys()]) if (!keep(n)) this.nodes.delete(n);
  }

  private window(node: string): NodeWindow {
    let w = this.nodes.get(node);
    if (!w) {
      w = new NodeWindow(this.nowMs());
      this.nodes.set(node, w);
    } else this.rotate(w);
    return w;
  }

  /** Moves the half-windows on; true when anything changed. */
  private rotate(w: NodeWindow): boolean {
    const half = this.o.windowMs / 2;
    const now = this.nowMs();
    const age = now - w.currentStartMs;
    if (age < half) return false;
    if (age >= 2 * half) {
      // Both halves are older than the window.
      w.current.reset();
      w.previous.reset();
      w.sum.reset();
      w.currentStartMs = now;
      return true;
    }
    // The previous half leaves the window; the current one becomes the previous.
    w.sum.subtract(w.previous);
    const old = w.previous;
    old.reset();
    w.previous = w.current;
    w.current = old;
    w.currentStartMs += half;
    return true;
  }
}
