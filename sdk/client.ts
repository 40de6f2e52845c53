// The ringkv client: what application code imports. It routes every operation itself —
// ring lookup, fan-out to the N replicas, quorum wait, conflict resolution (last-write-wins
// or vector clocks with siblings), read repair — and coalesces operations per node into
// batch requests. One client is safe to share by every part of an application.

import crypto from 'node:crypto';
import type { Clock } from './clock.js';
import { systemClock } from './clock.js';
import { ClusterView } from './cluster-view.js';
import type { Consistency, LevelPlan, Requirement } from './consistency.js';
import { planFor, quorumFor } from './consistency.js';
import { Batcher, monotonicNowMs } from './batcher.js';
import type { BatcherOptions } from './batcher.js';
import {
  AbortedError,
  ClosedError,
  InvalidArgumentError,
  InvalidConsistencyError,
  QuorumNotMetError,
  RingChangedError,
  RingkvError,
  TimeoutError,
  WrongTypeError,
  errorFromWire,
  isNotAppliedCode,
} from './errors.js';
import type { CrdtOp, CrdtState, CrdtType } from './crdt/crdt-state.js';
import { crdtStateOf, crdtTypeOf } from './crdt/crdt-object.js';
import type { DataTypeUpdateOptions } from './data-types.js';
import { CounterHandle, MapHandle, RegisterHandle, SetHandle, opIdOf } from './data-types.js';
import type { CounterOptions } from './sharded-counter.js';
import { ShardedCounterHandle, shardsOf } from './sharded-counter.js';
import { HybridLogicalClock, hlcToWallMs } from './hlc.js';
import { ClusterClock } from './cluster-clock.js';
import { checkContentType, checkKey, checkTtl, checkValue } from './limits.js';
import type { QuorumGroups, QuorumOutcome, ReplicaAnswer } from './quorum-call.js';
import { quorumCall } from './quorum-call.js';
import type { Transport } from './transport.js';
import { HttpTransport } from './transport.js';
import type { TlsOptions } from './transport-security.js';
import { transportTlsFromOptions } from './transport-security.js';
import type { Sibling, StoredObject, VersionVector } from './versioning/index.js';
import {
  decodeContextToken,
  encodeContextToken,
  liveSiblings,
  maxTs,
  mergeObjects,
  objectsEqual,
  versionString,
} from './versioning/index.js';
import type { WireOp, WireResult } from './wire/protocol.js';
import type { RingStamp } from './ring-epoch.js';
import { isReachabilityFailure, NodeHealth } from './node-health.js';
import { TOPOLOGY_NAME } from './ring.js';
import type { NodeHealthOptions } from './node-health.js';
import type { CallHedgeOptions, HedgeCounters, HedgeOptions } from './hedging.js';
import { callHedgeOptions, Hedging, resolveHedgeOptions } from './hedging.js';
import type { QuorumHedge } from './quorum-call.js';
import type { NearCacheCounters, NearCacheOptions } from './near-cache.js';
import { NearCache, resolveNearCacheOptions } from './near-cache.js';
import { InvalidationSubscriber } from './invalidation-subscriber.js';
import { OpType } from './wire/protocol.js';
import type { RetryOptions, RetryPolicy } from './retry.js';
import { isRetryableError, resolveRetry, withRetry } from './retry.js';
import type { CallStats, ClientEventName, ClientListener } from './client-events.js';
import { ClientEvents, newCallStats } from './client-events.js';
import type { KeyOutcome, PutEntry } from './multi-key.js';
import { forEachKey } from './multi-key.js';
import type { ListingDeps, ListOptions } from './listing.js';
import { Listing } from './listing.js';

/** How values are handed to and from the application. */
export type ValueEncoding = 'bytes' | 'utf8' | 'json';

/** One of several concurrent versions of a key (vector-clock mode). */
export interface SiblingValue<V> {
  value: V;
  contentType: string;
  flags: number;
  /** Hybrid-logical-clock timestamp of the write that made it. */
  ts: number;
  /** Id of the client (or node) that wrote it. */
  writer: string;
}

/** Picks (or builds) one value out of concurrent siblings. */
export type SiblingResolver<V> = (siblings: SiblingValue<V>[]) => V;

export type ConflictMode = 'lww' | 'vector-clock';

export interface ConnectOptions<V = Buffer> {
  /** "host:port" of one or more storage servers (of the client's own data center, with several). */
  seeds: string[];
  /**
   * The data center this client runs in. Required once the cluster has more than one
   * (connect rejects with LOCAL_DC_REQUIRED otherwise: it is never guessed from a seed);
   * local levels (`strong`, `eventual`, `localQuorum`, `localOne`, counts) use only its
   * replicas, and members of other data centers are reached at their remoteAddress.
   */
  localDc?: string;
  /**
   * Default consistency of every call: `linearizable`, `strong` (default), `eventual`,
   * `all`, `quorum`, `localQuorum`, `localOne`, `eachQuorum` or `{ r, w }` (see the README's
   * table of what each guarantees).
   */
  consistency?: Consistency;
  /** `lww` (default): last write wins by hybrid-logical-clock timestamp. `vector-clock`: siblings. */
  conflictMode?: ConflictMode;
  /** Resolves siblings in vector-clock mode (else the newest sibling is the value and all are listed). */
  resolver?: SiblingResolver<V>;
  /** Default per-call timeout. Default 2000 ms. */
  timeoutMs?: number;
  /** Values: `bytes` (Buffer, default), `utf8` (string) or `json` (any JSON value). */
  valueEncoding?: ValueEncoding;
  /** Read repair of stale replicas seen by reads. Default true. */
  readRepair?: boolean;
  /**
   * Which replicas a read asks: `quorum` (default) asks R of them (in random order, so
   * load spreads) and brings in another only when one fails; `all` asks every replica and
   * returns after R answers (the late ones are compared and repaired in the background).
   */
  readFanout?: 'quorum' | 'all';
  /** With readFanout `quorum`, the probability that a read asks every replica anyway, so read repair reaches them all. Default 0.1. */
  readRepairChance?: number;
  /** Writer id for last-write-wins tie-breaks. Default: random. */
  clientId?: string;
  /** How often the member list is refreshed besides the subscription. Default 5000 ms. */
  membershipRefreshMs?: number;
  /** Long-poll wait of the membership subscription; 0 turns the subscription off. Default 10 s. */
  membershipWatchMs?: number;
  /** Batching of operations per node. */
  batch?: BatcherOptions;
  /**
   * Whether writes stored as hints on a fallback node (because a replica was down) count
   * toward W. Default: yes for W = 1 (`eventual`), no otherwise — so that a strong read
   * after a strong write still meets the write on real replicas.
   */
  hintsCountTowardW?: boolean;
  /** The client's passive failure detector (back-off of nodes that keep timing out). */
  health?: Partial<NodeHealthOptions>;
  /**
   * TLS to the nodes (storage-server/tls/README.md): the cluster's CA, and this client's
   * certificate and key, which the internal data endpoints need on a cluster that requires
   * TLS. Without `allowPlain` every request goes over TLS (every node must accept it);
   * with it, plain HTTP goes to the nodes that do not yet. Default: plain HTTP only.
   */
  tls?: TlsOptions;
  /**
   * Authentication (storage-server/auth/README.md): the user's bearer token, sent with every
   * request. A cluster with authentication on needs it (and TLS); one without ignores it.
   * Refusals reach the application as UNAUTHENTICATED (no or a revoked token) and
   * PERMISSION_DENIED (the user may not read or write that key). Default: none.
   */
  auth?: { token: string };
  /**
   * Hedged reads (sdk/hedging.ts): a read whose answers are late asks the next replica too.
   * `false` turns them off; an object changes the defaults (enabled, percentile 99,
   * maxDelayMs 50, budgetPercent 5 over budgetWindowMs 10 s, latencyWindowMs 10 s, minSamples 20).
   */
  hedge?: boolean | Partial<HedgeOptions>;
  /**
   * The near cache (sdk/near-cache.ts; off unless given): reads at R = 1 (`eventual`) are
   * kept and served from memory, and each node the cache holds values of tells this client
   * when they change there (one invalidation stream per node). Defaults: maxEntries 10,000,
   * maxBytes 64 MiB, ttlMs 5000 (the staleness bound when a stream stalls), heartbeatMs 1000.
   */
  cache?: Partial<NearCacheOptions>;
  /** Transport seam (tests inject faults through it). Default: HTTP keep-alive pools (with `tls`, over TLS). */
  transport?: Transport;
  /**
   * Clock seam. Default: the system clock. The client corrects it by the servers' median
   * clock when the two differ by a second or more (sdk/cluster-clock.ts).
   */
  clock?: Clock;
  /**
   * How far ahead of this client's clock a timestamp seen in a reply may pull the client's
   * hybrid clock (the servers refuse writes stamped further ahead than their own
   * maxClockSkewMs). Default 5000 ms.
   */
  maxClockSkewMs?: number;
  /** Most times a last-write-wins write is re-stamped after losing to a newer version, within its timeout. Default 8. */
  maxWriteRounds?: number;
  /**
   * Most times one call routes again after a replica refused its writes with RING_CHANGED
   * (the ring changed since this client's view; the refusal carries the replica's view),
   * within the call's timeout. Default 4.
   */
  maxRingRetries?: number;
  /**
   * Retries with back-off of every call that is safe to retry (see `CallOptions.retry`).
   * Default `{ attempts: 1 }`: off.
   * @example connect({ seeds, retry: { attempts: 4, backoffMs: 50 } })
   */
  retry?: RetryOptions;
}

export interface CallOptions {
  consistency?: Consistency;
  /** This call's timeout (default: the client's timeoutMs); carried into its batches and to the replicas. */
  timeoutMs?: number;
  /** Aborts the call: it rejects with ABORTED, and its operations still queued are never sent. */
  signal?: AbortSignal;
  /**
   * This call's retries (over the client's `retry`), all within the call's timeout; `false`
   * turns them off. Only failures a retry may cure are retried (sdk/retry.ts
   * RETRYABLE_CODES). Reads always may be; a last-write-wins write is sent again with the
   * same version (the same timestamp and writer), which a replica that already holds it
   * takes as a no-op, so it is never written twice; a vector-clock write is retried only
   * when its error says it was applied nowhere (`notApplied`), since a replica would give a
   * second attempt a new dot.
   * @example kv.get('k', { retry: { attempts: 3, backoffMs: 100 } })
   */
  retry?: RetryOptions | false;
}

