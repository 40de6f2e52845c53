// Ships the replication queue of one destination data center: batches of the oldest entries
// go to a live node of that data center (POST /internal/v1/repl/apply), which writes them
// into its own replicas; each acknowledged entry leaves the queue, the rest is sent again.
// Up to `maxInflight` batches are in flight; an unreachable destination is retried with
// exponential back-off (100 ms doubling to retryMaxMs, jittered). The lag figures come from
// the answers: apply time (the receiver's clock) minus the origin hybrid time of each object.
// One shipper per destination; its loop is the only caller of the queue's peek and ack for it.

import { hlcToWallMs } from '../../sdk/hlc.js';
import type { MemberInfo } from '../../sdk/membership.js';
import { dcOf } from '../../sdk/membership.js';
import type { Transport } from '../../sdk/transport.js';
import { maxTs } from '../../sdk/versioning/index.js';
import type { ReplApplyRequest, ReplApplyResponse } from '../../sdk/wire/protocol.js';
import { MESSAGE_VERSION, Routes } from '../../sdk/wire/protocol.js';
import type { Logger } from '../logger.js';
import type { QueuedObject, ReplQueue } from './repl-queue.js';
import { queuedAtMs } from './repl-queue.js';

export interface ReplShipperOptions {
  /** The destination data center. */
  dc: string;
  selfId: string;
  selfDc: string;
  /** Objects per batch. */
  batchOps: number;
  /** Batches in flight at once. */
  maxInflight: number;
  /** Longest back-off between attempts to an unreachable destination. */
  retryMaxMs: number;
  requestTimeoutMs: number;
  /** The members of the cluster now, and the address this node reaches one at. */
  members: () => readonly MemberInfo[];
  addressOf: (m: MemberInfo) => string;
  nowMs: () => number;
  /** Told the lag of every object the destination applied (ms). */
  onApplied?: (lagMs: number) => void;
}

/** What the shipper of one destination reports. */
export interface ShipperStatus {
  dc: string;
  /** `idle` (nothing queued), `shipping`, or `backing-off` after failures. */
  state: 'idle' | 'shipping' | 'backing-off';
  shipped: number;
  batches: number;
  failures: number;
  lastError?: string;
  /** When the last batch was acknowledged (ms since the epoch). */
  lastAckAtMs?: number;
  /** Apply time minus origin hybrid time of the last object applied (ms). */
  lastAppliedLagMs?: number;
  /** When the oldest entry still queued was queued, as of the last look at the queue. */
  oldestQueuedAtMs?: number;
}

export class ReplShipper {
  private running = false;
  private loop: Promise<void> | undefined;
  private wake: (() => void) | undefined;
  private woken = false;
  private inflight = 0;
  private backoffMs = 0;
  private receiver = 0;
  /** Entries after this sequence number have not been handed to a batch yet. */
  private cursor = -1;
  readonly status: ShipperStatus;

  constructor(
    private readonly queue: ReplQueue,
    private readonly transport: Transport,
    private readonly log: Logger,
    private readonly o: ReplShipperOptions,
  ) {
    this.status = { dc: o.dc, state: 'idle', shipped: 0, batches: 0, failures: 0 };
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.loop = this.run();
  }

  async stop(): Promise<void> {
    this.running = false;
    this.notify();
    await this.loop;
  }

  /** Something was queued (or a batch finished): look at the queue again now. */
  notify(): void {
    this.woken = true;
    const w = this.wake;
    this.wake = undefined;
    w?.();
  }

  /**
   * The replication lag to the destination now: the age of the oldest object still queued
   * (now − when it was queued) when there is one, else the lag of the last object applied.
   */
  lagMs(): number {
    const oldest = this.status.oldestQueuedAtMs;
    if (oldest !== undefined && this.queue.pendingCount(this.o.dc) > 0) return Math.max(0, this.o.nowMs() - oldest, this.status.lastAppliedLagMs ?? 0);
    return this.status.lastAppliedLagMs ?? 0;
  }

  private async sleep(ms: number): Promise<void> {
    if (this.woken) {
      this.woken = false;
      return;
    }
    await new Promise<void>((resolve) => {
      const t = setTimeout(() => {
        this.wake = undefined;
        resolve();
      }, ms);
      t.unref();
      this.wake = () => {
        clearTimeout(t);
        resolve();
      };
    });
    this.woken = false;
  }

