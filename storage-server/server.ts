// A storage server, the composition root of a node: it opens the data directory's stores,
// builds the parts (replica store, membership and failure detection, hints, anti-entropy,
// replication, membership changes, the router and its routes by area under http/), starts
// them, and stops them. start() binds and joins; stop() stops accepting, finishes in-flight
// requests, flushes and closes. Where each mechanism lives: README.md "Where to find what".

import pino from 'pino';
import type { Clock } from '../sdk/clock.js';
import { systemClock } from '../sdk/clock.js';
import { RingkvClient } from '../sdk/client.js';
import { InvalidArgumentError } from '../sdk/errors.js';
import { DEFAULT_DC, dcOf } from '../sdk/membership.js';
import type { Transport } from '../sdk/transport.js';
import type { StoredObject } from '../sdk/versioning/index.js';
import { AntiEntropy } from './anti-entropy/anti-entropy.js';
import { FoldPass } from './anti-entropy/fold-pass.js';
import { MerkleLeafUpkeep } from './anti-entropy/merkle-leaf-upkeep.js';
import { SpanHasher } from './anti-entropy/span-hasher.js';
import { AuthService } from './auth/auth-service.js';
import { BatchApplier } from './batch-applier.js';
import { checkSettingsWithSeeds, clusterSettingsOf } from './cluster-settings.js';
import type { ServerConfig } from './config.js';
import { prepareDataDir } from './data-dir.js';
import type { DotCounter } from './dot-counter.js';
import type { Engine, FileSystem } from './engine/index.js';
import type { HintStore } from './handoff/hint-store.js';
import { HintedHandoff } from './handoff/hinted-handoff.js';
import { HotKeys } from './hot-keys.js';
import { Admission } from './http/admission.js';
import { ConnectionGuard } from './http/connection-guard.js';
import { NodeHttpServer } from './http/node-http-server.js';
import { LoadShedder } from './http/load-shedder.js';
import { routeTable } from './http/route-table.js';
import { Router } from './http/router.js';
import { InvalidationHub } from './invalidation-hub.js';
import { LocalShortcutTransport } from './local-shortcut-transport.js';
import type { Logger } from './logger.js';
import { MembershipChanges } from './membership-changes.js';
import { FailureDetector } from './membership/failure-detector.js';
import { Membership } from './membership/membership.js';
import { AdmittedWrites } from './membership/ring-fence.js';
import { ServerMetrics } from './metrics.js';
import { registerNodeGauges } from './node-gauges.js';
import { readNodeState } from './node-state.js';
import type { NodeState } from './node-state.js';
import type { NodeStores } from './node-stores.js';
import { closeNodeStores, openNodeStores } from './node-stores.js';
import { NodeStateKeeper, OutageRecovery, startingNodeState } from './outage-recovery.js';
import { PeerTlsModes, peerTransport } from './peer-transport.js';
import { ReplicaStore } from './replica-store.js';
import { Replication } from './replication/replication.js';
import type { NodeTlsMaterial } from './tls/node-tls.js';
import { loadNodeTls } from './tls/node-tls.js';

export interface ServerSeams {
  clock?: Clock;
  fs?: FileSystem;
  /** Transport for talking to peers (tests wrap it to inject faults). */
  transport?: Transport;
  logger?: pino.Logger;
}

