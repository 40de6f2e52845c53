// A node's life across restarts (membership/README.md "Returning after an outage longer than the tombstone grace"):
// which NODE-STATE a start begins with (recovering when the last life ended longer than
// tombstoneGraceMs ago), the last-alive heartbeat that keeps it current, and the recovery
// itself — pull-only repair rounds until one covers every range, then `up`. Single-threaded;
// NODE-STATE writes are chained, one at a time.

import type pino from 'pino';
import type { Clock } from '../sdk/clock.js';
import { InvalidArgumentError } from '../sdk/errors.js';
import { DEFAULT_DC } from '../sdk/membership.js';
import type { AntiEntropy } from './anti-entropy/anti-entropy.js';
import type { ServerConfig } from './config.js';
import type { Membership } from './membership/membership.js';
import type { NodeState } from './node-state.js';
import { writeNodeState } from './node-state.js';
import type { ReplicaStore } from './replica-store.js';

/**
 * The node state to start with: recovering when the last life ended (its last heartbeat)
 * longer than tombstoneGraceMs ago — deletes made meanwhile may have been collected
 * everywhere else — or when a recovery did not finish; else the same without a recovery.
 */
export function startingNodeState(config: ServerConfig, prior: NodeState | undefined, nowMs: number, log: pino.Logger): NodeState {
  const state: NodeState = { format: 1, lastAliveMs: nowMs };
  if (config.dc !== DEFAULT_DC) state.dc = config.dc;
  if (config.rack !== '') state.rack = config.rack;
  if (prior) state.previousLastAliveMs = prior.lastAliveMs;
  if (config.join) return state;
  // The data was placed for one data center and rack: starting in another would serve
  // ranges this node does not hold (Cassandra refuses the same).
  if (prior && ((prior.dc ?? DEFAULT_DC) !== config.dc || (prior.rack ?? '') !== config.rack)) {
    throw new InvalidArgumentError(
      `this node's data was placed for data center ${prior.dc ?? DEFAULT_DC}${prior.rack ? ` rack ${prior.rack}` : ''}, not ${config.dc}${config.rack ? ` rack ${config.rack}` : ''}: to move a node, decommission it, wipe its data directory and --join it afresh`,
    );
  }
  if (prior?.leftAtMs !== undefined) state.leftAtMs = prior.leftAtMs;
  if (prior?.recoveringSinceMs !== undefined) {
    log.warn({ outageStart: new Date(prior.recoveringSinceMs).toISOString() }, 'this node had not finished recovering: it recovers before serving reads');
    state.recoveringSinceMs = prior.recoveringSinceMs;
  } else if (prior?.wholeClusterRestoreMs !== undefined) {
    log.info({ lastAlive: new Date(prior.lastAliveMs).toISOString(), restored: new Date(prior.wholeClusterRestoreMs).toISOString() }, 'restored with the whole cluster: no recovery from the peers');
  } else if (prior && nowMs - prior.lastAliveMs > config.tombstoneGraceMs) {
    log.warn(
      { lastAlive: new Date(prior.lastAliveMs).toISOString(), outageMs: nowMs - prior.lastAliveMs, tombstoneGraceMs: config.tombstoneGraceMs },
      'this node was down longer than the tombstone grace period: it serves no reads and repairs no one until it has been repaired from its peers',
    );
    state.recoveringSinceMs = prior.lastAliveMs;
  }
  return state;
}

/** This node's NODE-STATE in memory and on disk: saved on changes and by a last-alive heartbeat. */
export class NodeStateKeeper {
  private writing: Promise<void> = Promise.resolve();
  private heartbeat: NodeJS.Timeout | undefined;

  constructor(
    readonly state: NodeState,
    private readonly files: { file: string; tmp: string },
    private readonly clock: Clock,
    private readonly log: pino.Logger,
  ) {}