/** One call's deadline (monotonic ms) and cancellation, handed down to every request it makes. */
interface CallCtx {
  timeoutMs: number;
  deadline: number;
  signal: AbortSignal | undefined;
  /** Set when a replica refused one of the call's writes with RING_CHANGED (the attempt routes again). */
  ringChanged: boolean;
  /** What the call did so far (its `operation` event). */
  stats: CallStats;
  /** A last-write-wins write's timestamp once stamped: a retry sends the same version again. */
  pinnedTs?: number;
}

export interface WriteCallOptions extends CallOptions {
  /** Overrides the client's hintsCountTowardW for this call. */
  hintsCountTowardW?: boolean;
}

export interface GetOptions<V> extends CallOptions {
  resolver?: SiblingResolver<V>;
  /** This read's hedging: `false` turns it off; an object changes `enabled`, `percentile` or `maxDelayMs` (the budget is the client's). */
  hedge?: CallHedgeOptions;
  /** `false`: this read neither uses nor fills the near cache. Default true (reads at R = 1 with a cache). */
  cache?: boolean;
}

/** How one read runs (the parts a call may choose), and what it found out. */
interface ReadOpts {
  hedge: HedgeOptions;
  /** The near cache: the invalidation stream a Get to `node` names (`track`), if any. */
  track?: (node: string) => string | undefined;
  /** Set by a read that met R with one answer: the node that gave it and whether it tracks the key. */
  served?: { node: string; tracked: boolean };
}

export interface PutOptions extends WriteCallOptions {
  /** Time to live in seconds. */
  ttl?: number;
  /** Vector-clock mode: the `context` of the get this write follows (replaces what it saw). */
  context?: string;
  contentType?: string;
  flags?: number;
}

export interface DeleteOptions extends WriteCallOptions {
  context?: string;
}

export interface GetResult<V> {
  value: V;
  /** Opaque version (last-write-wins: `ts-writer`; vector clocks: the context token). */
  version: string;
  /** Hand back to put()/delete() in vector-clock mode to replace what this read saw. */
  context: string;
  /** The stored content type: '' for bytes written without one, `text/plain; charset=utf-8` for strings, `application/json` for JSON. */
  contentType: string;
  /** Application flags given to put(). */
  flags: number;
  /** Expiry (ms since epoch) when the value has a TTL. */
  expiresAtMs?: number;
  /** Present when concurrent versions exist (vector-clock mode): all of them. */
  siblings?: SiblingValue<V>[];
}

export interface PutResult {
  version: string;
  context: string;
  /** True when no replica that acknowledged had a live value before. */
  created: boolean;
}

/** One key of a listing (entries()): what get() returns for it, with the key. */
export interface ListEntry<V> extends GetResult<V> {
  /** The key as UTF-8 text (use `keyBytes` for binary keys). */
  key: string;
  keyBytes: Buffer;
}

type Key = string | Uint8Array;

const EMPTY = Buffer.alloc(0);

/** A connected client. Create with connect(). */
export class RingkvClient<V = Buffer> {
  readonly clientId: string;
  private readonly view: ClusterView;
  private readonly transport: Transport;
  private readonly ownsTransport: boolean;
  private readonly batcher: Batcher;
  private readonly hlc: HybridLogicalClock;
  private readonly clock: ClusterClock;
  private readonly health: NodeHealth;
  private readonly hedging: Hedging;
  private readonly nearCache: NearCache | undefined;
  private readonly subscriber: InvalidationSubscriber | undefined;
  private readonly opts: {
    consistency: Consistency;
    conflictMode: ConflictMode;
    resolver: SiblingResolver<V> | undefined;
    timeoutMs: number;
    valueEncoding: ValueEncoding;
    readRepair: boolean;
    readFanout: 'quorum' | 'all';
    readRepairChance: number;
    hintsCountTowardW: boolean | undefined;
    maxWriteRounds: number;
    maxRingRetries: number;
    retry: RetryPolicy;
    localDc: string | undefined;
  };
  private readonly events = new ClientEvents();
  private closed = false;
  private readonly background = new Set<Promise<unknown>>();
  /** Counters for tests and metrics. */
  readonly counters = { readRepairs: 0, readRepairFailures: 0, hintedWrites: 0, writeBacks: 0, restampedWrites: 0, ringRetries: 0 };

  /** @internal use connect() */
  constructor(o: ConnectOptions<V>) {
    if (!o || !Array.isArray(o.seeds) || o.seeds.length === 0 || !o.seeds.every((s) => typeof s === 'string' && /^[^:]+:\d+$/.test(s))) {
      throw new InvalidArgumentError('seeds must be a non-empty list of "host:port" strings');
    }
    const timeoutMs = o.timeoutMs ?? 2000;
    if (!(Number.isFinite(timeoutMs) && timeoutMs > 0)) throw new InvalidArgumentError('timeoutMs must be a positive number');
    const conflictMode = o.conflictMode ?? 'lww';
    if (conflictMode !== 'lww' && conflictMode !== 'vector-clock') throw new InvalidArgumentError(`conflictMode must be lww or vector-clock`);
    const valueEncoding = o.valueEncoding ?? 'bytes';
    if (!['bytes', 'utf8', 'json'].includes(valueEncoding)) throw new InvalidArgumentError('valueEncoding must be bytes, utf8 or json');
    if (o.readFanout !== undefined && o.readFanout !== 'quorum' && o.readFanout !== 'all') throw new InvalidArgumentError('readFanout must be quorum or all');
    if (o.readRepairChance !== undefined && !(o.readRepairChance >= 0 && o.readRepairChance <= 1)) {
      throw new InvalidArgumentError('readRepairChance must be between 0 and 1');
    }
    quorumFor(o.consistency ?? 'strong', 3); // validates
    if (o.localDc !== undefined && (typeof o.localDc !== 'string' || !TOPOLOGY_NAME.test(o.localDc))) {
      throw new InvalidArgumentError("localDc must be a data center name (1-64 letters, digits, '.', '_' or '-')");
    }
    if (o.consistency === 'linearizable' && conflictMode !== 'lww') throw linearizableNeedsLww();
    const maxClockSkewMs = o.maxClockSkewMs ?? 5000;
    if (!(Number.isFinite(maxClockSkewMs) && maxClockSkewMs >= 0)) throw new InvalidArgumentError('maxClockSkewMs must be a non-negative number');
    const maxWriteRounds = o.maxWriteRounds ?? 8;
    if (!(Number.isInteger(maxWriteRounds) && maxWriteRounds >= 1)) throw new InvalidArgumentError('maxWriteRounds must be a positive integer');
    const retry = resolveRetry(o.retry);
    const maxRingRetries = o.maxRingRetries ?? 4;
    if (!(Number.isInteger(maxRingRetries) && maxRingRetries >= 0)) throw new InvalidArgumentError('maxRingRetries must be a non-negative integer');
    this.clientId = o.clientId ?? `c-${crypto.randomBytes(6).toString('hex')}`;
    this.clock = new ClusterClock(o.clock ?? systemClock);
    this.hlc = new HybridLogicalClock(this.clock, { maxLeadMs: maxClockSkewMs });
    // Servers report their clock in every answer: the client follows their median when its
    // own is far off, and its hybrid clock observes readings that are not ahead of it by
    // more than a second (a server whose clock runs fast must not drag every client along).
    const serverClock = {
      localNowMs: () => this.clock.localNowMs(),
      onServerClock: (server: string, serverNowMs: unknown, sentAtMs: number, receivedAtMs: number) => {
        this.clock.sample(server, serverNowMs, sentAtMs, receivedAtMs);
        if (typeof serverNowMs === 'number' && Number.isSafeInteger(serverNowMs) && serverNowMs > 0 && serverNowMs - this.clock.nowMs() <= 1000) {
          this.hlc.observe(serverNowMs * 1000);
        }
      },
    };
    this.health = new NodeHealth(this.clock, {
      failuresToAvoid: o.health?.failuresToAvoid ?? 3,
      backoffMs: o.health?.backoffMs ?? 1000,
      maxBackoffMs: o.health?.maxBackoffMs ?? 30_000,
    });
    const tls = transportTlsFromOptions(o.tls);
    if (tls && o.transport) throw new InvalidArgumentError('tls configures the default transport: give either tls or transport');
    if (o.auth !== undefined && (!o.auth || typeof o.auth !== 'object' || typeof o.auth.token !== 'string')) throw new InvalidArgumentError('auth must be { token: string }');
    if (o.auth && o.transport) throw new InvalidArgumentError('auth configures the default transport: give either auth or transport');
    this.hedging = new Hedging(resolveHedgeOptions(o.hedge), monotonicNowMs);
    this.ownsTransport = !o.transport;
    // The transport picks plain or TLS per node from this client's view of the cluster.
    this.transport = o.transport ?? new HttpTransport({ tls, token: o.auth?.token, peerTlsMode: (address) => this.view?.tlsModeAt(address) });
    this.batcher = new Batcher(this.transport, {
      requestTimeoutMs: timeoutMs,
      from: this.clientId,
      ...o.batch,
      serverClock,
      // One outcome per request, however many operations it carried.
      onRequestOutcome: (address, err, requestTimeoutMs) => {
        const node = this.view.nodeAt(address);
        if (node === undefined) return;
        if (err === undefined) this.health.onSuccess(node);
        else if ((err as RingkvError).code === 'OVERLOADED') {
          // The node sheds load: send elsewhere (reads) or as hints (writes) for a while.
          const retryAfterSec = Number((err as RingkvError).details?.retryAfterSec ?? 1);
          this.health.onOverloaded(node, (Number.isFinite(retryAfterSec) ? retryAfterSec : 1) * 1000);
        }
        // A request that gave the node only a sliver of a call's time (the tail of a
        // deadline) says nothing about the node when it times out.
        else if (!((err as RingkvError).code === 'TIMEOUT' && requestTimeoutMs < Math.min(100, timeoutMs / 4))) this.health.onFailure(node, err);
      },
      // A replica that refused writes routed on an older ring sends its view: route on it.
      onRingView: (view) => this.view.apply(view),
    });
    if (o.cache !== undefined) {
      const co = resolveNearCacheOptions(o.cache);
      const cache = new NearCache(co, monotonicNowMs);
      this.nearCache = cache;
      this.subscriber = new InvalidationSubscriber({
        transport: this.transport,
        clientId: this.clientId,
        heartbeatMs: co.heartbeatMs,
        addressOf: (node) => {
          const m = this.view.member(node);
          return m && m.state !== 'left' ? m.address : undefined;
        },
        onInvalidate: (_node, keys) => {
          for (const key of keys) cache.invalidate(key);
        },
        onLost: (node) => cache.flushNode(node),
      });
    }
    this.view = new ClusterView({
      seeds: o.seeds,
      transport: this.transport,
      serverClock,
      requestTimeoutMs: Math.min(timeoutMs, 2000),
      refreshIntervalMs: o.membershipRefreshMs ?? 5000,
      watchWaitMs: o.membershipWatchMs ?? 10_000,
      onChange: (view) => this.events.onMembers(view.members()),
      ...(o.localDc !== undefined ? { localDc: o.localDc } : {}),
    });
    this.opts = {
      consistency: o.consistency ?? 'strong',
      conflictMode,
      resolver: o.resolver,
      timeoutMs,
      valueEncoding,
      readRepair: o.readRepair ?? true,
      readFanout: o.readFanout ?? 'quorum',
      readRepairChance: o.readRepairChance ?? 0.1,
      hintsCountTowardW: o.hintsCountTowardW,
      maxWriteRounds,
      maxRingRetries,
      retry,
      localDc: o.localDc,
    };
  }

