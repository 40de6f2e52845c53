// A token bucket in bytes per second, for background I/O (compaction, streaming).
// consume() waits until the bytes may pass (or until its `stop` predicate turns true: it
// sleeps at most 50 ms at a time to look); concurrent callers are served in turn.

import { setTimeout as sleep } from 'node:timers/promises';

export class RateLimiter {
  private tokens: number;
  private lastRefillMs: number;
  private tail: Promise<void> = Promise.resolve();

  /** `bytesPerSec` <= 0 or Infinity means unlimited. Bursts up to one second's worth. */
  constructor(private bytesPerSec: number) {
    this.tokens = bytesPerSec;
    this.lastRefillMs = performance.now();
  }

  setRate(bytesPerSec: number): void {
    this.bytesPerSec = bytesPerSec;
  }

  get unlimited(): boolean {
    return !(this.bytesPerSec > 0) || this.bytesPerSec === Infinity;
  }

  consume(bytes: number, stop?: () => boolean): Promise<void> {
    if (this.unlimited) return Promise.resolve();
    const run = this.tail.then(() => this.take(bytes, stop));
    this.tail = run.catch(() => undefined);
    return run;
  }

  private async take(bytes: number, stop: (() => boolean) | undefined): Promise<void> {
    for (;;) {
      if (stop?.()) return;
      const now = performance.now();
      this.tokens = Math.min(this.bytesPerSec, this.tokens + ((now - this.lastRefillMs) * this.bytesPerSec) / 1000);
      this.lastRefillMs = now;
      // A request larger than the bucket passes once the bucket is full, going into debt.
      if (this.tokens >= Math.min(bytes, this.bytesPerSec)) {
        this.tokens -= bytes;
        return;
      }
      const waitMs = ((Math.min(bytes, this.bytesPerSec) - this.tokens) * 1000) / this.bytesPerSec;
      await sleep(Math.max(1, Math.min(50, Math.ceil(waitMs))));
    }
  }
}