  /** Writes NODE-STATE (one write at a time; a failure is logged, the next heartbeat tries again). */
  save(): Promise<void> {
    const snapshot = { ...this.state };
    this.writing = this.writing.then(() =>
      writeNodeState(this.files.file, this.files.tmp, snapshot).catch((err) => this.log.warn({ err: (err as Error).message }, 'could not write the node state')),
    );
    return this.writing;
  }

  /** The last-alive heartbeat: every quarter of the tombstone grace period, at most every 10 s. */
  startHeartbeat(tombstoneGraceMs: number): void {
    const everyMs = Math.max(200, Math.min(10_000, Math.floor(tombstoneGraceMs / 4)));
    this.heartbeat = setInterval(() => {
      this.state.lastAliveMs = this.clock.nowMs();
      void this.save();
    }, everyMs);
    this.heartbeat.unref();
  }

  /** Stops the heartbeat and writes the last one: a clean stop is the start of the outage. */
  async stop(): Promise<void> {
    if (this.heartbeat) clearInterval(this.heartbeat);
    this.state.lastAliveMs = this.clock.nowMs();
    await this.save();
  }
}

export interface OutageRecoveryDeps {
  keeper: NodeStateKeeper;
  store: ReplicaStore;
  membership: Membership;
  antiEntropy: AntiEntropy;
  clock: Clock;
  log: pino.Logger;
  maxClockSkewMs: number;
  /** True once the server stops: the recovery gives up. */
  stopping: () => boolean;
}

/** The last recovery, for the status: since when, attempts, the last error, and what it did. */
export interface RecoveryStatus {
  since: string;
  attempts: number;
  lastError?: string;
  done?: string;
  keysDropped?: number;
  keysPulled?: number;
}

export class OutageRecovery {
  /** The last recovery (a return after an outage longer than the tombstone grace period). */
  status: RecoveryStatus | undefined;

  constructor(private readonly d: OutageRecoveryDeps) {}

  /**
   * Recovery after an outage longer than the tombstone grace period: pull-only repair rounds
   * (anti-entropy.ts pullRepair) until one covers every range this node replicates, then
   * `up`. Until then the node is `recovering`: clients do not read it, it answers reads
   * UNAVAILABLE, it is no repair source, and it takes writes.
   */
  async run(outageStartMs: number): Promise<void> {
    const { keeper, store, membership, antiEntropy, log } = this.d;
    const recovery: RecoveryStatus = { since: new Date(outageStartMs).toISOString(), attempts: 0 };
    this.status = recovery;
    // A write stamped before the outage began carries at most maxClockSkewMs of lead.
    const cutoffMs = outageStartMs + this.d.maxClockSkewMs;
    for (let attempt = 1; !this.d.stopping(); attempt++) {
      recovery.attempts = attempt;
      try {
        while ((!store.leaves.ready || !membership.synced) && !this.d.stopping()) await new Promise((r) => setTimeout(r, 50));
        if (this.d.stopping()) return;
        const stats = await antiEntropy.pullRepair(cutoffMs);
        delete keeper.state.recoveringSinceMs;
        keeper.state.lastAliveMs = this.d.clock.nowMs();
        await keeper.save();
        membership.setSelfState('up');
        Object.assign(recovery, { done: new Date().toISOString(), keysDropped: stats.keysDropped ?? 0, keysPulled: stats.objectsWritten - (stats.keysDropped ?? 0) });
        delete recovery.lastError;
        log.warn({ attempts: attempt, keysDropped: stats.keysDropped, objectsWritten: stats.objectsWritten, ms: stats.durationMs }, 'recovered: repaired from the peers, serving reads again');
        return;
      } catch (err) {
        recovery.lastError = (err as Error).message;
        log.info({ attempt, err: (err as Error).message }, 'recovery pass did not complete; retrying');
        await new Promise((r) => setTimeout(r, Math.min(5000, 250 * attempt)));
      }
    }
  }
}
