// Asynchronous replication between data centers, as one node takes part in it: which writes
// it queues (replica-store's change hook: a write made in this data center, on the node that
// is the first live replica of its key here), the shipper of each other data center, the
// receiving side (objects shipped here are written into this data center's replicas), the
// periodic and on-demand full syncs, the tombstone horizon that keeps deletes until the other
// data centers have them, and the figures (status, metrics). The rules and formats are in
// ./README.md. Inactive (no queue, no timers) in a cluster of one data center.

import type { Clock } from '../../sdk/clock.js';
import { InvalidArgumentError, MalformedRequestError, RingkvError, UnavailableError } from '../../sdk/errors.js';
import type { ErrorCode } from '../../sdk/errors.js';
import type { Ring } from '../../sdk/ring.js';
import type { Transport } from '../../sdk/transport.js';
import type { StoredObject } from '../../sdk/versioning/index.js';
import type { ReplApplyRequest, ReplApplyResponse } from '../../sdk/wire/protocol.js';
import { MESSAGE_VERSION } from '../../sdk/wire/protocol.js';
import type { ServerConfig } from '../config.js';
import type { Logger } from '../logger.js';
import type { Membership } from '../membership/membership.js';
import type { ServerMetrics } from '../metrics.js';
import type { ReplicaStore } from '../replica-store.js';
import type { SpanHasher } from '../anti-entropy/span-hasher.js';
import type { FullSyncStats } from './full-sync.js';
import { FullSync } from './full-sync.js';
import type { ReplQueue } from './repl-queue.js';
import type { ShipperStatus } from './repl-shipper.js';
import { ReplShipper } from './repl-shipper.js';

/** Most objects in one repl-apply request. */
export const MAX_REPL_APPLY_OPS = 10_000;

export interface ReplicationDeps {
  config: ServerConfig;
  /** The queue (undefined in a cluster of one data center). */
  queue: ReplQueue | undefined;
  store: ReplicaStore;
  hasher: SpanHasher;
  membership: Membership;
  transport: Transport;
  clock: Clock;
  log: Logger;
  /** The current ring (of the embedded client); throws while it is not loaded. */
  ring: () => Ring;
  /** Writes an object shipped from another data center into this one's replicas (local quorum). */
  mergeLocal: (key: Buffer, obj: StoredObject, timeoutMs: number) => Promise<void>;
}

/** One other data center, as `ringkv repl status` shows it. */
export interface ReplDcStatus {
  dc: string;
  pending: number;
  pendingBytes: number;
  dropped: number;
  lagMs: number;
  shipper: ShipperStatus;
  lastFullSync: FullSyncStats | null;
  fullSyncRunning: boolean;
  lastOkFullSyncAt: string | null;
}

export class Replication {
  /** The data centers this node ships to: every other one of the replication settings. */
  readonly remoteDcs: readonly string[];
  private readonly shippers = new Map<string, ReplShipper>();
  readonly fullSync: FullSync;
  private readonly timers = new Map<string, NodeJS.Timeout>();
  private sweepTimer: NodeJS.Timeout | undefined;
  private stopped = false;
  private appliedListener: ((dc: string, lagMs: number) => void) | undefined;
  /** Writes that could not be queued (I/O failure), per destination: dropped as well. */
  private readonly enqueueFailures = new Map<string, number>();
  readonly counters = { queued: 0, skippedNotShipper: 0, received: 0, receiveFailures: 0 };

  constructor(private readonly d: ReplicationDeps) {
    this.remoteDcs = Object.keys(d.config.replication)
      .filter((dc) => dc !== d.config.dc)
      .sort();
    this.fullSync = new FullSync({
      store: d.store,
      hasher: d.hasher,
      selfId: d.config.id,
      selfDc: d.config.dc,
      ring: d.ring,
      members: () => d.membership.members(),
      member: (id) => d.membership.get(id),
      addressOf: (m) => d.membership.addressOf(m),
      transport: d.transport,
      mergeLocal: (key, obj) => d.mergeLocal(key, obj, d.config.requestTimeoutMs * 5),
      log: d.log,
      requestTimeoutMs: d.config.requestTimeoutMs * 5,
      spansPerRequest: 2000,
      keysPerBatch: 500,
    });
    if (d.queue) {
      for (const dc of this.remoteDcs) {
        this.shippers.set(
          dc,
          new ReplShipper(d.queue, d.transport, d.log, {
            dc,
            selfId: d.config.id,
            selfDc: d.config.dc,
            batchOps: 256,
            maxInflight: 4,
            retryMaxMs: d.config.replRetryMaxMs,
            requestTimeoutMs: d.config.requestTimeoutMs * 5,
            members: () => d.membership.members(),
            addressOf: (m) => d.membership.addressOf(m),
            nowMs: () => d.clock.nowMs(),
            onApplied: (lagMs) => this.appliedListener?.(dc, lagMs),
          }),
        );
      }
    }
  }