export class StorageServer {
  readonly engine: Engine;
  /** Applies replica operations to the engine, per-key serialized; keeps the Merkle leaves (replica-store.ts). */
  readonly store: ReplicaStore;
  /** This node's vector-clock actor and dot counter. */
  readonly dots: DotCounter;
  /** The member table and gossip (membership/membership.ts). */
  readonly membership: Membership;
  /** SWIM failure detection (membership/failure-detector.ts). */
  readonly detector: FailureDetector;
  /** Hints held for other nodes (handoff/hint-store.ts) and their delivery (handoff/hinted-handoff.ts). */
  readonly hints: HintStore;
  readonly handoff: HintedHandoff;
  /** Merkle hashes of token spans over the replica store's leaves (anti-entropy/span-hasher.ts). */
  readonly hasher: SpanHasher;
  /** Repair rounds (anti-entropy/anti-entropy.ts). */
  readonly antiEntropy: AntiEntropy;
  /** The Merkle leaf hashes' rebuild at start and in the background (anti-entropy/merkle-leaf-upkeep.ts). */
  readonly leafUpkeep: MerkleLeafUpkeep;
  /** Folds the counter entries of nodes that left into this node (anti-entropy/fold-pass.ts). */
  readonly foldPass: FoldPass;
  /** Asynchronous replication to the other data centers, inactive with one (replication/replication.ts). */
  readonly replication: Replication;
  /** Joins, decommissions, removals, cleanups and fold passes run by this node (membership-changes.ts). */
  readonly changes: MembershipChanges;
  /** The recovery after an outage longer than the tombstone grace period (outage-recovery.ts). */
  readonly recovery: OutageRecovery;
  /** Applies replica operation batches, from the batch endpoint and the local shortcut (batch-applier.ts). */
  readonly batches: BatchApplier;
  /** Write batches admitted under a ring stamp: ring fences wait for the older ones (membership/ring-fence.ts). */
  readonly admittedWrites = new AdmittedWrites();
  /** Prometheus metrics (metrics.ts; the gauges in node-gauges.ts). */
  readonly metrics: ServerMetrics;
  /** The keys this node serves most (hot-keys.ts). */
  readonly hotKeys: HotKeys;
  /** The near cache's invalidation streams and the keys they track (invalidation-hub.ts). */
  readonly invalidations: InvalidationHub;
  /**
   * The cluster's user table on this node (auth/README.md): kept and synchronized whenever the
   * node requires TLS (the table travels between node certificates only), used to check
   * tokens when auth.enabled.
   */
  readonly auth: AuthService | undefined;
  /** Admission control: refuses requests this node could not answer in time (http/load-shedder.ts, http/admission.ts). */
  readonly shedder: LoadShedder;
  readonly admission: Admission;
  /** Caps open connections, answering the one beyond with 503 (http/connection-guard.ts). */
  readonly connections: ConnectionGuard;
  /** The route table and the checks before each handler (http/router.ts). */
  readonly router: Router;
  readonly startedAtMs: number;
  private readonly replQueue: NodeStores['replQueue'];
  private readonly http: NodeHttpServer;
  /** What each peer's address accepts (plain or TLS). */
  private readonly peerTls: PeerTlsModes;
  private embedded: RingkvClient<Buffer> | undefined;
  private stopped: Promise<void> | undefined;

