// Storage-server configuration: every setting with its unit and default, and the one place
// (resolveServerConfig) that merges defaults < config file < environment < flags and
// validates. Env names: RINGKV_<UPPER_SNAKE> of the field (RINGKV_ID, RINGKV_PORT,
// RINGKV_SEEDS="h:p,h:p", RINGKV_DATA_DIR, ...; the tls section: RINGKV_TLS_MODE,
// RINGKV_TLS_CA, RINGKV_TLS_CERT, RINGKV_TLS_KEY; the auth section: RINGKV_AUTH_ENABLED,
// RINGKV_AUTH_CACHE_TTL_MS, RINGKV_AUTH_SYNC_INTERVAL_MS).

import fs from 'node:fs';
import path from 'node:path';
import { InvalidArgumentError } from '../sdk/errors.js';
import { DEFAULT_DC, MAX_MEMBER_WEIGHT } from '../sdk/membership.js';
import { checkReplication, TOPOLOGY_NAME } from '../sdk/ring.js';
import type { EngineOptions, SyncPolicy } from './engine/index.js';
import { resolveEngineOptions } from './engine/index.js';
import { checkHintStoreLimits } from './handoff/hint-store.js';
import { isTlsMode } from '../sdk/transport-security.js';
import type { NodeTlsConfig } from './tls/node-tls.js';
import { loadNodeTls } from './tls/node-tls.js';

