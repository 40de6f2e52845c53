// The cluster's time as one client estimates it: the client's own clock, corrected by the
// median offset of the storage servers' clocks when that offset is large. Every server puts
// its clock reading (`now`) into its batch and membership answers; a client whose clock is
// seconds ahead or behind the servers' stamps its writes and decides expiry in server time
// instead of its own. Synchronous and cheap; one instance per client, shared by its calls.

import type { Clock } from './clock.js';
import type { HybridLogicalClock } from './hlc.js';

export interface ClusterClockOptions {
  /**
   * The correction applies only when the median offset is at least this large, so that a
   * client within ordinary NTP error keeps its own clock and queueing noise in the samples
   * does not make its stamps jitter. Default 1000 ms.
   */
  correctionThresholdMs?: number;
  /** Samples older than this (by the client's clock) are forgotten. Default 5 min. */
  sampleMaxAgeMs?: number;
}

/** Where the transport layers report the servers' clock readings (batch and membership answers). */
export interface ServerClockSink {
  /** The local clock, for the send and receive times of a request. */
  localNowMs(): number;
  /** A server's clock reading `serverNowMs` in the answer to a request sent at `sentAtMs`, received at `receivedAtMs`. */
  onServerClock(server: string, serverNowMs: unknown, sentAtMs: number, receivedAtMs: number): void;
}

interface Sample {
  /** server clock - client clock at the midpoint of the request, ms. */
  offsetMs: number;
  /** Client clock when the sample was taken. */
  atMs: number;
}

/** A Clock that follows the servers' median clock when the local one is far off. */
export class ClusterClock implements Clock {
  readonly #base: Clock;
  readonly #thresholdMs: number;
  readonly #maxAgeMs: number;
  readonly #samples = new Map<string, Sample>();
  #correctionMs = 0;

  constructor(base: Clock, o: ClusterClockOptions = {}) {
    this.#base = base;
    this.#thresholdMs = o.correctionThresholdMs ?? 1000;
    this.#maxAgeMs = o.sampleMaxAgeMs ?? 5 * 60_000;
  }

  /** The corrected time: the local clock plus the current correction. */
  nowMs(): number {
    return this.#base.nowMs() + this.#correctionMs;
  }

  /** The local clock, uncorrected. */
  localNowMs(): number {
    return this.#base.nowMs();
  }

  /** What is added to the local clock now (0 while the servers agree with it). */
  get correctionMs(): number {
    return this.#correctionMs;
  }

  /**
   * Records a server's clock reading `serverNowMs`, taken while a request sent at local
   * time `sentAtMs` was answered by `receivedAtMs` (both from localNowMs()). Ignores
   * readings that are not finite numbers.
   */
  sample(server: string, serverNowMs: unknown, sentAtMs: number, receivedAtMs: number): void {
    if (typeof serverNowMs !== 'number' || !Number.isFinite(serverNowMs) || serverNowMs <= 0) return;
    this.#samples.set(server, { offsetMs: serverNowMs - (sentAtMs + receivedAtMs) / 2, atMs: receivedAtMs });
    this.#recompute(receivedAtMs);
  }

  #recompute(nowMs: number): void {
    const offsets: number[] = [];
    for (const [server, s] of this.#samples) {
      if (nowMs - s.atMs > this.#maxAgeMs) this.#samples.delete(server);
      else offsets.push(s.offsetMs);
    }
    if (offsets.length === 0) return;
    offsets.sort((a, b) => a - b);
    const mid = offsets.length >> 1;
    const median = offsets.length % 2 === 1 ? offsets[mid]! : (offsets[mid - 1]! + offsets[mid]!) / 2;
    this.#correctionMs = Math.abs(median) >= this.#thresholdMs ? Math.round(median) : 0;
  }
}

/**
 * Where a client's transport layers report the servers' clocks: the client follows their
 * median when its own is far off, and its hybrid clock observes readings that are not ahead
 * of it by more than a second (a server whose clock runs fast must not drag every client along).
 */
export function followServerClocks(clock: ClusterClock, hlc: Pick<HybridLogicalClock, 'observe'>): ServerClockSink {
  return {
    localNowMs: () => clock.localNowMs(),
    onServerClock: (server: string, serverNowMs: unknown, sentAtMs: number, receivedAtMs: number) => {
      clock.sample(server, serverNowMs, sentAtMs, receivedAtMs);
      if (typeof serverNowMs === 'number' && Number.isSafeInteger(serverNowMs) && serverNowMs > 0 && serverNowMs - clock.nowMs() <= 1000) {
        hlc.observe(serverNowMs * 1000);
      }
    },
  };
}
