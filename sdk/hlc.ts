// The hybrid logical clock that stamps writes for last-write-wins: wall-clock milliseconds
// times 1000 plus a logical counter, packed into one safe integer. Synchronous; one instance
// may be shared by every request of a client (JavaScript runs its calls one at a time).

import type { Clock } from './clock.js';
import { systemClock } from './clock.js';
import { InvalidArgumentError } from './errors.js';

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
  #last = 0;

  constructor(clock: Clock = systemClock) {
    this.#clock = clock;
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
   * writes below what it has seen: last = max(last, remote). Throws InvalidArgumentError
   * unless `remote` is a non-negative safe integer.
   */
  observe(remote: number): void {
    if (!Number.isSafeInteger(remote) || remote < 0) {
      throw new InvalidArgumentError(`hybrid logical clock: cannot observe ${String(remote)}; timestamps are non-negative safe integers`);
    }
    if (remote > this.#last) this.#last = remote;
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