export interface ServerConfig {
  /** Unique node id (letters, digits, '-', '_', '.'). Required. */
  id: string;
  /** Address to bind and to advertise. Default 127.0.0.1. */
  host: string;
  /** HTTP port. Default 7001. */
  port: number;
  /** Address other nodes and clients use, when it differs from host:port (NAT, 0.0.0.0 binds). */
  advertise: string;
  /**
   * Address the nodes and clients of *other* data centers use (a public or NAT address, a
   * port of an inter-DC gateway), when it differs from `advertise`. Default '' (none: advertise).
   */
  advertiseRemote: string;
  /** This node's data center. Default `default` (a cluster of one data center names none). */
  dc: string;
  /** This node's rack within its data center. Default '' (none: the nodes without one share one rack). */
  rack: string;
  /** Data directory. Default ./data/<id>. */
  dataDir: string;
  /** Other nodes ("host:port") to learn the cluster from. Default none (a cluster of one). */
  seeds: string[];
  /** Virtual-node weight of this node (1 = vnodesPerNode). Default 1. */
  weight: number;
  /** Virtual nodes per member at weight 1; the same on every node. Default 128. */
  vnodesPerNode: number;
  /**
   * Replicas per key (N) in all; the same on every node. Default 3. Given as a number (one
   * data center: this node's) or per data center (`{ "east": 3, "west": 3 }`, or
   * `east:3,west:3` in a flag or the environment); this field is then the sum.
   */
  replicationFactor: number;
  /** Replicas per data center (filled from replicationFactor; one entry for a number). */
  replication: Record<string, number>;
  /**
   * Cross-DC replication: the most bytes of objects queued for one other data center; a
   * write beyond it is not queued (counted in ringkv_repl_dropped_total) and reaches that
   * data center through the full sync. Default 64 MiB.
   */
  replQueueMaxBytes: number;
  /**
   * Cross-DC replication: the lag bound — an object not shipped within this time after it
   * was queued is dropped from the queue (counted as dropped) and left to the full sync.
   * Default 6 h.
   */
  replQueueMaxAgeMs: number;
  /** Cross-DC replication: the longest wait between two attempts to ship to an unreachable data center (back-off). Default 5000 ms. */
  replRetryMaxMs: number;
  /**
   * Time between full syncs with each other data center (Merkle comparison of every range
   * this node replicates with a replica there; only differing keys move); 0 = only on
   * demand (`ringkv repl fullsync`). Default 6 h. With several data centers,
   * tombstoneGraceMs must exceed this plus replQueueMaxAgeMs.
   */
  fullSyncIntervalMs: number;
  /** Timeout of requests this node coordinates (public API) and sends to peers. Default 2000 ms. */
  requestTimeoutMs: number;
  /**
   * How far a new write's timestamp may lead this node's clock; writes stamped further ahead
   * are refused with CLOCK_SKEW (a version far in the future would otherwise drag every later
   * write of its key with it). The SDK follows the servers' median clock, so only a client or
   * server whose clock is badly off meets it. Default 5000 ms.
   */
  maxClockSkewMs: number;
  /** Largest internal batch body accepted. Default 64 MiB. */
  maxBatchBodyBytes: number;
  /**
   * Most HTTP connections open at once (clients and peers); the one beyond is answered
   * 503 OVERLOADED and closed. Lowered to fit the process's open-files limit minus
   * fdReserve. Default 10000.
   */
  maxConnections: number;
  /** File descriptors kept out of the connections' reach, for the engine and requests to peers. Default 512. */
  fdReserve: number;
  /** Time a client has to send a request's headers (slow senders get 408 and are closed). Default 10000 ms. */
  headersTimeoutMs: number;
  /** Time a client has to send a whole request, headers and body (else 408). Default 60000 ms. */
  requestReceiveTimeoutMs: number;
  /** An idle keep-alive connection is closed after this long. Default 65000 ms. */
  keepAliveTimeoutMs: number;
  /** Replica operations in flight above which new batches are refused with 503 OVERLOADED. Default 50000. */
  maxInflightOps: number;
  /**
   * Admission control (storage-server/http/load-shedder.ts): refuse up front what cannot be
   * answered in time. Turning it off is for comparing (npm run bench:overload). Default true.
   */
  loadShedding: boolean;
  /**
   * Web origins (scheme://host[:port]) whose pages may write through the public API from a
   * browser (CORS); a write carrying any other Origin header is refused with 403. Default
   * none: browsers may read nothing cross-site and write nothing.
   */
  corsAllowedOrigins: string[];
  /** Largest public JSON request body accepted. Default 4 MiB (values are capped at 1 MiB). */
  maxJsonBodyBytes: number;
  /** Engine durability. Default batch (group commit). */
  sync: SyncPolicy;
  /** Engine memtable size. Default 8 MiB; `ringkv server` under less than 256 MiB of memory (a cgroup limit): 1/32 of it (memory-budget.ts). */
  memtableSizeBytes: number;
  /** Each memtable freezes at a random size in [100 - this, 100]% of memtableSizeBytes, so replicas do not flush together. Default 25. */
  memtableJitterPercent: number;
  /**
   * Retired WAL segments kept for reuse; above 0, segments are also preallocated (log format
   * 3, the engine's walRecycleSegments: cheaper group-commit fdatasyncs). Default 0 (off).
   */
  walRecycleSegments: number;
  /** Engine block cache. Default 64 MiB; `ringkv server` under less than 1 GiB of memory (a cgroup limit): 1/16 of it (memory-budget.ts). */
  blockCacheSizeBytes: number;
  /** Engine compaction rate limit (0 = unlimited). Default 64 MiB/s. */
  compactionRateBytesPerSec: number;
  /** Niceness of the engine's compaction thread (0..19; 0 = the server's own priority). Default 10. */
  compactionThreadNice: number;
  /** Engine tombstone grace period. Default 10 days. */
  tombstoneGraceMs: number;
  /** Gossip round interval. Default 1000 ms. */
  gossipIntervalMs: number;
  /** Failure-detector probe interval. Default 1000 ms. */
  probeIntervalMs: number;
  /** Time a ping may take before it counts as missed. Default 500 ms. */
  probeTimeoutMs: number;
  /** Consecutive missed probes (direct and indirect) before a member is suspect. Default 3. */
  suspectAfterMisses: number;
  /** Time a suspect has to refute before it is marked down. Default 2000 ms. */
  suspicionTimeoutMs: number;
  /** Members asked to probe a member that missed a direct ping. Default 2. */
  indirectProbes: number;
  /** Largest total size of hints this node keeps for others. Default 256 MiB. */
  maxHintBytes: number;
  /** Hints not delivered within this time are dropped (anti-entropy repairs the rest). Default 3 h; more than 0, at most 10 years. */
  maxHintAgeMs: number;
  /** Hint delivery rate limit, per target. Default 5000 hints/s. */
  hintReplayRatePerSec: number;
  /**
   * Time between automatic anti-entropy rounds (each node repairs the ranges it is the
   * first live replica of, and its suspect ranges); 0 turns them off, and the prompt round
   * after a corrupt block is found too. Must be well below tombstoneGraceMs. Default 5 min.
   */
  repairIntervalMs: number;
  /** Time between full rebuilds of the Merkle leaf hashes from the data (safety net). Default 6 h. */
  leafRebuildIntervalMs: number;
  /** Read rate of those periodic rebuilds (the first one at start is not throttled). Default 16 MiB/s. */
  leafRebuildRateBytesPerSec: number;
  /** Range streaming rate limit (joins, decommissions). Default 32 MiB/s. */
  streamRateBytesPerSec: number;
  /**
   * Join an existing cluster: start as `joining`, stream the ranges this node will own,
   * then become `up`. Without it a node is `up` at once (a new cluster, or a restart).
   */
  join: boolean;
  /** After the ring has been stable this long, drop ranges this node no longer owns; 0 = only on `ringkv cleanup`. Default 10 min. */
  cleanupDelayMs: number;
  /**
   * How long a join, decommission or removenode waits for every live member to acknowledge
   * the new ring (so that writes routed on the old one are refused everywhere) before it
   * gives up. Default 30000 ms.
   */
  ringFenceTimeoutMs: number;
  /**
   * Data types (counters, sets, maps): how long the id of an applied update is remembered,
   * so that a retry of it is not applied again (sdk/crdt/README.md, "the applied-op
   * window"); the same on every node, and longer than repairIntervalMs. Default 600000 ms
   * (10 minutes).
   */
  dataTypeOpWindowMs: number;
  /** Data types: at most this many update ids are remembered per key (the oldest go first). Default 256. */
  dataTypeMaxOpIds: number;
  /** Log level (pino). Default info. */
  logLevel: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
  /**
   * Transport security (storage-server/tls/README.md): `mode` off (default) | transitional |
   * required, and the PEM files `ca`, `cert` (naming URI:ringkv://node/<id>) and `key`,
   * required unless the mode is off (then they are not read). Paths are made absolute.
   */
  tls: NodeTlsConfig;
  /**
   * Authentication and permissions (storage-server/auth/README.md): `enabled` (default
   * false) makes every client request carry a user's bearer token and checks its
   * permissions; it needs tls.mode required (nodes prove themselves by their certificates).
   */
  auth: AuthConfig;
}

