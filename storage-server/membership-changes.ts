// The orchestration of membership changes on this node (README.md "Joining, leaving,
// removing"): the join (fence the ring, pull the ranges to own, announce `up`), the
// decommission (announce `leaving`, fence, push every range, drain hints, announce `left`),
// removenode for a member gone for good, the cleanup of ranges no longer owned once the
// ring is stable, and the fold pass after members left. The data moves themselves are in
// streaming/, the fence in membership/ring-fence.ts. Single-threaded; one join or
// decommission runs at a time on a node (a second one is refused).

import type pino from 'pino';
import type { RingkvClient } from '../sdk/client.js';
import { InvalidArgumentError, UnavailableError } from '../sdk/errors.js';
import { dcOf } from '../sdk/membership.js';
import type { Transport } from '../sdk/transport.js';
import type { AntiEntropy } from './anti-entropy/anti-entropy.js';
import type { FoldPass } from './anti-entropy/fold-pass.js';
import type { ServerConfig } from './config.js';
import type { HintStore } from './handoff/hint-store.js';
import type { HintedHandoff } from './handoff/hinted-handoff.js';
import type { Logger } from './logger.js';
import type { Membership } from './membership/membership.js';
import { awaitRingFence } from './membership/ring-fence.js';
import type { ReplicaStore } from './replica-store.js';
import type { StreamStats, StreamingDeps } from './streaming/range-streaming.js';
import { bootstrap, cleanup, decommission } from './streaming/range-streaming.js';

export interface MembershipChangesDeps {
  config: ServerConfig;
  store: ReplicaStore;
  membership: Membership;
  transport: Transport;
  antiEntropy: AntiEntropy;
  foldPass: FoldPass;
  hints: HintStore;
  handoff: HintedHandoff;
  /** The embedded client (its rings); called only once the server has started it. */
  client: () => RingkvClient<Buffer>;
  log: pino.Logger;
  /** True once the server stops: loops end, nothing new is scheduled. */
  stopping: () => boolean;
  /** Records in NODE-STATE that this node left the ring (it stays out after a restart). */
  markLeft: () => Promise<void>;
}

export class MembershipChanges {
  /** The last bootstrap, decommission and cleanup (for status and the CLI). */
  readonly moves: { bootstrap?: StreamStats; decommission?: StreamStats; cleanup?: { scanned: number; dropped: number; at: string } } = {};
  private moving: Promise<unknown> | undefined;
  /** The data move in progress (updated in place while it runs). */
  private progress: { op: string; startedAt: string; stats: StreamStats } | undefined;
  private cleanupTimer: NodeJS.Timeout | undefined;
  private foldTimer: NodeJS.Timeout | undefined;

  constructor(private readonly d: MembershipChangesDeps) {}

  /** Schedules cleanups and fold passes on membership changes; a node started with --join joins. */
  start(): void {
    const { membership, config } = this.d;
    membership.onChange(() => this.scheduleCleanup());
    membership.onChange((entry, prev) => {
      if (entry.state !== prev) this.scheduleFold(config.cleanupDelayMs);
    });
    if (config.join) void this.join();
  }

  stop(): void {
    if (this.cleanupTimer) clearTimeout(this.cleanupTimer);
    if (this.foldTimer) clearTimeout(this.foldTimer);
  }

  /** The data move in progress, for the status (null when none). */
  get inProgress(): { op: string; startedAt: string; stats: StreamStats } | null {
    return this.moving && this.progress ? this.progress : null;
  }