  private constructor(
    readonly config: ServerConfig,
    stores: NodeStores,
    readonly log: pino.Logger,
    /** The transport to peers (the real one, not the embedded client's local shortcut). */
    readonly transport: Transport,
    readonly clock: Clock,
    /** This node's NODE-STATE: the last-alive heartbeat and, while recovering, the outage start (outage-recovery.ts). */
    readonly nodeState: NodeStateKeeper,
    tlsMaterial: NodeTlsMaterial | undefined,
  ) {
    const { engine, hints, dots, authTable, replQueue } = stores;
    const state = nodeState.state;
    this.engine = engine;
    this.hints = hints;
    this.dots = dots;
    this.replQueue = replQueue;
    this.startedAtMs = clock.nowMs();
    const component = (name: string) => log.child({ component: name }) as Logger;
    // Hints are kept only for current members: made-up node ids cannot fill the hint budget.
    const hintSink = (target: string, key: Buffer, obj: StoredObject): Promise<void> => {
      const m = this.membership.get(target);
      if (!m || m.state === 'left') return Promise.reject(new InvalidArgumentError(`hintFor ${JSON.stringify(target)} is not a member of the cluster`));
      return hints.add(target, key, obj);
    };
    this.store = new ReplicaStore(engine, config.id, clock, hintSink, {
      maxClockSkewMs: config.maxClockSkewMs,
      dots,
      crdt: { opWindowMs: config.dataTypeOpWindowMs, maxOpIds: config.dataTypeMaxOpIds },
      // Writes made in this data center are queued for the others (replication/).
      ...(replQueue ? { onChange: (key: Buffer, obj: StoredObject, shipped: boolean) => this.replication.onChange(key, obj, shipped) } : {}),
    });
    this.metrics = new ServerMetrics(config.id, () => this.engine);
    this.hotKeys = new HotKeys(() => clock.nowMs());
    this.invalidations = new InvalidationHub(config.id);
    this.store.onKeyChanged = (key) => this.invalidations.keyChanged(key);
    this.membership = new Membership({
      self: {
        id: config.id,
        address: config.advertise,
        weight: config.weight,
        // A single-data-center node's record looks as it always did (no dc, rack, remoteAddress).
        ...(config.dc !== DEFAULT_DC ? { dc: config.dc } : {}),
        ...(config.rack !== '' ? { rack: config.rack } : {}),
        ...(config.advertiseRemote !== '' ? { remoteAddress: config.advertiseRemote } : {}),
        // A node back from an outage longer than the tombstone grace period recovers first.
        state: config.join ? 'joining' : state.recoveringSinceMs !== undefined ? 'recovering' : 'up',
        // A generation number: a restarted node's news is newer than its previous life's.
        incarnation: Math.floor(clock.nowMs() / 1000),
        // What this node accepts, so senders pick plain or TLS (absent = off).
        ...(config.tls.mode !== 'off' ? { tls: config.tls.mode } : {}),
      },
      settings: clusterSettingsOf(config),
      seeds: config.seeds,
      transport,
      clock,
      log,
      gossipIntervalMs: config.gossipIntervalMs,
      requestTimeoutMs: Math.min(config.requestTimeoutMs, 1000),
      // A removal of this node is accepted only when made during its last outage, or when it
      // decommissioned itself (node-state.ts); a live node refutes any other.
      outage: state.previousLastAliveMs !== undefined ? { fromMs: state.previousLastAliveMs, toMs: this.startedAtMs } : undefined,
      selfLeft: state.leftAtMs !== undefined,
      maxClockSkewMs: config.maxClockSkewMs,
    });
    this.detector = new FailureDetector(this.membership, transport, clock, component('failure-detector'), {
      probeIntervalMs: config.probeIntervalMs,
      probeTimeoutMs: config.probeTimeoutMs,
      indirectProbes: config.indirectProbes,
      suspectAfterMisses: config.suspectAfterMisses,
      suspicionTimeoutMs: config.suspicionTimeoutMs,
      probesPerRound: 16,
    });
    this.handoff = new HintedHandoff(hints, this.membership, transport, component('handoff'), {
      intervalMs: 2000,
      maxHintsPerSec: config.hintReplayRatePerSec,
      batchOps: 200,
      requestTimeoutMs: config.requestTimeoutMs,
    }, (key, target) => this.embedded!.cluster.ring.replicasInDc(key, this.membership.get(target) ? dcOf(this.membership.get(target)!) : config.dc));
    this.hasher = new SpanHasher(this.store);
    this.leafUpkeep = new MerkleLeafUpkeep(this.store, log as Logger, config);
    this.antiEntropy = new AntiEntropy(
      this.store,
      this.hasher,
      this.membership,
      // A joining node compares the ranges it is about to own: the ring to come.
      () => ({
        ring: this.membership.self.state === 'joining' ? this.embedded!.cluster.pendingRing : this.embedded!.cluster.ring,
        dc: this.config.dc,
      }),
      transport,
      component('anti-entropy'),
      { intervalMs: config.repairIntervalMs, requestTimeoutMs: config.requestTimeoutMs * 5, spansPerRequest: 2000, keysPerBatch: 500 },
    );
    // A corrupt block found (by a get, a scan, the leaf rebuild at start, a compaction):
    // repair its range from the other replicas soon, not at the next scheduled round.
    engine.onCorruptBlock(() => this.antiEntropy.repairSoon());
    this.auth = authTable
      ? new AuthService({
          nodeId: config.id,
          table: authTable,
          transport,
          members: () => this.membership.members(),
          log: component('auth'),
          syncIntervalMs: config.auth.syncIntervalMs,
          requestTimeoutMs: config.requestTimeoutMs,
        })
      : undefined;
    this.foldPass = new FoldPass({
      store: this.store,
      membership: this.membership,
      transport,
      ring: () => ({ ring: this.embedded!.cluster.ring, dc: this.config.dc }),
      log: component('fold'),
      requestTimeoutMs: config.requestTimeoutMs * 5,
    });
    this.replication = new Replication({
      config,
      queue: replQueue,
      store: this.store,
      hasher: this.hasher,
      membership: this.membership,
      transport,
      clock,
      log: log.child({ component: 'replication' }),
      ring: () => this.embedded!.cluster.ring,
      mergeLocal: (key, obj, timeoutMs) => this.embedded!.mergeShipped(key, obj, { timeoutMs }),
    });
    const stopping = () => this.stopping;
    this.changes = new MembershipChanges({
      config,
      store: this.store,
      membership: this.membership,
      transport,
      antiEntropy: this.antiEntropy,
      foldPass: this.foldPass,
      hints,
      handoff: this.handoff,
      client: () => this.embedded!,
      log,
      stopping,
      markLeft: () => {
        nodeState.state.leftAtMs = clock.nowMs();
        return nodeState.save();
      },
    });
    this.recovery = new OutageRecovery({ keeper: nodeState, store: this.store, membership: this.membership, antiEntropy: this.antiEntropy, clock, log, maxClockSkewMs: config.maxClockSkewMs, stopping });
    this.batches = new BatchApplier(this);
    this.connections = new ConnectionGuard({ maxConnections: config.maxConnections, fdReserve: config.fdReserve });
    this.shedder = new LoadShedder({ nowMs: () => performance.now() }, { maxInflightOps: config.maxInflightOps });
    this.admission = new Admission(this.shedder, { enabled: config.loadShedding, nodeId: config.id, onShed: () => this.metrics.shedRequests.inc() });
    registerNodeGauges(this);
    this.router = new Router({
      routes: routeTable(this),
      tlsMode: config.tls.mode,
      authEnabled: config.auth.enabled,
      auth: this.auth,
      corsAllowedOrigins: config.corsAllowedOrigins,
      metrics: this.metrics,
      log,
      stopping,
    });
    this.http = new NodeHttpServer({ config, router: this.router, metrics: this.metrics, connections: this.connections, tlsMaterial, log });
    if (tlsMaterial) this.metrics.gauge('ringkv_tls_cert_expiry_seconds', "When this node's certificate expires (seconds since the epoch)", () => tlsMaterial.notAfter.getTime() / 1000);
    this.peerTls = new PeerTlsModes(this.membership);
  }

