// The peers' servers, started by the benchmark on loopback with data in a temp directory:
// Debian's redis-server (one instance, or a primary with replicas) and etcd (one member or
// a 3-member Raft cluster). A start function resolves once the server answers (and, for
// Redis replicas, once every replica's link to the primary is up); stop() stops every
// process it started and removes the data. Missing binaries are reported, not thrown.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';
import { Etcd3 } from 'etcd3';
import type { ProcessGroup, Started } from './processes.js';
import { findExecutable, freePort, waitUntil } from './processes.js';

export const PEER_INSTALL_HINT = 'apt-get install -y redis-server etcd-server';

export interface RunningPeer {
  /** "host:port" of every member; the first is the one clients write to (Redis primary). */
  endpoints: string[];
  /** The settings written next to the figures. */
  settings: Record<string, unknown>;
  stop(): Promise<void>;
}

/** Why a peer cannot run here, or undefined when it can. */
export function peerUnavailable(binary: 'redis-server' | 'etcd'): string | undefined {
  if (findExecutable(binary)) return undefined;
  return `${binary} is not installed (Debian: ${PEER_INSTALL_HINT})`;
}

export type RedisFsync = 'always' | 'everysec' | 'no';

/**
 * Starts redis-server with `replicas` replicas of it. Persistence: an append-only file
 * with `appendfsync` as given (`always` matches ringkv's group-commit fsync before the
 * acknowledgement), no RDB snapshots.
 */
export async function startRedis(group: ProcessGroup, o: { replicas: number; fsync: RedisFsync }): Promise<RunningPeer> {
  const bin = findExecutable('redis-server');
  if (!bin) throw new Error(peerUnavailable('redis-server'));
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ringkv-bench-redis-'));
  const procs: Started[] = [];
  const ports: number[] = [];
  const stop = async () => {
    await Promise.all(procs.map((p) => group.stop(p, 'SIGTERM', 10_000)));
    fs.rmSync(dir, { recursive: true, force: true });
  };
  try {
    for (let i = 0; i <= o.replicas; i++) {
      const port = await freePort();
      ports.push(port);
      const d = path.join(dir, `r${i}`);
      fs.mkdirSync(d);
      const args = [
        '--port', String(port),
        '--bind', '127.0.0.1',
        '--dir', d,
        '--save', '',
        '--appendonly', 'yes',
        '--appendfsync', o.fsync,
        '--protected-mode', 'no',
        '--daemonize', 'no',
        '--loglevel', 'warning',
        ...(i > 0 ? ['--replicaof', '127.0.0.1', String(ports[0])] : []),
      ];
      procs.push(group.spawn(`redis-${i}`, bin, args));
      await waitUntil(`redis on port ${port}`, () => redisPing(port), 10_000);
    }
    if (o.replicas > 0) {
      for (const port of ports.slice(1)) {
        await waitUntil(`redis replica ${port} in sync`, async () => (await redisInfo(port, 'replication')).includes('master_link_status:up'), 20_000);
      }
    }
  } catch (err) {
    await stop();
    throw err;
  }
  const version = /redis_version:(\S+)/.exec(await redisInfo(ports[0]!, 'server').catch(() => ''))?.[1] ?? 'unknown';
  return {
    endpoints: ports.map((p) => `127.0.0.1:${p}`),
    settings: { version, replicas: o.replicas, appendfsync: o.fsync, appendonly: 'yes', save: 'off' },
    stop,
  };
}

async function withRedis<T>(port: number, fn: (r: Redis) => Promise<T>): Promise<T> {
  const r = new Redis({ host: '127.0.0.1', port, lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
  r.on('error', () => undefined);
  try {
    await r.connect();
    return await fn(r);
  } finally {
    r.disconnect();
  }
}

function redisPing(port: number): Promise<boolean> {
  return withRedis(port, async (r) => (await r.ping()) === 'PONG');
}

function redisInfo(port: number, section: string): Promise<string> {
  return withRedis(port, (r) => r.info(section));
}

/**
 * Starts an etcd cluster of `members` members (1 or 3) on loopback. etcd fsyncs its WAL
 * before it acknowledges; reads are linearizable by default.
 */
export async function startEtcd(group: ProcessGroup, o: { members: number }): Promise<RunningPeer> {
  const bin = findExecutable('etcd');
  if (!bin) throw new Error(peerUnavailable('etcd'));
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ringkv-bench-etcd-'));
  const procs: Started[] = [];
  const stop = async () => {
    await Promise.all(procs.map((p) => group.stop(p, 'SIGTERM', 10_000)));
    fs.rmSync(dir, { recursive: true, force: true });
  };
  const members: { name: string; client: number; peer: number }[] = [];
  for (let i = 0; i < o.members; i++) members.push({ name: `e${i + 1}`, client: await freePort(), peer: await freePort() });
  const initialCluster = members.map((m) => `${m.name}=http://127.0.0.1:${m.peer}`).join(',');
  const endpoints = members.map((m) => `127.0.0.1:${m.client}`);
  let version = 'unknown';
  try {
    for (const m of members) {
      const args = [
        '--name', m.name,
        '--data-dir', path.join(dir, m.name),
        '--listen-client-urls', `http://127.0.0.1:${m.client}`,
        '--advertise-client-urls', `http://127.0.0.1:${m.client}`,
        '--listen-peer-urls', `http://127.0.0.1:${m.peer}`,
        '--initial-advertise-peer-urls', `http://127.0.0.1:${m.peer}`,
        '--initial-cluster', initialCluster,
        '--initial-cluster-state', 'new',
        '--initial-cluster-token', 'ringkv-bench',
        '--logger', 'zap',
        '--log-outputs', 'stderr',
        '--log-level', 'warn',
      ];
      procs.push(group.spawn(`etcd-${m.name}`, bin, args));
    }
    const client = new Etcd3({ hosts: endpoints.map((e) => `http://${e}`) });
    try {
      await waitUntil('etcd to elect a leader and answer', async () => {
        await client.put('ringkv-bench-ready').value('1').exec();
        return true;
      }, 30_000, 200);
      version = (await client.maintenance.status()).version;
    } finally {
      client.close();
    }
  } catch (err) {
    await stop();
    throw err;
  }
  return { endpoints, settings: { version, members: o.members, fsync: 'WAL fsync per commit (always)', reads: 'linearizable' }, stop };
}