export interface AuthConfig {
  /** Clients must send a user's token; permissions are checked. Needs tls.mode required. Default false. */
  enabled: boolean;
  /**
   * How long a token's user and permissions may be served from this node's cache; the
   * cache is also emptied whenever the user table changes. It is also the bound within which
   * a revoked token is refused on every reachable node, so with auth on it must be at least
   * syncIntervalMs + requestTimeoutMs. Default 5000 ms, at most 60000.
   */
  cacheTtlMs: number;
  /** How often the node compares its user table with a random live peer (and fetches it when they differ). Default 2000 ms. */
  syncIntervalMs: number;
}

const MiB = 1024 * 1024;

export const serverDefaults: Omit<ServerConfig, 'id' | 'dataDir' | 'advertise' | 'replication'> = {
  host: '127.0.0.1',
  port: 7001,
  advertiseRemote: '',
  dc: DEFAULT_DC,
  rack: '',
  seeds: [],
  weight: 1,
  vnodesPerNode: 128,
  replicationFactor: 3,
  replQueueMaxBytes: 64 * MiB,
  replQueueMaxAgeMs: 6 * 3600 * 1000,
  replRetryMaxMs: 5000,
  fullSyncIntervalMs: 6 * 3600 * 1000,
  requestTimeoutMs: 2000,
  maxClockSkewMs: 5000,
  maxBatchBodyBytes: 64 * MiB,
  maxConnections: 10_000,
  fdReserve: 512,
  headersTimeoutMs: 10_000,
  requestReceiveTimeoutMs: 60_000,
  keepAliveTimeoutMs: 65_000,
  maxInflightOps: 50_000,
  loadShedding: true,
  corsAllowedOrigins: [],
  maxJsonBodyBytes: 4 * MiB,
  sync: 'batch',
  memtableSizeBytes: 8 * MiB,
  memtableJitterPercent: 25,
  walRecycleSegments: 0,
  blockCacheSizeBytes: 64 * MiB,
  compactionRateBytesPerSec: 64 * MiB,
  compactionThreadNice: 10,
  tombstoneGraceMs: 10 * 24 * 3600 * 1000,
  gossipIntervalMs: 1000,
  probeIntervalMs: 1000,
  probeTimeoutMs: 500,
  suspectAfterMisses: 3,
  suspicionTimeoutMs: 2000,
  indirectProbes: 2,
  maxHintBytes: 256 * MiB,
  maxHintAgeMs: 3 * 3600 * 1000,
  hintReplayRatePerSec: 5000,
  repairIntervalMs: 5 * 60 * 1000,
  leafRebuildIntervalMs: 6 * 3600 * 1000,
  leafRebuildRateBytesPerSec: 16 * MiB,
  streamRateBytesPerSec: 32 * MiB,
  join: false,
  cleanupDelayMs: 10 * 60 * 1000,
  ringFenceTimeoutMs: 30_000,
  dataTypeOpWindowMs: 10 * 60 * 1000,
  dataTypeMaxOpIds: 256,
  logLevel: 'info',
  tls: { mode: 'off', ca: '', cert: '', key: '' },
  auth: { enabled: false, cacheTtlMs: 5000, syncIntervalMs: 2000 },
};

