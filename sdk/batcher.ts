// Coalesces operations bound for the same node into batch requests. An operation goes out
// at once when nothing is in flight to its node; while a request is in flight, operations
// wait for it and then leave together in one batch (Nagle-style), unless a whole batch
// (maxBatchOps) is ready, which may go out alongside, up to maxInflightBatches per node
// (p-limit). So batches grow with load by themselves and an idle client adds no delay.
//
// Every operation carries its call's deadline (and optionally an AbortSignal): operations
// whose deadline passed or whose caller aborted while they queued are dropped, never sent;
// a batch's timeout is its earliest deadline, and the remaining budget travels with the
// request so that the server drops work nobody waits for. A request's outcome is reported
// once (onRequestOutcome), however many operations it carried. Writes carry the ring stamp
// they were routed on; a batch carries the oldest of its operations', and a replica's view
// in an answer that refused writes for their ring goes to onRingView before any operation of
// the batch settles.
//
// Admission control (sdk/batch-shedder.ts): an operation that its node's queue would make
// miss its deadline is refused at once with OVERLOADED (retryable, with a retry-after hint),
// when it is submitted and again whenever the queue is looked at, instead of waiting out its
// time where the servers' shedder cannot see it; so is one that finds `maxQueuedOps` ahead of
// it. Such a refusal sends nothing and is no request outcome (the node's health is not
// touched). Safe for concurrent use.

import pLimit from 'p-limit';
import type { LimitFunction } from 'p-limit';
import type { Transport } from './transport.js';
import type { BatchRequest, BatchResponse, WireOp, WireResult } from './wire/protocol.js';
import { MESSAGE_VERSION, Routes } from './wire/protocol.js';
import { AbortedError, InternalError, InvalidArgumentError, OverloadedError, RingkvError, TimeoutError } from './errors.js';
import { BatchShedder } from './batch-shedder.js';
import type { ServerClockSink } from './cluster-clock.js';
import type { MembersView } from './membership.js';
import type { RingStamp } from './ring-epoch.js';

export interface BatcherOptions {
  /** Most operations in one batch request. Default 256. */
  maxBatchOps?: number;
  /** Batch requests in flight per node. Default 4. */
  maxInflightBatches?: number;
  /** Timeout of an operation submitted without a deadline. Default 2000 ms. */
  requestTimeoutMs?: number;
  /** Sender id written into requests. */
  from?: string;
  /** Told the clock reading of every batch answer (the client follows the servers' time). */
  serverClock?: ServerClockSink;
  /**
   * Told the outcome of every batch request, once per request, with the timeout it was
   * given (the client's failure detector).
   */
  onRequestOutcome?: (address: string, err: unknown, timeoutMs: number) => void;
  /** Told the view a replica sent with operations it refused with RING_CHANGED (before they settle). */
  onRingView?: (view: MembersView) => void;
  /**
   * Refuse at once (OVERLOADED) an operation whose expected time to answer from its place in
   * its node's queue exceeds its remaining time (sdk/batch-shedder.ts). Default false: under
   * 2x the sustainable load it cost two thirds of the goodput in the overload benchmark
   * (benchmarks/README.md, Overload), so it is opt-in until it is cheaper; the servers'
   * shedding is on either way.
   */
  shedding?: boolean;
  /** Operations queued per node (not yet sent) beyond which new ones are refused with OVERLOADED. Default 65536. */
  maxQueuedOps?: number;
  /** Weight of the newest batch round trip in each node's round-trip EWMA, in (0, 1]. Default 0.2. */
  rttEwmaWeight?: number;
  /** The monotonic clock deadlines are on, in ms (tests give a fake one). Default performance.now. */
  nowMs?: () => number;
}

/** The batcher's defaults, filled in one place (Batcher's constructor). */
export const batcherDefaults = Object.freeze({
  maxBatchOps: 256,
  maxInflightBatches: 4,
  requestTimeoutMs: 2000,
  shedding: false,
  maxQueuedOps: 65_536,
  rttEwmaWeight: 0.2,
});

/** An operation with less time left than this is not sent: no node answers that fast. */
export const MIN_SEND_BUDGET_MS = 2;