  /** Opens the engine, binds the HTTP port, starts gossip. */
  static async start(config: ServerConfig, seams: ServerSeams = {}): Promise<StorageServer> {
    const log = seams.logger ?? pino({ level: config.logLevel, base: { node: config.id } });
    const clock = seams.clock ?? systemClock;
    // Read (and checked) before anything is opened: bad TLS files fail the start at once.
    const tlsMaterial = config.tls.mode === 'off' ? undefined : loadNodeTls(config.tls, config.id);
    const layout = prepareDataDir(config.dataDir);
    const nodeState: NodeState = startingNodeState(config, readNodeState(layout.nodeStateFile), clock.nowMs(), log);
    // Deletes are kept until the other data centers have them (replication.ts); until the
    // server is up to say since when, all of them.
    const holder: { server?: StorageServer } = {};
    const stores = await openNodeStores({
      config,
      layout,
      clock,
      log,
      fs: seams.fs,
      recovering: nodeState.recoveringSinceMs !== undefined,
      tombstoneHorizon: () => holder.server?.replication.tombstoneHorizon() ?? 0,
    });
    // A node presents its node certificate to its peers, and speaks TLS to those that accept
    // it (all of them in required mode), by the rule every sender follows.
    const httpTransport = seams.transport === undefined ? peerTransport(config, tlsMaterial) : undefined;
    const transport = seams.transport ?? httpTransport!;
    let server: StorageServer | undefined;
    try {
      const cfg = { ...config };
      const keeper = new NodeStateKeeper(nodeState, { file: layout.nodeStateFile, tmp: layout.nodeStateTempFile }, clock, log);
      server = new StorageServer(cfg, stores, log, transport, clock, keeper, tlsMaterial);
      holder.server = server;
      const s = server;
      httpTransport?.setPeerTlsMode((address) => s.peerTls.at(address));
      await keeper.save();
      keeper.startHeartbeat(cfg.tombstoneGraceMs);
      await server.listen();
      await server.startClient();
      await checkSettingsWithSeeds(transport, cfg, server.membership.settings);
      server.membership.start();
      server.detector.start();
      server.handoff.start();
      server.leafUpkeep.start();
      server.antiEntropy.start();
      server.auth?.start();
      // A node that starts (or restarts) takes the user table from the first peer it learns of.
      let authSynced = false;
      server.membership.onChange(() => {
        if (authSynced || !s.auth) return;
        authSynced = true;
        void s.auth.pullOnce();
      });
      server.replication.start();
      server.changes.start();
      if (nodeState.recoveringSinceMs !== undefined) void server.recovery.run(nodeState.recoveringSinceMs);
      log.info({ address: cfg.advertise, dataDir: cfg.dataDir, seeds: cfg.seeds }, 'storage server started');
      return server;
    } catch (err) {
      if (server) await server.stop().catch(() => undefined);
      else await closeNodeStores(stores);
      throw err;
    }
  }