  /** The client's estimate of the cluster's time (its clock, corrected by the servers' when far off). */
  get clusterClock(): ClusterClock {
    return this.clock;
  }

  /** @internal */
  async start(): Promise<void> {
    await this.view.start();
    // A cluster of several data centers needs the client's own named (never guessed).
    planFor('localOne', this.view.replication, this.opts.localDc);
  }

  /** The data center this client runs in (connect's localDc), if given. */
  get localDc(): string | undefined {
    return this.opts.localDc;
  }

  /** The cluster view (members, ring) this client routes with. */
  get cluster(): ClusterView {
    return this.view;
  }

  /** Batch requests sent, operations they carried, operations dropped unsent (expired, aborted). */
  get batchCounters(): { batches: number; ops: number; expired: number; aborted: number } {
    return this.batcher.counters;
  }

  /**
   * Hedged reads: hedges sent and won, late reads not hedged (budget spent, every replica
   * slow), and the reads and hedges in the budget's window.
   */
  get hedgeCounters(): HedgeCounters & { windowReads: number; windowHedges: number } {
    const w = this.hedging.budget.window;
    return { ...this.hedging.counters, windowReads: w.reads, windowHedges: w.hedges };
  }

  /**
   * The near cache: hits, misses, reads stored or not (raced with an invalidation, or
   * untracked), invalidations, entries flushed (lost streams) and expired, the entries held
   * and the nodes whose invalidation stream is live. Undefined without a cache.
   */
  get nearCacheStats(): (NearCacheCounters & { entries: number; liveStreams: string[]; streamsLost: number }) | undefined {
    if (!this.nearCache || !this.subscriber) return undefined;
    return { ...this.nearCache.counters, entries: this.nearCache.size, liveStreams: this.subscriber.liveNodes.sort(), streamsLost: this.subscriber.counters.lost };
  }

  /** The near cache's entries per serving node (tests). @internal */
  nearCacheEntriesByNode(): Map<string, number> {
    return this.nearCache?.entriesByNode() ?? new Map();
  }

  /** This client's recent read latency of `node` at `percentile` (ms), or undefined with too few samples. */
  replicaLatencyMs(node: string, percentile: number): number | undefined {
    return this.hedging.latency.percentileMs(node, percentile);
  }

  /** Nodes this client's failure detector currently avoids (requests to them kept failing). */
  get avoidedNodes(): string[] {
    return this.health.avoided();
  }

  /** The replicas of `key` in preference order: with several data centers, each one's (in name order). */
  replicasOf(key: Key): string[] {
    return [...this.view.ring.replicas(toKey(key))];
  }

  // -----------------------------------------------------------------------------------
  // multi-key, listing and events (each in its own module)

  /**
   * Reads many keys at once: one get() per key (its quorum, retries and typed error), all
   * submitted together so that the per-node batcher carries them in a few requests per
   * node. Resolves with one outcome per key, in order; one key failing fails no other.
   * At most 10,000 keys per call.
   * @example
   * for (const o of await kv.getMany(['user:1', 'user:2'])) {
   *   if (!o.ok) console.log(o.key, 'failed:', o.error.code);
   *   else console.log(o.key, o.result?.value ?? '(missing)');
   * }
   */
  async getMany(keys: readonly Key[], opts: GetOptions<V> = {}): Promise<KeyOutcome<GetResult<V> | undefined>[]> {
    this.checkOpen();
    return forEachKey('getMany', keys, (k) => k, (k) => this.get(k, opts));
  }

  /**
   * Writes many keys at once (one put() per entry, batched per node); an entry's `options`
   * go over `opts`. One outcome per entry, in order.
   * @example await kv.putMany([{ key: 'a', value: 'x' }, { key: 'b', value: 'y', options: { ttl: 60 } }])
   */
  async putMany(entries: readonly PutEntry<V | Buffer | Uint8Array | string, PutOptions>[], opts: PutOptions = {}): Promise<KeyOutcome<PutResult>[]> {
    this.checkOpen();
    return forEachKey('putMany', entries, (e) => e?.key, (e) => this.put(e.key, e.value, e.options ? { ...opts, ...e.options } : opts));
  }

  /** Deletes many keys at once (one delete() per key, batched per node). One outcome per key, in order. */
  async deleteMany(keys: readonly Key[], opts: DeleteOptions = {}): Promise<KeyOutcome<PutResult>[]> {
    this.checkOpen();
    return forEachKey('deleteMany', keys, (k) => k, (k) => this.delete(k, opts));
  }

  /**
   * Lists the live keys (as UTF-8 text), every range read from one of its replicas
   * (sdk/listing.ts): not a quorum read, so a key written or deleted a moment ago may be
   * missing or listed. Resumable: `listing.cursor` between items, handed back as `cursor`.
   * @example
   * const listing = kv.keys({ prefix: 'user:' });
   * for await (const key of listing) console.log(key);
   */
  keys(opts: ListOptions = {}): Listing<string> {
    this.checkOpen();
    const live = (key: Buffer, obj: StoredObject) => (liveSiblings(obj, this.clock.nowMs()).length > 0 ? key.toString('utf8') : undefined);
    return new Listing(this.listingDeps(), opts, live, true);
  }

  /**
   * Lists the live keys with their values (as get() returns them, from one replica per
   * range), like keys(). Keys holding a data type (kv.counter(), …) are left out: keys()
   * lists them, their handles read them.
   * @example for await (const e of kv.entries({ prefix: 'user:' })) console.log(e.key, e.value);
   */
  entries(opts: ListOptions & { resolver?: SiblingResolver<V> } = {}): Listing<ListEntry<V>> {
    this.checkOpen();
    const resolver = opts.resolver ?? this.opts.resolver;
    const entry = (key: Buffer, obj: StoredObject): ListEntry<V> | undefined => {
      // A data type (counter, set, register, map) is read through its handle, not as a value.
      if (obj.mode === 'crdt') return undefined;
      const r = this.toGetResult(obj, resolver);
      return r && { ...r, key: key.toString('utf8'), keyBytes: key };
    };
    return new Listing(this.listingDeps(), opts, entry, false);
  }

  private listingDeps(): ListingDeps {
    return {
      view: this.view,
      transport: this.transport,
      isUsable: (n) => this.isUsable(n),
      timeoutMs: this.opts.timeoutMs,
      isClosed: () => this.closed,
      localDc: this.opts.localDc,
    };
  }

  /**
   * Listens to the client's events (sdk/client-events.ts): `membership` (the client's view
   * of the members changed), `nodeDown` / `nodeUp`, `operation` (each call's metrics:
   * latency, replicas asked, repairs, retries) and `listenerError`.
   * @example kv.on('nodeDown', (e) => console.warn(`${e.id} is down`));
   */
  on<E extends ClientEventName>(event: E, listener: ClientListener<E>): this {
    this.events.on(event, listener);
    return this;
  }

  /** Removes a listener added with on(). */
  off<E extends ClientEventName>(event: E, listener: ClientListener<E>): this {
    this.events.off(event, listener);
    return this;
  }

  // -----------------------------------------------------------------------------------
  // get

  /** Reads `key`; undefined when it is missing, deleted or expired. */
  async get(key: Key, opts: GetOptions<V> = {}): Promise<GetResult<V> | undefined> {
    this.checkOpen();
    const k = toKey(key);
    const level = this.levelOf(opts.consistency);
    const plan = this.planOf(level);
    const call = this.callCtx('get', opts);
    const read: ReadOpts = { hedge: callHedgeOptions(this.hedging.options, opts.hedge) };
    const cached = this.nearCache !== undefined && plan.read.total === 1 && opts.cache !== false;
    const attempt = () => (cached ? this.readCached(k, plan, call, read) : this.readWithRetries(k, plan, call, read));
    const obj = await this.observed('get', level, call, abortable(this.retrying(call, opts, isRetryableError, attempt), call.signal, 'get'));
    if (!obj) return undefined;
    if (obj.mode === 'crdt') throw new WrongTypeError(crdtTypeOf(obj.siblings[0]!.value), 'plain value', 'get');
    return this.toGetResult(obj, opts.resolver ?? this.opts.resolver);
  }

  /** The deadline and signal of a call; throws ABORTED when the signal already fired. */
  private callCtx(op: string, opts: CallOptions): CallCtx {
    const timeoutMs = opts.timeoutMs ?? this.opts.timeoutMs;
    if (!(Number.isFinite(timeoutMs) && timeoutMs > 0)) throw new InvalidArgumentError('timeoutMs must be a positive number');
    const signal = opts.signal;
    if (signal !== undefined && !(signal instanceof AbortSignal)) throw new InvalidArgumentError('signal must be an AbortSignal');
    if (signal?.aborted) {
      const e = new AbortedError(op, signal.reason);
      e.notApplied = true;
      throw e;
    }
    return { timeoutMs, deadline: monotonicNowMs() + timeoutMs, signal, ringChanged: false, stats: newCallStats() };
  }

