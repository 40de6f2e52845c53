// Hedged (speculative) reads: when a read's R answers have not all come by the time one of
// its outstanding requests is late — later than the lesser of that replica's recent latency
// percentile and a fixed cap (Cassandra's `MIN(99p, 50ms)`) — the read asks the next replica
// too, and the first R answers win. Two guards keep hedges from adding load when they cannot
// help: a budget (at most budgetPercent % of the reads of the last budgetWindowMs send a
// hedge, counted in sliding sub-windows), and the slow-replica check (a replica whose recent
// median is not below the time already waited is not asked: when every replica is slow,
// hedging would only add load — the failure mode Scylla users met). This file holds the
// options, the budget and the policy; sdk/quorum-call.ts sends the hedge, sdk/replica-
// latency.ts keeps the latencies. Single-threaded like the client that owns it; time comes
// from the injected monotonic clock.

import { InvalidArgumentError } from './errors.js';
import { ReplicaLatency } from './replica-latency.js';

export interface HedgeOptions {
  /** Hedge reads at all. Default true. */
  enabled: boolean;
  /** The per-replica latency percentile (0 < p <= 100) after which a request is late. Default 99. */
  percentile: number;
  /** A request is late after this long at most, whatever its replica's percentile. Default 50 ms. */
  maxDelayMs: number;
  /** Most hedges, as a percentage of the reads of the last budgetWindowMs (client-wide). Default 5. */
  budgetPercent: number;
  /** The window of the budget. Default 10,000 ms. */
  budgetWindowMs: number;
  /** The window of the per-replica latencies. Default 10,000 ms. */
  latencyWindowMs: number;
  /** Samples a replica needs in the window before its percentile is used (else maxDelayMs). Default 20. */
  minSamples: number;
}

export const hedgeDefaults: HedgeOptions = {
  enabled: true,
  percentile: 99,
  maxDelayMs: 50,
  budgetPercent: 5,
  budgetWindowMs: 10_000,
  latencyWindowMs: 10_000,
  minSamples: 20,
};

/** What one call may change: whether it hedges, and when a request is late. */
export type CallHedgeOptions = boolean | Partial<Pick<HedgeOptions, 'enabled' | 'percentile' | 'maxDelayMs'>>;

/** Fills defaults and validates the client's hedge options. */
export function resolveHedgeOptions(o: boolean | Partial<HedgeOptions> | undefined): HedgeOptions {
  const out: HedgeOptions = typeof o === 'boolean' ? { ...hedgeDefaults, enabled: o } : { ...hedgeDefaults, ...(o ?? {}) };
  checkCommon(out);
  if (!(Number.isFinite(out.budgetPercent) && out.budgetPercent >= 0 && out.budgetPercent <= 100)) throw new InvalidArgumentError('hedge.budgetPercent must be between 0 and 100');
  for (const k of ['budgetWindowMs', 'latencyWindowMs'] as const) {
    if (!(Number.isFinite(out[k]) && out[k] > 0)) throw new InvalidArgumentError(`hedge.${k} must be a positive number`);
  }
  if (!(Number.isInteger(out.minSamples) && out.minSamples >= 1)) throw new InvalidArgumentError('hedge.minSamples must be a positive integer');
  return out;
}

/** The options of one call: the client's, with the call's changes. */
export function callHedgeOptions(client: HedgeOptions, call: CallHedgeOptions | undefined): HedgeOptions {
  if (call === undefined) return client;
  const out = typeof call === 'boolean' ? { ...client, enabled: call } : { ...client, ...call };
  checkCommon(out);
  return out;
}

function checkCommon(o: HedgeOptions): void {
  if (typeof o.enabled !== 'boolean') throw new InvalidArgumentError('hedge.enabled must be a boolean');
  if (!(Number.isFinite(o.percentile) && o.percentile > 0 && o.percentile <= 100)) throw new InvalidArgumentError('hedge.percentile must be in (0, 100]');
  if (!(Number.isFinite(o.maxDelayMs) && o.maxDelayMs >= 0)) throw new InvalidArgumentError('hedge.maxDelayMs must be a non-negative number');
}

/**
 * The hedge budget: reads and hedges counted in `slots` sub-windows of the last `windowMs`;
 * a hedge may go when the hedges in the window, with it, stay within `percent` % of the
 * reads in the window (the read asking included).
 */