  private async run(): Promise<void> {
    while (this.running) {
      try {
        if (this.backoffMs > 0) {
          // Back off without being woken by new entries (they would only fail the same way).
          await new Promise((r) => setTimeout(r, this.backoffMs).unref());
          if (!this.running) break;
        }
        // The oldest entry still queued (in flight or not): what the lag figure counts from.
        const head = await this.queue.peek(this.o.dc, 1);
        this.status.oldestQueuedAtMs = head.length > 0 ? queuedAtMs(head[0]!.seq) : undefined;
        let started = false;
        while (this.running && this.inflight < this.o.maxInflight) {
          const batch = await this.queue.peek(this.o.dc, this.o.batchOps, this.cursor);
          if (batch.length === 0) break;
          this.cursor = batch[batch.length - 1]!.seq;
          started = true;
          this.inflight++;
          void this.ship(batch).finally(() => {
            this.inflight--;
            this.notify();
          });
          if (this.backoffMs > 0) break; // one probe batch while the destination is failing
        }
        if (!started && this.inflight === 0) {
          // Nothing in flight and nothing new: the queue is drained up to the cursor; look
          // from its head again next time (entries moved to the tail, or sent by a failed batch).
          this.cursor = -1;
          const empty = this.queue.pendingCount(this.o.dc) === 0;
          if (empty && this.status.state === 'shipping') this.status.state = 'idle';
          await this.sleep(empty ? 1000 : 100);
        } else await this.sleep(1000);
      } catch (err) {
        this.log.warn({ dc: this.o.dc, err: (err as Error).message }, 'replication queue read failed');
        await this.sleep(1000);
      }
    }
  }

  /** The live members of the destination, starting after the one used last. */
  private receivers(): MemberInfo[] {
    const live = this.o.members().filter((m) => dcOf(m) === this.o.dc && (m.state === 'up' || m.state === 'leaving' || m.state === 'recovering'));
    live.sort((a, b) => (a.id < b.id ? -1 : 1));
    if (live.length === 0) return live;
    const i = this.receiver++ % live.length;
    return [...live.slice(i), ...live.slice(0, i)];
  }

  private async ship(batch: QueuedObject[]): Promise<void> {
    const to = this.receivers()[0];
    if (!to) {
      this.failed(`no live node in data center ${this.o.dc}`);
      return;
    }
    this.status.state = this.backoffMs > 0 ? 'backing-off' : 'shipping';
    const req: ReplApplyRequest = {
      v: MESSAGE_VERSION.replApply,
      from: this.o.selfId,
      fromDc: this.o.selfDc,
      ops: batch.map((e) => ({ key: e.key, obj: e.obj })),
      timeoutMs: this.o.requestTimeoutMs,
    };
    let res: ReplApplyResponse;
    try {
      res = await this.transport.call<ReplApplyResponse>(this.o.addressOf(to), Routes.replApply, req, { timeoutMs: this.o.requestTimeoutMs + 1000 });
    } catch (err) {
      this.failed(`${to.id}: ${(err as Error).message}`);
      return;
    }
    this.status.batches++;
    let acked = 0;
    let firstError: string | undefined;
    for (let i = 0; i < batch.length; i++) {
      const r = res.results?.[i];
      if (!r?.ok) {
        firstError ??= r ? `${r.code}: ${r.msg}` : 'no answer';
        continue;
      }
      const e = batch[i]!;
      await this.queue.ack(e);
      acked++;
      const lag = typeof res.now === 'number' ? Math.max(0, res.now - hlcToWallMs(maxTs(e.obj))) : undefined;
      if (lag !== undefined) {
        this.status.lastAppliedLagMs = lag;
        this.o.onApplied?.(lag);
      }
    }
    this.status.shipped += acked;
    if (acked > 0) {
      this.status.lastAckAtMs = this.o.nowMs();
      this.backoffMs = 0;
      this.status.state = 'shipping';
      delete this.status.lastError;
    }
    if (acked < batch.length) this.failed(`${to.id} applied ${acked} of ${batch.length}: ${firstError}`);
  }

  /** A batch failed: back off (doubling, jittered, up to retryMaxMs) and start again from the head. */
  private failed(why: string): void {
    this.status.failures++;
    this.status.lastError = why;
    this.status.state = 'backing-off';
    const next = Math.min(this.o.retryMaxMs, Math.max(100, this.backoffMs * 2));
    this.backoffMs = Math.round(next * (0.75 + Math.random() * 0.25));
    this.cursor = -1;
    this.log.debug({ dc: this.o.dc, err: why, backoffMs: this.backoffMs }, 'shipping to a data center failed; backing off');
  }
}