  /** A context for background work (late repairs): the client's timeout, no signal; counted in `parent`'s stats. */
  private backgroundCtx(parent?: CallCtx): CallCtx {
    return { timeoutMs: this.opts.timeoutMs, deadline: monotonicNowMs() + this.opts.timeoutMs, signal: undefined, ringChanged: false, stats: parent?.stats ?? newCallStats() };
  }

  /** Runs a call's attempts under its retry policy (sdk/retry.ts), each routed afresh, within its deadline. */
  private retrying<T>(call: CallCtx, opts: CallOptions, mayRetry: (err: unknown) => boolean, attempt: () => Promise<T>): Promise<T> {
    const policy = opts.retry === undefined ? this.opts.retry : resolveRetry(opts.retry, this.opts.retry);
    if (policy.attempts <= 1) return attempt();
    return withRetry(
      policy,
      call,
      (err) => !this.closed && mayRetry(err),
      () => {
        call.ringChanged = false;
        return attempt();
      },
      () => void call.stats.retries++,
    );
  }

  /**
   * A write's attempts under its retry policy: a last-write-wins write is retried with its
   * version pinned (call.pinnedTs); a vector-clock write only when nothing was applied. The
   * error says `notApplied` only when no attempt may have been applied.
   */
  private retryingWrite(call: CallCtx, opts: CallOptions, attempt: () => Promise<PutResult>): Promise<PutResult> {
    let maybeApplied = false;
    const mayRetry = (err: unknown) => isRetryableError(err) && (this.opts.conflictMode === 'lww' || (err as RingkvError).notApplied);
    return this.retrying(call, opts, mayRetry, async () => {
      try {
        return await attempt();
      } catch (err) {
        if (err instanceof RingkvError) {
          if (!err.notApplied) maybeApplied = true;
          else if (maybeApplied) err.notApplied = false;
        }
        throw err;
      }
    });
  }

  /** Reports the end of a call on the `operation` event. */
  private async observed<T>(op: 'get' | 'put' | 'delete', level: Consistency, call: CallCtx, p: Promise<T>): Promise<T> {
    const name = typeof level === 'string' ? level : `r${level.r ?? ''}w${level.w ?? ''}`;
    try {
      const v = await p;
      this.events.operationDone(op, name, call.stats, undefined);
      return v;
    } catch (err) {
      this.events.operationDone(op, name, call.stats, err);
      throw err;
    }
  }

  /**
   * Whether an attempt that failed after a RING_CHANGED refusal routes again: within the
   * call's time and maxRingRetries. Before it does, the view must have moved past the stamp
   * the attempt routed on (the refusal's view was applied already; else it is refreshed).
   */
  private async routeAgain(call: CallCtx, tries: number, routedOn: RingStamp): Promise<boolean> {
    if (!call.ringChanged || tries >= this.opts.maxRingRetries || remaining(call) <= 0 || this.closed) return false;
    call.ringChanged = false;
    this.counters.ringRetries++;
    const same = () => this.view.ringStamp.epoch === routedOn.epoch && this.view.ringStamp.digest === routedOn.digest;
    if (same()) await withTimeout(this.view.refresh(), Math.max(1, remaining(call))).catch(() => undefined);
    // The replica may not have heard the cluster since it started: give gossip a moment.
    if (same()) await new Promise((r) => setTimeout(r, Math.min(50 * 2 ** tries, Math.max(1, remaining(call) / 2))));
    return remaining(call) > 0;
  }

  /**
   * A read at R = 1 through the near cache: a fresh entry is the answer; else the read asks
   * a replica naming the live invalidation stream to it, and stores the answer only when
   * that replica tracked the key for a stream that is still live and the key was not
   * invalidated meanwhile (sdk/near-cache.ts).
   */
  private async readCached(k: Buffer, plan: LevelPlan, call: CallCtx, read: ReadOpts): Promise<StoredObject | undefined> {
    const cache = this.nearCache!;
    const subscriber = this.subscriber!;
    const hit = cache.get(k);
    if (hit) return hit.obj ?? undefined;
    const ticket = cache.begin(k);
    const sent = new Map<string, string>();
    read.track = (node) => {
      const sid = subscriber.liveSid(node);
      if (sid !== undefined) sent.set(node, sid);
      return sid;
    };
    try {
      const obj = await this.readWithRetries(k, plan, call, read);
      const served = read.served;
      if (served && served.tracked && sent.get(served.node) !== undefined && subscriber.liveSid(served.node) === sent.get(served.node)) {
        cache.offer(ticket, obj ?? null, served.node);
      } else cache.counters.untracked++;
      return obj;
    } finally {
      cache.end(ticket);
    }
  }

  /** A read, routed again (bounded) when its write-back was refused for an older ring. */
  private async readWithRetries(k: Buffer, plan: LevelPlan, call: CallCtx, read?: ReadOpts): Promise<StoredObject | undefined> {
    for (let tries = 0; ; tries++) {
      const routedOn = this.view.ringStamp;
      try {
        return await this.readObject(k, plan, call, read);
      } catch (err) {
        if (await this.routeAgain(call, tries, routedOn)) continue;
        throw ringRefused(err, call);
      }
    }
  }

  /**
   * The read path: asks R replicas (more when some fail), merges their answers, and — at
   * R >= 2 — returns the merged object only once a majority of the replicas holds it (ABD's
   * write-back: the answers that already hold it count, the others are repaired, and
   * replicas not asked yet are brought in when repairs fail), so that no later quorum read
   * can return anything older. Fails with QUORUM_NOT_MET or TIMEOUT when that cannot be
   * done. At R = 1, stale replicas are repaired in the background (`readRepair`). With
   * several data centers, R and the majority are the level's (LevelPlan): a local level asks
   * and repairs only the client's data center. Answers that are late bring in the next
   * replica (hedged reads, sdk/hedging.ts; of the late replica's data center); its answer
   * counts toward R like any other.
   */
  private async readObject(k: Buffer, plan: LevelPlan, call: CallCtx, read?: ReadOpts): Promise<StoredObject | undefined> {
    const ring = this.view.ringStamp;
    const req = plan.read;
    const replicas = this.readTargets(k, req);
    const op: WireOp = { t: OpType.Get, key: k };
    const askAll = this.opts.readFanout === 'all' || Math.random() < this.opts.readRepairChance;
    // A replica answering SUSPECT_RANGE (its copy is quarantined) brings in the next one;
    // above the level's majority it is excused once that majority answered (see QuorumExcuse).
    const excuse = { codes: SUSPECT_CODES, minAnswers: Math.min(req.total, plan.writeBack?.total ?? req.total) };
    const hedging = this.hedging;
    hedging.onRead();
    const hedgeOpts = read?.hedge ?? hedging.options;
    // Every answer's latency (and a timeout's wait) feeds the replica's latency estimate.
    const track = read?.track;
    const send = (node: string): Promise<WireResult> => {
      const t0 = monotonicNowMs();
      const sid = track?.(node);
      return this.send(node, sid === undefined ? op : { t: OpType.Get, key: k, track: sid }, call).then(
        (res) => {
          if (res.ok) hedging.record(node, monotonicNowMs() - t0);
          return res;
        },
        (err: unknown) => {
          if ((err as RingkvError)?.code === 'TIMEOUT') hedging.record(node, monotonicNowMs() - t0);
          throw err;
        },
      );
    };
    const hedge: QuorumHedge | undefined =
      hedgeOpts.enabled && !askAll && replicas.length > req.total
        ? { delayFor: (node) => hedging.delayFor(node, hedgeOpts), allow: (c, waitedMs) => hedging.decide(c, waitedMs) === 'hedge', nowMs: monotonicNowMs }
        : undefined;
    const out: QuorumOutcome = await quorumCall(
      'get',
      replicas,
      req.total,
      remaining(call),
      send,
      askAll ? replicas.length : req.total,
      this.groupsOf(req),
      excuse,
      hedge,
    );
    if (out.hedgeWon) hedging.onWon();
    if (read && out.answers.length === 1) read.served = { node: out.answers[0]!.node, tracked: out.answers[0]!.result.tracked === true };
    let merged: StoredObject | undefined;
    for (const a of out.answers) if (a.obj) merged = merged ? mergeObjects(merged, a.obj) : a.obj;
    if (merged) this.hlc.observe(maxTs(merged));
    const repaired = new Set<string>();
    if (merged && plan.writeBack) {
      await this.writeBack(k, merged, out.answers, call, ring, plan.writeBack);
      for (const a of out.answers) if (!a.obj || !objectsEqual(a.obj, merged)) repaired.add(a.node);
    } else if (merged && this.opts.readRepair) {
      const stale = out.answers.filter((a) => !a.obj || !objectsEqual(a.obj, merged!));
      for (const a of stale) repaired.add(a.node);
      const bg = this.backgroundCtx(call);
      if (stale.length > 0) this.track(Promise.allSettled(stale.map((a) => this.repair(a.node, k, merged!, bg, ring))));
    }
    if (merged && this.opts.readRepair && out.excused.length > 0) {
      // A replica whose copy is quarantined takes the merged object (its repair, early).
      const bg = this.backgroundCtx(call);
      const target = merged;
      this.track(Promise.allSettled(out.excused.map((node) => this.repair(node, k, target, bg, ring))));
    }
    if (this.opts.readRepair) {
      // Replicas that answer after the quorum are compared too, and repaired in the background.
      this.track(
        out.settled.then(({ answers }) => {
          let all = merged;
          for (const a of answers) if (a.obj) all = all ? mergeObjects(all, a.obj) : a.obj;
          if (!all) return;
          const target = all;
          const stale = answers.filter(
            (a) => (!a.obj || !objectsEqual(a.obj, target)) && !(target === merged && repaired.has(a.node)),
          );
          const bg = this.backgroundCtx(call);
          return Promise.allSettled(stale.map((a) => this.repair(a.node, k, target, bg, ring)));
        }),
      );
    }
    return merged;
  }