  /** True when the cluster has other data centers to replicate to. */
  get active(): boolean {
    return this.remoteDcs.length > 0 && this.d.queue !== undefined;
  }

  start(): void {
    if (!this.active) return;
    for (const s of this.shippers.values()) s.start();
    for (const dc of this.remoteDcs) this.scheduleFullSync(dc);
    this.sweepTimer = setInterval(() => this.d.queue?.sweep(), 60_000);
    this.sweepTimer.unref();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    for (const t of this.timers.values()) clearTimeout(t);
    if (this.sweepTimer) clearInterval(this.sweepTimer);
    await Promise.all([...this.shippers.values()].map((s) => s.stop()));
  }

  private scheduleFullSync(dc: string): void {
    const every = this.d.config.fullSyncIntervalMs;
    if (every <= 0 || this.stopped) return;
    const t = setTimeout(() => {
      this.fullSync
        .run(dc)
        .catch((err) => this.d.log.warn({ dc, err: (err as Error).message }, 'scheduled full sync failed'))
        .finally(() => this.scheduleFullSync(dc));
    }, every * (0.75 + Math.random() * 0.5));
    t.unref();
    this.timers.set(dc, t);
  }

  /** Listens to the lag of every object a data center applied (the metrics histogram). */
  onApplied(f: (dc: string, lagMs: number) => void): void {
    this.appliedListener = f;
  }

  /**
   * Whether this node queues the writes of `key`: it is the first live replica of the key in
   * its data center (up, leaving or recovering; a suspect one may be gone, so the next one
   * queues too — twice is harmless, the receiver merges). Without a ring yet: yes.
   */
  isShipper(key: Buffer): boolean {
    let ring: Ring;
    try {
      ring = this.d.ring();
    } catch {
      return true;
    }
    for (const id of ring.replicasInDc(key, this.d.config.dc)) {
      const m = this.d.membership.get(id);
      if (m && (m.state === 'up' || m.state === 'leaving' || m.state === 'recovering')) return id === this.d.config.id;
    }
    return false;
  }

  /**
   * The replica store's change hook: a write made in this data center (not `shipped`) is
   * queued for every other one when this node is its key's shipper. A write that does not
   * fit the queue is counted (dropped) and left to the full sync; so is one whose queueing
   * failed — the write itself stands either way.
   */
  async onChange(key: Buffer, obj: StoredObject, shipped: boolean): Promise<void> {
    const q = this.d.queue;
    if (!q || shipped || this.remoteDcs.length === 0) return;
    if (!this.isShipper(key)) {
      this.counters.skippedNotShipper++;
      return;
    }
    for (const dc of this.remoteDcs) {
      try {
        const outcome = await q.enqueue(dc, key, obj);
        if (outcome !== 'dropped') {
          this.counters.queued++;
          this.shippers.get(dc)?.notify();
        }
      } catch (err) {
        this.enqueueFailures.set(dc, (this.enqueueFailures.get(dc) ?? 0) + 1);
        this.d.log.warn({ dc, err: (err as Error).message }, 'could not queue a write for another data center: left to the full sync');
      }
    }
  }

  /**
   * POST /internal/v1/repl/apply: objects shipped from another data center, written into this
   * one's replicas at a local quorum (marked shipped: not queued back). Answers per object.
   */
  async apply(req: ReplApplyRequest, budgetMs: number): Promise<ReplApplyResponse> {
    if (!req || typeof req.fromDc !== 'string' || !Array.isArray(req.ops)) throw new MalformedRequestError('repl-apply needs fromDc and ops');
    if (req.ops.length > MAX_REPL_APPLY_OPS) throw new MalformedRequestError(`repl-apply carries at most ${MAX_REPL_APPLY_OPS} objects`);
    if (req.fromDc === this.d.config.dc) {
      throw new InvalidArgumentError(`repl-apply from ${req.fromDc}, this node's own data center: objects are shipped only between data centers`);
    }
    if (!this.d.membership.synced) throw new UnavailableError(`node ${this.d.config.id} has not heard the cluster's membership since it started`);
    const results = await Promise.all(
      req.ops.map(async (op): Promise<ReplApplyResponse['results'][number]> => {
        try {
          if (!op || !(op.key instanceof Uint8Array) || !op.obj || typeof op.obj !== 'object') throw new MalformedRequestError('an op is {key, obj}');
          const k: Uint8Array = op.key;
          const key = Buffer.isBuffer(k) ? k : Buffer.from(k.buffer, k.byteOffset, k.byteLength);
          await this.d.mergeLocal(key, op.obj, budgetMs);
          this.counters.received++;
          return { ok: true };
        } catch (err) {
          this.counters.receiveFailures++;
          const e = err instanceof RingkvError ? err : new RingkvError('INTERNAL', (err as Error)?.message ?? String(err));
          return { ok: false, code: e.code as ErrorCode, msg: e.message };
        }
      }),
    );
    return { v: MESSAGE_VERSION.replApply, results, now: this.d.clock.nowMs() };
  }

