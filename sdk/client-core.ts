// What every path of one client shares (read path, write path, read repair, sloppy quorum):
// its view of the cluster and routing, its clocks, settings and counters, the one way to
// send an operation to a replica (in that node's next batch), and its background work.
// One per client; shared by all its concurrent calls (every field is safe to share).

import type { Batcher } from './batcher.js';
import type { CallCtx } from './call-context.js';
import { backgroundCallCtx } from './call-context.js';
import type { ClientSettings } from './client-options.js';
import { linearizableNeedsLww } from './client-options.js';
import type { ClusterClock } from './cluster-clock.js';
import type { ClusterView } from './cluster-view.js';
import type { Consistency, LevelPlan } from './consistency.js';
import { planFor } from './consistency.js';
import type { HybridLogicalClock } from './hlc.js';
import type { RingStamp } from './ring-epoch.js';
import type { Routing } from './routing.js';
import type { WireOp, WireResult } from './wire/protocol.js';
import { OpType } from './wire/protocol.js';

/** Counters for tests and metrics (RingkvClient.counters). */
export interface ClientCounters {
  readRepairs: number;
  readRepairFailures: number;
  hintedWrites: number;
  writeBacks: number;
  restampedWrites: number;
  ringRetries: number;
}

export class ClientCore {
  readonly counters: ClientCounters = { readRepairs: 0, readRepairFailures: 0, hintedWrites: 0, writeBacks: 0, restampedWrites: 0, ringRetries: 0 };
  /** Set once the client is closed: no retry or new routing starts after that. */
  closed = false;
  private readonly background = new Set<Promise<unknown>>();

  constructor(
    readonly clientId: string,
    readonly settings: Omit<ClientSettings<unknown>, 'resolver'>,
    readonly view: ClusterView,
    readonly routing: Routing,
    readonly hlc: HybridLogicalClock,
    readonly clock: ClusterClock,
    private readonly batcher: Batcher,
  ) {}

  /** The level of a call (the client's default when not given); `linearizable` needs last-write-wins. */
  levelOf(c: Consistency | undefined): Consistency {
    const level = c ?? this.settings.consistency;
    if (level === 'linearizable' && this.settings.conflictMode !== 'lww') throw linearizableNeedsLww();
    return level;
  }

  /** What a level means in this cluster, from this client's data center (consistency.ts planFor). */
  planOf(level: Consistency): LevelPlan {
    return planFor(level, this.view.replication, this.settings.localDc);
  }

  /**
   * Sends one operation to `node` in its next batch, with the call's deadline and signal; a
   * write carries the ring stamp it was routed on. A RING_CHANGED refusal is noted on the call.
   */
  send(node: string, op: WireOp, call: CallCtx, ring?: RingStamp): Promise<WireResult> {
    call.stats.replicasAsked++;
    let address: string;
    try {
      address = this.view.addressOf(node);
    } catch (err) {
      return Promise.reject(err);
    }
    return this.batcher.submit(address, op, { deadline: call.deadline, signal: call.signal, ring: op.t === OpType.Get ? undefined : ring }).then((res) => {
      if (!res.ok && res.code === 'RING_CHANGED') call.ringChanged = true;
      return res;
    });
  }

  /** A context for background work (late repairs): the client's timeout, no signal; counted in `parent`'s stats. */
  backgroundCtx(parent?: CallCtx): CallCtx {
    return backgroundCallCtx(this.settings.timeoutMs, parent);
  }

  /** Runs `p` in the background (its failure is dropped); drain() waits for it. */
  track(p: Promise<unknown>): void {
    const q = p.catch(() => undefined);
    this.background.add(q);
    void q.finally(() => this.background.delete(q));
  }

  /** Waits for background work (late read repairs, trailing replica writes) to finish. */
  async drain(): Promise<void> {
    while (this.background.size > 0) await Promise.allSettled([...this.background]);
  }
}