/** When an operation must be done by, and who may cancel it. */
export interface SubmitOptions {
  /** Deadline on the monotonic clock (performance.now() milliseconds). */
  deadline: number;
  signal?: AbortSignal | undefined;
  /** The ring the operation was routed on (writes): sent with the batch, the oldest of its operations'. */
  ring?: RingStamp | undefined;
}

interface Queued {
  op: WireOp;
  deadline: number;
  signal: AbortSignal | undefined;
  ring: RingStamp | undefined;
  onAbort: (() => void) | undefined;
  done: boolean;
  resolve: (r: WireResult) => void;
  reject: (err: unknown) => void;
}

class NodeQueue {
  queue: Queued[] = [];
  scheduled = false;
  inflight = 0;
  readonly limit: LimitFunction;
  readonly shedder: BatchShedder;
  constructor(maxInflight: number, maxBatchOps: number, rttEwmaWeight: number) {
    this.limit = pLimit(maxInflight);
    this.shedder = new BatchShedder(rttEwmaWeight, maxBatchOps, maxInflight);
  }
}

/** The monotonic clock deadlines are measured on. */
export function monotonicNowMs(): number {
  return performance.now();
}

export class Batcher {
  private readonly nodes = new Map<string, NodeQueue>();
  private readonly opts: Required<Omit<BatcherOptions, 'serverClock' | 'onRequestOutcome' | 'onRingView' | 'nowMs'>>;
  private readonly now: () => number;
  private readonly serverClock: ServerClockSink | undefined;
  private readonly onRequestOutcome: ((address: string, err: unknown, timeoutMs: number) => void) | undefined;
  private readonly onRingView: ((view: MembersView) => void) | undefined;
  /**
   * Batch requests sent and operations carried; operations dropped before sending (deadline
   * passed, aborted) and refused by admission control (shed) (for tests and metrics).
   */
  readonly counters = { batches: 0, ops: 0, expired: 0, aborted: 0, shed: 0 };

  constructor(
    private readonly transport: Transport,
    opts: BatcherOptions = {},
  ) {
    const d = batcherDefaults;
    this.opts = {
      maxBatchOps: opts.maxBatchOps ?? d.maxBatchOps,
      maxInflightBatches: opts.maxInflightBatches ?? d.maxInflightBatches,
      requestTimeoutMs: opts.requestTimeoutMs ?? d.requestTimeoutMs,
      from: opts.from ?? '',
      shedding: opts.shedding ?? d.shedding,
      maxQueuedOps: opts.maxQueuedOps ?? d.maxQueuedOps,
      rttEwmaWeight: opts.rttEwmaWeight ?? d.rttEwmaWeight,
    };
    const o = this.opts;
    if (!(Number.isInteger(o.maxBatchOps) && o.maxBatchOps >= 1)) throw new InvalidArgumentError('batch.maxBatchOps must be a positive integer');
    if (!(Number.isInteger(o.maxInflightBatches) && o.maxInflightBatches >= 1)) throw new InvalidArgumentError('batch.maxInflightBatches must be a positive integer');
    if (!(Number.isInteger(o.maxQueuedOps) && o.maxQueuedOps >= 1)) throw new InvalidArgumentError('batch.maxQueuedOps must be a positive integer');
    if (!(o.rttEwmaWeight > 0 && o.rttEwmaWeight <= 1)) throw new InvalidArgumentError('batch.rttEwmaWeight must be in (0, 1]');
    if (typeof o.shedding !== 'boolean') throw new InvalidArgumentError('batch.shedding must be a boolean');
    this.now = opts.nowMs ?? monotonicNowMs;
    this.serverClock = opts.serverClock;
    this.onRequestOutcome = opts.onRequestOutcome;
    this.onRingView = opts.onRingView;
  }