  /**
   * Deletes made at or after this time (ms) may not be in every other data center yet: the
   * engine keeps them whatever the grace period (the start of the last ok full sync with the
   * data center synced longest ago; 0 — keep every delete — until each has had one since
   * this node started). Undefined in a cluster of one data center.
   */
  tombstoneHorizon(): number | undefined {
    if (this.remoteDcs.length === 0) return undefined;
    let h = Infinity;
    for (const dc of this.remoteDcs) h = Math.min(h, this.fullSync.lastOk.get(dc)?.startedAtMs ?? 0);
    return h;
  }

  /** Writes for `dc` dropped since start: over the queue's bound, expired unshipped, or not queued for a failure. */
  dropped(dc: string): number {
    return (this.d.queue?.dropped(dc) ?? 0) + (this.enqueueFailures.get(dc) ?? 0);
  }

  /** The replication lag to `dc` (ms; see ReplShipper.lagMs). */
  lagMs(dc: string): number {
    return this.shippers.get(dc)?.lagMs() ?? 0;
  }

  /** Per other data center: queue, lag, shipping and full sync. */
  status(): ReplDcStatus[] {
    return this.remoteDcs.map((dc) => {
      const ok = this.fullSync.lastOk.get(dc);
      const shipper = this.shippers.get(dc);
      return {
        dc,
        pending: this.d.queue?.pendingCount(dc) ?? 0,
        pendingBytes: this.d.queue?.pendingBytes(dc) ?? 0,
        dropped: this.dropped(dc),
        lagMs: this.lagMs(dc),
        shipper: shipper ? { ...shipper.status } : { dc, state: 'idle', shipped: 0, batches: 0, failures: 0 },
        lastFullSync: this.fullSync.current.get(dc) ?? this.fullSync.last.get(dc) ?? null,
        fullSyncRunning: this.fullSync.isRunning(dc),
        lastOkFullSyncAt: ok ? new Date(ok.finishedAtMs).toISOString() : null,
      };
    });
  }

  /** Registers the replication metrics. */
  registerMetrics(m: ServerMetrics): void {
    const perDc = (f: (dc: string) => number): [Record<'dc', string>, number][] => this.remoteDcs.map((dc) => [{ dc }, f(dc)]);
    m.labeledGauge('ringkv_repl_lag_ms', 'Replication lag to each other data center: age of the oldest write still queued, else apply time minus origin hybrid time of the last one applied', ['dc'], () => perDc((dc) => this.lagMs(dc)));
    m.labeledGauge('ringkv_repl_pending', 'Writes queued for each other data center', ['dc'], () => perDc((dc) => this.d.queue?.pendingCount(dc) ?? 0));
    m.labeledGauge('ringkv_repl_pending_bytes', 'Bytes queued for each other data center (bounded by replQueueMaxBytes)', ['dc'], () => perDc((dc) => this.d.queue?.pendingBytes(dc) ?? 0));
    m.labeledGauge('ringkv_repl_dropped_total', 'Writes not shipped to a data center since start (queue over its bound, or older than replQueueMaxAgeMs): left to the full sync', ['dc'], () => perDc((dc) => this.dropped(dc)));
    m.labeledGauge('ringkv_repl_shipped_total', 'Writes each other data center acknowledged since start', ['dc'], () => perDc((dc) => this.shippers.get(dc)?.status.shipped ?? 0));
    m.labeledGauge('ringkv_fullsync_last_ok_timestamp', 'When the last complete full sync with each other data center finished (seconds since the epoch; 0: none since start)', ['dc'], () =>
      perDc((dc) => (this.fullSync.lastOk.get(dc)?.finishedAtMs ?? 0) / 1000),
    );
    m.gauge('ringkv_repl_received_total', 'Objects shipped here from other data centers and written into this one since start', () => this.counters.received);
    const hist = m.histogram('ringkv_repl_applied_lag_seconds', 'Apply time minus origin hybrid time of each write another data center applied', ['dc'], [0.005, 0.01, 0.025, 0.05, 0.06, 0.075, 0.1, 0.125, 0.15, 0.2, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60]);
    this.onApplied((dc, lagMs) => hist.observe({ dc }, lagMs / 1000));
  }
}
