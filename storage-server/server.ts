// A storage server: one engine, the replica store over it, membership gossip, the
// internal msgpack endpoints peers and SDK clients call, and the public HTTP API, which
// it coordinates through an embedded SDK client. start() binds and joins; stop() stops
// accepting, finishes in-flight requests, flushes and closes. A server never crashes on a
// request: every handler answers errors with a coded JSON/msgpack body.

import http from 'node:http';
import { setImmediate as yieldToLoop } from 'node:timers/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import pino from 'pino';
import type { Clock } from '../sdk/clock.js';
import { systemClock } from '../sdk/clock.js';
import { RingkvClient } from '../sdk/client.js';
import { ClosedError, InvalidArgumentError, MalformedRequestError, OverloadedError, PayloadTooLargeError, RingkvError, SettingsMismatchError, UnavailableError } from '../sdk/errors.js';
import type { MembersView } from '../sdk/membership.js';
import type { HttpTransportOptions, Transport } from '../sdk/transport.js';
import { HttpTransport } from '../sdk/transport.js';
import type { BatchRequest, BatchResponse, RingFenceRequest, WireOp, WireResult } from '../sdk/wire/protocol.js';
import type { StoredObject } from '../sdk/versioning/index.js';
import { checkProtocolVersion, decodeMessage, MSGPACK_CONTENT_TYPE, OpType, PROTOCOL_VERSION, Routes } from '../sdk/wire/protocol.js';
import type { RingStamp } from '../sdk/ring-epoch.js';
import { checkRouted, isRingStamp } from '../sdk/ring-epoch.js';
import { DEFAULT_DC, dcOf, describeSettings, reachable, sameSettings } from '../sdk/membership.js';
import type { ClusterSettings } from '../sdk/membership.js';
import type { ServerConfig } from './config.js';
import { engineSettings } from './config.js';
import type { FileSystem } from './engine/index.js';
import type { Logger } from './logger.js';
import { Engine } from './engine/index.js';
import { handleKv, KV_PREFIX } from './http/public-api.js';
import { DT_PREFIX, handleDataType } from './http/data-type-api.js';
import { discardBody, readBody } from './http/read-body.js';
import { sendError, sendJson, sendMsgpack } from './http/respond.js';
import { ConnectionGuard } from './http/connection-guard.js';
import { serveUi } from './http/static-ui.js';
import { FrontDoor } from './http/front-door.js';
import type { TokenCheck } from './http/access-policy.js';
import { checkAccess, checkKeyAccess, checkTransport, peerIdentity } from './http/access-policy.js';
import { AuthTable } from './auth/auth-table.js';
import type { AuthAdminRequest, AuthCaller, AuthSyncRequest } from './auth/auth-service.js';
import { AuthService, describeCaller } from './auth/auth-service.js';
import { authorizeOps, confirmRepairs } from './auth/batch-authorization.js';
import type { RepairSources } from './auth/batch-authorization.js';
import { bearerToken } from './auth/tokens.js';
import type { NodeTlsMaterial } from './tls/node-tls.js';
import { loadNodeTls } from './tls/node-tls.js';
import type { TlsMode } from '../sdk/transport-security.js';
import { LoadShedder } from './http/load-shedder.js';
import type { GossipMessage } from './membership/membership.js';
import { MAX_GOSSIP_MEMBERS, Membership } from './membership/membership.js';
import type { PingMessage, PingReqMessage } from './membership/failure-detector.js';
import { FailureDetector } from './membership/failure-detector.js';
import { HintStore } from './handoff/hint-store.js';
import { HintedHandoff } from './handoff/hinted-handoff.js';
import { ServerMetrics } from './metrics.js';
import { HotKeys } from './hot-keys.js';
import { InvalidationHub } from './invalidation-hub.js';
import type { SubscribeRequest } from '../sdk/wire/invalidation-stream.js';
import { ReplicaStore, REPLICA_ENGINE_MAX_KEY_BYTES } from './replica-store.js';
import { SpanHasher } from './anti-entropy/span-hasher.js';
import { MerkleLeafUpkeep } from './anti-entropy/merkle-leaf-upkeep.js';
import { LEAF_COUNT, LEAF_SPAN } from './anti-entropy/leaf-hashes.js';
import { prepareDataDir } from './data-dir.js';
import { DotCounter } from './dot-counter.js';
import type { NodeState } from './node-state.js';
import { readNodeState } from './node-state.js';
import { NodeStateKeeper, OutageRecovery, startingNodeState } from './outage-recovery.js';
import { serveStream } from './streaming/range-streaming.js';
import { AntiEntropy } from './anti-entropy/anti-entropy.js';
import { FoldPass } from './anti-entropy/fold-pass.js';
import { serveScan } from './streaming/range-scan.js';
import { ringAnswer } from './http/ring-api.js';
import { takeSnapshot } from './snapshot.js';
import type { ScanRequest } from '../sdk/wire/protocol.js';
import type { AdminRequest, MergeOp, MerkleKeysRequest, MerkleRequest, ReplApplyRequest, StreamRequest } from '../sdk/wire/protocol.js';
import { ReplQueue } from './replication/repl-queue.js';
import { MembershipChanges } from './membership-changes.js';
import { AdmittedWrites, answerRingFence } from './membership/ring-fence.js';
import { Replication } from './replication/replication.js';

export interface ServerSeams {
  clock?: Clock;
  fs?: FileSystem;
  /** Transport for talking to peers (tests wrap it to inject faults). */
  transport?: Transport;
  logger?: pino.Logger;
}

const OP_NAMES: Record<number, string> = { 1: 'get', 2: 'merge', 3: 'coordinated_put', 4: 'put', 5: 'dt_update' };
const MAX_BATCH_OPS = 10_000;

export class StorageServer {
  readonly config: ServerConfig;
  readonly engine: Engine;
  readonly store: ReplicaStore;
  readonly membership: Membership;
  readonly detector: FailureDetector;
  readonly hints: HintStore;
  readonly handoff: HintedHandoff;
  readonly hasher: SpanHasher;
  readonly antiEntropy: AntiEntropy;
  /** Folds the counter entries of nodes that left into this node (the keys it is the first replica of). */
  readonly foldPass: FoldPass;
  /** Asynchronous replication to the other data centers (inactive with one). */
  readonly replication: Replication;
  /** The Merkle leaf hashes' rebuild at start and in the background (anti-entropy/merkle-leaf-upkeep.ts). */
  readonly leafUpkeep: MerkleLeafUpkeep;
  /** Joins, decommissions, removals, cleanups and fold passes run by this node (membership-changes.ts). */
  readonly changes: MembershipChanges;
  readonly metrics: ServerMetrics;
  /** The keys this node serves most (storage-server/hot-keys.ts). */
  readonly hotKeys: HotKeys;
  /** The near cache's invalidation streams and the keys they track (storage-server/invalidation-hub.ts). */
  readonly invalidations: InvalidationHub;
  readonly log: pino.Logger;
  readonly startedAtMs: number;
  private readonly http: http.Server;
  /** Caps open connections (answers the one beyond with 503). */
  readonly connections: ConnectionGuard;
  /** Sorts new connections into plain HTTP and TLS (tls mode transitional, required). */
  private readonly frontDoor: FrontDoor;
  /** address -> what the member there accepts; rebuilt after membership changes. */
  private peerTls: Map<string, TlsMode> | undefined;
  /** Admission control: refuses requests this node could not answer in time. */
  readonly shedder: LoadShedder;
  private readonly transport: Transport;
  private client: RingkvClient<Buffer> | undefined;
  private inFlight = 0;
  private stopping: Promise<void> | undefined;
  private idleWaiters: (() => void)[] = [];
  private readonly clock: Clock;
  /** Write batches being applied that were admitted under a ring stamp (ring fences wait for the older ones). */
  private readonly admittedWrites = new AdmittedWrites();
  /** Write operations refused with RING_CHANGED since start (for metrics). */
  private ringRefusals = 0;
  /** This node's NODE-STATE (node-state.ts): the last-alive heartbeat and, while recovering, the outage start. */
  private readonly nodeState: NodeStateKeeper;
  /** The recovery after an outage longer than the tombstone grace period (outage-recovery.ts). */
  private readonly recovery: OutageRecovery;
  /**
   * The cluster's user table on this node (auth/README.md): kept and synchronized whenever the
   * node requires TLS (the table travels between node certificates only), used to check
   * tokens when auth.enabled.
   */
  readonly auth: AuthService | undefined;

