// The clock seam. Logic that tests need to control (TTL expiry, tombstone grace,
// hybrid logical clocks, failure-detector timeouts) reads time through a Clock,
// never through a bare Date.now(). Clocks are synchronous and safe to share.

/** A source of wall-clock time in milliseconds since the Unix epoch. */
export interface Clock {
  nowMs(): number;
}

/** The real clock. */
export const systemClock: Clock = {
  nowMs: () => Date.now(),
};

/**
 * A clock that moves only when told to; for tests that expire TTLs, skew a node's
 * clock or age tombstones deterministically.
 */
export class ManualClock implements Clock {
  #nowMs: number;
  constructor(startMs = 1_700_000_000_000) {
    this.#nowMs = startMs;
  }
  nowMs(): number {
    return this.#nowMs;
  }
  /** Moves the clock forward (or backward, for skew tests) by `deltaMs`. */
  advance(deltaMs: number): void {
    this.#nowMs += deltaMs;
  }
  set(ms: number): void {
    this.#nowMs = ms;
  }
}

/** A clock offset from another by a fixed skew; models a node whose clock runs early or late. */
export class SkewedClock implements Clock {
  constructor(
    private readonly base: Clock,
    public skewMs: number,
  ) {}
  nowMs(): number {
    return this.base.nowMs() + this.skewMs;
  }
}
