// The ringkv client: what application code imports. It routes every operation itself —
// ring lookup, fan-out to the N replicas, quorum wait, conflict resolution (last-write-wins
// or vector clocks with siblings), read repair — and coalesces operations per node into
// batch requests. One client is safe to share by every part of an application.
//
// This file is the facade: options, wiring and the public methods. The mechanisms live one
// per file (sdk/README.md, "Where to find what"): read-path, write-path, read-repair,
// sloppy-quorum, coordinated-write, value-encoding, routing, ring-retry, call-retry.

import crypto from 'node:crypto';
import { systemClock } from './clock.js';
import { ClusterView } from './cluster-view.js';
import { planFor } from './consistency.js';
import { Batcher, monotonicNowMs } from './batcher.js';
import { ClosedError, InvalidArgumentError, RingkvError, WrongTypeError } from './errors.js';
import type { CrdtOp, CrdtState, CrdtType } from './crdt/crdt-state.js';
import { crdtTypeOf } from './crdt/crdt-object.js';
import type { DataTypeUpdateOptions } from './data-types.js';
import { CounterHandle, MapHandle, RegisterHandle, SetHandle, opIdOf } from './data-types.js';
import type { CounterOptions } from './sharded-counter.js';
import { ShardedCounterHandle, shardsOf } from './sharded-counter.js';
import { HybridLogicalClock } from './hlc.js';
import { ClusterClock, followServerClocks } from './cluster-clock.js';
import { checkTtl } from './limits.js';
import type { Transport } from './transport.js';
import { HttpTransport } from './transport.js';
import { transportTlsFromOptions } from './transport-security.js';
import type { StoredObject } from './versioning/index.js';
import { liveSiblings } from './versioning/index.js';
import type { WireOp } from './wire/protocol.js';
import { NodeHealth } from './node-health.js';
import type { HedgeCounters } from './hedging.js';
import { callHedgeOptions, Hedging, resolveHedgeOptions } from './hedging.js';
import type { NearCacheCounters } from './near-cache.js';
import { NearCache, resolveNearCacheOptions } from './near-cache.js';
import { InvalidationSubscriber } from './invalidation-subscriber.js';
import { OpType } from './wire/protocol.js';
import { isRetryableError } from './retry.js';
import type { ClientEventName, ClientListener } from './client-events.js';
import { ClientEvents } from './client-events.js';
import type { KeyOutcome, PutEntry } from './multi-key.js';
import { forEachKey } from './multi-key.js';
import type { ListingDeps, ListOptions } from './listing.js';
import { Listing } from './listing.js';
import type { CallOptions, ConnectOptions, DeleteOptions, GetOptions, GetResult, Key, ListEntry, PutOptions, PutResult, SiblingResolver } from './client-types.js';
import type { ClientSettings } from './client-options.js';
import { resolveClientOptions } from './client-options.js';
import type { CallCtx } from './call-context.js';
import { abortable, newCallCtx, observed, withTimeout } from './call-context.js';
import { retrying, retryingWrite } from './call-retry.js';
import { ClientCore } from './client-core.js';
import type { ClientCounters } from './client-core.js';
import { Routing } from './routing.js';
import { dataTypeLevel, fetchDataType, updateDataType } from './data-type-calls.js';
import { ReadPath } from './read-path.js';
import type { ReadOpts } from './read-path.js';
import { ReadRepair } from './read-repair.js';
import { ValueCodec, toKey } from './value-encoding.js';
import { WritePath } from './write-path.js';