export class HedgeBudget {
  private readonly reads: number[];
  private readonly hedges: number[];
  private readonly slotMs: number;
  private slot: number;
  private totalReads = 0;
  private totalHedges = 0;

  constructor(
    private readonly nowMs: () => number,
    private readonly percent: number,
    windowMs: number,
    private readonly slots = 10,
  ) {
    this.slotMs = windowMs / slots;
    this.reads = new Array<number>(slots).fill(0);
    this.hedges = new Array<number>(slots).fill(0);
    this.slot = Math.floor(nowMs() / this.slotMs);
  }

  /** Counts a read. */
  onRead(): void {
    this.advance();
    this.reads[this.slot % this.slots]!++;
    this.totalReads++;
  }

  /** Takes one hedge from the budget; false when it is spent. */
  tryTake(): boolean {
    this.advance();
    if ((this.totalHedges + 1) * 100 > this.percent * this.totalReads) return false;
    this.hedges[this.slot % this.slots]!++;
    this.totalHedges++;
    return true;
  }

  /** Reads and hedges in the window (for tests and metrics). */
  get window(): { reads: number; hedges: number } {
    this.advance();
    return { reads: this.totalReads, hedges: this.totalHedges };
  }

  private advance(): void {
    const now = Math.floor(this.nowMs() / this.slotMs);
    if (now <= this.slot) return;
    // Clear the sub-windows that left the window (all of them after a long pause).
    const steps = Math.min(this.slots, now - this.slot);
    for (let i = 1; i <= steps; i++) {
      const j = (this.slot + i) % this.slots;
      this.totalReads -= this.reads[j]!;
      this.totalHedges -= this.hedges[j]!;
      this.reads[j] = 0;
      this.hedges[j] = 0;
    }
    this.slot = now;
  }
}

/** Why a hedge was or was not sent. */
export type HedgeDecision = 'hedge' | 'budget' | 'slow';

/** Counters of one client's hedged reads. */
export interface HedgeCounters {
  /** Hedge requests sent. */
  sent: number;
  /** Hedges whose answer was among the R that completed the read (the read would still have been waiting). */
  won: number;
  /** Late reads not hedged because the budget was spent. */
  skippedBudget: number;
  /** Late reads not hedged because the next replica is no faster than the wait so far (every replica slow). */
  skippedSlow: number;
}

/** The hedging policy of one client: latencies, budget, the decisions and their counters. */
export class Hedging {
  readonly latency: ReplicaLatency;
  readonly budget: HedgeBudget;
  readonly counters: HedgeCounters = { sent: 0, won: 0, skippedBudget: 0, skippedSlow: 0 };

  constructor(
    readonly options: HedgeOptions,
    readonly nowMs: () => number,
  ) {
    this.latency = new ReplicaLatency(nowMs, { windowMs: options.latencyWindowMs, minSamples: options.minSamples });
    this.budget = new HedgeBudget(nowMs, options.budgetPercent, options.budgetWindowMs);
  }

  /** Counts a read toward the budget (every read, hedged or not). */
  onRead(): void {
    this.budget.onRead();
  }

  /** Records a read answer from `node` that took `ms`. */
  record(node: string, ms: number): void {
    this.latency.record(node, ms);
  }

  /** When a request to `node` is late: the lesser of its percentile and maxDelayMs (maxDelayMs when unknown). */
  delayFor(node: string, o: HedgeOptions = this.options): number {
    const p = this.latency.percentileMs(node, o.percentile);
    return p === undefined ? o.maxDelayMs : Math.min(p, o.maxDelayMs);
  }

  /**
   * Whether to ask `candidate` now, `waitedMs` after a request became outstanding and was
   * found late. Not when the candidate's recent median is no shorter than the wait so far
   * (it is as slow as the replicas being waited for: every replica is slow), nor when the
   * budget is spent. A candidate without enough samples is given the benefit of the doubt.
   */
  decide(candidate: string, waitedMs: number): HedgeDecision {
    const median = this.latency.percentileMs(candidate, 50);
    if (median !== undefined && median >= waitedMs) {
      this.counters.skippedSlow++;
      return 'slow';
    }
    if (!this.budget.tryTake()) {
      this.counters.skippedBudget++;
      return 'budget';
    }
    this.counters.sent++;
    return 'hedge';
  }

  onWon(): void {
    this.counters.won++;
  }
}