  /**
   * Makes sure a majority of the replicas of `k` holds `obj` (or something newer): repairs
   * every stale replica that answered (waiting for those repairs, as blocking read repair
   * does), counts the replicas that hold it, and brings in replicas not asked yet while that
   * is short of a majority. Throws QuorumNotMetError or TimeoutError when it stays short.
   * The majority is `need` (the level's write-back: of the client's data center, of each, or
   * of every replica).
   */
  private async writeBack(k: Buffer, obj: StoredObject, answers: readonly ReplicaAnswer[], call: CallCtx, ring: RingStamp, need: Requirement): Promise<void> {
    const holders = new Set(answers.filter((a) => a.obj && objectsEqual(a.obj, obj)).map((a) => a.node));
    const stale = answers.filter((a) => !a.obj || !objectsEqual(a.obj, obj)).map((a) => a.node);
    if (stale.length === 0 && this.shortOf(need, holders) === undefined) return;
    this.counters.writeBacks++;
    let left = remaining(call);
    if (left <= 0) throw new TimeoutError('get (writing the value back to a quorum)', call.timeoutMs);
    const results = await withTimeout(Promise.allSettled(stale.map((node) => this.repairResult(node, k, obj, call, ring))), left).catch(() => []);
    results.forEach((r, i) => {
      if (r.status === 'fulfilled' && r.value.ok) holders.add(stale[i]!);
    });
    const short = this.shortOf(need, holders);
    if (short === undefined) return;
    const asked = new Set(answers.map((a) => a.node));
    const others = this.replicaTargets(k, need.dcs).filter((x) => !asked.has(x));
    const candidates = [...others.filter((x) => this.isUsable(x)), ...others.filter((x) => !this.isUsable(x))];
    left = remaining(call);
    if (left <= 0) throw new TimeoutError('get (writing the value back to a quorum)', call.timeoutMs);
    await quorumCall('get (write-back)', candidates, short.total, left, (node) => this.repairResult(node, k, obj, call, ring), short.total, this.groupsOf(short));
  }

  /**
   * What `holders` still lack of `need`: the answers missing in all and in each data center
   * (undefined when none are).
   */
  private shortOf(need: Requirement, holders: ReadonlySet<string>): Requirement | undefined {
    const perDc = new Map<string, number>();
    let sum = 0;
    for (const [dc, n] of need.perDc) {
      let have = 0;
      for (const h of holders) if (this.view.dcOf(h) === dc) have++;
      if (have < n) {
        perDc.set(dc, n - have);
        sum += n - have;
      }
    }
    const total = Math.max(need.total - holders.size, sum);
    if (total <= 0) return undefined;
    return { dcs: need.dcs, perDc, total };
  }

  private async repair(node: string, key: Buffer, obj: StoredObject, call: CallCtx, ring: RingStamp): Promise<void> {
    const res = await this.repairResult(node, key, obj, call, ring);
    if (!res.ok) throw errorFromWire(res.code, res.msg);
  }

  private async repairResult(node: string, key: Buffer, obj: StoredObject, call: CallCtx, ring: RingStamp): Promise<WireResult> {
    this.counters.readRepairs++;
    call.stats.repairs++;
    try {
      const res = await this.send(node, { t: OpType.Merge, key, obj }, call, ring);
      if (!res.ok) this.counters.readRepairFailures++;
      return res;
    } catch (err) {
      this.counters.readRepairFailures++;
      throw err;
    }
  }

  private toGetResult(obj: StoredObject, resolver: SiblingResolver<V> | undefined): GetResult<V> | undefined {
    const live = liveSiblings(obj, this.clock.nowMs());
    if (live.length === 0) return undefined;
    const sibs = live.map((s) => this.toSiblingValue(s));
    let chosen = live[0]!;
    for (const s of live) if (s.ts > chosen.ts || (s.ts === chosen.ts && s.writer > chosen.writer)) chosen = s;
    const result: GetResult<V> = {
      value: this.decodeValue(chosen),
      version: versionString(obj),
      context: obj.mode === 'dvv' ? encodeContextToken(obj.context) : versionString(obj),
      contentType: chosen.contentType,
      flags: chosen.flags,
    };
    if (chosen.expiresAtMs > 0) result.expiresAtMs = chosen.expiresAtMs;
    if (live.length > 1) {
      result.siblings = sibs;
      if (resolver) result.value = resolver(sibs);
    }
    return result;
  }

  private toSiblingValue(s: Sibling): SiblingValue<V> {
    return { value: this.decodeValue(s), contentType: s.contentType, flags: s.flags, ts: s.ts, writer: s.writer };
  }

  // -----------------------------------------------------------------------------------
  // put / delete

  /** Writes `value` under `key`. Resolves after W replicas acknowledged it durably. */
  async put(key: Key, value: V | Buffer | Uint8Array | string, opts: PutOptions = {}): Promise<PutResult> {
    this.checkOpen();
    const k = toKey(key);
    const { bytes, contentType } = this.encodeValue(value, opts.contentType);
    const flags = opts.flags ?? 0;
    if (!Number.isSafeInteger(flags) || flags < 0) throw new InvalidArgumentError('flags must be a non-negative integer');
    let ttlMs = 0;
    if (opts.ttl !== undefined) ttlMs = Math.ceil(checkTtl(opts.ttl) * 1000);
    const level = this.levelOf(opts.consistency);
    const call = this.callCtx('put', opts);
    const attempt = () => this.write(k, { value: bytes, tombstone: false, contentType, flags }, ttlMs, opts, call);
    return this.observed('put', level, call, abortable(this.retryingWrite(call, opts, attempt), call.signal, 'put'));
  }

  /** Deletes `key` (writes a tombstone). */
  async delete(key: Key, opts: DeleteOptions = {}): Promise<PutResult> {
    this.checkOpen();
    const k = toKey(key);
    const level = this.levelOf(opts.consistency);
    const call = this.callCtx('delete', opts);
    const attempt = () => this.deleteWith(k, level, opts, call);
    return this.observed('delete', level, call, abortable(this.retryingWrite(call, opts, attempt), call.signal, 'delete'));
  }

  private async deleteWith(k: Buffer, level: Consistency, opts: DeleteOptions, call: CallCtx): Promise<PutResult> {
    let context = opts.context;
    if (this.opts.conflictMode === 'vector-clock' && context === undefined) {
      // A delete without context would only add a tombstone sibling: read the context first.
      let obj: StoredObject | undefined;
      try {
        obj = await this.readWithRetries(k, this.planOf(level), call);
      } catch (err) {
        throw markOutcome(err, { maybeApplied: false });
      }
      context = obj ? encodeContextToken(obj.context) : undefined;
    }
    return this.write(k, { value: EMPTY, tombstone: true, contentType: '', flags: 0 }, 0, { ...opts, context }, call);
  }

  /** The level of a call (the client's default when not given); `linearizable` needs last-write-wins. */
  private levelOf(c: Consistency | undefined): Consistency {
    const level = c ?? this.opts.consistency;
    if (level === 'linearizable' && this.opts.conflictMode !== 'lww') throw linearizableNeedsLww();
    return level;
  }

  /** What a level means in this cluster, from this client's data center (consistency.ts planFor). */
  private planOf(level: Consistency): LevelPlan {
    return planFor(level, this.view.replication, this.opts.localDc);
  }

  /** The per-data-center part of a requirement for quorumCall (none in a cluster of one data center). */
  private groupsOf(req: Requirement, extra?: ReadonlyMap<string, number>): QuorumGroups | undefined {
    if (req.perDc.size === 0 || Object.keys(this.view.replication).length < 2) return undefined;
    let need: ReadonlyMap<string, number> = req.perDc;
    if (extra && extra.size > 0) {
      const m = new Map(req.perDc);
      for (const [dc, n] of extra) if (m.has(dc)) m.set(dc, m.get(dc)! + n);
      need = m;
    }
    return { of: (node) => this.view.dcOf(node) ?? '', need };
  }

  /** Count per data center of `nodes`. */
  private countByDc(nodes: readonly string[]): Map<string, number> {
    const m = new Map<string, number>();
    for (const x of nodes) {
      const dc = this.view.dcOf(x) ?? '';
      m.set(dc, (m.get(dc) ?? 0) + 1);
    }
    return m;
  }

  private async write(
    k: Buffer,
    content: Pick<Sibling, 'value' | 'tombstone' | 'contentType' | 'flags'>,
    ttlMs: number,
    opts: WriteCallOptions & { context?: string | undefined },
    call: CallCtx,
  ): Promise<PutResult> {
    const level = this.levelOf(opts.consistency);
    const plan = this.planOf(level);
    const countHints = opts.hintsCountTowardW ?? this.opts.hintsCountTowardW ?? plan.write.total === 1;
    // This client's own write drops its cached entry at once, and again when it is done (a
    // read in flight meanwhile may have fetched the value it replaces).
    this.nearCache?.invalidate(k);
    try {
      if (this.opts.conflictMode === 'lww') return await this.writeLww(k, content, ttlMs, level, plan, call, countHints);
      const ts = this.hlc.now();
      const expiresAtMs = ttlMs > 0 ? hlcToWallMs(ts) + ttlMs : 0;
      return await this.writeVectorClock(k, { ...content, expiresAtMs }, ts, opts.context, plan.write, call, countHints);
    } finally {
      this.nearCache?.invalidate(k);
    }
  }