  /**
   * Sends `op` to the node at `address` in the next batch; resolves with its own result.
   * Rejects with TimeoutError when its deadline passes first (before it was sent: it never
   * is), with AbortedError when `signal` fires first, and with OverloadedError (never sent)
   * when the node's queue would make it miss its deadline or is full.
   */
  submit(address: string, op: WireOp, o?: SubmitOptions): Promise<WireResult> {
    const now = this.now();
    const deadline = o?.deadline ?? now + this.opts.requestTimeoutMs;
    const signal = o?.signal;
    if (signal?.aborted) return Promise.reject(new AbortedError('operation', signal.reason));
    let q = this.nodes.get(address);
    if (!q) {
      q = new NodeQueue(this.opts.maxInflightBatches, this.opts.maxBatchOps, this.opts.rttEwmaWeight);
      this.nodes.set(address, q);
    }
    const node = q;
    const refused = this.refusal(address, node, node.queue.length, deadline, now);
    if (refused) {
      // The queue is looked at again (its operations judged afresh) in the next drain.
      if (!node.scheduled && node.queue.length > 0) {
        node.scheduled = true;
        setImmediate(() => this.drain(address, node));
      }
      return Promise.reject(refused);
    }
    return new Promise<WireResult>((resolve, reject) => {
      const item: Queued = { op, deadline, signal, ring: o?.ring, onAbort: undefined, done: false, resolve, reject };
      if (signal) {
        item.onAbort = () => {
          // Still queued: it is dropped when the next batch is formed. In flight: its answer is ignored.
          this.counters.aborted++;
          this.settle(item, undefined, new AbortedError('operation', signal.reason));
        };
        signal.addEventListener('abort', item.onAbort, { once: true });
      }
      node.queue.push(item);
      if (!node.scheduled) {
        node.scheduled = true;
        setImmediate(() => this.drain(address, node));
      }
    });
  }

  /**
   * The OVERLOADED refusal of an operation that would join `address`'s queue behind
   * `queuedOps` operations, or undefined when it may wait there.
   */
  private refusal(address: string, q: NodeQueue, queuedOps: number, deadline: number, now: number): RingkvError | undefined {
    if (queuedOps >= this.opts.maxQueuedOps) {
      this.counters.shed++;
      const v = q.shedder.judge(now, q.inflight, queuedOps, Number.NEGATIVE_INFINITY);
      const retryAfterSec = Math.max(0.001, (v?.drainMs ?? 0) / 1000);
      return new OverloadedError(`${queuedOps} operations are queued for ${address} (batch.maxQueuedOps)`, retryAfterSec, { node: address, sent: false });
    }
    if (!this.opts.shedding) return undefined;
    const remainingMs = deadline - now;
    const v = q.shedder.judge(now, q.inflight, queuedOps, remainingMs);
    if (!v) return undefined;
    this.counters.shed++;
    return new OverloadedError(
      `operations for ${address} are answered in about ${Math.round(v.expectedMs)} ms from the client's queue, more than the ${Math.max(0, Math.round(remainingMs))} ms this one has left`,
      Math.max(0.001, Math.round(v.drainMs) / 1000),
      { node: address, sent: false, expectedMs: Math.round(v.expectedMs), remainingMs: Math.max(0, Math.round(remainingMs)) },
    );
  }

  private settle(item: Queued, result: WireResult | undefined, err?: unknown): void {
    if (item.done) return;
    item.done = true;
    if (item.signal && item.onAbort) item.signal.removeEventListener('abort', item.onAbort);
    if (err !== undefined) item.reject(err);
    else item.resolve(result!);
  }

  private drain(address: string, q: NodeQueue): void {
    q.scheduled = false;
    this.pump(address, q);
  }

  /** Sends what may go now: everything when the node is idle, else only whole batches. */
  private pump(address: string, q: NodeQueue): void {
    const max = this.opts.maxBatchOps;
    this.dropDead(address, q);
    while (q.queue.length > 0 && (q.inflight === 0 || (q.queue.length >= max && q.inflight < this.opts.maxInflightBatches))) {
      const items = q.queue.splice(0, max);
      q.inflight++;
      // The batch stops counting as in flight when its answer is in, before its operations
      // settle: a caller that submits again from there finds the node's queue as it is.
      let released = false;
      const release = () => {
        if (released) return;
        released = true;
        q.inflight--;
      };
      void q.limit(() => this.send(address, items, q, release)).finally(() => {
        release();
        this.pump(address, q);
      });
    }
  }