export type {
  CallOptions, ConflictMode, ConnectOptions, DeleteOptions, GetOptions, GetResult, ListEntry,
  PutOptions, PutResult, SiblingResolver, SiblingValue, ValueEncoding, WriteCallOptions,
} from './client-types.js';

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
  private readonly opts: ClientSettings<V>;
  private readonly events = new ClientEvents();
  /** What the read and write paths share (view, routing, clocks, counters, sending, background work). */
  private readonly core: ClientCore;
  private readonly codec: ValueCodec<V>;
  private readonly reads: ReadPath;
  private readonly writes: WritePath;
  /** Counters for tests and metrics. */
  readonly counters: ClientCounters;

  /** @internal use connect() */
  constructor(o: ConnectOptions<V>) {
    const opts = resolveClientOptions(o);
    const { timeoutMs } = opts;
    this.clientId = o.clientId ?? `c-${crypto.randomBytes(6).toString('hex')}`;
    this.clock = new ClusterClock(o.clock ?? systemClock);
    this.hlc = new HybridLogicalClock(this.clock, { maxLeadMs: opts.maxClockSkewMs });
    // The servers' clocks, reported in every answer, correct the client's (sdk/cluster-clock.ts).
    const serverClock = followServerClocks(this.clock, this.hlc);
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
    this.opts = opts;
    const routing = new Routing(this.view, this.health, opts.localDc);
    this.core = new ClientCore(this.clientId, opts, this.view, routing, this.hlc, this.clock, this.batcher);
    this.counters = this.core.counters;
    this.codec = new ValueCodec<V>(opts.valueEncoding, this.clock);
    this.reads = new ReadPath(this.core, this.hedging, new ReadRepair(this.core), this.nearCache, this.subscriber);
    this.writes = new WritePath(this.core, this.reads, this.nearCache);
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

  /** Batch requests sent, operations they carried, operations dropped unsent (expired, aborted) or refused for load (shed). */
  get batchCounters(): { batches: number; ops: number; expired: number; aborted: number; shed: number } {
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
      const r = this.codec.toGetResult(obj, resolver);
      return r && { ...r, key: key.toString('utf8'), keyBytes: key };
    };
    return new Listing(this.listingDeps(), opts, entry, false);
  }

  private listingDeps(): ListingDeps {
    return {
      view: this.view,
      transport: this.transport,
      isUsable: (n) => this.core.routing.isUsable(n),
      timeoutMs: this.opts.timeoutMs,
      isClosed: () => this.core.closed,
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
    const level = this.core.levelOf(opts.consistency);
    const plan = this.core.planOf(level);
    const call = this.callCtx('get', opts);
    const read: ReadOpts = { hedge: callHedgeOptions(this.hedging.options, opts.hedge) };
    const cached = this.nearCache !== undefined && plan.read.total === 1 && opts.cache !== false;
    const attempt = () => (cached ? this.reads.readCached(k, plan, call, read) : this.reads.readWithRetries(k, plan, call, read));
    const obj = await observed(this.events, 'get', level, call, abortable(retrying(this.core, call, opts, isRetryableError, attempt), call.signal, 'get'));
    if (!obj) return undefined;
    if (obj.mode === 'crdt') throw new WrongTypeError(crdtTypeOf(obj.siblings[0]!.value), 'plain value', 'get');
    return this.codec.toGetResult(obj, opts.resolver ?? this.opts.resolver);
  }

  // -----------------------------------------------------------------------------------
  // put / delete

  /** Writes `value` under `key`. Resolves after W replicas acknowledged it durably. */
  async put(key: Key, value: V | Buffer | Uint8Array | string, opts: PutOptions = {}): Promise<PutResult> {
    this.checkOpen();
    const k = toKey(key);
    const { bytes, contentType } = this.codec.encode(value, opts.contentType);
    const flags = opts.flags ?? 0;
    if (!Number.isSafeInteger(flags) || flags < 0) throw new InvalidArgumentError('flags must be a non-negative integer');
    let ttlMs = 0;
    if (opts.ttl !== undefined) ttlMs = Math.ceil(checkTtl(opts.ttl) * 1000);
    const level = this.core.levelOf(opts.consistency);
    const call = this.callCtx('put', opts);
    const attempt = () => this.writes.write(k, { value: bytes, tombstone: false, contentType, flags }, ttlMs, opts, call);
    return observed(this.events, 'put', level, call, abortable(retryingWrite(this.core, call, opts, attempt), call.signal, 'put'));
  }

  /** Deletes `key` (writes a tombstone). */
  async delete(key: Key, opts: DeleteOptions = {}): Promise<PutResult> {
    this.checkOpen();
    const k = toKey(key);
    const level = this.core.levelOf(opts.consistency);
    const call = this.callCtx('delete', opts);
    const attempt = () => this.writes.delete(k, level, opts, call);
    return observed(this.events, 'delete', level, call, abortable(retryingWrite(this.core, call, opts, attempt), call.signal, 'delete'));
  }

  /** The deadline and signal of a call; throws ABORTED when the signal already fired. */
  private callCtx(op: string, opts: CallOptions): CallCtx {
    return newCallCtx(op, opts, this.opts.timeoutMs);
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
    const plan = this.core.planOf(level);
    const call = this.callCtx('fetch', opts);
    return abortable(fetchDataType(this.core, this.reads, k, expected, plan, call), call.signal, 'fetch');
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
    const plan = this.core.planOf(level);
    const countHints = opts.hintsCountTowardW ?? this.opts.hintsCountTowardW ?? plan.write.total === 1;
    if (!op || typeof op !== 'object') throw new InvalidArgumentError('a data-type operation is an object');
    const id = opIdOf(opts.opId);
    const call = this.callCtx('update', opts);
    const wire: WireOp = { t: OpType.DtUpdate, key: k, op, id };
    return abortable(updateDataType(this.core, k, wire, `${String(op.type)} update`, plan, countHints, call), call.signal, 'update');
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
    return this.writes.mergeShipped(key, obj, this.callCtx('replicate', opts));
  }

  // -----------------------------------------------------------------------------------
  // lifecycle

  private checkOpen(): void {
    if (this.core.closed) throw new ClosedError('client');
  }

  /** Waits for background work (late read repairs, trailing replica writes) to finish. */
  async drain(): Promise<void> {
    return this.core.drain();
  }

  /** Closes the client: stops membership polling, lets background work finish, closes connections. */
  async close(): Promise<void> {
    if (this.core.closed) return;
    this.core.closed = true;
    this.view.stop();
    this.subscriber?.close();
    await withTimeout(this.drain(), this.opts.timeoutMs).catch(() => undefined);
    if (this.ownsTransport) await this.transport.close();
  }
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