// Coalesces operations bound for the same node into batch requests. An operation goes out
// at once when nothing is in flight to its node; while a request is in flight, operations
// wait for it and then leave together in one batch (Nagle-style), unless a whole batch
// (maxBatchOps) is ready, which may go out alongside, up to maxInflightBatches per node
// (p-limit). So batches grow with load by themselves and an idle client adds no delay.
// Safe for concurrent use.

import pLimit from 'p-limit';
import type { LimitFunction } from 'p-limit';
import type { Transport } from './transport.js';
import type { BatchRequest, BatchResponse, WireOp, WireResult } from './wire/protocol.js';
import { PROTOCOL_VERSION, Routes } from './wire/protocol.js';
import { InternalError } from './errors.js';
import type { ServerClockSink } from './cluster-clock.js';

export interface BatcherOptions {
  /** Most operations in one batch request. Default 256. */
  maxBatchOps?: number;
  /** Batch requests in flight per node. Default 4. */
  maxInflightBatches?: number;
  /** Timeout of one batch request. Default 2000 ms. */
  requestTimeoutMs?: number;
  /** Sender id written into requests. */
  from?: string;
  /** Told the clock reading of every batch answer (the client follows the servers' time). */
  serverClock?: ServerClockSink;
}

interface Queued {
  op: WireOp;
  resolve: (r: WireResult) => void;
  reject: (err: unknown) => void;
}

class NodeQueue {
  queue: Queued[] = [];
  scheduled = false;
  inflight = 0;
  readonly limit: LimitFunction;
  constructor(maxInflight: number) {
    this.limit = pLimit(maxInflight);
  }
}

export class Batcher {
  private readonly nodes = new Map<string, NodeQueue>();
  private readonly opts: Required<Omit<BatcherOptions, 'serverClock'>>;
  private readonly serverClock: ServerClockSink | undefined;
  /** Batch requests sent and operations carried (for tests and metrics). */
  readonly counters = { batches: 0, ops: 0 };

  constructor(
    private readonly transport: Transport,
    opts: BatcherOptions = {},
  ) {
    this.opts = {
      maxBatchOps: opts.maxBatchOps ?? 256,
      maxInflightBatches: opts.maxInflightBatches ?? 4,
      requestTimeoutMs: opts.requestTimeoutMs ?? 2000,
      from: opts.from ?? '',
    };
    this.serverClock = opts.serverClock;
  }

  /** Sends `op` to the node at `address` in the next batch; resolves with its own result. */
  submit(address: string, op: WireOp): Promise<WireResult> {
    let q = this.nodes.get(address);
    if (!q) {
      q = new NodeQueue(this.opts.maxInflightBatches);
      this.nodes.set(address, q);
    }
    const node = q;
    return new Promise<WireResult>((resolve, reject) => {
      node.queue.push({ op, resolve, reject });
      if (!node.scheduled) {
        node.scheduled = true;
        setImmediate(() => this.drain(address, node));
      }
    });
  }

  private drain(address: string, q: NodeQueue): void {
    q.scheduled = false;
    this.pump(address, q);
  }

  /** Sends what may go now: everything when the node is idle, else only whole batches. */
  private pump(address: string, q: NodeQueue): void {
    const max = this.opts.maxBatchOps;
    while (q.queue.length > 0 && (q.inflight === 0 || (q.queue.length >= max && q.inflight < this.opts.maxInflightBatches))) {
      const items = q.queue.splice(0, max);
      q.inflight++;
      void q.limit(() => this.send(address, items)).finally(() => {
        q.inflight--;
        this.pump(address, q);
      });
    }
  }

  private async send(address: string, items: Queued[]): Promise<void> {
    const req: BatchRequest = { v: PROTOCOL_VERSION, ops: items.map((i) => i.op) };
    if (this.opts.from) req.from = this.opts.from;
    this.counters.batches++;
    this.counters.ops += items.length;
    const sentAtMs = this.serverClock?.localNowMs() ?? 0;
    try {
      const res = await this.transport.call<BatchResponse>(address, Routes.batch, req, { timeoutMs: this.opts.requestTimeoutMs });
      if (!res || !Array.isArray(res.results) || res.results.length !== items.length) {
        throw new InternalError(`batch answer from ${address} has ${res?.results?.length} results for ${items.length} operations`);
      }
      if (this.serverClock && res.now !== undefined) this.serverClock.onServerClock(address, res.now, sentAtMs, this.serverClock.localNowMs());
      for (let i = 0; i < items.length; i++) items[i]!.resolve(res.results[i]!);
    } catch (err) {
      for (const it of items) it.reject(err);
    }
  }
}
