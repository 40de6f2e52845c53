// Admission control in the client, per node: the batcher (sdk/batcher.ts) asks it whether an
// operation can still be answered within its remaining time from where it would join that
// node's queue, and refuses it at once (OVERLOADED) when not — the rule the servers apply
// (storage-server/http/load-shedder.ts) to the queue only the client can see. Pure arithmetic
// on one node's counts and times; one instance per node queue, single-threaded.
//
// The estimate. R, a batch's round trip to this node, is an EWMA of measured round trips
// (send to answer; a timed-out batch contributes the time it waited), raised to the age of
// the oldest batch still in flight when that is longer (a node that stopped answering makes
// no samples, but its in-flight batches keep ageing). An operation joining the queue behind
// `queuedOps` operations waits for the `inflight` batches and the whole batches queued ahead
// of it: `ahead = inflight + floor(queuedOps / maxBatchOps)` batches, which leave through
// `maxInflightBatches` slots, so
//
//     expected time to answer = R x ahead / maxInflightBatches + R_own
//
// where R_own is its own round trip (the EWMA alone: the age of a stalled batch says nothing
// of the next one). Like the servers' arrival-to-answer sojourn, it holds the operation's own
// trip; it is refused when that exceeds its remaining time. With nothing in flight it goes
// out at once and is never refused (an empty queue ends shedding, as CoDel's does); before
// the first answer R is the in-flight age alone.

/** What a shed refusal says: the estimate and when to come back. */
export interface ShedVerdict {
  /** Expected milliseconds from now to the operation's answer. */
  expectedMs: number;
  /** Milliseconds until the queue ahead is expected to have drained (the retry-after hint). */
  drainMs: number;
}

export class BatchShedder {
  /** EWMA of batch round trips, ms; undefined before the first sample. */
  private rttMs: number | undefined;
  /** Send times of the batches in flight (monotonic ms), oldest first. */
  private readonly inflightSince: number[] = [];

  constructor(
    /** Weight of the newest round trip in the EWMA, in (0, 1]. */
    private readonly rttEwmaWeight: number,
    private readonly maxBatchOps: number,
    private readonly maxInflightBatches: number,
  ) {}

  /** The smoothed round trip, ms (undefined before the first sample); for tests and metrics. */
  get rttEwmaMs(): number | undefined {
    return this.rttMs;
  }

  /** A batch left at `nowMs`. */
  onSent(nowMs: number): void {
    this.inflightSince.push(nowMs);
  }

  /**
   * The batch sent at `sentAtMs` ended at `nowMs`; `sample` false for an end that says
   * nothing of the node's speed (refused at once, unreachable).
   */
  onDone(sentAtMs: number, nowMs: number, sample: boolean): void {
    const i = this.inflightSince.indexOf(sentAtMs);
    if (i >= 0) this.inflightSince.splice(i, 1);
    if (!sample) return;
    const rtt = Math.max(0, nowMs - sentAtMs);
    this.rttMs = this.rttMs === undefined ? rtt : this.rttMs + this.rttEwmaWeight * (rtt - this.rttMs);
  }

  /**
   * Whether an operation with `remainingMs` left, joining the queue behind `queuedOps`
   * operations while `inflight` batches are out, would be answered too late: a verdict
   * when it would (refuse it), undefined when it may go on.
   */
  judge(nowMs: number, inflight: number, queuedOps: number, remainingMs: number): ShedVerdict | undefined {
    if (inflight === 0) return undefined;
    const oldest = this.inflightSince[0];
    const ageMs = oldest === undefined ? 0 : nowMs - oldest;
    const own = this.rttMs ?? 0;
    const r = Math.max(own, ageMs);
    const ahead = inflight + Math.floor(queuedOps / this.maxBatchOps);
    const drainMs = (r * ahead) / this.maxInflightBatches;
    const expectedMs = drainMs + own;
    return expectedMs > remainingMs ? { expectedMs, drainMs } : undefined;
  }
}