  private constructor(
    config: ServerConfig,
    engine: Engine,
    hints: HintStore,
    /** This node's vector-clock actor and dot counter. */
    readonly dots: DotCounter,
    log: pino.Logger,
    transport: Transport,
    clock: Clock,
    nodeStateFiles: { file: string; tmp: string },
    nodeState: NodeState,
    tlsMaterial: NodeTlsMaterial | undefined,
    authTable: AuthTable | undefined,
    private readonly replQueue: ReplQueue | undefined,
  ) {
    this.nodeState = new NodeStateKeeper(nodeState, nodeStateFiles, clock, log);
    this.config = config;
    this.engine = engine;
    this.hints = hints;
    this.log = log;
    this.clock = clock;
    this.transport = transport;
    this.startedAtMs = clock.nowMs();
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
        state: config.join ? 'joining' : nodeState.recoveringSinceMs !== undefined ? 'recovering' : 'up',
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
      outage: nodeState.previousLastAliveMs !== undefined ? { fromMs: nodeState.previousLastAliveMs, toMs: this.startedAtMs } : undefined,
      selfLeft: nodeState.leftAtMs !== undefined,
      maxClockSkewMs: config.maxClockSkewMs,
    });
    this.detector = new FailureDetector(this.membership, transport, clock, log.child({ component: 'failure-detector' }) as Logger, {
      probeIntervalMs: config.probeIntervalMs,
      probeTimeoutMs: config.probeTimeoutMs,
      indirectProbes: config.indirectProbes,
      suspectAfterMisses: config.suspectAfterMisses,
      suspicionTimeoutMs: config.suspicionTimeoutMs,
      probesPerRound: 16,
    });
    this.handoff = new HintedHandoff(hints, this.membership, transport, log.child({ component: 'handoff' }) as Logger, {
      intervalMs: 2000,
      maxHintsPerSec: config.hintReplayRatePerSec,
      batchOps: 200,
      requestTimeoutMs: config.requestTimeoutMs,
    }, (key, target) => this.client!.cluster.ring.replicasInDc(key, this.membership.get(target) ? dcOf(this.membership.get(target)!) : config.dc));
    this.hasher = new SpanHasher(this.store);
    this.leafUpkeep = new MerkleLeafUpkeep(this.store, log as Logger, config);
    this.antiEntropy = new AntiEntropy(
      this.store,
      this.hasher,
      this.membership,
      // A joining node compares the ranges it is about to own: the ring to come.
      () => ({
        ring: this.membership.self.state === 'joining' ? this.client!.cluster.pendingRing : this.client!.cluster.ring,
        dc: this.config.dc,
      }),
      transport,
      log.child({ component: 'anti-entropy' }) as Logger,
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
          log: log.child({ component: 'auth' }) as Logger,
          syncIntervalMs: config.auth.syncIntervalMs,
          requestTimeoutMs: config.requestTimeoutMs,
        })
      : undefined;
    this.foldPass = new FoldPass({
      store: this.store,
      membership: this.membership,
      transport,
      ring: () => ({ ring: this.client!.cluster.ring, dc: this.config.dc }),
      log: log.child({ component: 'fold' }) as Logger,
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
      ring: () => this.client!.cluster.ring,
      mergeLocal: (key, obj, timeoutMs) => this.client!.mergeShipped(key, obj, { timeoutMs }),
    });
    this.changes = new MembershipChanges({
      config,
      store: this.store,
      membership: this.membership,
      transport,
      antiEntropy: this.antiEntropy,
      foldPass: this.foldPass,
      hints,
      handoff: this.handoff,
      client: () => this.client!,
      log,
      stopping: () => this.stopping !== undefined,
      markLeft: () => {
        this.nodeState.state.leftAtMs = this.clock.nowMs();
        return this.nodeState.save();
      },
    });
    this.recovery = new OutageRecovery({
      keeper: this.nodeState,
      store: this.store,
      membership: this.membership,
      antiEntropy: this.antiEntropy,
      clock,
      log,
      maxClockSkewMs: config.maxClockSkewMs,
      stopping: () => this.stopping !== undefined,
    });
    this.registerMetrics();
    this.http = http.createServer(
      {
        keepAliveTimeout: config.keepAliveTimeoutMs,
        headersTimeout: config.headersTimeoutMs,
        requestTimeout: config.requestReceiveTimeoutMs,
        // How often Node checks the two timeouts above: a slow sender is cut within this of them.
        connectionsCheckingInterval: Math.min(1000, Math.max(50, Math.floor(config.headersTimeoutMs / 4))),
      },
      (req, res) => this.onRequest(req, res),
    );
    this.frontDoor = new FrontDoor(this.http, {
      mode: config.tls.mode,
      material: tlsMaterial,
      handshakeTimeoutMs: config.headersTimeoutMs,
      onConnection: (transport) => this.metrics.connectionsAccepted.inc({ transport }),
      onHandshakeFailure: (reason) => this.metrics.tlsHandshakeFailures.inc({ reason }),
    });
    if (tlsMaterial) this.metrics.gauge('ringkv_tls_cert_expiry_seconds', "When this node's certificate expires (seconds since the epoch)", () => tlsMaterial.notAfter.getTime() / 1000);
    this.membership.onChange(() => {
      this.peerTls = undefined;
    });
    this.connections = new ConnectionGuard({ maxConnections: config.maxConnections, fdReserve: config.fdReserve });
    this.connections.attach(this.http, config.id);
    this.shedder = new LoadShedder({ nowMs: () => performance.now() }, { maxInflightOps: config.maxInflightOps });
    this.http.on('clientError', (err: NodeJS.ErrnoException, socket) => {
      // A request that was not received in time (headersTimeoutMs, requestReceiveTimeoutMs),
      // or could not be parsed: answered with a coded JSON body when the socket still takes it.
      const timedOut = err.code === 'ERR_HTTP_REQUEST_TIMEOUT';
      const tooBig = err.code === 'HPE_HEADER_OVERFLOW';
      const [status, code, message] = timedOut
        ? ['408 Request Timeout', 'TIMEOUT', 'the request was not received in time']
        : tooBig
          ? ['431 Request Header Fields Too Large', 'MALFORMED_REQUEST', 'request headers too large']
          : ['400 Bad Request', 'MALFORMED_REQUEST', 'malformed HTTP request'];
      const body = JSON.stringify({ code, message });
      if (socket.writable) {
        socket.end(`HTTP/1.1 ${status}\r\nconnection: close\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
      } else socket.destroy();
      this.log.debug({ err: err.message, code: err.code }, 'bad or slow HTTP from a client');
    });
  }

  /** Opens the engine, binds the HTTP port, starts gossip. */
  static async start(config: ServerConfig, seams: ServerSeams = {}): Promise<StorageServer> {
    const log = seams.logger ?? pino({ level: config.logLevel, base: { node: config.id } });
    const clock = seams.clock ?? systemClock;
    // Read (and checked) before anything is opened: bad TLS files fail the start at once.
    const tlsMaterial = config.tls.mode === 'off' ? undefined : loadNodeTls(config.tls, config.id);
    const layout = prepareDataDir(config.dataDir);
    const nodeState = startingNodeState(config, readNodeState(layout.nodeStateFile), clock.nowMs(), log);
    const multiDc = Object.keys(config.replication).length > 1;
    // Deletes are kept until the other data centers have them (replication.ts); until the
    // server is up to say since when, all of them.
    const holder: { server?: StorageServer } = {};
    const engine = await Engine.open(layout.engineDir, {
      ...engineSettings(config),
      tombstoneHorizon: () => (multiDc ? (holder.server?.replication.tombstoneHorizon() ?? 0) : undefined),
      maxKeyBytes: REPLICA_ENGINE_MAX_KEY_BYTES,
      clock,
      logger: log.child({ component: 'engine' }) as Logger,
      ...(seams.fs ? { fs: seams.fs } : {}),
    });
    let hints: HintStore;
    let dots: DotCounter;
    let authTable: AuthTable | undefined;
    let replQueue: ReplQueue | undefined;
    try {
      // The user table, when the node speaks TLS only. A node back from an outage longer than
      // the tombstone grace period may hold users removed meanwhile whose removals its peers
      // have forgotten: it drops its copy and takes its peers'.
      if (config.tls.mode === 'required') {
        authTable = AuthTable.open(
          {
            file: layout.authFile,
            tmp: layout.authTempFile,
            clock,
            log: log.child({ component: 'auth' }) as Logger,
            cacheTtlMs: config.auth.cacheTtlMs,
            tombstoneRetentionMs: config.tombstoneGraceMs,
          },
          nodeState.recoveringSinceMs !== undefined,
        );
      }
      dots = await DotCounter.open(layout.actorFile, layout.actorTempFile, config.id, seams.fs ? { fs: seams.fs } : {});
      // Without fsync a machine crash can take this node's latest writes, and with them its
      // actor's history of their keys: with sync 'none' every start is a new actor.
      if (config.sync === 'none') await dots.renewEpoch();
      hints = await HintStore.open(layout.hintsDir, {
        maxHintBytes: config.maxHintBytes,
        maxHintAgeMs: config.maxHintAgeMs,
        sync: config.sync,
        clock,
        log: log.child({ component: 'hints' }) as Logger,
        ...(seams.fs ? { fs: seams.fs } : {}),
      });
      if (multiDc) {
        try {
          replQueue = await ReplQueue.open(layout.replDir, {
            maxBytesPerDc: config.replQueueMaxBytes,
            maxAgeMs: config.replQueueMaxAgeMs,
            sync: config.sync,
            clock,
            log: log.child({ component: 'repl-queue' }),
            ...(seams.fs ? { fs: seams.fs } : {}),
          });
        } catch (err) {
          await hints.close().catch(() => undefined);
          throw err;
        }
      }
    } catch (err) {
      await engine.close().catch(() => undefined);
      throw err;
    }
    // A node presents its node certificate to its peers, and speaks TLS to those that accept
    // it (all of them in required mode), by the rule every sender follows.
    const httpTransport =
      seams.transport === undefined
        ? new HttpTransport({
            ...outgoingTransportOptions(config.host),
            tls: tlsMaterial && config.tls.mode !== 'off' ? { ca: tlsMaterial.ca, cert: tlsMaterial.cert, key: tlsMaterial.key, policy: config.tls.mode } : undefined,
          })
        : undefined;
    const transport = seams.transport ?? httpTransport!;
    let server: StorageServer | undefined;
    try {
      const cfg = { ...config };
      server = new StorageServer(cfg, engine, hints, dots, log, transport, clock, { file: layout.nodeStateFile, tmp: layout.nodeStateTempFile }, nodeState, tlsMaterial, authTable, replQueue);
      holder.server = server;
      const s = server;
      httpTransport?.setPeerTlsMode((address) => s.peerTlsModeAt(address));
      await server.nodeState.save();
      server.nodeState.startHeartbeat(cfg.tombstoneGraceMs);
      await server.listen();
      await server.startClient();
      await server.checkSettingsWithSeeds();
      server.membership.start();
      server.detector.start();
      server.handoff.start();
      server.leafUpkeep.start();
      server.antiEntropy.start();
      server.auth?.start();
      // A node that starts (or restarts) takes the user table from the first peer it learns of.
      let authSynced = false;
      server.membership.onChange(() => {
        if (authSynced || !server!.auth) return;
        authSynced = true;
        void server!.auth.pullOnce();
      });
      server.replication.start();
      server.changes.start();
      if (nodeState.recoveringSinceMs !== undefined) void server.recovery.run(nodeState.recoveringSinceMs);
      log.info({ address: cfg.advertise, dataDir: cfg.dataDir, seeds: cfg.seeds }, 'storage server started');
      return server;
    } catch (err) {
      if (server) await server.stop().catch(() => undefined);
      else {
        await engine.close().catch(() => undefined);
        await hints.close().catch(() => undefined);
        await replQueue?.close().catch(() => undefined);
      }
      throw err;
    }
  }

  private async listen(): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      const onError = (err: Error) => reject(new InvalidArgumentError(`cannot listen on ${this.config.host}:${this.config.port}: ${err.message}`));
      this.http.once('error', onError);
      this.http.listen(this.config.port, this.config.host, () => {
        this.http.off('error', onError);
        resolve();
      });
    });
    const addr = this.http.address() as AddressInfo;
    if (this.config.port === 0) {
      // An ephemeral port: advertise the one we got.
      const advertisedPort = Number(this.config.advertise.split(':').pop());
      if (advertisedPort === 0) {
        this.config.advertise = `${this.config.advertise.slice(0, this.config.advertise.lastIndexOf(':'))}:${addr.port}`;
      }
      this.config.port = addr.port;
      this.membership.setSelfAddress(this.config.advertise);
    }
  }

  /**
   * Refuses to start (SETTINGS_MISMATCH) when a seed that answers has other cluster-wide
   * settings (vnodes per node, replicas per data center) than this node was given: it would
   * place keys where the cluster does not. Seeds that do not answer within 2 s (the first
   * node of a cluster, a data center out of reach) are not waited for; gossip refuses a
   * mismatched peer later all the same (membership.ts).
   */
  async checkSettingsWithSeeds(): Promise<void> {
    const own = this.membership.settings;
    const timeoutMs = Math.min(2000, this.config.requestTimeoutMs);
    const seeds = this.config.seeds.filter((s) => s !== this.config.advertise);
    const answers = await Promise.all(
      seeds.map((seed) =>
        this.transport.call<MembersView>(seed, Routes.members, undefined, { timeoutMs }).then(
          (view) => ({ seed, view }),
          () => undefined,
        ),
      ),
    );
    for (const a of answers) {
      const theirs = a?.view?.settings;
      if (!a || !theirs || sameSettings(theirs, own)) continue;
      throw new SettingsMismatchError(
        `seed ${a.seed} (node ${String(a.view.self)}) has the cluster settings ${describeSettings(theirs)}, this node ${describeSettings(own)}: they must be the same on every node`,
        { seed: a.seed, theirs, ours: own },
      );
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
    this.client = client;
    this.membership.onChange(() => client.cluster.apply(this.membership.view()));
  }

  /** What the member at `address` accepts (`off` when it advertises nothing); undefined for no member. */
  peerTlsModeAt(address: string): TlsMode | undefined {
    if (this.peerTls === undefined) {
      const map = new Map<string, TlsMode>();
      // A live member wins an address over a gone one that had it before.
      for (const m of this.membership.members()) {
        for (const a of [m.address, m.remoteAddress]) {
          if (a === undefined || (m.state === 'left' && map.has(a))) continue;
          map.set(a, m.tls ?? 'off');
        }
      }
      this.peerTls = map;
    }
    return this.peerTls.get(address);
  }

  /** "host:port" clients and peers use. */
  get address(): string {
    return this.config.advertise;
  }

  get id(): string {
    return this.config.id;
  }

  // -------------------------------------------------------------------------------------
  // HTTP

  private onRequest(req: IncomingMessage, res: ServerResponse): void {
    this.inFlight++;
    const started = performance.now();
    let route = 'other';
    res.on('close', () => {
      this.metrics.httpRequests.inc({ route, method: req.method ?? '', status: String(res.statusCode) });
      this.metrics.httpLatency.observe({ route, method: req.method ?? '' }, (performance.now() - started) / 1000);
      if (--this.inFlight === 0) this.notifyIdle();
    });
    let url: URL;
    try {
      url = new URL(req.url ?? '/', 'http://node');
    } catch {
      sendError(res, new MalformedRequestError('bad request URL'));
      return;
    }
    const p = url.pathname;
    if (this.stopping && !p.startsWith('/internal/')) res.setHeader('connection', 'close');
    // The dashboard of one node reads the status and metrics of the others.
    if ((req.method === 'GET' || req.method === 'OPTIONS') && MONITOR_ROUTES.has(p)) {
      res.setHeader('access-control-allow-origin', '*');
    }
    const origin = req.headers.origin;
    if (origin !== undefined && isPublicApi(p) && this.config.corsAllowedOrigins.includes(origin)) {
      res.setHeader('access-control-allow-origin', origin);
      res.setHeader('access-control-expose-headers', 'x-ringkv-version, x-ringkv-context, x-ringkv-expires-at');
      res.setHeader('vary', 'origin');
    }
    let work: Promise<void> | void = undefined;
    try {
      const peer = peerIdentity(req.socket);
      // Plain HTTP to a node that requires TLS: answer, then close the connection.
      if (peer.kind === 'plain' && this.config.tls.mode === 'required') res.setHeader('connection', 'close');
      if (req.method === 'OPTIONS') {
        // A CORS preflight carries no credentials: only the transport is checked.
        checkTransport(this.config.tls.mode, peer);
        route = 'preflight';
        this.answerPreflight(req, res, p);
        return;
      }
      const caller = checkAccess({ tlsMode: this.config.tls.mode, auth: this.config.auth.enabled }, p, peer, this.tokenOf(req, peer.kind === 'node'));
      this.checkOrigin(req, p);
      if (p.startsWith('/api/')) checkKeyAccess(caller, p, req.method ?? 'GET');
      if (p.startsWith(KV_PREFIX)) {
        route = 'kv';
        if (!this.client) throw new ClosedError('server');
        this.admit(1, kvBudgetMs(req, this.config.requestTimeoutMs));
        this.shedder.enter(0);
        res.once('close', () => this.shedder.leave(0));
        res.on('finish', () => this.shedder.record(performance.now() - started));
        work = handleKv(req, res, url, { client: this.client, maxJsonBodyBytes: this.config.maxJsonBodyBytes });
      } else if (p.startsWith(DT_PREFIX)) {
        route = 'dt';
        if (!this.client) throw new ClosedError('server');
        this.admit(1, kvBudgetMs(req, this.config.requestTimeoutMs));
        this.shedder.enter(0);
        res.once('close', () => this.shedder.leave(0));
        res.on('finish', () => this.shedder.record(performance.now() - started));
        work = handleDataType(req, res, url, { client: this.client, maxJsonBodyBytes: this.config.maxJsonBodyBytes });
      } else if (p === Routes.batch) {
        route = 'batch';
        work = this.onBatch(req, res, started, caller);
      } else if (p === Routes.members) {
        route = 'members';
        work = this.onMembers(req, res, url);
      } else if (p === Routes.gossip) {
        route = 'gossip';
        work = this.onGossip(req, res);
      } else if (p === Routes.ping) {
        route = 'ping';
        work = this.onPing(req, res);
      } else if (p === Routes.pingReq) {
        route = 'ping-req';
        work = this.onPingReq(req, res);
      } else if (p === Routes.merkle) {
        route = 'merkle';
        work = this.onMerkle(req, res);
      } else if (p === Routes.merkleKeys) {
        route = 'merkle-keys';
        work = this.onMerkleKeys(req, res);
      } else if (p === Routes.stream) {
        route = 'stream';
        work = this.onStream(req, res);
      } else if (p === Routes.scan) {
        route = 'scan';
        work = this.onScan(req, res, caller);
      } else if (p === Routes.ringFence) {
        route = 'ring-fence';
        work = this.onRingFence(req, res);
      } else if (p === Routes.replApply) {
        route = 'repl-apply';
        work = this.onReplApply(req, res, started);
      } else if (p === Routes.admin) {
        route = 'admin';
        work = this.onAdmin(req, res);
      } else if (p === Routes.authAdmin) {
        route = 'auth-admin';
        work = this.onAuthAdmin(req, res, caller);
      } else if (p === Routes.authSync) {
        route = 'auth-sync';
        work = this.onAuthSync(req, res);
      } else if (p === Routes.whoami) {
        route = 'whoami';
        sendMsgpackOrJson(req, res, { ...describeCaller(caller), node: this.id, authEnabled: this.config.auth.enabled });
      } else if (p === Routes.status) {
        route = 'status';
        sendMsgpackOrJson(req, res, this.status());
      } else if (p === Routes.ring) {
        route = 'ring';
        sendMsgpackOrJson(req, res, ringAnswer(this.client?.cluster, this.id, url.searchParams));
      } else if (p === Routes.invalidations) {
        route = 'invalidations';
        work = this.onSubscribe(req, res);
      } else if (p === Routes.hotKeys) {
        route = 'hot-keys';
        const k = Math.min(Math.max(1, Math.floor(Number(url.searchParams.get('k') ?? '20')) || 20), this.hotKeys.options.capacity);
        sendMsgpackOrJson(req, res, { v: PROTOCOL_VERSION, node: this.id, ...this.hotKeys.top(k) });
      } else if (p === '/ui' || p.startsWith('/ui/')) {
        route = 'ui';
        work = serveUi(req, res, p);
      } else if (p === '/health') {
        route = 'health';
        const { status, body } = this.health();
        sendJson(res, status, body);
      } else if (p === '/metrics') {
        route = 'metrics';
        work = this.metrics.text().then((text) => {
          res.writeHead(200, { 'content-type': this.metrics.contentType });
          res.end(text);
        });
      } else {
        throw new RingkvError('ROUTE_NOT_FOUND', `no route ${req.method} ${p}`);
      }
    } catch (err) {
      discardBody(req);
      const e = sendError(res, err, p.startsWith('/internal/') ? 'msgpack' : 'json');
      if (e.code === 'UNAUTHENTICATED' || e.code === 'PERMISSION_DENIED') this.metrics.authRefusals.inc({ code: e.code, what: 'request' });
      return;
    }
    if (work) {
      work.catch((err: unknown) => {
        discardBody(req);
        const e = sendError(res, err, p.startsWith('/internal/') ? 'msgpack' : 'json');
        if (e.code === 'INTERNAL') this.log.error({ err, route }, 'request failed');
      });
    }
  }

  /**
   * What the request's bearer token proves (authentication on; nodes prove themselves by
   * their certificates and are not asked): nothing sent, not valid, or a user.
   */
  private tokenOf(req: IncomingMessage, fromNode: boolean): TokenCheck {
    if (!this.config.auth.enabled || fromNode || !this.auth) return { kind: 'none' };
    const token = bearerToken(req.headers.authorization);
    if (token === undefined) return { kind: 'none' };
    if (token === null) return { kind: 'invalid' };
    const principal = this.auth.table.authenticate(token);
    return principal ? { kind: 'valid', principal } : { kind: 'invalid' };
  }

  /** User and role management (a node certificate, or an admin's token). */
  private async onAuthAdmin(req: IncomingMessage, res: ServerResponse, caller: AuthCaller): Promise<void> {
    if (req.method !== 'POST') throw new RingkvError('METHOD_NOT_ALLOWED', 'auth admin takes POST');
    if (!this.auth) throw new UnavailableError('users and roles are kept only by nodes in tls mode required (the table travels between node certificates)');
    const msg = decodeMessage<AuthAdminRequest>(await readBody(req, 64 * 1024));
    const result = await this.auth.handleAdmin(msg);
    const by = caller.kind === 'user' ? caller.principal.user : caller.kind === 'node' ? `node ${caller.id}` : 'anyone';
    if (!String(msg.action).endsWith('-list')) this.log.warn({ action: msg.action, name: msg.name, by }, 'user table changed by an operator');
    sendMsgpackOrJson(req, res, { v: PROTOCOL_VERSION, node: this.id, ...result });
  }

  /** The user table from a peer: a push, or a digest to compare (node certificates only). */
  private async onAuthSync(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (req.method !== 'POST') throw new RingkvError('METHOD_NOT_ALLOWED', 'auth sync takes POST');
    if (!this.auth) throw new UnavailableError('this node keeps no user table (tls mode is not required)');
    const msg = decodeMessage<AuthSyncRequest>(await readBody(req, 16 * 1024 * 1024));
    sendMsgpack(res, 200, await this.auth.handleSync(msg));
  }

  /**
   * Where a reader's read repair is confirmed (auth/batch-authorization.ts): this node's copy
   * and the copies of the key's other live replicas, fetched by this node over its own
   * (node-certificate) connections.
   */
  private repairSources(deadline: number | undefined): RepairSources {
    return {
      local: async (key) => {
        const r = await this.store.apply({ t: OpType.Get, key });
        return r.ok ? r.obj : null;
      },
      peers: async (keys) => {
        const out: (StoredObject | null)[][] = keys.map(() => []);
        const byAddress = new Map<string, number[]>();
        const ring = this.client!.cluster.ring;
        for (let i = 0; i < keys.length; i++) {
          for (const id of ring.replicas(keys[i]!)) {
            if (id === this.id) continue;
            const m = this.membership.get(id);
            if (!m || !reachable(m)) continue;
            const address = this.membership.addressOf(m);
            const list = byAddress.get(address) ?? [];
            list.push(i);
            byAddress.set(address, list);
          }
        }
        const left = deadline !== undefined ? deadline - performance.now() : this.config.requestTimeoutMs;
        const timeoutMs = Math.max(1, Math.min(this.config.requestTimeoutMs, left));
        await Promise.all(
          [...byAddress].map(async ([address, idx]) => {
            try {
              const r = await this.transport.call<BatchResponse>(address, Routes.batch, { v: PROTOCOL_VERSION, from: this.id, ops: idx.map((i) => ({ t: OpType.Get, key: keys[i]! })), timeoutMs }, { timeoutMs });
              idx.forEach((i, j) => {
                const x = r.results?.[j];
                if (x?.ok) out[i]!.push(x.obj);
              });
            } catch {
              // an unreachable replica confirms nothing
            }
          }),
        );
        return out;
      },
    };
  }

  private async onBatch(req: IncomingMessage, res: ServerResponse, arrivedAt: number, caller: AuthCaller): Promise<void> {
    if (req.method !== 'POST') throw new RingkvError('METHOD_NOT_ALLOWED', 'batch takes POST');
    if (this.stopping) throw new ClosedError('server');
    const body = await readBody(req, this.config.maxBatchBodyBytes).catch((err) => {
      throw err instanceof PayloadTooLargeError ? err : new MalformedRequestError((err as Error).message);
    });
    const batch = decodeMessage<BatchRequest>(body);
    if (!batch || typeof batch !== 'object') throw new MalformedRequestError('batch body must be a map');
    checkProtocolVersion(batch.v);
    if (!Array.isArray(batch.ops) || batch.ops.length > MAX_BATCH_OPS) throw new MalformedRequestError(`ops must be an array of at most ${MAX_BATCH_OPS}`);
    if (typeof batch.from === 'string') this.membership.heardFrom(batch.from);
    this.metrics.batchSize.observe(batch.ops.length);
    // The sender's remaining budget, counted from when the request arrived: operations this
    // node would start after it are answered DEADLINE_EXCEEDED, not done.
    const budget = typeof batch.timeoutMs === 'number' && Number.isFinite(batch.timeoutMs) && batch.timeoutMs > 0 ? batch.timeoutMs : undefined;
    const deadline = budget !== undefined ? arrivedAt + budget : undefined;
    if (batch.ring !== undefined && !isRingStamp(batch.ring)) throw new MalformedRequestError('ring must be {epoch, digest}');
    // Admission: refuse now what this node could not finish while its sender still waits.
    this.admit(batch.ops.length, budget !== undefined ? budget - (performance.now() - arrivedAt) : undefined);
    this.shedder.enter(batch.ops.length);
    let response: BatchResponse;
    try {
      if (caller.kind === 'user') response = await this.applyUserBatch(caller, batch.ops, deadline, batch.ring);
      else response = await this.applyBatch(batch.ops, deadline, batch.ring);
    } finally {
      this.shedder.leave(batch.ops.length);
    }
    this.shedder.record(performance.now() - arrivedAt);
    // The clock reading lets clients follow the servers' time (sdk/cluster-clock.ts).
    sendMsgpack(res, 200, response);
  }

  /**
   * A batch from a user (authentication on): each operation checked against its key's
   * prefix; the refused ones answered PERMISSION_DENIED and not done; a reader's read repairs
   * confirmed with the key's other replicas and replaced by what they hold.
   */
  private async applyUserBatch(caller: AuthCaller & { kind: 'user' }, ops: WireOp[], deadline: number | undefined, ring: RingStamp | undefined): Promise<BatchResponse> {
    const { refused, repairs } = authorizeOps(caller.principal, ops);
    let todo = ops;
    if (repairs.length > 0) {
      todo = ops.slice();
      const items = repairs.map((i) => {
        const op = ops[i] as MergeOp;
        return { key: Buffer.from(op.key.buffer, op.key.byteOffset, op.key.byteLength), obj: op.obj };
      });
      const unions = await confirmRepairs(items, this.repairSources(deadline));
      repairs.forEach((i, j) => {
        const union = unions[j];
        if (union) todo[i] = { t: OpType.Merge, key: items[j]!.key, obj: union };
        else {
          refused[i] = {
            ok: false,
            code: 'PERMISSION_DENIED',
            msg: `user ${caller.principal.user} may read but not write ${JSON.stringify(items[j]!.key.toString('utf8'))}: its read repair carries a version the key's replicas do not hold`,
          };
        }
      });
    }
    const idx: number[] = [];
    const allowed: WireOp[] = [];
    for (let i = 0; i < todo.length; i++) {
      if (refused[i] === undefined) {
        idx.push(i);
        allowed.push(todo[i]!);
      }
    }
    const denied = todo.length - allowed.length;
    if (denied > 0) this.metrics.authRefusals.inc({ code: 'PERMISSION_DENIED', what: 'operation' }, denied);
    if (denied === 0) return this.applyBatch(allowed, deadline, ring);
    const response = allowed.length > 0 ? await this.applyBatch(allowed, deadline, ring) : { v: PROTOCOL_VERSION, results: [], now: this.clock.nowMs() };
    const results: WireResult[] = refused.map((r) => r!);
    idx.forEach((i, j) => {
      results[i] = response.results[j]!;
    });
    return { ...response, results };
  }

  /**
   * Cross-site protection. Internal endpoints take POST bodies only as application/msgpack,
   * which no page can send cross-site without a CORS preflight (that this node refuses), so
   * a web page an operator opens cannot drive them with a "simple" request. A public-API
   * write that carries an Origin header (a browser) is refused unless that origin is in
   * corsAllowedOrigins.
   */
  private checkOrigin(req: IncomingMessage, p: string): void {
    const method = req.method ?? 'GET';
    if (p.startsWith('/internal/') && method === 'POST') {
      const ct = String(req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
      if (ct !== MSGPACK_CONTENT_TYPE) {
        throw new RingkvError('UNSUPPORTED_MEDIA_TYPE', `internal endpoints take ${MSGPACK_CONTENT_TYPE} bodies, not ${JSON.stringify(ct || '(none)')}`);
      }
    }
    const origin = req.headers.origin;
    if (origin !== undefined && isPublicApi(p) && method !== 'GET' && method !== 'HEAD' && method !== 'OPTIONS') {
      if (!this.config.corsAllowedOrigins.includes(origin)) {
        throw new RingkvError('PERMISSION_DENIED', `writes from pages of ${JSON.stringify(origin)} are not allowed (corsAllowedOrigins)`);
      }
    }
  }

  /**
   * CORS preflight: for the public API, from the origins in corsAllowedOrigins; for the GETs
   * the dashboard of another node makes (status, members, metrics, health, whoami), from any
   * origin, with the Authorization header (a page of a foreign origin has no token to send).
   */
  private answerPreflight(req: IncomingMessage, res: ServerResponse, p: string): void {
    const origin = req.headers.origin;
    if (MONITOR_ROUTES.has(p) && origin !== undefined && req.headers['access-control-request-method'] === 'GET') {
      res.writeHead(204, {
        'access-control-allow-origin': '*',
        'access-control-allow-methods': 'GET',
        'access-control-allow-headers': 'authorization, accept',
        'access-control-max-age': '600',
      });
      res.end();
      return;
    }
    if (!isPublicApi(p) || origin === undefined || !this.config.corsAllowedOrigins.includes(origin)) {
      throw new RingkvError('PERMISSION_DENIED', `cross-origin requests to ${p} are not allowed`);
    }
    res.writeHead(204, {
      'access-control-allow-origin': origin,
      'access-control-allow-methods': 'GET, HEAD, PUT, POST, DELETE',
      'access-control-allow-headers': 'content-type, consistency, x-ringkv-context, x-ringkv-ttl, x-ringkv-timeout-ms, x-ringkv-op-id, authorization',
      'access-control-expose-headers': 'x-ringkv-version, x-ringkv-context, x-ringkv-expires-at',
      'access-control-max-age': '600',
      vary: 'origin',
    });
    res.end();
  }

  /** Throws OverloadedError (503, Retry-After) when the shedder refuses a request. */
  private admit(ops: number, budgetMs: number | undefined): void {
    if (!this.config.loadShedding) return;
    const d = this.shedder.admit(ops, budgetMs);
    if (d.shed) {
      this.metrics.shedRequests.inc();
      throw new OverloadedError(`node ${this.id} sheds load: ${d.reason}`, d.retryAfterSec ?? 1);
    }
  }

  /**
   * Applies a batch of operations concurrently, with metrics counted per batch (one counter
   * update per operation kind and outcome, one latency sample per operation kind) rather
   * than per operation. Used by the batch endpoint and the embedded client's local shortcut.
   * Writes routed on `ring` are refused with RING_CHANGED when this node knows a newer ring
   * (sdk/ring-epoch.ts) or has not heard the cluster's membership since it started; the
   * answer then carries this node's view. A recovering node answers reads UNAVAILABLE.
   */
  async applyBatch(ops: WireOp[], deadline?: number, ring?: RingStamp): Promise<BatchResponse> {
    const started = performance.now();
    let refuse: string | undefined;
    if (ring !== undefined && ops.some(isWriteOp)) {
      const mine = this.membership.ring;
      if (!this.membership.synced) refuse = `node ${this.id} has not heard the cluster's membership since it started`;
      else {
        const verdict = checkRouted(ring, mine);
        if (verdict === 'older') refuse = `node ${this.id} knows ring epoch ${mine.epoch}; writes routed on epochs below ${mine.floor} are refused (this one: ${ring.epoch})`;
        else if (verdict === 'diverged') refuse = `node ${this.id} knows another ring at epoch ${mine.epoch}`;
      }
    }
    const recovering = this.membership.self.state === 'recovering';
    const resultsP = Promise.all(
      ops.map((op): Promise<WireResult> | WireResult => {
        if (refuse !== undefined && isWriteOp(op)) {
          this.ringRefusals++;
          return { ok: false, code: 'RING_CHANGED', msg: refuse };
        }
        if (recovering && (op as { t?: number })?.t === OpType.Get) {
          return { ok: false, code: 'UNAVAILABLE', msg: `node ${this.id} is recovering from an outage longer than the tombstone grace period: it serves no reads until repaired` };
        }
        this.countKey(op);
        const sid = (op as { track?: unknown }).track;
        if (typeof sid === 'string' && op.t === OpType.Get && op.key instanceof Uint8Array && this.invalidations.track(sid, op.key)) {
          // Tracked before it is read: a change from now on is sent on the client's stream.
          return this.store.apply(op, deadline).then((r) => (r.ok ? { ...r, tracked: true } : r));
        }
        return this.store.apply(op, deadline);
      }),
    );
    // Writes admitted under a ring: a ring fence waits for them (membership/ring-fence.ts).
    const results = await (ring !== undefined && refuse === undefined && ops.some(isWriteOp) ? this.admittedWrites.track(ring.epoch, resultsP) : resultsP);
    const ms = performance.now() - started;
    const counts = new Map<string, number>();
    const kinds = new Set<string>();
    for (let i = 0; i < ops.length; i++) {
      const name = OP_NAMES[(ops[i] as { t?: number })?.t ?? 0] ?? 'unknown';
      const r = results[i]!;
      const k = `${name}\0${r.ok ? 'ok' : r.code}`;
      counts.set(k, (counts.get(k) ?? 0) + 1);
      kinds.add(name);
    }
    for (const [k, n] of counts) {
      const [op, outcome] = k.split('\0') as [string, string];
      this.metrics.replicaOps.inc({ op, outcome }, n);
    }
    // The batch's duration stands for each kind it carried (operations run concurrently).
    for (const op of kinds) this.metrics.replicaOpLatency.observe({ op }, ms / 1000);
    const response: BatchResponse = { v: PROTOCOL_VERSION, results, now: this.clock.nowMs() };
    if (refuse !== undefined) response.view = { ...this.membership.view(), now: response.now! };
    return response;
  }


  /** A near cache's invalidation stream (storage-server/invalidation-hub.ts): open until the client leaves. */
  private async onSubscribe(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (req.method !== 'POST') throw new RingkvError('METHOD_NOT_ALLOWED', 'invalidations take POST');
    if (this.stopping) throw new ClosedError('server');
    const msg = decodeMessage<SubscribeRequest>(await readBody(req, 64 * 1024));
    if (!msg || typeof msg !== 'object') throw new MalformedRequestError('subscription body must be a map');
    checkProtocolVersion(msg.v);
    this.invalidations.subscribe(req, res, msg);
  }

  /** Counts an operation this node serves in the hot-key sketch (hints held for other nodes are not served here). */
  private countKey(op: WireOp): void {
    const o = op as { t?: number; key?: unknown; hintFor?: unknown } | undefined;
    if (!o || !(o.key instanceof Uint8Array)) return;
    if (o.hintFor !== undefined && o.hintFor !== this.id) return;
    this.hotKeys.record(o.key, o.t !== OpType.Get);
  }

  /** Objects shipped from another data center: written into this one's replicas (replication/). */
  private async onReplApply(req: IncomingMessage, res: ServerResponse, arrivedAt: number): Promise<void> {
    if (req.method !== 'POST') throw new RingkvError('METHOD_NOT_ALLOWED', 'repl-apply takes POST');
    if (this.stopping) throw new ClosedError('server');
    const body = await readBody(req, this.config.maxBatchBodyBytes).catch((err) => {
      throw err instanceof PayloadTooLargeError ? err : new MalformedRequestError((err as Error).message);
    });
    const msg = decodeMessage<ReplApplyRequest>(body);
    if (!msg || typeof msg !== 'object') throw new MalformedRequestError('repl-apply body must be a map');
    checkProtocolVersion(msg.v);
    if (typeof msg.from === 'string') this.membership.heardFrom(msg.from);
    const budget = typeof msg.timeoutMs === 'number' && Number.isFinite(msg.timeoutMs) && msg.timeoutMs > 0 ? msg.timeoutMs : this.config.requestTimeoutMs * 5;
    const n = Array.isArray(msg.ops) ? msg.ops.length : 0;
    this.admit(n, budget - (performance.now() - arrivedAt));
    this.shedder.enter(n);
    try {
      sendMsgpack(res, 200, await this.replication.apply(msg, Math.max(1, budget - (performance.now() - arrivedAt))));
    } finally {
      this.shedder.leave(n);
    }
  }

  private async onMembers(req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
    // Long-poll: ?since=<epoch>&waitMs=<ms> answers when the view moves past `since`.
    const since = Number(url.searchParams.get('since') ?? '0');
    const waitMs = Math.min(Number(url.searchParams.get('waitMs') ?? '0') || 0, 60_000);
    if (waitMs > 0 && Number.isFinite(since)) await this.membership.waitForChange(since, waitMs);
    const view: MembersView = { ...this.membership.view(), now: this.clock.nowMs() };
    sendMsgpackOrJson(req, res, view);
  }

  private async onGossip(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const body = await readBody(req, 4 * 1024 * 1024);
    const msg = decodeMessage<GossipMessage>(body);
    if (!msg || !Array.isArray(msg.members)) throw new MalformedRequestError('gossip needs members');
    if (msg.members.length > MAX_GOSSIP_MEMBERS) throw new MalformedRequestError(`gossip carries at most ${MAX_GOSSIP_MEMBERS} members`);
    checkProtocolVersion(msg.v);
    sendMsgpack(res, 200, this.membership.handleGossip(msg));
  }

  private async onPing(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const msg = decodeMessage<PingMessage>(await readBody(req, 64 * 1024));
    sendMsgpack(res, 200, this.detector.handlePing(msg));
  }

  private async onPingReq(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const msg = decodeMessage<PingReqMessage>(await readBody(req, 64 * 1024));
    sendMsgpack(res, 200, await this.detector.handlePingReq(msg));
  }

  /** A ring fence from the node that changes the ring (membership/ring-fence.ts). */
  private async onRingFence(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const msg = decodeMessage<RingFenceRequest>(await readBody(req, 4 * 1024 * 1024));
    if (!msg || typeof msg.from !== 'string' || !Array.isArray(msg.members)) throw new MalformedRequestError('ring-fence needs from and members');
    checkProtocolVersion(msg.v);
    sendMsgpack(res, 200, await answerRingFence(msg, this.membership, this.admittedWrites, this.config.requestTimeoutMs * 2));
  }

  private registerMetrics(): void {
    const m = this.metrics;
    if (this.replication.active) this.replication.registerMetrics(m);
    m.gauge('ringkv_repair_rounds', 'Anti-entropy rounds run since start', () => this.antiEntropy.totals.rounds);
    m.gauge('ringkv_repair_hashes_compared', 'Merkle hashes compared by repair rounds since start', () => this.antiEntropy.totals.hashesCompared);
    m.gauge('ringkv_repair_keys_exchanged', 'Keys reconciled by repair rounds since start', () => this.antiEntropy.totals.keysExchanged);
    m.gauge('ringkv_repair_last_hashes_compared', 'Hashes compared by the last repair round', () => this.antiEntropy.last?.hashesCompared ?? 0);
    m.gauge('ringkv_repair_last_keys_exchanged', 'Keys exchanged by the last repair round', () => this.antiEntropy.last?.keysExchanged ?? 0);
    m.gauge('ringkv_repair_last_duration_seconds', 'Duration of the last repair round', () => (this.antiEntropy.last?.durationMs ?? 0) / 1000);
    m.gauge('ringkv_repair_suspect_ranges_repaired', 'Suspect (quarantined) ranges of this node repaired by its repair rounds since start', () => this.antiEntropy.totals.suspectRangesRepaired);
    m.gauge('ringkv_suspect_gets', 'Gets answered SUSPECT_RANGE (the key is in a quarantined block) since start', () => this.store.counters.suspectGets);
    m.gauge('ringkv_suspect_writes', 'Writes over a key of a quarantined block (its repair) since start', () => this.store.counters.suspectWrites);
    m.gauge('ringkv_hints_pending', 'Hints held for other nodes', () => this.hints.totalPending);
    m.gauge('ringkv_hints_pending_bytes', 'Bytes of the hints held for other nodes (limited by maxHintBytes)', () => this.hints.pendingBytes);
    m.gauge('ringkv_hints_stored', 'Hints stored since start', () => this.hints.counters.stored);
    m.gauge('ringkv_hints_delivered', 'Hints delivered since start', () => this.handoff.counters.delivered);
    m.gauge('ringkv_hints_expired', 'Hints dropped at their age limit since start', () => this.hints.expired);
    m.gauge('ringkv_gossip_rounds', 'Gossip rounds since start', () => this.membership.counters.rounds);
    m.gauge('ringkv_connections_open', 'HTTP connections open', () => this.connections.openConnections);
    m.gauge('ringkv_connections_limit', 'HTTP connections accepted at most (maxConnections, within the open-files limit)', () => this.connections.limit);
    m.gauge('ringkv_connections_refused', 'Connections refused with 503 since start (over the limit)', () => this.connections.refused);
    m.gauge('ringkv_standing_delay_seconds', 'Delay every recent request saw from arrival to answer (admission control refuses requests with less time left)', () => this.shedder.standingDelayMs / 1000);
    m.gauge('ringkv_inflight_operations', 'Replica operations being applied', () => this.shedder.inflight);
    m.gauge('ringkv_ring_epoch', 'The ring epoch this node knows (sum of the members\' ring versions)', () => this.membership.ring.epoch);
    m.gauge('ringkv_ring_refused_writes', 'Write operations refused since start because they were routed on an older ring', () => this.ringRefusals);
    m.gauge('ringkv_auth_users', 'Users in this node\'s copy of the user table', () => this.auth?.table.liveCounts.users ?? 0);
    m.gauge('ringkv_auth_table_records', 'Records (users, roles, removals) in this node\'s copy of the user table', () => this.auth?.table.size ?? 0);
    m.gauge('ringkv_auth_syncs', 'User table pulls completed since start', () => this.auth?.counters.syncs ?? 0);
    m.gauge('ringkv_auth_sync_failures', 'User table pulls failed since start', () => this.auth?.counters.syncFailures ?? 0);
    this.metrics.hotKeys(() => this.hotKeys.top(10));
    // The embedded client coordinates the public API's reads: its hedged reads (sdk/hedging.ts).
    m.gauge('ringkv_coordinator_hedges_sent', 'Hedged read requests the public API\'s coordinator sent since start', () => this.client?.hedgeCounters.sent ?? 0);
    m.gauge('ringkv_coordinator_hedges_won', 'Hedges whose answer completed the read, since start', () => this.client?.hedgeCounters.won ?? 0);
    m.gauge('ringkv_invalidation_streams', 'Near-cache invalidation streams open', () => this.invalidations.subscribers);
    m.gauge('ringkv_invalidation_tracked_keys', 'Keys tracked for near-cache invalidation streams', () => this.invalidations.trackedKeys);
    m.gauge('ringkv_invalidations_sent', 'Keys sent on invalidation streams since start (changed, or dropped from tracking)', () => this.invalidations.counters.invalidations);
    m.gauge('ringkv_members', 'Members by state, as this node sees them', () => {
      const counts = new Map<string, number>();
      for (const x of this.membership.members()) counts.set(x.state, (counts.get(x.state) ?? 0) + 1);
      return [...counts].map(([state, n]) => [{ state }, n]);
    });
  }

  private async onMerkle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const msg = decodeMessage<MerkleRequest>(await readBody(req, 16 * 1024 * 1024));
    checkProtocolVersion(msg?.v);
    const spans = checkSpans(msg.spans);
    // Bounded work: a request may make this node sum at most MAX_MERKLE_LEAVES leaf hashes
    // (four full rings; anti-entropy's own requests cover at most one), and the summing
    // yields to the event loop as it goes, so no request can stall the node.
    let leaves = 0;
    for (const s of spans) leaves += Math.floor(s[1] / LEAF_SPAN) - Math.floor(s[0] / LEAF_SPAN) + 1;
    if (leaves > MAX_MERKLE_LEAVES) {
      throw new MalformedRequestError(`the spans cover ${leaves} Merkle leaves; at most ${MAX_MERKLE_LEAVES} per request`);
    }
    if (!this.hasher.ready) return sendMsgpack(res, 200, { v: PROTOCOL_VERSION, ready: false, hashes: [] });
    const hashes: [number, number][] = [];
    for (const s of spans) hashes.push((await this.hasher.spanHash(s)) as [number, number]);
    sendMsgpack(res, 200, { v: PROTOCOL_VERSION, ready: true, hashes });
  }

  private async onMerkleKeys(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const msg = decodeMessage<MerkleKeysRequest>(await readBody(req, 16 * 1024 * 1024));
    checkProtocolVersion(msg?.v);
    const spans = checkSpans(msg.spans);
    const limit = Math.min(Math.max(1, Number(msg.limit) || 100_000), MAX_KEYS_PER_REQUEST);
    const keys: [Buffer, number, number][][] = [];
    const truncated: boolean[] = [];
    // At most MAX_KEYS_PER_REQUEST entries in all: spans past that budget come back truncated.
    let budget = MAX_KEYS_PER_REQUEST;
    let sinceYield = 0;
    for (const s of spans) {
      // Many small spans add up too: let other requests in every few thousand entries.
      if (sinceYield > 4096) {
        sinceYield = 0;
        await yieldToLoop();
      }
      const take = Math.min(limit, budget);
      const list = take > 0 ? await this.hasher.spanKeys(s, take + 1) : [];
      truncated.push(take === 0 || list.length > take);
      const kept = list.slice(0, take);
      budget -= kept.length;
      sinceYield += kept.length + 1;
      keys.push(kept);
    }
    sendMsgpack(res, 200, { v: PROTOCOL_VERSION, keys, truncated });
  }

  private async onStream(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const msg = decodeMessage<StreamRequest>(await readBody(req, 16 * 1024 * 1024));
    checkProtocolVersion(msg?.v);
    const spans = checkSpans(msg.spans);
    if (msg.after !== undefined && (!msg.after || !(msg.after.key instanceof Uint8Array) || !Number.isInteger(msg.after.span))) {
      throw new MalformedRequestError('after must be {span, key}');
    }
    sendMsgpack(res, 200, await serveStream(this.store, { ...msg, spans }));
  }

  /** A page of a listing (sdk/listing.ts): one replica's live keys in token spans. */
  private async onScan(req: IncomingMessage, res: ServerResponse, caller: AuthCaller): Promise<void> {
    const msg = decodeMessage<ScanRequest>(await readBody(req, 1024 * 1024));
    checkProtocolVersion(msg?.v);
    // A user's page holds only the keys it may read (authentication on).
    const canRead = caller.kind === 'user' ? (key: Buffer) => caller.principal.can('read', key) : undefined;
    sendMsgpack(res, 200, await serveScan(this.store, { ...msg, spans: checkSpans(msg.spans) }, canRead));
  }

  private async onAdmin(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (req.method !== 'POST') throw new RingkvError('METHOD_NOT_ALLOWED', 'admin takes POST');
    const msg = decodeMessage<AdminRequest>(await readBody(req, 64 * 1024));
    checkProtocolVersion(msg?.v);
    switch (msg.action) {
      case 'repair':
        return sendMsgpackOrJson(req, res, { v: PROTOCOL_VERSION, node: this.id, repair: await this.antiEntropy.repair('all') });
      case 'decommission':
        return sendMsgpackOrJson(req, res, { v: PROTOCOL_VERSION, node: this.id, decommission: await this.changes.decommission() });
      case 'removenode': {
        if (typeof msg.node !== 'string') throw new InvalidArgumentError('removenode needs a node id');
        await this.changes.removeNode(msg.node);
        return sendMsgpackOrJson(req, res, { v: PROTOCOL_VERSION, node: this.id, removed: msg.node });
      }
      case 'cleanup':
        return sendMsgpackOrJson(req, res, { v: PROTOCOL_VERSION, node: this.id, cleanup: await this.changes.cleanup() });
      case 'fold':
        return sendMsgpackOrJson(req, res, { v: PROTOCOL_VERSION, node: this.id, fold: await this.foldPass.run() });
      case 'drop-hints': {
        // No node (absent or null): every target's hints.
        const dropped = await this.hints.drop(msg.node ?? undefined);
        this.log.warn({ dropped, target: msg.node ?? 'all' }, 'hints dropped by an operator');
        return sendMsgpackOrJson(req, res, { v: PROTOCOL_VERSION, node: this.id, dropped });
      }
      case 'fullsync': {
        if (!this.replication.active) throw new InvalidArgumentError('this cluster has one data center: there is nothing to full-sync with');
        const dcs = msg.dc === undefined || msg.dc === null ? this.replication.remoteDcs : [String(msg.dc)];
        for (const dc of dcs) {
          if (!this.replication.remoteDcs.includes(dc)) {
            throw new InvalidArgumentError(`${JSON.stringify(dc)} is not another data center of this cluster (${this.replication.remoteDcs.join(', ')})`);
          }
        }
        const fullsync = [];
        for (const dc of dcs) fullsync.push(await this.replication.fullSync.run(dc));
        return sendMsgpackOrJson(req, res, { v: PROTOCOL_VERSION, node: this.id, dc: this.config.dc, fullsync });
      }
      case 'rebuild-leaves': {
        const entries = await this.store.rebuildLeaves();
        return sendMsgpackOrJson(req, res, { v: PROTOCOL_VERSION, node: this.id, entries });
      }
      case 'compact': {
        // Flushes the memtable and compacts every table into one: tombstones and expired
        // values older than tombstoneGraceMs are dropped (tests and operators), and
        // quarantined blocks whose keys were repaired (refused with CORRUPTION while one is not).
        const before = this.engine.stats().tableCount;
        await this.engine.compact();
        const s = this.engine.stats();
        return sendMsgpackOrJson(req, res, { v: PROTOCOL_VERSION, node: this.id, compacted: true, tablesBefore: before, tables: s.tableCount, corruptBlocksDropped: s.corruptBlocksDropped });
      }
      case 'snapshot':
        return sendMsgpackOrJson(req, res, { v: PROTOCOL_VERSION, node: this.id, snapshot: await takeSnapshot(this.config.dataDir, this.engine, msg.name) });
      default:
        throw new InvalidArgumentError(`unknown admin action ${JSON.stringify(msg.action)}`);
    }
  }

  /**
   * GET /health: 200 while the node serves reads and writes — `status: "degraded"` when
   * its engine retries something in the background but still takes writes (a failing
   * flush or compaction) or holds quarantined blocks; 503 when it refuses writes (a full
   * disk, no descriptors, a recovery in progress: `writes-refused`; the engine gave up:
   * `failed`) or is stopping. A load balancer then sends the public API elsewhere; the
   * smart client goes around the node by itself either way.
   */
  health(): { status: number; body: Record<string, unknown> } {
    const h = this.engine.health();
    const suspect = this.store.suspects().length;
    const status = this.stopping ? 'stopping' : h.state === 'failed' ? 'failed' : h.writesRefused ? 'writes-refused' : h.state !== 'ok' || suspect > 0 ? 'degraded' : 'ok';
    return {
      status: status === 'ok' || status === 'degraded' ? 200 : 503,
      body: {
        status,
        id: this.id,
        uptimeSec: this.uptimeSec(),
        engine: h.state,
        writesRefused: h.writesRefused,
        ...(h.state !== 'ok' ? { engineSinceMs: h.sinceMs, engineRetries: h.retries, engineRetrying: h.retrying, engineLastError: h.lastError } : {}),
        suspectRanges: suspect,
      },
    };
  }

  /** This node's status (the CLI's `status` and the dashboard read it). */
  status(): Record<string, unknown> {
    const s = this.engine.stats();
    return {
      id: this.id,
      address: this.address,
      state: this.membership.self.state,
      dc: this.config.dc,
      rack: this.config.rack || null,
      replication: this.config.replication,
      repl: this.replication.status(),
      actor: this.dots.actor,
      uptimeSec: this.uptimeSec(),
      startedAt: new Date(this.startedAtMs).toISOString(),
      keys: s.approximateEntries,
      tableBytes: s.tableBytes,
      memtableBytes: s.memtableBytes,
      tables: s.tableCount,
      compactions: s.compactions,
      hintsPending: this.hints.totalPending,
      lastRepair: this.antiEntropy.last ?? null,
      repairing: this.antiEntropy.current ?? null,
      lastBootstrap: this.changes.moves.bootstrap ?? null,
      lastDecommission: this.changes.moves.decommission ?? null,
      lastCleanup: this.changes.moves.cleanup ?? null,
      lastFold: this.foldPass.last ?? null,
      recovery: this.recovery.status ?? null,
      ring: { ...this.membership.ring, refusals: this.ringRefusals },
      moving: this.changes.inProgress,
      merkleReady: this.hasher.ready,
      engine: this.engine.health(),
      quarantine: this.store.suspects(true).map((q) => ({
        id: q.id,
        file: q.file,
        offset: q.offset,
        tokens: q.tokens,
        first: q.first.toString('hex'),
        last: q.last.toString('hex'),
        detectedAt: new Date(q.detectedAtMs).toISOString(),
        repaired: q.repaired,
      })),
      auth: { enabled: this.config.auth.enabled, table: this.auth?.status() ?? null },
      hintsByTarget: Object.fromEntries(this.hints.pendingByTarget()),
      members: this.membership.members().map((m) => ({ ...m })),
      hotKeys: this.hotKeys.top(10),
    };
  }

  /** This node's clock. */
  nowMs(): number {
    return this.clock.nowMs();
  }

  private uptimeSec(): number {
    return Math.round((this.clock.nowMs() - this.startedAtMs) / 1000);
  }

  // -------------------------------------------------------------------------------------
  // Shutdown

  private notifyIdle(): void {
    const w = this.idleWaiters;
    this.idleWaiters = [];
    for (const f of w) f();
  }

  /** Stops accepting, finishes in-flight requests (up to `graceMs`), flushes and closes. */
  stop(graceMs = 10_000): Promise<void> {
    this.stopping ??= this.doStop(graceMs);
    return this.stopping;
  }

  private async doStop(graceMs: number): Promise<void> {
    this.log.info({ inFlight: this.inFlight }, 'storage server stopping');
    // Invalidation streams never end by themselves: end them, clients flush and go elsewhere.
    this.invalidations.closeAll();
    const closed = new Promise<void>((resolve) => this.http.close(() => resolve()));
    this.http.closeIdleConnections();
    if (this.inFlight > 0) {
      await Promise.race([
        new Promise<void>((resolve) => this.idleWaiters.push(resolve)),
        new Promise<void>((resolve) => setTimeout(resolve, graceMs).unref()),
      ]);
    }
    this.http.closeAllConnections();
    this.frontDoor.closePending();
    await closed;
    this.detector.stop();
    this.antiEntropy.stop();
    await this.replication.stop();
    this.changes.stop();
    this.leafUpkeep.stop();
    this.membership.stop();
    await this.auth?.stop();
    await this.handoff.stop();
    await this.client?.close().catch(() => undefined);
    await this.transport.close().catch(() => undefined);
    await this.engine.close();
    await this.hints.close();
    await this.replQueue?.close();
    // The last heartbeat: a clean stop is the start of the outage.
    await this.nodeState.stop();
    this.log.info('storage server stopped');
  }
}

