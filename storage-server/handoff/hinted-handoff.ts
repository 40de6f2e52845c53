// Hinted handoff: delivers stored hints to their target node once gossip shows it up
// again (and every `intervalMs` as a safety net), throttled to `maxHintsPerSec`, in
// batches of `batchOps` Merge operations. Replayed hints keep their original versions,
// so delivery is idempotent and never overwrites newer data; a hint is deleted only after
// the target acknowledged it. At most one delivery runs per target.

import type { Transport } from '../../sdk/transport.js';
import type { BatchRequest, BatchResponse } from '../../sdk/wire/protocol.js';
import { MESSAGE_VERSION, OpType, Routes } from '../../sdk/wire/protocol.js';
import type { Logger } from '../logger.js';
import type { Membership } from '../membership/membership.js';
import type { HintStore } from './hint-store.js';

export interface HintedHandoffOptions {
  /** Check for deliverable hints this often. Default 2000 ms. */
  intervalMs: number;
  /** Delivery rate limit per target. Default 5000 hints/s. */
  maxHintsPerSec: number;
  /** Hints per batch request. Default 200. */
  batchOps: number;
  requestTimeoutMs: number;
}

export class HintedHandoff {
  private readonly running = new Map<string, Promise<void>>();
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  readonly counters = { delivered: 0, batches: 0, failures: 0 };
  /** When the last delivery to each target finished with nothing left (ms since epoch). */
  readonly lastDrainedAt = new Map<string, number>();

  constructor(
    private readonly hints: HintStore,
    private readonly membership: Membership,
    private readonly transport: Transport,
    private readonly log: Logger,
    private readonly o: HintedHandoffOptions,
    /** The current replicas of a key in the data center of `target`: hints for a node that left go to them instead. */
    private readonly replicasOf?: (key: Buffer, target: string) => readonly string[],
  ) {}

  start(): void {
    this.membership.onChange((m, prev) => {
      if (m.state === 'up' && prev !== 'up') this.deliverTo(m.id);
    });
    this.timer = setInterval(() => this.tick(), this.o.intervalMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    await Promise.allSettled([...this.running.values()]);
  }

  private tick(): void {
    for (const [target] of this.hints.pendingByTarget()) {
      const m = this.membership.get(target);
      if (m && (m.state === 'up' || m.state === 'joining' || m.state === 'leaving' || m.state === 'left')) this.deliverTo(target);
    }
  }

  /** Starts delivering hints to `target` unless a delivery is already running. */
  deliverTo(target: string): Promise<void> {
    const cur = this.running.get(target);
    if (cur) return cur;
    if ((this.hints.pendingByTarget().get(target) ?? 0) === 0) return Promise.resolve();
    const run = this.deliver(target).finally(() => this.running.delete(target));
    this.running.set(target, run);
    return run;
  }

  private async deliver(target: string): Promise<void> {
    const started = Date.now();
    let sent = 0;
    while (!this.stopped) {
      const m = this.membership.get(target);
      if (m?.state === 'left' && this.replicasOf) return this.redirect(target);
      if (!m || m.state === 'down' || m.state === 'left' || m.state === 'suspect') return;
      const batch = await this.hints.list(target, this.o.batchOps);
      if (batch.length === 0) {
        this.lastDrainedAt.set(target, Date.now());
        if (sent > 0) this.log.info({ target, delivered: sent, ms: Date.now() - started }, 'hints delivered');
        return;
      }
      const req: BatchRequest = {
        v: MESSAGE_VERSION.batch,
        from: this.membership.selfId,
        ops: batch.map((h) => ({ t: OpType.Merge, key: h.key, obj: h.obj })),
      };
      const t0 = Date.now();
      let res: BatchResponse;
      try {
        res = await this.transport.call<BatchResponse>(this.membership.addressOf(m), Routes.batch, req, { timeoutMs: this.o.requestTimeoutMs });
      } catch (err) {
        this.counters.failures++;
        this.log.debug({ target, err: (err as Error).message }, 'hint delivery failed; will retry');
        return;
      }
      this.counters.batches++;
      let acked = 0;
      for (let i = 0; i < batch.length; i++) {
        if (res.results[i]?.ok) {
          await this.hints.remove(target, batch[i]!.key, batch[i]!.obj);
          acked++;
        }
      }
      this.counters.delivered += acked;
      sent += acked;
      if (acked === 0) return; // the target refuses them; retry on the next tick
      // Throttle: a batch of n hints may go every n / rate seconds.
      const minMs = (batch.length * 1000) / this.o.maxHintsPerSec;
      const wait = minMs - (Date.now() - t0);
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    }
  }

  /** The target left the ring for good: its hints go to the keys' current replicas. */
  private async redirect(target: string): Promise<void> {
    while (!this.stopped) {
      const batch = await this.hints.list(target, this.o.batchOps);
      if (batch.length === 0) return;
      const byNode = new Map<string, typeof batch>();
      for (const h of batch) {
        for (const r of this.replicasOf!(h.key, target)) {
          if (r === target) continue;
          let l = byNode.get(r);
          if (!l) byNode.set(r, (l = []));
          l.push(h);
        }
      }
      const failed = new Set<string>();
      for (const [node, hints] of byNode) {
        const m = this.membership.get(node);
        if (!m || m.state === 'down' || m.state === 'left') {
          for (const h of hints) failed.add(h.key.toString('latin1'));
          continue;
        }
        const req: BatchRequest = { v: MESSAGE_VERSION.batch, from: this.membership.selfId, ops: hints.map((h) => ({ t: OpType.Merge, key: h.key, obj: h.obj })) };
        try {
          const res = await this.transport.call<BatchResponse>(this.membership.addressOf(m), Routes.batch, req, { timeoutMs: this.o.requestTimeoutMs });
          hints.forEach((h, i) => {
            if (!res.results[i]?.ok) failed.add(h.key.toString('latin1'));
          });
        } catch {
          for (const h of hints) failed.add(h.key.toString('latin1'));
        }
      }
      let removed = 0;
      for (const h of batch) {
        if (failed.has(h.key.toString('latin1'))) continue;
        await this.hints.remove(target, h.key, h.obj);
        removed++;
      }
      this.counters.delivered += removed;
      if (removed === 0) return;
    }
  }
}