const AUTH_FIELDS = ['enabled', 'cacheTtlMs', 'syncIntervalMs'] as const;

const TLS_FIELDS = ['mode', 'ca', 'cert', 'key'] as const;

type Raw = Record<string, unknown>;

const NUMBER_FIELDS = [
  'port',
  'weight',
  'vnodesPerNode',
  'requestTimeoutMs',
  'maxClockSkewMs',
  'maxBatchBodyBytes',
  'maxJsonBodyBytes',
  'maxConnections',
  'fdReserve',
  'headersTimeoutMs',
  'requestReceiveTimeoutMs',
  'keepAliveTimeoutMs',
  'maxInflightOps',
  'memtableSizeBytes',
  'memtableJitterPercent',
  'walRecycleSegments',
  'blockCacheSizeBytes',
  'compactionRateBytesPerSec',
  'compactionThreadNice',
  'tombstoneGraceMs',
  'gossipIntervalMs',
  'probeIntervalMs',
  'probeTimeoutMs',
  'suspectAfterMisses',
  'suspicionTimeoutMs',
  'indirectProbes',
  'maxHintBytes',
  'maxHintAgeMs',
  'hintReplayRatePerSec',
  'repairIntervalMs',
  'leafRebuildIntervalMs',
  'leafRebuildRateBytesPerSec',
  'streamRateBytesPerSec',
  'cleanupDelayMs',
  'ringFenceTimeoutMs',
  'dataTypeOpWindowMs',
  'dataTypeMaxOpIds',
  'replQueueMaxBytes',
  'replQueueMaxAgeMs',
  'replRetryMaxMs',
  'fullSyncIntervalMs',
] as const;

const ALL_FIELDS = [
  'id',
  'host',
  'advertise',
  'advertiseRemote',
  'dc',
  'rack',
  'replicationFactor',
  'dataDir',
  'seeds',
  'sync',
  'logLevel',
  'join',
  'corsAllowedOrigins',
  'loadShedding',
  'tls',
  'auth',
  ...NUMBER_FIELDS,
] as const;

function envName(field: string): string {
  return `RINGKV_${field.replace(/[A-Z]/g, (c) => `_${c}`).toUpperCase()}`;
}

/** Reads RINGKV_* variables into a raw config. */
export function configFromEnv(env: NodeJS.ProcessEnv = process.env): Raw {
  const out: Raw = {};
  for (const f of ALL_FIELDS) {
    if (f === 'tls' || f === 'auth') continue;
    const v = env[envName(f)];
    if (v !== undefined && v !== '') out[f] = v;
  }
  const tls: Raw = {};
  for (const f of TLS_FIELDS) {
    const v = env[`RINGKV_TLS_${f.toUpperCase()}`];
    if (v !== undefined && v !== '') tls[f] = v;
  }
  if (Object.keys(tls).length > 0) out.tls = tls;
  const auth: Raw = {};
  for (const f of AUTH_FIELDS) {
    const v = env[envName(`auth${f[0]!.toUpperCase()}${f.slice(1)}`)];
    if (v !== undefined && v !== '') auth[f] = v;
  }
  if (Object.keys(auth).length > 0) out.auth = auth;
  if (env.RINGKV_DATA && out.dataDir === undefined) out.dataDir = env.RINGKV_DATA;
  return out;
}