  /** Joining: learn the cluster, stream the ranges to own, then announce `up`. Retries until it succeeds. */
  private async join(): Promise<void> {
    const { membership, store, log } = this.d;
    const deadline = Date.now() + 60_000;
    // Learn the members from the seeds first (the first gossip rounds).
    while (!this.d.stopping() && membership.members().filter((m) => m.state === 'up').length === 0 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 100));
    }
    for (let attempt = 1; !this.d.stopping(); attempt++) {
      try {
        while (!store.leaves.ready && !this.d.stopping()) await new Promise((r) => setTimeout(r, 50));
        // Before any data moves, every live member must refuse writes routed on a ring
        // without this node: from then on every acknowledged write reaches this node too.
        await this.fence('join');
        this.moving = bootstrap(this.streamingDeps());
        this.moves.bootstrap = (await this.moving) as StreamStats;
        membership.setSelfState('up');
        log.info({ ...this.moves.bootstrap }, 'joined the cluster');
        return;
      } catch (err) {
        log.warn({ attempt, err: (err as Error).message }, 'bootstrap failed; retrying');
        await new Promise((r) => setTimeout(r, Math.min(10_000, 1000 * attempt)));
      } finally {
        this.moving = undefined;
      }
    }
  }

  /** The admin action `decommission`: refused while a join or decommission runs on this node. */
  async decommission(): Promise<StreamStats> {
    if (this.moving) throw new UnavailableError('a join or decommission is already running on this node');
    const run = this.runDecommission();
    this.moving = run;
    try {
      return await run;
    } finally {
      this.moving = undefined;
    }
  }

  /** Leaving: announce it, stream every range to its new owners, deliver hints, announce `left`. */
  private async runDecommission(): Promise<StreamStats> {
    const { membership, config, hints, handoff, log } = this.d;
    const self = membership.self;
    if (self.state !== 'up') throw new InvalidArgumentError(`cannot decommission a node that is ${self.state}`);
    // Placement is per data center: the ones left in this node's must hold its replicas.
    const others = membership.members().filter((m) => m.id !== self.id && m.state === 'up' && dcOf(m) === config.dc);
    const rf = config.replication[config.dc]!;
    if (others.length < rf) {
      throw new InvalidArgumentError(`decommission would leave ${others.length} nodes in data center ${config.dc} for ${rf} replicas`);
    }
    const busy = this.otherRingChange();
    if (busy) throw new UnavailableError(`one ring change at a time: ${busy}`);
    membership.setSelfState('leaving');
    // Before the ranges are handed over, every live member must refuse writes routed on a
    // ring where this node is not leaving: from then on every acknowledged write reaches the
    // new owners too.
    try {
      await this.fence('decommission');
    } catch (err) {
      membership.setSelfState('up');
      throw err;
    }
    const stats = await decommission(this.streamingDeps());
    const deadline = Date.now() + 60_000;
    while (hints.totalPending > 0 && Date.now() < deadline) {
      for (const [target] of hints.pendingByTarget()) void handoff.deliverTo(target);
      await new Promise((r) => setTimeout(r, 200));
    }
    membership.setSelfState('left');
    await this.d.markLeft();
    this.moves.decommission = stats;
    log.info({ ...stats }, 'decommissioned: this node has left the ring and can be stopped');
    return stats;
  }

  /** Removenode: marks a member that is down for good `left` and fences the ring; repair re-replicates its ranges. */
  async removeNode(node: string): Promise<void> {
    const { membership, log } = this.d;
    const m = membership.get(node);
    if (!m) throw new InvalidArgumentError(`no member ${node}`);
    if (node === membership.self.id) throw new InvalidArgumentError('a node cannot remove itself; use decommission');
    if (m.state !== 'down' && m.state !== 'left') throw new InvalidArgumentError(`${node} is ${m.state}; only a down node can be removed (decommission a live one)`);
    if (m.state === 'down') {
      const busy = this.otherRingChange(node);
      if (busy) throw new UnavailableError(`one ring change at a time: ${busy}`);
    }
    // Marking another member left raises its ring version (Membership.markState).
    membership.markState(node, 'left');
    log.warn({ node }, 'node removed from the ring by an operator; its ranges re-replicate through repair');
    await this.fence('removenode');
  }

  /** Drops the data of ranges this node no longer owns (refused while the ring changes). */
  async cleanup(): Promise<{ scanned: number; dropped: number }> {
    const { membership, store, log } = this.d;
    const changing = membership.members().filter((m) => m.state === 'joining' || m.state === 'leaving');
    if (changing.length > 0) throw new UnavailableError(`the ring is changing (${changing.map((m) => `${m.id} ${m.state}`).join(', ')}): cleanup later`);
    if (membership.self.state !== 'up') throw new UnavailableError(`this node is ${membership.self.state}`);
    const r = await cleanup(store, this.d.client().cluster.ring, membership.self.id);
    this.moves.cleanup = { ...r, at: new Date().toISOString() };
    log.info(r, 'cleanup: dropped the data of ranges this node no longer owns');
    return r;
  }

  /** Drops data of ranges this node does not own, once the ring is stable for cleanupDelayMs. */
  private scheduleCleanup(): void {
    if (this.cleanupTimer) clearTimeout(this.cleanupTimer);
    if (this.d.config.cleanupDelayMs <= 0 || this.d.stopping()) return;
    this.cleanupTimer = setTimeout(() => {
      this.cleanup().catch((err) => this.d.log.debug({ err: (err as Error).message }, 'automatic cleanup skipped'));
    }, this.d.config.cleanupDelayMs);
    this.cleanupTimer.unref();
  }

  /**
   * Runs a fold pass after `delayMs` without a member state change (a stable ring), when some
   * member has left; again while it leaves entries to fold (still in the applied-op window,
   * or a replica that did not answer). cleanupDelayMs 0: only on the `fold` admin action.
   */
  private scheduleFold(delayMs: number): void {
    const { config, membership, foldPass, log } = this.d;
    if (this.foldTimer) clearTimeout(this.foldTimer);
    if (config.cleanupDelayMs <= 0 || this.d.stopping()) return;
    if (!membership.members().some((m) => m.state === 'left')) return;
    this.foldTimer = setTimeout(() => {
      const again = Math.max(1000, Math.min(config.dataTypeOpWindowMs, config.cleanupDelayMs));
      foldPass.run().then(
        (stats) => {
          if (stats.remaining > 0) this.scheduleFold(again);
        },
        (err) => {
          log.debug({ err: (err as Error).message }, 'fold pass skipped');
          this.scheduleFold(again);
        },
      );
    }, delayMs);
    this.foldTimer.unref();
  }

  /** Another member's join or leave in progress (one ring change at a time), or undefined. */
  private otherRingChange(except?: string): string | undefined {
    const self = this.d.membership.self.id;
    const m = this.d.membership.members().find((x) => x.id !== self && x.id !== except && (x.state === 'joining' || x.state === 'leaving'));
    return m ? `${m.id} is ${m.state}` : undefined;
  }

  private fence(what: string): Promise<void> {
    const { membership, transport, log, config } = this.d;
    return awaitRingFence({ membership, transport, log: log as Logger, ringFenceTimeoutMs: config.ringFenceTimeoutMs, requestTimeoutMs: config.requestTimeoutMs }, what);
  }

  private streamingDeps(): StreamingDeps {
    const { store, membership, transport, antiEntropy, config, log } = this.d;
    return {
      store,
      membership,
      transport,
      antiEntropy,
      rings: () => {
        const cluster = this.d.client().cluster;
        return { current: cluster.ring, pending: cluster.pendingRing, dc: config.dc, stamp: cluster.ringStamp };
      },
      log: log.child({ component: 'streaming' }) as Logger,
      rateBytesPerSec: config.streamRateBytesPerSec,
      requestTimeoutMs: config.requestTimeoutMs,
      onStart: (op, stats) => {
        this.progress = { op, startedAt: new Date().toISOString(), stats };
      },
    };
  }
}
