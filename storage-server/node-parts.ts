// The parts a storage node is built from, as the composition root (server.ts) exposes them
// to the modules that serve requests, report status and run admin actions: each of those
// takes the few parts it needs (Pick<NodeParts, ...>). Parts are built once, in the
// server's constructor; `client` exists once the server started and `stopping` turns true
// when it stops. Single-threaded, like everything on a node's event loop.

import type pino from 'pino';
import type { Clock } from '../sdk/clock.js';
import type { RingkvClient } from '../sdk/client.js';
import type { Transport } from '../sdk/transport.js';
import type { AntiEntropy } from './anti-entropy/anti-entropy.js';
import type { FoldPass } from './anti-entropy/fold-pass.js';
import type { SpanHasher } from './anti-entropy/span-hasher.js';
import type { AuthService } from './auth/auth-service.js';
import type { BatchApplier } from './batch-applier.js';
import type { ServerConfig } from './config.js';
import type { DotCounter } from './dot-counter.js';
import type { Engine } from './engine/index.js';
import type { HintStore } from './handoff/hint-store.js';
import type { HintedHandoff } from './handoff/hinted-handoff.js';
import type { HotKeys } from './hot-keys.js';
import type { Admission } from './http/admission.js';
import type { ConnectionGuard } from './http/connection-guard.js';
import type { LoadShedder } from './http/load-shedder.js';
import type { Router } from './http/router.js';
import type { MerkleLeafUpkeep } from './anti-entropy/merkle-leaf-upkeep.js';
import type { InvalidationHub } from './invalidation-hub.js';
import type { MembershipChanges } from './membership-changes.js';
import type { FailureDetector } from './membership/failure-detector.js';
import type { Membership } from './membership/membership.js';
import type { AdmittedWrites } from './membership/ring-fence.js';
import type { ServerMetrics } from './metrics.js';
import type { NodeStateKeeper, OutageRecovery } from './outage-recovery.js';
import type { ReplicaStore } from './replica-store.js';
import type { Replication } from './replication/replication.js';

export interface NodeParts {
  readonly config: ServerConfig;
  /** This node's id. */
  readonly id: string;
  /** "host:port" clients and peers use. */
  readonly address: string;
  readonly startedAtMs: number;
  readonly clock: Clock;
  readonly log: pino.Logger;
  /** The transport to peers (the real one, not the embedded client's local shortcut). */
  readonly transport: Transport;
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
  /** This node's NODE-STATE: the last-alive heartbeat and, while recovering, the outage start (outage-recovery.ts). */
  readonly nodeState: NodeStateKeeper;
  /** The recovery after an outage longer than the tombstone grace period (outage-recovery.ts). */
  readonly recovery: OutageRecovery;
  /** Applies replica operation batches, from the batch endpoint and the local shortcut (batch-applier.ts). */
  readonly batches: BatchApplier;
  /** Write batches admitted under a ring stamp: ring fences wait for the older ones (membership/ring-fence.ts). */
  readonly admittedWrites: AdmittedWrites;
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
  /** The embedded client that coordinates the public API (undefined until started). */
  readonly client: RingkvClient<Buffer> | undefined;
  /** True once the server began to stop. */
  readonly stopping: boolean;
}
