// The public types of the client's API: connect()'s options, each call's options, and what
// calls return. Types only (the client, sdk/client.ts, re-exports them; defaults are filled
// and checked in sdk/client-options.ts).

import type { BatcherOptions } from './batcher.js';
import type { Clock } from './clock.js';
import type { Consistency } from './consistency.js';
import type { CallHedgeOptions, HedgeOptions } from './hedging.js';
import type { NearCacheOptions } from './near-cache.js';
import type { NodeHealthOptions } from './node-health.js';
import type { RetryOptions } from './retry.js';
import type { Transport } from './transport.js';
import type { TlsOptions } from './transport-security.js';

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


/** A key as the application gives it: UTF-8 text or bytes. */
export type Key = string | Uint8Array;