  /**
   * A last-write-wins write. It is acknowledged only once its version is the one held by W
   * replicas: a replica that holds a newer version says so (`won: false` with that
   * version's timestamp), and the write is re-stamped above it and sent again, within the
   * call's timeout — a client whose clock lags can never be acknowledged for a write that
   * an earlier acknowledged one hides. At `linearizable` (ABD), the write first reads the
   * newest timestamp a majority holds and stamps above it; a replica that holds something
   * newer still then counts as an acknowledgement (the write is ordered just before that
   * newer one). A failure says whether the write may have been applied (`notApplied`).
   */
  private async writeLww(
    k: Buffer,
    content: Pick<Sibling, 'value' | 'tombstone' | 'contentType' | 'flags'>,
    ttlMs: number,
    level: Consistency,
    plan: LevelPlan,
    call: CallCtx,
    countHints: boolean,
  ): Promise<PutResult> {
    const opName = content.tombstone ? 'delete' : 'put';
    const linearizable = level === 'linearizable';
    const effects: WriteEffects = { maybeApplied: false };
    const need = plan.write;
    try {
      let ts: number;
      if (call.pinnedTs !== undefined) {
        // A retried attempt (sdk/retry.ts): the same version again, a no-op where it landed.
        ts = call.pinnedTs;
      } else if (linearizable) {
        // ABD phase 1: the newest version a majority of the replicas holds.
        const read = await quorumCall(
          `${opName} (reading versions)`,
          this.readTargets(k, plan.read),
          plan.read.total,
          remaining(call),
          (node) => this.send(node, { t: OpType.Get, key: k }, call),
          plan.read.total,
          this.groupsOf(plan.read),
        );
        let floor = 0;
        for (const a of read.answers) if (a.obj) floor = Math.max(floor, maxTs(a.obj));
        ts = floor > 0 ? this.hlc.nowAbove(floor) : this.hlc.now();
      } else {
        ts = this.hlc.now();
      }
      let ringTries = 0;
      for (let round = 1; ; round++) {
        call.pinnedTs = ts;
        const sib: Sibling = { ...content, expiresAtMs: ttlMs > 0 ? hlcToWallMs(ts) + ttlMs : 0, ts, writer: this.clientId };
        const obj: StoredObject = { mode: 'lww', siblings: [sib], context: {} };
        let newer = 0;
        const left = remaining(call);
        if (left <= 0) throw new TimeoutError(opName, call.timeoutMs);
        // Routed afresh each round: a round after a RING_CHANGED refusal uses the new ring.
        const ring = this.view.ringStamp;
        const replicas = this.replicaTargets(k, need.dcs);
        // Replicas that are about to take over the key (a join or leave in progress) must
        // acknowledge too, so that no write is lost when ownership moves (as Cassandra does).
        const pending = this.pendingTargets(k, replicas, need.dcs);
        const targets = [...replicas, ...pending];
        const holders = this.hintHolders(k);
        const groups = this.groupsOf(need, this.countByDc(pending));
        try {
          const out = await quorumCall(opName, targets, need.total + pending.length, left, async (node) => {
            const res = await this.writeReplica(node, k, obj, holders, countHints || pending.includes(node), effects, call, ring);
            if (res.ok && res.won === false) {
              // The replica holds a newer version (timestamp res.ts): this version is not the one it serves.
              if (typeof res.ts === 'number' && res.ts > newer) newer = res.ts;
              if (!linearizable) return { ok: false, code: 'QUORUM_NOT_MET', msg: `${node} holds a newer version (ts ${res.ts})` };
            }
            return res;
          }, targets.length, groups);
          for (const a of out.answers) if (a.result.ts) this.hlc.observe(a.result.ts);
          this.resendRefused(k, obj, out, need.dcs);
          const v = versionString(obj);
          return { version: v, context: v, created: out.answers.every((a) => a.result.created === true) };
        } catch (err) {
          // The same version again on the ring a replica said is newer (idempotent where it landed).
          if (await this.routeAgain(call, ringTries++, ring)) {
            round--;
            continue;
          }
          if (newer > 0 && round < this.opts.maxWriteRounds && err instanceof QuorumNotMetError && remaining(call) > 0) {
            this.counters.restampedWrites++;
            ts = this.hlc.nowAbove(newer);
            continue;
          }
          throw ringRefused(err, call);
        }
      }
    } catch (err) {
      throw markOutcome(typedCause(err), effects);
    }
  }

  /**
   * Sends `obj` (a fresh write) to replica `node`; when the node is known down, or the write
   * fails for reachability, stores it as a hint on the next healthy node beyond the
   * preference list (sloppy quorum). A hinted write counts as an acknowledgement only when
   * `countHints`. Notes in `effects` whether the write may have been applied anywhere.
   */
  private async writeReplica(
    node: string,
    key: Buffer,
    obj: StoredObject,
    holders: (target: string) => string | undefined,
    countHints: boolean,
    effects: WriteEffects,
    call: CallCtx,
    ring: RingStamp,
    shipped = false,
  ): Promise<WireResult> {
    // A shipped object (from another data center) is merged: it may well be older than what
    // a replica holds, which is no failure.
    const op: WireOp = shipped
      ? { t: OpType.Merge, key, obj, shipped: true }
      : obj.mode === 'lww'
        ? { t: OpType.Put, key, obj }
        : { t: OpType.Merge, key, obj };
    if (this.isUsable(node)) {
      try {
        return noteEffect(effects, await this.send(node, op, call, ring));
      } catch (err) {
        noteFailure(effects, err);
        if (!isReachabilityFailure(err)) throw err;
      }
    }
    const holder = holders(node);
    if (!holder) throw new QuorumNotMetError('hinted write', 1, 0, 1, new Error(`no healthy node can hold a hint for ${node}`));
    // The hint gets at least the client's timeout from now: a request to a node that stopped
    // answering times out at the call's deadline, leaving the hint no time (it would expire
    // unsent, and the replica miss the write until anti-entropy). The call itself still ends
    // at its deadline; an abort still drops the hint while it is queued.
    const hintCall: CallCtx = { ...call, deadline: Math.max(call.deadline, monotonicNowMs() + this.opts.timeoutMs), ringChanged: false };
    let res: WireResult;
    try {
      res = noteEffect(effects, await this.send(holder, { ...op, hintFor: node } as WireOp, hintCall, ring));
      if (hintCall.ringChanged) call.ringChanged = true;
    } catch (err) {
      noteFailure(effects, err);
      throw err;
    }
    if (!res.ok) return res;
    this.counters.hintedWrites++;
    if (countHints) return res;
    return { ok: false, code: 'NODE_UNAVAILABLE', msg: `${node} is down; the write is kept as a hint on ${holder}` };
  }

  /**
   * Hint holders for `key`, in order: healthy nodes clockwise beyond the preference list,
   * then (in a cluster too small for that) healthy replicas themselves — never the node the
   * hint is for, which may still look healthy when its write has just failed. Each call
   * returns the next one, so that two down replicas get different holders when possible. A
   * hint stays in the data center of the replica it stands for: the holders of a target are
   * members of its data center.
   */
  private hintHolders(key: Buffer): (target: string) => string | undefined {
    const orders = new Map<string, { order: string[]; i: number }>();
    return (target) => {
      const dc = this.view.dcOf(target) ?? '';
      let o = orders.get(dc);
      if (!o) {
        const ring = this.view.ring;
        const placed = new Set(ring.replicasInDc(key, dc));
        const walk = [...ring.walkInDc(key, dc)];
        const beyond = walk.filter((x) => !placed.has(x) && this.isUsable(x));
        const replicas = walk.filter((x) => placed.has(x) && this.isUsable(x));
        orders.set(dc, (o = { order: [...beyond, ...replicas], i: 0 }));
      }
      const candidates = o.order.filter((x) => x !== target);
      if (candidates.length === 0) return undefined;
      return candidates[o.i++ % candidates.length];
    };
  }

  /**
   * Vector-clock write: the first reachable replica of the preference list coordinates
   * (assigns the dot and applies the client's context); the others then merge its result.
   */
  private async writeVectorClock(
    k: Buffer,
    content: Pick<Sibling, 'value' | 'tombstone' | 'expiresAtMs' | 'contentType' | 'flags'>,
    ts: number,
    contextToken: string | undefined,
    need: Requirement,
    call: CallCtx,
    countHints: boolean,
  ): Promise<PutResult> {
    const opName = content.tombstone ? 'delete' : 'put';
    const ctx: VersionVector = contextToken ? decodeContextToken(contextToken) : {};
    const op: WireOp = { t: OpType.CoordinatedPut, key: k, ctx, sib: { ...content, ts, writer: this.clientId } };
    const { obj, created } = await this.coordinatedWrite(k, op, opName, need, call, countHints);
    const token = encodeContextToken(obj.context);
    return { version: token, context: token, created };
  }

  /**
   * A write coordinated by one replica (a vector-clock put, a data-type update): the first
   * reachable replica of the preference list applies `op` and returns the resulting object;
   * the other replicas (and those about to take the key over) then merge that object, W of
   * them counting with the coordinator. `answer` may turn a replica's merge answer into a
   * failure (a data type that lost there to another type). A failure says whether the write
   * may have been applied (`notApplied`).
   */
  private async coordinatedWrite(
    k: Buffer,
    op: WireOp,
    opName: string,
    need: Requirement,
    call: CallCtx,
    countHints: boolean,
    answer: (node: string, res: WireResult) => WireResult = (_node, res) => res,
  ): Promise<{ obj: StoredObject; created: boolean }> {
    const w = need.total;
    const effects: WriteEffects = { maybeApplied: false };
    let coordinator: string | undefined;
    let obj: StoredObject | undefined;
    let created = false;
    try {
      for (let ringTries = 0; ; ringTries++) {
        // Routed afresh after a RING_CHANGED refusal; a coordinated object is kept (its dot
        // is assigned once) and only merged into the replicas of the new ring.
        const ring = this.view.ringStamp;
        const replicas = this.replicaTargets(k, need.dcs);
        try {
          if (!coordinator || !obj) {
            let failures = 0;
            let lastErr: unknown;
            // Healthy replicas coordinate first; the others only when none of those answers.
            const candidates = [...replicas.filter((x) => this.isUsable(x)), ...replicas.filter((x) => !this.isUsable(x))];
            for (const node of candidates) {
              const left = remaining(call);
              if (left <= 0) break;
              let answered = false;
              try {
                const res = await withTimeout(this.send(node, op, call, ring), left);
                answered = true;
                noteEffect(effects, res);
                if (!res.ok) throw errorFromWire(res.code, res.msg, res.details);
                coordinator = node;
                obj = res.obj ?? undefined;
                created = res.created === true;
                break;
              } catch (err) {
                if (!answered) noteFailure(effects, err);
                if (err instanceof RingkvError && !isRetryable(err)) throw err;
                // A replica that only refused to coordinate (SUSPECT_RANGE: its copy is
                // quarantined) still merges the result and counts toward W.
                if (!(err instanceof RingkvError && SUSPECT_CODES.has(err.code))) failures++;
                lastErr = err;
                if (replicas.length - failures < w) break;
              }
            }
            if (!coordinator || !obj) {
              if (remaining(call) <= 0) throw new TimeoutError(opName, call.timeoutMs);
              throw new QuorumNotMetError(opName, w, 0, failures, lastErr);
            }
            this.hlc.observe(maxTs(obj));
          }
          const coordinated = obj;
          // The coordinator counts toward W only while it is a replica of the ring routed on.
          const counted = replicas.includes(coordinator) ? 1 : 0;
          const others = replicas.filter((r) => r !== coordinator);
          const pending = this.pendingTargets(k, replicas, need.dcs).filter((r) => r !== coordinator);
          const holders = this.hintHolders(k);
          // Per data center: the coordinator's answer counts toward its own; pending replicas add to theirs.
          const extra = this.countByDc(pending);
          if (counted) {
            const dc = this.view.dcOf(coordinator) ?? '';
            extra.set(dc, (extra.get(dc) ?? 0) - 1);
          }
          const groups = this.groupsOf(need, extra);
          const groupsNeedMore = groups !== undefined && [...groups.need.values()].some((n) => n > 0);
          if (w > counted || pending.length > 0 || groupsNeedMore) {
            const targets = [...others, ...pending];
            const out = await quorumCall(
              opName,
              targets,
              Math.max(0, w - counted + pending.length),
              Math.max(1, remaining(call)),
              async (node) =>
                answer(node, await this.writeReplica(node, k, coordinated, holders, countHints || pending.includes(node), effects, call, ring)),
              targets.length,
              groups,
            );
            this.resendRefused(k, coordinated, out, need.dcs, coordinator);
          } else {
            const bg = this.backgroundCtx();
            for (const node of others) this.track(this.writeReplica(node, k, coordinated, holders, countHints, effects, bg, ring));
          }
          return { obj: coordinated, created };
        } catch (err) {
          if (await this.routeAgain(call, ringTries, ring)) continue;
          throw ringRefused(err, call);
        }
      }
    } catch (err) {
      throw markOutcome(typedCause(err), effects);
    }
  }

