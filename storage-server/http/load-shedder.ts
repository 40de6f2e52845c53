// Admission control: decides, when a request arrives, whether this node can still answer
// it within the time its sender waits. It watches how long recent requests took from
// arrival to answer (their sojourn, which holds every queue on the way: the event loop,
// key locks, the engine's group commit) and, CoDel-style, treats a delay as a standing
// queue only when even the quickest request of the last interval saw it — bursts pass.
// A request is refused (`503 OVERLOADED`, Retry-After) when the standing delay already
// exceeds its budget, or when too many operations are in flight. Like CoDel, an empty
// queue ends it: a request that finds nothing in flight here waits behind nothing, and the
// delay is measured afresh from it on. Single-threaded.

import type { Clock } from '../../sdk/clock.js';

export interface LoadShedderOptions {
  /** Replica operations in flight above which new batches are refused. */
  maxInflightOps: number;
  /** Length of the interval over which the quickest sojourn is taken. Default 200 ms. */
  intervalMs?: number;
  /**
   * Share of a request's budget the standing delay may take before the request is refused.
   * The delay is measured arrival to answer, so it already holds a request's own work:
   * at 1 (the default) a request is refused when recent requests took longer than it has.
   */
  budgetShare?: number;
}

export interface ShedDecision {
  shed: boolean;
  /** Why, for the error message. */
  reason?: string;
  /** Seconds a client should wait before sending to this node again. */
  retryAfterSec?: number;
}

export class LoadShedder {
  private readonly intervalMs: number;
  private readonly budgetShare: number;
  private intervalStart = 0;
  /** Quickest sojourn of the interval in progress, and of the last complete one. */
  private minThisInterval = Number.POSITIVE_INFINITY;
  private standingMs = 0;
  private inflightOps = 0;
  /** Admitted requests not answered yet (public-API requests and batches). */
  private inflightRequests = 0;
  /** Requests refused since start. */
  shedCount = 0;

  constructor(
    private readonly clock: Clock,
    private readonly o: LoadShedderOptions,
  ) {
    this.intervalMs = o.intervalMs ?? 200;
    this.budgetShare = o.budgetShare ?? 1;
  }

  /** The delay every request of the last interval saw at least (0 when there was none). */
  get standingDelayMs(): number {
    this.roll(this.clock.nowMs());
    return this.standingMs;
  }

  get inflight(): number {
    return this.inflightOps;
  }

  /** Records a request that took `sojournMs` from arrival to answer. */
  record(sojournMs: number): void {
    const now = this.clock.nowMs();
    this.roll(now);
    if (sojournMs < this.minThisInterval) this.minThisInterval = sojournMs;
  }

  private roll(now: number): void {
    if (now - this.intervalStart < this.intervalMs) return;
    // An interval with no request completed says nothing new: a queue so stuck that nothing
    // completes keeps its last standing delay until something does.
    const idleIntervals = Math.floor((now - this.intervalStart) / this.intervalMs);
    if (this.minThisInterval !== Number.POSITIVE_INFINITY) this.standingMs = this.minThisInterval;
    else if (idleIntervals > 5 && this.inflightRequests === 0) this.standingMs = 0;
    this.minThisInterval = Number.POSITIVE_INFINITY;
    this.intervalStart = now;
  }

  /** Whether to refuse a request carrying `ops` operations whose sender waits `budgetMs`. */
  admit(ops: number, budgetMs: number | undefined): ShedDecision {
    if (this.inflightOps + ops > this.o.maxInflightOps && this.inflightOps > 0) {
      this.shedCount++;
      return { shed: true, reason: `${this.inflightOps} operations in flight (limit ${this.o.maxInflightOps})`, retryAfterSec: 1 };
    }
    if (this.inflightRequests === 0) {
      // Nothing in flight: no queue to wait in. What earlier requests took (a slow host, or
      // their own work: a batch of hundreds of durable writes) says nothing of this one;
      // as CoDel leaves its dropping state when the queue empties, measuring starts over.
      this.standingMs = 0;
      this.minThisInterval = Number.POSITIVE_INFINITY;
      this.intervalStart = this.clock.nowMs();
      return { shed: false };
    }
    const standing = this.standingDelayMs;
    if (budgetMs !== undefined && standing > budgetMs * this.budgetShare) {
      this.shedCount++;
      return {
        shed: true,
        reason: `requests wait ${Math.round(standing)} ms here, more than the ${Math.round(budgetMs)} ms this one has`,
        retryAfterSec: Math.max(1, Math.ceil(standing / 1000)),
      };
    }
    return { shed: false };
  }

  /**
   * Counts an admitted request, carrying `ops` replica operations (0 for a public-API
   * request: its operations are counted where they reach a replica), entering and leaving.
   * REQUIRES: leave with the same count, exactly once per enter.
   */
  enter(ops: number): void {
    this.inflightOps += ops;
    this.inflightRequests++;
  }

  leave(ops: number): void {
    this.inflightOps -= ops;
    this.inflightRequests--;
  }
}