/**
 * The cluster-wide settings a node serves: a single-data-center node's as they always were
 * (no replication map), else with the replicas per data center.
 */
function clusterSettingsOf(config: ServerConfig): ClusterSettings {
  const s: ClusterSettings = { vnodesPerNode: config.vnodesPerNode, replicationFactor: config.replicationFactor };
  const dcs = Object.keys(config.replication);
  if (dcs.length > 1 || dcs[0] !== DEFAULT_DC) s.replication = { ...config.replication };
  return s;
}

/** The time a public API request's coordinator waits: its X-Ringkv-Timeout-Ms, else the node's default. */
function kvBudgetMs(req: IncomingMessage, defaultMs: number): number {
  const n = Number(req.headers['x-ringkv-timeout-ms']);
  return Number.isFinite(n) && n > 0 ? n : defaultMs;
}

/** The GET routes the dashboard reads on every node (CORS from any origin, with a token when authentication is on). */
const MONITOR_ROUTES = new Set<string>([Routes.status, Routes.ring, Routes.members, Routes.whoami, Routes.hotKeys, '/metrics', '/health']);

/** Most token spans in one merkle, merkle-keys or stream request. */
export const MAX_SPANS_PER_REQUEST = 4096;
/** Most Merkle leaves one merkle request may make a node sum (four full rings). */
export const MAX_MERKLE_LEAVES = 4 * LEAF_COUNT;
/**
 * Most (key, digest) entries one merkle-keys request returns in all (anti-entropy asks for
 * 64 leaves at a time: 250,000 entries is ~4,000 keys per leaf, a 260-million-key node;
 * beyond, truncated spans are reconciled key by key, correct but slower).
 */
