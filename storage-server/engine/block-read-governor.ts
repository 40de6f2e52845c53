// Decides, for each data block a get must read from a file, whether to read it on the
// event-loop thread (readSync) or on libuv's thread pool (read). Under blockReadMode
// 'auto' it reads synchronously while synchronous reads are fast (the block was in the OS
// page cache: a few µs, far less than a thread-pool round trip), and asynchronously once
// their average latency shows the device is being read (the event loop must not wait for
// it), probing with one synchronous read in `probeEvery` to notice when they are fast
// again. Single-threaded: owned by one engine.

import type { BlockReadMode } from './engine-options.js';

/** Average synchronous read latency (µs) above which 'auto' switches to async reads. */
export const AUTO_SLOW_READ_US = 50;
/**
 * Each observation counts at most this much (µs), so a rare outlier (the thread was
 * descheduled mid-read on a busy machine: milliseconds) does not flip the mode on its own,
 * while a device that is slow on every read (SSD ~100 µs, disk ~10 ms) does within a few reads.
 */
export const AUTO_MAX_OBSERVATION_US = 4 * AUTO_SLOW_READ_US;
/** Under 'auto', while reads are async, one read in this many is made synchronously to re-measure. */
export const AUTO_PROBE_EVERY = 64;

export class BlockReadGovernor {
  /** Exponentially weighted moving average (weight 1/16) of synchronous read latency, µs. */
  private avgUs = 0;
  private untilProbe = AUTO_PROBE_EVERY;
  /** True when the caller should time its synchronous reads and report them to observe(). */
  readonly measures: boolean;

  constructor(readonly mode: BlockReadMode) {
    this.measures = mode === 'auto';
  }

  /** Whether the next block read should be synchronous. */
  useSync(): boolean {
    if (this.mode !== 'auto') return this.mode === 'sync';
    if (this.avgUs < AUTO_SLOW_READ_US) return true;
    if (--this.untilProbe > 0) return false;
    this.untilProbe = AUTO_PROBE_EVERY;
    return true;
  }

  /** Reports how long a synchronous read took, in µs. */
  observe(us: number): void {
    this.avgUs += (Math.min(us, AUTO_MAX_OBSERVATION_US) - this.avgUs) / 16;
  }

  /** The current average synchronous read latency, µs (for stats). */
  get averageSyncReadUs(): number {
    return this.avgUs;
  }
}