  private async listen(): Promise<void> {
    const port = await this.http.listen(this.config.host, this.config.port);
    if (this.config.port === 0) {
      // An ephemeral port: advertise the one we got.
      const advertisedPort = Number(this.config.advertise.split(':').pop());
      if (advertisedPort === 0) {
        this.config.advertise = `${this.config.advertise.slice(0, this.config.advertise.lastIndexOf(':'))}:${port}`;
      }
      this.config.port = port;
      this.membership.setSelfAddress(this.config.advertise);
    }
  }

  /** The embedded client that coordinates public API requests; its calls to this node skip HTTP. */
  private async startClient(): Promise<void> {
    const local = new LocalShortcutTransport(this.transport, this.config.advertise, this);
    const client = new RingkvClient<Buffer>({
      seeds: [this.config.advertise],
      transport: local,
      timeoutMs: this.config.requestTimeoutMs,
      clientId: this.config.id,
      clock: this.clock,
      localDc: this.config.dc,
      // The embedded client sees this node's membership directly, not through a long-poll.
      membershipWatchMs: 0,
      membershipRefreshMs: 60_000,
    });
    await client.start();
    this.embedded = client;
    this.membership.onChange(() => client.cluster.apply(this.membership.view()));
  }

  /** "host:port" clients and peers use. */
  get address(): string {
    return this.config.advertise;
  }

  get id(): string {
    return this.config.id;
  }

  /** The embedded client that coordinates the public API (undefined until started). */
  get client(): RingkvClient<Buffer> | undefined {
    return this.embedded;
  }

  /** True once stop() was called. */
  get stopping(): boolean {
    return this.stopped !== undefined;
  }

  /** Stops accepting, finishes in-flight requests (up to `graceMs`), flushes and closes. */
  stop(graceMs = 10_000): Promise<void> {
    this.stopped ??= this.doStop(graceMs);
    return this.stopped;
  }

  private async doStop(graceMs: number): Promise<void> {
    this.log.info({ inFlight: this.router.requestsInFlight }, 'storage server stopping');
    // Invalidation streams never end by themselves: end them, clients flush and go elsewhere.
    this.invalidations.closeAll();
    await this.http.close(graceMs);
    this.detector.stop();
    this.antiEntropy.stop();
    await this.replication.stop();
    this.changes.stop();
    this.leafUpkeep.stop();
    this.membership.stop();
    await this.auth?.stop();
    await this.handoff.stop();
    await this.embedded?.close().catch(() => undefined);
    await this.transport.close().catch(() => undefined);
    await this.engine.close();
    await this.hints.close();
    await this.replQueue?.close();
    // The last heartbeat: a clean stop is the start of the outage.
    await this.nodeState.stop();
    this.log.info('storage server stopped');
  }
}