export const MAX_KEYS_PER_REQUEST = 250_000;

function checkSpans(spans: unknown): [number, number][] {
  if (!Array.isArray(spans) || spans.length > MAX_SPANS_PER_REQUEST) {
    throw new MalformedRequestError(`spans must be an array of at most ${MAX_SPANS_PER_REQUEST} [from, to]`);
  }
  for (const s of spans) {
    if (!Array.isArray(s) || s.length !== 2 || !isToken(s[0]) || !isToken(s[1]) || s[0] > s[1]) {
      throw new MalformedRequestError('a span is [from, to] with 0 <= from <= to < 2^32');
    }
  }
  return spans as [number, number][];
}

/** True for the public API's paths (key-value and data types). */
function isPublicApi(p: string): boolean {
  return p.startsWith(KV_PREFIX) || p.startsWith(DT_PREFIX);
}

/** True for the operations that write (everything but Get). */
function isWriteOp(op: WireOp): boolean {
  const t = (op as { t?: number } | undefined)?.t;
  return t === OpType.Merge || t === OpType.Put || t === OpType.CoordinatedPut || t === OpType.DtUpdate;
}

function isToken(n: unknown): n is number {
  return typeof n === 'number' && Number.isInteger(n) && n >= 0 && n <= 0xffffffff;
}

