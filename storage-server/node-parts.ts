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
import type { InvalidationHub } from './invalidation-hub.js';
import type { MembershipChanges } from './membership-changes.js';
import type { FailureDetector } from './membership/failure-detector.js';
import type { Membership } from './membership/membership.js';
import type { AdmittedWrites } from './membership/ring-fence.js';
import type { ServerMetrics } from './metrics.js';
import type { OutageRecovery } from './outage-recovery.js';
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
  readonly store: ReplicaStore;
  /** This node's vector-clock actor and dot counter. */
  readonly dots: DotCounter;
  readonly membership: Membership;
  readonly detector: FailureDetector;
  readonly hints: HintStore;
  readonly handoff: HintedHandoff;
  readonly hasher: SpanHasher;
  readonly antiEntropy: AntiEntropy;
  readonly foldPass: FoldPass;
  readonly replication: Replication;
  readonly changes: MembershipChanges;
  readonly recovery: OutageRecovery;
  readonly batches: BatchApplier;
  readonly admittedWrites: AdmittedWrites;
  readonly metrics: ServerMetrics;
  readonly hotKeys: HotKeys;
  readonly invalidations: InvalidationHub;
  readonly auth: AuthService | undefined;
  readonly shedder: LoadShedder;
  readonly admission: Admission;
  readonly connections: ConnectionGuard;
  /** The embedded client that coordinates the public API (undefined until started). */
  readonly client: RingkvClient<Buffer> | undefined;
  /** True once the server began to stop. */
  readonly stopping: boolean;
}