/** Reads a JSON config file into a raw config. */
export function configFromFile(file: string): Raw {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new InvalidArgumentError(`cannot read config file ${file}: ${(err as Error).message}`);
  }
  try {
    const v = JSON.parse(text) as unknown;
    if (!v || typeof v !== 'object' || Array.isArray(v)) throw new Error('not an object');
    return v as Raw;
  } catch (err) {
    throw new InvalidArgumentError(`config file ${file} is not a JSON object: ${(err as Error).message}`);
  }
}

/** The storage engine's settings among a server's. */
export function engineSettings(cfg: ServerConfig): EngineOptions {
  return {
    sync: cfg.sync,
    memtableSizeBytes: cfg.memtableSizeBytes,
    memtableJitterPercent: cfg.memtableJitterPercent,
    walRecycleSegments: cfg.walRecycleSegments,
    blockCacheSizeBytes: cfg.blockCacheSizeBytes,
    compactionRateBytesPerSec: cfg.compactionRateBytesPerSec,
    compactionThreadNice: cfg.compactionThreadNice,
    tombstoneGraceMs: cfg.tombstoneGraceMs,
  };
}

/** Merges raw layers (later wins), fills defaults and validates. Throws InvalidArgumentError naming the field. */
export function resolveServerConfig(...layers: Raw[]): ServerConfig {
  const raw: Raw = {};
  for (const l of layers) {
    for (const [k, v] of Object.entries(l)) {
      if (v === undefined) continue;
      // The tls and auth sections merge field by field (a file gives the paths, env or a flag the mode).
      if ((k === 'tls' || k === 'auth') && v && typeof v === 'object' && !Array.isArray(v)) {
        const merged: Raw = { ...((raw[k] as Raw | undefined) ?? {}) };
        for (const [tk, tv] of Object.entries(v as Raw)) if (tv !== undefined) merged[tk] = tv;
        raw[k] = merged;
      } else raw[k] = v;
    }
  }
  for (const k of Object.keys(raw)) {
    if (!(ALL_FIELDS as readonly string[]).includes(k)) throw new InvalidArgumentError(`unknown server setting "${k}"`);
  }
  const id = String(raw.id ?? '');
  if (!/^[A-Za-z0-9._-]{1,64}$/.test(id)) throw new InvalidArgumentError(`server id must be 1-64 letters, digits, '.', '_' or '-'; got "${id}"`);
  const cfg: ServerConfig = { ...serverDefaults, id, dataDir: path.join('data', id), advertise: '', replication: {} };
  if (raw.host !== undefined) cfg.host = String(raw.host);
  if (raw.dataDir !== undefined) cfg.dataDir = String(raw.dataDir);
  for (const f of NUMBER_FIELDS) {
    if (raw[f] === undefined) continue;
    const n = typeof raw[f] === 'number' ? (raw[f] as number) : Number(raw[f]);
    if (!Number.isFinite(n) || n < 0) throw new InvalidArgumentError(`setting ${f} must be a non-negative number, got ${String(raw[f])}`);
    (cfg as unknown as Record<string, number>)[f] = n;
  }
  if (!Number.isInteger(cfg.port) || cfg.port < 0 || cfg.port > 65535) throw new InvalidArgumentError(`port must be 0..65535`);
  if (!(cfg.weight > 0 && cfg.weight <= MAX_MEMBER_WEIGHT)) throw new InvalidArgumentError(`weight must be in (0, ${MAX_MEMBER_WEIGHT}]`);
  if (!Number.isInteger(cfg.vnodesPerNode) || cfg.vnodesPerNode < 1) throw new InvalidArgumentError('vnodesPerNode must be a positive integer');
  for (const f of ['dc', 'rack'] as const) {
    if (raw[f] === undefined || raw[f] === '') continue;
    const v = String(raw[f]);
    if (!TOPOLOGY_NAME.test(v)) throw new InvalidArgumentError(`${f} must be 1-64 letters, digits, '.', '_' or '-'; got "${v}"`);
    cfg[f] = v;
  }
  cfg.replication = parseReplication(raw.replicationFactor ?? serverDefaults.replicationFactor, cfg.dc);
  cfg.replicationFactor = Object.values(cfg.replication).reduce((a, b) => a + b, 0);
  if (!Number.isInteger(cfg.replQueueMaxBytes) || cfg.replQueueMaxBytes < 1024) throw new InvalidArgumentError('replQueueMaxBytes must be an integer of at least 1024');
  if (!(cfg.replQueueMaxAgeMs >= 1000)) throw new InvalidArgumentError('replQueueMaxAgeMs must be at least 1000');
  if (!(cfg.replRetryMaxMs >= 10)) throw new InvalidArgumentError('replRetryMaxMs must be at least 10');
  // Tombstones are kept until both sides have them: a delete must outlive the time it may
  // take to reach the other data centers — the queue's lag bound, then a full sync.
  if (Object.keys(cfg.replication).length > 1 && cfg.tombstoneGraceMs <= cfg.fullSyncIntervalMs + cfg.replQueueMaxAgeMs) {
    throw new InvalidArgumentError(
      `tombstoneGraceMs (${cfg.tombstoneGraceMs}) must exceed fullSyncIntervalMs (${cfg.fullSyncIntervalMs}) plus replQueueMaxAgeMs (${cfg.replQueueMaxAgeMs}): a delete could be collected before the other data centers had it, and come back from them`,
    );
  }
  if (!(cfg.requestTimeoutMs > 0)) throw new InvalidArgumentError('requestTimeoutMs must be positive');
  if (!(cfg.maxClockSkewMs >= 100)) throw new InvalidArgumentError('maxClockSkewMs must be at least 100');
  if (!Number.isInteger(cfg.maxConnections) || cfg.maxConnections < 16) throw new InvalidArgumentError('maxConnections must be an integer of at least 16');
  if (!Number.isInteger(cfg.fdReserve)) throw new InvalidArgumentError('fdReserve must be an integer');
  if (!(cfg.headersTimeoutMs >= 100)) throw new InvalidArgumentError('headersTimeoutMs must be at least 100');
  if (!(cfg.requestReceiveTimeoutMs >= cfg.headersTimeoutMs)) throw new InvalidArgumentError('requestReceiveTimeoutMs must be at least headersTimeoutMs');
  if (!(cfg.keepAliveTimeoutMs >= 100)) throw new InvalidArgumentError('keepAliveTimeoutMs must be at least 100');
  if (!Number.isInteger(cfg.maxInflightOps) || cfg.maxInflightOps < 1) throw new InvalidArgumentError('maxInflightOps must be a positive integer');
  if (!(cfg.gossipIntervalMs >= 10)) throw new InvalidArgumentError('gossipIntervalMs must be at least 10');
  if (!(cfg.probeIntervalMs >= 10)) throw new InvalidArgumentError('probeIntervalMs must be at least 10');
  if (!(cfg.probeTimeoutMs >= 1)) throw new InvalidArgumentError('probeTimeoutMs must be positive');
  if (!Number.isInteger(cfg.suspectAfterMisses) || cfg.suspectAfterMisses < 1) throw new InvalidArgumentError('suspectAfterMisses must be a positive integer');
  // The engine's settings have their bounds in one place, the engine's resolver; checked
  // here too so a bad value fails before the data directory is touched.
  resolveEngineOptions(engineSettings(cfg));
  checkHintStoreLimits(cfg);
  if (!(cfg.hintReplayRatePerSec > 0)) throw new InvalidArgumentError('hintReplayRatePerSec must be positive');
  if (!(cfg.ringFenceTimeoutMs >= 100)) throw new InvalidArgumentError('ringFenceTimeoutMs must be at least 100');
  if (!Number.isSafeInteger(cfg.dataTypeOpWindowMs)) throw new InvalidArgumentError('dataTypeOpWindowMs must be an integer of ms');
  if (!Number.isSafeInteger(cfg.dataTypeMaxOpIds) || cfg.dataTypeMaxOpIds < 1) throw new InvalidArgumentError('dataTypeMaxOpIds must be a positive integer');
  // A tombstone must outlive at least two repair rounds, or a replica that missed the delete
  // could bring the key back after the others dropped their tombstones.
  if (cfg.repairIntervalMs > 0 && cfg.tombstoneGraceMs <= 2 * cfg.repairIntervalMs) {
    throw new InvalidArgumentError(
      `tombstoneGraceMs (${cfg.tombstoneGraceMs}) must exceed twice repairIntervalMs (${cfg.repairIntervalMs}): deleted keys could come back`,
    );
  }
  if (raw.seeds !== undefined) {
    const s = raw.seeds;
    const list = Array.isArray(s) ? s.map(String) : String(s).split(',');
    cfg.seeds = list.map((x) => x.trim()).filter((x) => x.length > 0);
  }
  for (const s of cfg.seeds) if (!/^[^:\s]+:\d{1,5}$/.test(s)) throw new InvalidArgumentError(`seed "${s}" is not host:port`);
  if (raw.corsAllowedOrigins !== undefined) {
    const o = raw.corsAllowedOrigins;
    const list = Array.isArray(o) ? o.map(String) : String(o).split(',');
    cfg.corsAllowedOrigins = list.map((x) => x.trim()).filter((x) => x.length > 0);
    for (const origin of cfg.corsAllowedOrigins) {
      if (!/^https?:\/\/[^/\s]+$/.test(origin)) throw new InvalidArgumentError(`corsAllowedOrigins: "${origin}" is not an origin like https://app.example.com`);
    }
  }
  if (raw.sync !== undefined) {
    if (raw.sync !== 'always' && raw.sync !== 'batch' && raw.sync !== 'none') throw new InvalidArgumentError('sync must be always, batch or none');
    cfg.sync = raw.sync;
  }
  if (raw.logLevel !== undefined) {
    const l = String(raw.logLevel);
    if (!['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].includes(l)) throw new InvalidArgumentError(`unknown logLevel ${l}`);
    cfg.logLevel = l as ServerConfig['logLevel'];
  }
  if (raw.loadShedding !== undefined) {
    const v = raw.loadShedding;
    if (v === true || v === 'true' || v === '1') cfg.loadShedding = true;
    else if (v === false || v === 'false' || v === '0') cfg.loadShedding = false;
    else throw new InvalidArgumentError(`loadShedding must be true or false, got ${String(v)}`);
  }
  if (raw.join !== undefined) {
    const j = raw.join;
    if (j === true || j === 'true' || j === '1') cfg.join = true;
    else if (j === false || j === 'false' || j === '0') cfg.join = false;
    else throw new InvalidArgumentError(`join must be true or false, got ${String(j)}`);
  }
  if (cfg.join && cfg.seeds.length === 0) throw new InvalidArgumentError('join needs seeds: the nodes of the cluster to join');
  cfg.advertise = raw.advertise !== undefined ? String(raw.advertise) : `${cfg.host}:${cfg.port}`;
  if (!/^[^:\s]+:\d{1,5}$/.test(cfg.advertise)) throw new InvalidArgumentError(`advertise "${cfg.advertise}" is not host:port`);
  if (raw.advertiseRemote !== undefined && raw.advertiseRemote !== '') {
    cfg.advertiseRemote = String(raw.advertiseRemote);
    if (!/^[^:\s]+:\d{1,5}$/.test(cfg.advertiseRemote)) throw new InvalidArgumentError(`advertiseRemote "${cfg.advertiseRemote}" is not host:port`);
  }
  cfg.tls = resolveTls(raw.tls, id);
  cfg.auth = resolveAuth(raw.auth);
  // Tokens would cross the network in the clear, and nodes could not tell each other from
  // clients: authentication rests on TLS with node certificates.
  if (cfg.auth.enabled && cfg.tls.mode !== 'required') {
    throw new InvalidArgumentError(`auth.enabled needs tls.mode required (it is ${cfg.tls.mode}): nodes prove who they are by their certificates, and tokens must not cross the network in the clear`);
  }
  // The revocation bound (auth/README.md): a node that missed a change takes it at its next
  // pull, within syncIntervalMs + requestTimeoutMs; the cache TTL is the bound stated to
  // operators, so the pull must fit in it.
  if (cfg.auth.enabled && cfg.auth.syncIntervalMs + cfg.requestTimeoutMs > cfg.auth.cacheTtlMs) {
    throw new InvalidArgumentError(
      `auth.cacheTtlMs (${cfg.auth.cacheTtlMs}) must be at least auth.syncIntervalMs + requestTimeoutMs (${cfg.auth.syncIntervalMs + cfg.requestTimeoutMs}): a revoked token is refused on every node within the cache TTL only if a node that missed the change pulls it within that time`,
    );
  }
  return cfg;
}

/** The auth section: enabled, cacheTtlMs, syncIntervalMs. */
function resolveAuth(raw: unknown): AuthConfig {
  const out: AuthConfig = { ...serverDefaults.auth };
  if (raw === undefined) return out;
  if (!raw || typeof raw !== 'object' || Array.isArray(raw)) throw new InvalidArgumentError('auth must be an object { enabled, cacheTtlMs, syncIntervalMs }');
  for (const [k, v] of Object.entries(raw as Raw)) {
    if (!(AUTH_FIELDS as readonly string[]).includes(k)) throw new InvalidArgumentError(`unknown auth setting "${k}" (known: ${AUTH_FIELDS.join(', ')})`);
    if (v === undefined) continue;
    if (k === 'enabled') {
      if (v === true || v === 'true' || v === '1') out.enabled = true;
      else if (v === false || v === 'false' || v === '0') out.enabled = false;
      else throw new InvalidArgumentError(`auth.enabled must be true or false, got ${String(v)}`);
    } else {
      const n = typeof v === 'number' ? v : Number(v);
      if (!Number.isFinite(n) || n < 0) throw new InvalidArgumentError(`auth.${k} must be a non-negative number of ms, got ${String(v)}`);
      (out as unknown as Record<string, number>)[k] = n;
    }
  }
  if (out.cacheTtlMs > 60_000) throw new InvalidArgumentError('auth.cacheTtlMs must be at most 60000: a revoked token stays valid that long');
  if (!(out.syncIntervalMs >= 100 && out.syncIntervalMs <= 600_000)) throw new InvalidArgumentError('auth.syncIntervalMs must be from 100 to 600000');
  return out;
}

/**
 * The replication of `--replication` / RINGKV_REPLICATION_FACTOR / the config's
 * replicationFactor: a number (N replicas in this node's data center `dc`), "east:3,west:3",
 * or { "east": 3, "west": 3 }. Every data center 1..64 replicas; this node's must be named.
 */
export function parseReplication(v: unknown, dc: string): Record<string, number> {
  let map: Record<string, number>;
  if (typeof v === 'number' || (typeof v === 'string' && /^\s*\d+\s*$/.test(v))) {
    map = { [dc]: Number(v) };
  } else if (typeof v === 'string') {
    map = {};
    for (const part of v.split(',')) {
      const m = /^\s*([^:\s]+)\s*:\s*(\d+)\s*$/.exec(part);
      if (!m) throw new InvalidArgumentError(`replication "${v}" is not a number or dc:n[,dc:n...]`);
      if (m[1]! in map) throw new InvalidArgumentError(`replication names data center ${m[1]} twice`);
      map[m[1]!] = Number(m[2]);
    }
  } else if (v && typeof v === 'object' && !Array.isArray(v)) {
    map = { ...(v as Record<string, number>) };
  } else {
    throw new InvalidArgumentError(`replicationFactor must be a number or a map of data center to replicas, got ${JSON.stringify(v)}`);
  }
  try {
    checkReplication(map);
  } catch (err) {
    throw new InvalidArgumentError(`replicationFactor: ${(err as Error).message}`);
  }
  if (!(dc in map)) {
    throw new InvalidArgumentError(`replicationFactor names no replicas for this node's data center ${dc} (${Object.keys(map).join(', ')}): give --dc, or add it`);
  }
  return map;
}

/** The tls section: mode and absolute paths, the files checked unless the mode is off. */
function resolveTls(raw: unknown, id: string): NodeTlsConfig {
  const out: NodeTlsConfig = { ...serverDefaults.tls };
  if (raw === undefined) return out;
  if (!raw || typeof raw !== 'object' || Array.isArray(raw)) throw new InvalidArgumentError('tls must be an object { mode, ca, cert, key }');
  for (const [k, v] of Object.entries(raw as Raw)) {
    if (!(TLS_FIELDS as readonly string[]).includes(k)) throw new InvalidArgumentError(`unknown tls setting "${k}" (known: ${TLS_FIELDS.join(', ')})`);
    if (typeof v !== 'string') throw new InvalidArgumentError(`tls.${k} must be a string`);
  }
  const r = raw as Partial<Record<(typeof TLS_FIELDS)[number], string>>;
  if (r.mode !== undefined) {
    if (!isTlsMode(r.mode)) throw new InvalidArgumentError(`tls.mode must be off, transitional or required; got "${r.mode}"`);
    out.mode = r.mode;
  }
  for (const f of ['ca', 'cert', 'key'] as const) if (r[f]) out[f] = path.resolve(r[f]);
  // A node that will speak TLS finds out now, not at its first handshake, what is wrong with its files.
  if (out.mode !== 'off') loadNodeTls(out, id);
  return out;
}