function sendMsgpackOrJson(req: IncomingMessage, res: ServerResponse, body: unknown): void {
  const accept = req.headers.accept ?? '';
  if (accept.includes('msgpack')) sendMsgpack(res, 200, body);
  else sendJson(res, 200, body);
}

/**
 * Options of the transport a server talks to its peers with. A server bound to one
 * specific IP address (a multi-homed host, or one loopback address of several) connects
 * from that address too, so that peers and firewalls see the address it advertises; one
 * bound to every address (0.0.0.0, ::) or to a host name lets the system choose.
 */
export function outgoingTransportOptions(host: string): HttpTransportOptions {
  const family = net.isIP(host);
  if (family === 0 || host === '0.0.0.0' || host === '::') return {};
  return { localAddress: host };
}

/**
 * The transport of the embedded client: batches for this node are applied in-process
 * (no loopback HTTP); everything else goes to the real transport.
 */
class LocalShortcutTransport implements Transport {
  constructor(
    private readonly inner: Transport,
    private readonly self: string,
    private readonly server: StorageServer,
  ) {}

  async call<T>(address: string, path: string, body: unknown, opts: { timeoutMs: number; method?: 'GET' | 'POST' }): Promise<T> {
    if (address === this.self) {
      if (path === Routes.batch) {
        const b = body as BatchRequest;
        return (await this.server.applyBatch(b.ops, b.timeoutMs ? performance.now() + b.timeoutMs : undefined, b.ring)) as T;
      }
      if (path === Routes.members) return { ...this.server.membership.view(), now: this.server.nowMs() } as T;
    }
    return this.inner.call<T>(address, path, body, opts);
  }

  async close(): Promise<void> {
    // The server closes the shared transport itself.
  }
}