  // -----------------------------------------------------------------------------------
  // data types

  /**
   * A counter on `key` (sdk/data-types.ts): `await kv.counter('likes:42').increment(5)`. With
   * `{ shards }`, a counter for write-hot counts spread over that many keys (`key`, `key#1`,
   * …): an increment goes to one of them, a read sums them all (sdk/sharded-counter.ts).
   */
  counter(key: Key): CounterHandle;
  counter(key: Key, opts: CounterOptions & { shards: number }): ShardedCounterHandle;
  counter(key: Key, opts?: CounterOptions): CounterHandle | ShardedCounterHandle {
    if (opts === undefined) return new CounterHandle(this, key);
    return new ShardedCounterHandle(this, key, shardsOf(opts));
  }

  /** An add-wins set of strings on `key`: `await kv.set('tags:7').add('a', 'b')`. */
  set(key: Key): SetHandle {
    return new SetHandle(this, key);
  }

  /** A last-write-wins register of a JSON value on `key`. */
  register(key: Key): RegisterHandle {
    return new RegisterHandle(this, key);
  }

  /** A map of counters, sets, registers, flags and maps on `key`: `kv.map('profile:1').update(m => m.register('name').set('Ada'))`. */
  map(key: Key): MapHandle {
    return new MapHandle(this, key);
  }

  /**
   * Reads the data type of `key`: R replicas are asked and their states merged (stale ones
   * repaired, as for plain keys). Undefined when no replica holds anything (or only a
   * deleted plain value). WRONG_TYPE when the key holds a plain value, or a data type other
   * than `expected`. INVALID_CONSISTENCY at `linearizable`. Used by the typed handles and
   * the HTTP API; applications use kv.counter(key).fetch() and the like.
   */
  async dataTypeFetch(key: Key, expected: CrdtType | undefined, opts: CallOptions = {}): Promise<{ state: CrdtState } | undefined> {
    this.checkOpen();
    const k = toKey(key);
    const level = dataTypeLevel(opts.consistency ?? this.opts.consistency);
    const plan = this.planOf(level);
    const call = this.callCtx('fetch', opts);
    const obj = await abortable(this.readWithRetries(k, plan, call), call.signal, 'fetch');
    if (!obj) return undefined;
    if (obj.mode !== 'crdt') {
      if (liveSiblings(obj, this.clock.nowMs()).length === 0) return undefined;
      throw new WrongTypeError('plain value', expected ?? 'data type', 'fetch');
    }
    const state = crdtStateOf(obj);
    if (expected !== undefined && state.type !== expected) throw new WrongTypeError(state.type, expected, 'fetch');
    return { state };
  }

  /**
   * Applies a data-type operation (sdk/crdt/crdt-state.ts CrdtOp) to `key`: one replica
   * coordinates (applies it as its own actor) and W replicas in all hold the result before
   * it resolves, with the state at the coordinator. The operation id (opts.opId, else 16
   * random bytes) goes with every attempt of this call, so an attempt that timed out and
   * was applied anyway is not applied twice. INVALID_CONSISTENCY at `linearizable`.
   */
  async dataTypeUpdate(key: Key, op: CrdtOp, opts: DataTypeUpdateOptions = {}): Promise<{ state: CrdtState }> {
    this.checkOpen();
    const k = toKey(key);
    const level = dataTypeLevel(opts.consistency ?? this.opts.consistency);
    const plan = this.planOf(level);
    const countHints = opts.hintsCountTowardW ?? this.opts.hintsCountTowardW ?? plan.write.total === 1;
    if (!op || typeof op !== 'object') throw new InvalidArgumentError('a data-type operation is an object');
    const id = opIdOf(opts.opId);
    const call = this.callCtx('update', opts);
    const wire: WireOp = { t: OpType.DtUpdate, key: k, op, id };
    const run = this.coordinatedWrite(k, wire, `${String(op.type)} update`, plan.write, call, countHints, (node, res) =>
      res.ok && res.won === false ? { ok: false, code: 'WRONG_TYPE', msg: `${node} holds another data type under this key, which wins over this one` } : res,
    );
    const { obj } = await abortable(run, call.signal, 'update');
    return { state: crdtStateOf(obj) };
  }

  /** @internal A hybrid-logical-clock stamp for a register assignment. */
  registerStamp(): { ts: number; writer: string } {
    return { ts: this.hlc.now(), writer: this.clientId };
  }

  /**
   * @internal Merges `obj`, shipped from another data center (cross-DC replication, full
   * sync), into the replicas of this client's data center: resolves once a quorum of them
   * stored it or holds something newer (a hint within the data center counts). Never
   * re-stamps; the operations say `shipped`, so the replicas do not queue it for shipping
   * again. Rejects with QUORUM_NOT_MET or TIMEOUT.
   */
  async mergeShipped(key: Buffer, obj: StoredObject, opts: CallOptions = {}): Promise<void> {
    this.checkOpen();
    const call = this.callCtx('replicate', opts);
    const need = this.planOf('localQuorum').write;
    for (let ringTries = 0; ; ringTries++) {
      const ring = this.view.ringStamp;
      const replicas = this.replicaTargets(key, need.dcs);
      const pending = this.pendingTargets(key, replicas, need.dcs);
      const targets = [...replicas, ...pending];
      const holders = this.hintHolders(key);
      const effects: WriteEffects = { maybeApplied: false };
      try {
        await quorumCall('replicate', targets, need.total + pending.length, Math.max(1, remaining(call)), (node) =>
          this.writeReplica(node, key, obj, holders, true, effects, call, ring, true),
        );
        return;
      } catch (err) {
        if (await this.routeAgain(call, ringTries, ring)) continue;
        throw ringRefused(err, call);
      }
    }
  }

  /**
   * A write acknowledged by W replicas while others refused it for its ring (a fence in
   * progress: some replicas know the new ring, some not yet) is sent again, in the
   * background, to the replicas of the new ring that do not hold it yet — else a replica
   * that refused it would lack it until anti-entropy came by.
   */
  private resendRefused(k: Buffer, obj: StoredObject, out: QuorumOutcome, dcs: readonly string[], also?: string): void {
    this.track(
      out.settled.then(async ({ answers, failures }) => {
        if (!failures.some((f) => (f.error as RingkvError).code === 'RING_CHANGED')) return;
        const holding = new Set(answers.map((a) => a.node));
        if (also) holding.add(also);
        const ring = this.view.ringStamp;
        const replicas = this.replicaTargets(k, dcs);
        const targets = [...replicas, ...this.pendingTargets(k, replicas, dcs)].filter((x) => !holding.has(x));
        const holders = this.hintHolders(k);
        const bg = this.backgroundCtx();
        await Promise.allSettled(targets.map((node) => this.writeReplica(node, k, obj, holders, true, { maybeApplied: false }, bg, ring)));
      }),
    );
  }

  // -----------------------------------------------------------------------------------
  // plumbing

  /** Replicas of `k` in data centers `dcs` in the ring to come (a join or leave in progress) that are not replicas now. */
  private pendingTargets(k: Buffer, replicas: string[], dcs: readonly string[]): string[] {
    const pendingRing = this.view.pendingRing;
    if (pendingRing === this.view.ring) return [];
    const out: string[] = [];
    for (const dc of dcs) for (const x of pendingRing.replicasInDc(k, dc)) if (!replicas.includes(x)) out.push(x);
    return out;
  }

  /**
   * The replicas an operation on `k` goes to: its preference list in data centers `dcs`
   * (default every one), the client's own first.
   */
  private replicaTargets(k: Buffer, dcs?: readonly string[]): string[] {
    const ring = this.view.ring;
    const list = dcs ?? [...(this.opts.localDc !== undefined ? [this.opts.localDc] : []), ...ring.dataCenters.filter((d) => d !== this.opts.localDc)];
    if (list.length === 1) return [...ring.replicasInDc(k, list[0]!)];
    const out: string[] = [];
    for (const dc of list) out.push(...ring.replicasInDc(k, dc));
    return out;
  }

  /**
   * The replicas a read of `k` asks: the healthy ones; when fewer than `r` are healthy, the
   * doubtful ones (suspected, backing off) too. Replicas known down are skipped, so a read
   * that cannot meet R fails at once instead of waiting for timeouts.
   */
  private readTargets(k: Buffer, req: Requirement): string[] {
    if (req.dcs.length === 1) return this.readTargetsIn(k, req.dcs[0]!, req.total);
    // Several data centers (the client's own first): per data center as above with its own
    // count; for a count over all of them (quorum), the doubtful ones only when the healthy
    // ones of every data center together fall short.
    if (req.perDc.size > 0) return req.dcs.flatMap((dc) => this.readTargetsIn(k, dc, req.perDc.get(dc) ?? 0));
    const all = req.dcs.map((dc) => this.readTargetsIn(k, dc, Infinity));
    const healthy = all.flatMap((l) => l.filter((x) => this.isUsable(x)));
    if (healthy.length >= req.total) return healthy;
    return [...healthy, ...all.flatMap((l) => l.filter((x) => !this.isUsable(x)))];
  }

