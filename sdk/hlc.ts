// The hybrid logical clock that stamps writes for last-write-wins: wall-clock milliseconds
// times 1000 plus a logical counter, packed into one safe integer. Synchronous; one instance
// may be shared by every request of a client (JavaScript runs its calls one at a time).

import type { Clock } from './clock.js';
import { systemClock } from './clock.js';
import { ClockSkewError, InvalidArgumentError } from './errors.js';

/** Logical ticks per wall-clock millisecond in a timestamp. */
export const HLC_TICKS_PER_MS = 1000;

/**
 * A hybrid logical clock. A timestamp is `wallMs * 1000 + logical`; when more than 1000
 * timestamps are taken within one millisecond, or the clock runs behind a timestamp already
 * seen, the logical part simply carries into the millisecond digits, which keeps the
 * sequence strictly increasing.
 */
export class HybridLogicalClock {
  readonly #clock: Clock;
  readonly #maxLeadMs: number;
  #last = 0;
  /** Remote timestamps ignored by observe() because they led the clock by more than maxLeadMs. */
  ignoredAhead = 0;

  /**
   * `maxLeadMs`: how far ahead of the wall clock a remote timestamp may pull this clock
   * (observe() ignores the rest, so that one version stamped far in the future cannot drag
   * every later write with it); default unbounded.
   */
  constructor(clock: Clock = systemClock, o: { maxLeadMs?: number } = {}) {
    this.#clock = clock;
    this.#maxLeadMs = o.maxLeadMs ?? Number.POSITIVE_INFINITY;
  }

  /** Next timestamp for a local write: max(now * 1000, last + 1). Strictly increasing across calls. */
  now(): number {
    const nowMs = this.#clock.nowMs();
    const wall = Math.floor(nowMs) * HLC_TICKS_PER_MS;
    const ts = wall > this.#last ? wall : this.#last + 1;
    if (!Number.isFinite(nowMs) || !Number.isSafeInteger(ts)) {
      throw new InvalidArgumentError(`hybrid logical clock: the clock read ${nowMs}, which gives no safe-integer timestamp`);
    }
    this.#last = ts;
    return ts;
  }

  /**
   * Merges a timestamp seen in a reply or a read, so that a client whose clock lags never
   * writes below what it has seen: last = max(last, remote) — unless `remote` leads the
   * wall clock by more than maxLeadMs, when it is ignored and false is returned. Throws
   * InvalidArgumentError unless `remote` is a non-negative safe integer.
   */
  observe(remote: number): boolean {
    if (!Number.isSafeInteger(remote) || remote < 0) {
      throw new InvalidArgumentError(`hybrid logical clock: cannot observe ${String(remote)}; timestamps are non-negative safe integers`);
    }
    if (remote <= this.#last) return true;
    if (hlcToWallMs(remote) - this.#clock.nowMs() > this.#maxLeadMs) {
      this.ignoredAhead++;
      return false;
    }
    this.#last = remote;
    return true;
  }

  /**
   * A timestamp above `floor` (a version a replica holds) and above every timestamp issued
   * or observed: for re-stamping a write that lost to `floor`. Throws ClockSkewError when
   * such a timestamp would lead the wall clock by more than maxLeadMs (the key holds a
   * version stamped too far in the future to write above it now).
   */
  nowAbove(floor: number): number {
    if (!Number.isSafeInteger(floor) || floor < 0) {
      throw new InvalidArgumentError(`hybrid logical clock: cannot stamp above ${String(floor)}`);
    }
    const leadMs = hlcToWallMs(floor + 1) - this.#clock.nowMs();
    if (leadMs > this.#maxLeadMs) {
      throw new ClockSkewError(
        `a replica holds a version stamped ${Math.round(leadMs)} ms ahead of this client's clock (at most ${this.#maxLeadMs} ms is accepted): check the clocks of the servers and clients`,
        { leadMs: Math.round(leadMs), maxLeadMs: this.#maxLeadMs },
      );
    }
    if (floor > this.#last) this.#last = floor;
    return this.now();
  }

  /** The largest timestamp issued or observed so far (0 before any). */
  get last(): number {
    return this.#last;
  }
}

/** The wall-clock milliseconds of a timestamp: Math.floor(ts / 1000). */
export function hlcToWallMs(ts: number): number {
  return Math.floor(ts / HLC_TICKS_PER_MS);
}
