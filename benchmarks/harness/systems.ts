// The systems one benchmark run measures — ringkv and its peers — each as a recipe: start
// its servers (or use a running cluster), open a KvStore on them, stop everything. The
// peers of a consistency level: Redis as a single instance; Redis as a primary with two
// replicas (with WAIT 1 after writes at `strong`, asynchronous replication at `eventual`);
// etcd, the strongly consistent peer, at `strong` only.

import type { Consistency } from '../../sdk/index.js';
import type { KvStore } from './load-runner.js';
import type { ProcessGroup } from './processes.js';
import { RingkvCluster } from './ringkv-cluster.js';
import type { RedisFsync } from './peer-servers.js';
import { peerUnavailable, startEtcd, startRedis } from './peer-servers.js';
import { RingkvStore } from './stores/ringkv-store.js';
import { RedisStore } from './stores/redis-store.js';
import { EtcdStore } from './stores/etcd-store.js';

export type SystemName = 'ringkv' | 'redis' | 'redis-replicated' | 'etcd';
export const SYSTEM_NAMES: readonly SystemName[] = ['ringkv', 'redis', 'redis-replicated', 'etcd'];

export interface SystemOptions {
  consistency: 'strong' | 'eventual';
  /** The workload increments counters: systems without them are skipped. */
  counters?: boolean;
  group: ProcessGroup;
  /** An existing ringkv cluster instead of starting one. */
  seeds?: string[];
  nodes: number;
  /** Extra storage-server flags (diagnostics, e.g. ["--sync", "none"]). */
  serverArgs?: string[];
  profileDir?: string;
  etcdMembers: number;
  redisConnections: number;
  redisFsync: RedisFsync;
  waitTimeoutMs: number;
}

export interface RunningSystem {
  store: KvStore;
  settings: Record<string, unknown>;
  /** ringkv only: the cluster this run started. */
  cluster?: RingkvCluster;
  stop(): Promise<void>;
}

export interface SystemSpec {
  name: SystemName;
  /** One line describing the setup, for tables. */
  describe(o: SystemOptions): string;
  /** Why the system is skipped here (not installed, not a peer at this consistency), or undefined. */
  skipReason(o: SystemOptions): string | undefined;
  start(o: SystemOptions): Promise<RunningSystem>;
}

const ringkv: SystemSpec = {
  name: 'ringkv',
  describe: (o) =>
    o.seeds
      ? `ringkv cluster at ${o.seeds.join(',')}`
      : `ringkv, ${o.nodes} local nodes, N=3, ${o.consistency === 'strong' ? 'R=W=2' : 'R=W=1'}${o.serverArgs?.length ? `, server flags ${o.serverArgs.join(' ')}` : ', sync=batch'}`,
  skipReason: () => undefined,
  async start(o) {
    let cluster: RingkvCluster | undefined;
    let seeds = o.seeds;
    if (!seeds) {
      cluster = await new RingkvCluster({
        nodes: o.nodes,
        group: o.group,
        ...(o.profileDir ? { profileDir: o.profileDir } : {}),
        ...(o.serverArgs ? { args: o.serverArgs } : {}),
      }).launch();
      seeds = cluster.addresses;
    }
    try {
      const store = await RingkvStore.open(seeds, o.consistency as Consistency);
      return {
        store,
        cluster,
        settings: { nodes: cluster ? o.nodes : seeds.length, seeds: o.seeds ?? 'started by the benchmark', consistency: o.consistency, sync: 'batch (group commit + fdatasync)', serverArgs: o.serverArgs ?? [] },
        async stop() {
          await store.close().catch(() => undefined);
          await cluster?.stopAll();
        },
      };
    } catch (err) {
      await cluster?.stopAll();
      throw err;
    }
  },
};

const redis: SystemSpec = {
  name: 'redis',
  describe: (o) => `Redis, 1 instance, appendfsync ${o.redisFsync}`,
  skipReason: () => peerUnavailable('redis-server'),
  async start(o) {
    const peer = await startRedis(o.group, { replicas: 0, fsync: o.redisFsync });
    const [host, port] = peer.endpoints[0]!.split(':');
    try {
      const store = await RedisStore.open({ name: 'redis', host: host!, port: Number(port), connections: o.redisConnections });
      return {
        store,
        settings: { ...peer.settings, connections: o.redisConnections },
        async stop() {
          await store.close();
          await peer.stop();
        },
      };
    } catch (err) {
      await peer.stop();
      throw err;
    }
  },
};

const redisReplicated: SystemSpec = {
  name: 'redis-replicated',
  describe: (o) => `Redis, primary + 2 replicas, ${o.consistency === 'strong' ? `SET + WAIT 1 ${o.waitTimeoutMs}` : 'async replication'}, appendfsync ${o.redisFsync}`,
  skipReason: () => peerUnavailable('redis-server'),
  async start(o) {
    const peer = await startRedis(o.group, { replicas: 2, fsync: o.redisFsync });
    const [host, port] = peer.endpoints[0]!.split(':');
    const waitReplicas = o.consistency === 'strong' ? 1 : 0;
    try {
      const store = await RedisStore.open({ name: 'redis-replicated', host: host!, port: Number(port), connections: o.redisConnections, waitReplicas, waitTimeoutMs: o.waitTimeoutMs });
      return {
        store,
        settings: { ...peer.settings, connections: o.redisConnections, readConnections: waitReplicas > 0 ? `${o.redisConnections} of their own` : 'shared with writes', waitReplicas, waitTimeoutMs: o.waitTimeoutMs, readsFrom: 'primary' },
        async stop() {
          await store.close();
          await peer.stop();
        },
      };
    } catch (err) {
      await peer.stop();
      throw err;
    }
  },
};

const etcd: SystemSpec = {
  name: 'etcd',
  describe: (o) => `etcd, ${o.etcdMembers} member${o.etcdMembers === 1 ? '' : 's'} (Raft), linearizable reads`,
  skipReason: (o) =>
    o.counters
      ? 'etcd has no increment (only a read-modify-write transaction): not a peer of the counter workload'
      : o.consistency !== 'strong'
        ? 'etcd is the strongly consistent peer: measured at --consistency strong only'
        : peerUnavailable('etcd'),
  async start(o) {
    const peer = await startEtcd(o.group, { members: o.etcdMembers });
    try {
      const store = await EtcdStore.open('etcd', peer.endpoints);
      return {
        store,
        settings: peer.settings,
        async stop() {
          await store.close();
          await peer.stop();
        },
      };
    } catch (err) {
      await peer.stop();
      throw err;
    }
  },
};

export const SYSTEMS: Record<SystemName, SystemSpec> = { ringkv, redis, 'redis-replicated': redisReplicated, etcd };