  /** readTargets within data center `dc`, for `r` answers there. */
  private readTargetsIn(k: Buffer, dc: string, r: number): string[] {
    // A recovering replica (back from an outage longer than the tombstone grace period) is
    // never read until it has been repaired: it may hold keys whose deletes were forgotten.
    const replicas = this.replicaTargets(k, [dc]).filter((x) => this.view.member(x)?.state !== 'recovering');
    // Healthy replicas first, in random order so that reads spread over the replicas.
    const healthy = shuffle(replicas.filter((x) => this.isUsable(x)));
    if (healthy.length >= r) return healthy;
    const doubtful = replicas.filter((x) => !healthy.includes(x) && this.view.member(x)?.state !== 'down' && this.view.member(x)?.state !== 'left');
    return [...healthy, ...doubtful];
  }

  /** True when requests should go to `node`: membership says up and it is not backing off. */
  private isUsable(node: string): boolean {
    const m = this.view.member(node);
    if (!m || (m.state !== 'up' && m.state !== 'joining' && m.state !== 'leaving' && m.state !== 'recovering')) return false;
    return !this.health.isAvoided(node);
  }

  /**
   * Sends one operation to `node` in its next batch, with the call's deadline and signal; a
   * write carries the ring stamp it was routed on. A RING_CHANGED refusal is noted on the call.
   */
  private send(node: string, op: WireOp, call: CallCtx, ring?: RingStamp): Promise<WireResult> {
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

  private track(p: Promise<unknown>): void {
    const q = p.catch(() => undefined);
    this.background.add(q);
    void q.finally(() => this.background.delete(q));
  }

  private checkOpen(): void {
    if (this.closed) throw new ClosedError('client');
  }

  private encodeValue(value: unknown, contentType: string | undefined): { bytes: Buffer; contentType: string } {
    let bytes: Buffer;
    let ct: string;
    // Bytes carry no content type unless given ('' reads as application/octet-stream over
    // HTTP): 24 bytes less per replica write on the wire and on disk.
    if (Buffer.isBuffer(value)) {
      bytes = value;
      ct = '';
    } else if (value instanceof Uint8Array) {
      bytes = Buffer.from(value.buffer, value.byteOffset, value.byteLength);
      ct = '';
    } else if (typeof value === 'string' && this.opts.valueEncoding !== 'json') {
      bytes = Buffer.from(value, 'utf8');
      ct = 'text/plain; charset=utf-8';
    } else if (this.opts.valueEncoding === 'json') {
      let text: string | undefined;
      try {
        text = JSON.stringify(value);
      } catch (err) {
        throw new InvalidArgumentError(`value is not JSON-serializable: ${(err as Error).message}`);
      }
      if (text === undefined) throw new InvalidArgumentError('value is not JSON-serializable');
      bytes = Buffer.from(text, 'utf8');
      ct = 'application/json';
    } else {
      throw new InvalidArgumentError(`value must be a Buffer, Uint8Array or string (use valueEncoding 'json' for objects)`);
    }
    checkValue(bytes);
    const finalCt = contentType ?? ct;
    if (finalCt) checkContentType(finalCt);
    return { bytes, contentType: finalCt };
  }

  private decodeValue(s: Sibling): V {
    switch (this.opts.valueEncoding) {
      case 'utf8':
        return s.value.toString('utf8') as V;
      case 'json':
        if (s.contentType.startsWith('application/json')) {
          try {
            return JSON.parse(s.value.toString('utf8')) as V;
          } catch {
            return s.value.toString('utf8') as V;
          }
        }
        return (s.contentType.startsWith('text/') ? s.value.toString('utf8') : Buffer.from(s.value)) as V;
      default:
        return Buffer.from(s.value) as V;
    }
  }

  /** Waits for background work (late read repairs, trailing replica writes) to finish. */
  async drain(): Promise<void> {
    while (this.background.size > 0) await Promise.allSettled([...this.background]);
  }

  /** Closes the client: stops membership polling, lets background work finish, closes connections. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.view.stop();
    this.subscriber?.close();
    await withTimeout(this.drain(), this.opts.timeoutMs).catch(() => undefined);
    if (this.ownsTransport) await this.transport.close();
  }
}

/** What a write's requests may have done: whether any replica may have applied it. */
interface WriteEffects {
  maybeApplied: boolean;
}

/** Notes what a replica's answer to a write means for the write's outcome. */
function noteEffect(effects: WriteEffects, res: WireResult): WireResult {
  // An answer that refused the write, or that says a newer version is held there, leaves
  // nothing behind; any other answer (ok, an I/O failure) may have.
  if (res.ok ? res.won !== false : !isNotAppliedCode(res.code)) effects.maybeApplied = true;
  return res;
}

/** Notes a request that failed without an answer (timeout, unreachable): it may have been applied. */
function noteFailure(effects: WriteEffects, err: unknown): void {
  if (!(err instanceof RingkvError && isNotAppliedCode(err.code))) effects.maybeApplied = true;
}

/** Marks a write's error with whether the write is known not to have been applied anywhere. */
function markOutcome(err: unknown, effects: WriteEffects): unknown {
  if (err instanceof RingkvError) err.notApplied = !effects.maybeApplied;
  return err;
}

/**
 * The consistency of a data-type call: any level but `linearizable`, which does not apply
 * (data-type updates are merged, never ordered: there is no newest version to read from a
 * majority or to stamp a write above; sdk/crdt/README.md).
 */
function dataTypeLevel(level: Consistency): Consistency {
  if (level === 'linearizable') {
    const e = new InvalidConsistencyError('linearizable');
    e.message =
      "consistency 'linearizable' does not apply to data types: their updates are merged, not ordered (use strong, eventual, all or {r, w}; strong reads see every update acknowledged at strong)";
    throw e;
  }
  return level;
}

/** A write that failed for its quorum because a replica refused it as WRONG_TYPE fails with WRONG_TYPE. */
function typedCause(err: unknown): unknown {
  if (err instanceof QuorumNotMetError && err.cause instanceof RingkvError && err.cause.code === 'WRONG_TYPE') return err.cause;
  return err;
}

function linearizableNeedsLww(): InvalidConsistencyError {
  const e = new InvalidConsistencyError('linearizable');
  e.message = "consistency 'linearizable' needs conflictMode 'lww' (with vector clocks, concurrent writes are kept as siblings)";
  return e;
}

/**
 * The error of a call whose last attempt fell short because replicas refused its writes for
 * their ring (retries spent): RING_CHANGED rather than the quorum failure it caused.
 */
function ringRefused(err: unknown, call: CallCtx): unknown {
  if (!call.ringChanged || !(err instanceof QuorumNotMetError)) return err;
  return new RingChangedError(`${err.message}: replicas refused writes routed on an older ring, and routing again did not settle it`, err.details);
}

/** Retry a coordinator on another replica only for failures of reachability. */
function isRetryable(err: RingkvError): boolean {
  return (
    err.code === 'NODE_UNAVAILABLE' ||
    err.code === 'TIMEOUT' ||
    err.code === 'UNAVAILABLE' ||
    err.code === 'CLOSED' ||
    err.code === 'INTERNAL' ||
    // The replica's engine refused (full disk, recovering) or its copy is quarantined: another coordinates.
    err.code === 'WRITE_REFUSED' ||
    err.code === 'SUSPECT_RANGE'
  );
}

/** Replica answers that mean "my copy cannot be vouched for, ask another replica". */
const SUSPECT_CODES: ReadonlySet<string> = new Set(['SUSPECT_RANGE']);

function shuffle<T>(a: T[]): T[] {
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    const x = a[i]!;
    a[i] = a[j]!;
    a[j] = x;
  }
  return a;
}

function toKey(key: Key): Buffer {
  let b: Buffer;
  if (typeof key === 'string') b = Buffer.from(key, 'utf8');
  else if (Buffer.isBuffer(key)) b = key;
  else if (key instanceof Uint8Array) b = Buffer.from(key.buffer, key.byteOffset, key.byteLength);
  else throw new InvalidArgumentError('key must be a string, Buffer or Uint8Array');
  checkKey(b);
  return b;
}

/** Milliseconds left before the call's deadline (may be <= 0). */
function remaining(call: CallCtx): number {
  return Math.floor(call.deadline - monotonicNowMs());
}

/** Rejects with ABORTED as soon as `signal` fires (the work goes on, its result unused). */
function abortable<T>(p: Promise<T>, signal: AbortSignal | undefined, op: string): Promise<T> {
  if (!signal) return p;
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(new AbortedError(op, signal.reason));
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (e: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(e);
      },
    );
  });
}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const t = setTimeout(() => reject(new TimeoutError('operation', ms)), ms);
    p.then(
      (v) => {
        clearTimeout(t);
        resolve(v);
      },
      (e) => {
        clearTimeout(t);
        reject(e);
      },
    );
  });
}

/**
 * Connects to a ringkv cluster: learns the members from the seeds and returns a client.
 * Rejects when no seed answers.
 */
export async function connect(opts: ConnectOptions<string> & { valueEncoding: 'utf8' }): Promise<RingkvClient<string>>;
/**
 * With `valueEncoding: 'json'`, the type of the values: get() yields `T`, put() takes `T`.
 * @example
 * interface Cart { items: string[] }
 * const carts = await connect<Cart>({ seeds: ['127.0.0.1:7001'], valueEncoding: 'json' });
 * await carts.put('cart:1', { items: ['milk'] });
 * const cart = (await carts.get('cart:1'))?.value; // Cart | undefined
 */
export async function connect<T = unknown>(opts: ConnectOptions<T> & { valueEncoding: 'json' }): Promise<RingkvClient<T>>;
export async function connect(opts: ConnectOptions<Buffer>): Promise<RingkvClient<Buffer>>;
export async function connect<V>(opts: ConnectOptions<V>): Promise<RingkvClient<V>> {
  const c = new RingkvClient<V>(opts);
  try {
    await c.start();
  } catch (err) {
    await c.close();
    throw err;
  }
  return c;
}
