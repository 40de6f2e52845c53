// Coalesces operations bound for the same node into batch requests. Operations submitted
// in the same event-loop turn go out together (bounded by maxBatchOps); at most
// maxInflightBatches requests per node are in flight (p-limit), and operations queue
// behind them, so batches grow by themselves under load. Safe for concurrent use.

import pLimit from 'p-limit';
import type { LimitFunction } from 'p-limit';
import type { Transport } from './transport.js';
import type { BatchRequest, BatchResponse, WireOp, WireResult } from './wire/protocol.js';
import { PROTOCOL_VERSION, Routes } from './wire/protocol.js';
import { InternalError } from './errors.js';

export interface BatcherOptions {
  /** Most operations in one batch request. Default 256. */
  maxBatchOps?: number;
  /** Batch requests in flight per node. Default 4. */
  maxInflightBatches?: number;
  /** Timeout of one batch request. Default 2000 ms. */
  requestTimeoutMs?: number;
  /** Sender id written into requests. */
  from?: string;
}

interface Queued {
  op: WireOp;
  resolve: (r: WireResult) => void;
  reject: (err: unknown) => void;
}

class NodeQueue {
  queue: Queued[] = [];
  scheduled = false;
  readonly limit: LimitFunction;
  constructor(maxInflight: number) {
    this.limit = pLimit(maxInflight);
  }
}

export class Batcher {
  private readonly nodes = new Map<string, NodeQueue>();
  private readonly opts: Required<BatcherOptions>;
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
    // Hand every queued op to p-limit in batches; a batch that has to wait for a free slot
    // takes whatever is queued when its turn comes, so waiting makes batches larger.
    const batches = Math.ceil(q.queue.length / this.opts.maxBatchOps) || 0;
    for (let i = 0; i < batches; i++) {
      void q.limit(() => this.sendNext(address, q));
    }
  }

  private async sendNext(address: string, q: NodeQueue): Promise<void> {
    if (q.queue.length === 0) return;
    const items = q.queue.splice(0, this.opts.maxBatchOps);
    const req: BatchRequest = { v: PROTOCOL_VERSION, ops: items.map((i) => i.op) };
    if (this.opts.from) req.from = this.opts.from;
    this.counters.batches++;
    this.counters.ops += items.length;
    try {
      const res = await this.transport.call<BatchResponse>(address, Routes.batch, req, { timeoutMs: this.opts.requestTimeoutMs });
      if (!res || !Array.isArray(res.results) || res.results.length !== items.length) {
        throw new InternalError(`batch answer from ${address} has ${res?.results?.length} results for ${items.length} operations`);
      }
      for (let i = 0; i < items.length; i++) items[i]!.resolve(res.results[i]!);
    } catch (err) {
      for (const it of items) it.reject(err);
    }
  }
}