  /**
   * Drops queued operations that were aborted or whose deadline passed while they waited, and
   * refuses (OVERLOADED) those that their place in the queue would now make too late.
   */
  private dropDead(address: string, q: NodeQueue): void {
    if (q.queue.length === 0) return;
    const now = this.now();
    let kept = 0;
    for (const it of q.queue) {
      if (it.done) continue;
      if (it.deadline - now < MIN_SEND_BUDGET_MS) {
        this.counters.expired++;
        this.settle(it, undefined, new TimeoutError(`operation queued for ${address}`, 0, { node: address, sent: false }));
        continue;
      }
      if (this.opts.shedding) {
        const refused = this.refusal(address, q, kept, it.deadline, now);
        if (refused) {
          this.settle(it, undefined, refused);
          continue;
        }
      }
      q.queue[kept++] = it;
    }
    q.queue.length = kept;
  }

  private async send(address: string, queued: Queued[], q: NodeQueue, release: () => void): Promise<void> {
    // Operations may have been aborted or expired while p-limit held the batch back.
    const now = this.now();
    let items: Queued[] = [];
    let deadline = Number.POSITIVE_INFINITY;
    let ring: RingStamp | undefined;
    for (const it of queued) {
      if (it.done) continue;
      if (it.deadline - now < MIN_SEND_BUDGET_MS) {
        this.counters.expired++;
        this.settle(it, undefined, new TimeoutError(`operation queued for ${address}`, 0, { node: address, sent: false }));
        continue;
      }
      items.push(it);
      if (it.ring && (!ring || it.ring.epoch < ring.epoch)) ring = it.ring;
    }
    if (ring) {
      // One ring per batch: writes routed on another ring than the oldest wait for the next
      // batch, so that a write routed on a new ring is not refused for an old one beside it.
      const r = ring;
      const later = items.filter((it) => it.ring && (it.ring.epoch !== r.epoch || it.ring.digest !== r.digest));
      if (later.length > 0) {
        items = items.filter((it) => !later.includes(it));
        q.queue.unshift(...later);
      }
    }
    for (const it of items) if (it.deadline < deadline) deadline = it.deadline;
    if (items.length === 0) return;
    const timeoutMs = Math.max(1, Math.ceil(deadline - now));
    const req: BatchRequest = { v: MESSAGE_VERSION.batch, ops: items.map((i) => i.op), timeoutMs };
    if (this.opts.from) req.from = this.opts.from;
    if (ring) req.ring = ring;
    this.counters.batches++;
    this.counters.ops += items.length;
    const sentAtMs = this.serverClock?.localNowMs() ?? 0;
    const sentMono = this.now();
    q.shedder.onSent(sentMono);
    let answered = false;
    try {
      const res = await this.transport.call<BatchResponse>(address, Routes.batch, req, { timeoutMs });
      answered = true;
      q.shedder.onDone(sentMono, this.now(), true);
      if (!res || !Array.isArray(res.results) || res.results.length !== items.length) {
        throw new InternalError(`batch answer from ${address} has ${res?.results?.length} results for ${items.length} operations`);
      }
      if (this.serverClock && res.now !== undefined) this.serverClock.onServerClock(address, res.now, sentAtMs, this.serverClock.localNowMs());
      this.onRequestOutcome?.(address, undefined, timeoutMs);
      if (res.view && this.onRingView) {
        try {
          this.onRingView(res.view);
        } catch {
          // a malformed view is ignored: the caller refreshes its view itself
        }
      }
      release();
      for (let i = 0; i < items.length; i++) this.settle(items[i]!, res.results[i]!);
    } catch (err) {
      // A timed-out batch waited at least its timeout: a sample of the node's speed. A refusal
      // or an unreachable node answered fast and says nothing of it.
      if (!answered) q.shedder.onDone(sentMono, this.now(), (err as RingkvError)?.code === 'TIMEOUT');
      this.onRequestOutcome?.(address, err, timeoutMs);
      release();
      for (const it of items) this.settle(it, undefined, err);
    }
  }
}
