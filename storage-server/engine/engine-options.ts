// Options of the storage engine: every field documented with its unit and default, and
// the one function (resolveEngineOptions) that fills defaults and validates.

import pino from 'pino';
import type { EngineClock } from './engine-clock.js';
import { systemClock } from './engine-clock.js';
import { InvalidArgumentError } from './engine-errors.js';
import type { FileSystem } from './file-system.js';
import { NodeFileSystem } from './file-system.js';

/**
 * When a write is acknowledged:
 * - `always`: after its own write + fdatasync (no sharing with other writes);
 * - `batch`: after a write + fdatasync shared by every write queued meanwhile (group commit);
 * - `none`: after the write() reached the operating system, without fdatasync (survives a
 *   process crash, not a power loss).
 */
export type SyncPolicy = 'always' | 'batch' | 'none';

/**
 * How a get reads a data block that is not in the block cache:
 * - `sync`: on the event-loop thread (pread through fs.readSync). No thread-pool round
 *   trip, so a block in the OS page cache costs a few µs; but a block that must come from
 *   the device stalls the event loop (every other request) for the device's latency.
 * - `async`: on libuv's thread pool (fs.read). The event loop keeps serving while the
 *   device works, for a fixed cost per read (queueing, a thread wake-up, a callback:
 *   ~12 µs of event-loop CPU per read measured on a 2-core VM, vs ~5 µs for a sync read).
 * - `auto`: sync while the average sync read stays under 50 µs (page-cache hits), async
 *   once it rises above (the device is being read), probing with one sync read in 64 to
 *   notice when reads are fast again (block-read-governor.ts).
 */
export type BlockReadMode = 'sync' | 'async' | 'auto';

/** The logger interface the engine needs (a pino logger fits). */
export interface EngineLogger {
  debug(obj: object, msg?: string): void;
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

export interface EngineOptions {
  /** Durability of acknowledged writes. Default `batch`. */
  sync?: SyncPolicy;
  /** Memtable size at which it is frozen and flushed to a table. Default 8 MiB. */
  memtableSizeBytes?: number;
  /**
   * Each memtable is frozen at a size drawn uniformly from [100 - this, 100]% of
   * memtableSizeBytes. Replicas that hold the same data would otherwise fill their
   * memtables, flush and compact at the same moments, and a quorum could not go around the
   * one that is busy (every one is). Default 25.
   */
  memtableJitterPercent?: number;
  /** Frozen memtables allowed to wait for flush before writes stall. Default 2. */
  maxImmutableMemtables?: number;
  /** Most bytes one group commit writes at once. Default 4 MiB. */
  maxGroupCommitBytes?: number;
  /**
   * WAL segments whose memtable is flushed that are kept for reuse as later segments
   * (RocksDB's recycle_log_file_num) instead of deleted. When above 0, every new segment
   * is written in the recyclable log format 3 (log-format.md) into a retired segment's
   * file, renamed, or — none at hand — into a new file filled with zeros up to
   * memtableSizeBytes (written once and synced): within that size a group commit's
   * fdatasync overwrites allocated blocks and commits no file-size metadata. 0 (off):
   * segments are new, growing files of format 2, deleted once flushed. 0..64. Default 0.
   */
  walRecycleSegments?: number;
  /** Target size of a table data block before its trailer. Default 4096. */
  blockSizeBytes?: number;
  /** Capacity of the block cache (parsed data blocks). Default 32 MiB. */
  blockCacheSizeBytes?: number;
  /**
   * How a get reads a block missing from the block cache (see BlockReadMode). Default
   * `auto`: the speed of sync reads while the data is in the page cache, without stalling
   * the event loop for long on a device that must be read.
   */
  blockReadMode?: BlockReadMode;
  /** Bloom filter bits per key; 10 gives about 1% false positives. Default 10. */
  bloomBitsPerKey?: number;
  /** Compaction write rate limit; 0 = unlimited. Default 64 MiB/s. */
  compactionRateBytesPerSec?: number;
  /**
   * A run of this many tables of similar size (see compactionSizeRatioPercent) is merged
   * into one. Higher: less write amplification (about log_trigger(data / memtable)
   * rewrites of each byte), more tables for a get to look at. Default 4.
   */
  compactionTriggerTables?: number;
  /** A table is of similar size to a run when it is at most (100 + this)% of the run's average table size. Default 100. */
  compactionSizeRatioPercent?: number;
  /**
   * Most tables kept when no size tier is ready: beyond it the cheapest contiguous run is
   * merged, so that a get never looks at more tables than this (plus flushes in flight). Default 20.
   */
  compactionMaxTables?: number;
  /** Full compaction when newer tables exceed this percentage of the oldest. Default 200. */
  maxSizeAmplificationPercent?: number;
  /**
   * Where compaction merges run: `worker` — on a worker thread (compaction-worker.ts), so a
   * compaction's CPU does not delay gets and puts (only with the real file system: the
   * worker opens the files itself; with any other FileSystem it is `engine`); `engine` —
   * on the engine's thread, between its other work. Default `worker`.
   */
  compactionThread?: 'worker' | 'engine';
  /**
   * Niceness of the compaction worker thread (Linux sets it per thread; 0..19, higher =
   * lower priority). The merge then takes the CPU the engine's thread leaves idle instead
   * of preempting gets and puts: on a busy machine every replica tends to compact at the
   * same moment, and at equal priority that stalled requests for 100-250 ms. A saturated
   * machine still gives the thread about a tenth of a core at 10. Ignored where the OS
   * refuses it. Default 10.
   */
  compactionThreadNice?: number;
  /** Run compactions in the background automatically. Default true. */
  autoCompaction?: boolean;
  /**
   * How long a tombstone (or an expired value) is kept after the deletion (or expiry)
   * before compaction may drop it. Must exceed the cluster's repair interval so a replica
   * that missed the delete cannot bring the key back. Default 10 days.
   */
  tombstoneGraceMs?: number;
  /**
   * Asked at the start of each compaction: tombstones (and expired values) deleted at or
   * after the time it returns (ms since the epoch) are kept whatever tombstoneGraceMs says.
   * The server's cross-DC replication holds deletes back until the other data centers have
   * them. Returning undefined (the default) leaves it to the grace period.
   */
  tombstoneHorizon?: () => number | undefined;
  /**
   * Largest key accepted. Default 256 (the data model's limit); internal stores whose keys
   * wrap a user key (hints) raise it. Default 256.
   */
  maxKeyBytes?: number;
  /**
   * Largest value accepted, in bytes. Default 1 MiB (the data model's limit); at most 16 MiB,
   * so that a record always fits one WAL frame.
   */
  maxValueBytes?: number;
  /**
   * First delay before a background retry after an error (a probe of the WAL after a soft
   * error, a recovery attempt, a failed flush or compaction); each retry of the same
   * episode doubles it. Default 100 ms.
   */
  errorRetryInitialMs?: number;
  /** Longest delay between retries of a WAL probe, a recovery or a flush. Default 5000 ms. */
  errorRetryMaxMs?: number;
  /**
   * Longest delay between retries of a failed compaction (each retry reads its inputs
   * again, so it backs off further than the write path). Default 60000 ms.
   */
  compactionRetryMaxMs?: number;
  /**
   * Consecutive attempts at reopening the write path that may fail with a hard error
   * (EIO, a failed fsync) before the engine gives up (state `failed`, an operator must
   * act). Soft errors (no space) during a recovery do not count: it waits for space. Default 10.
   */
  maxRecoveryHardFailures?: number;
  /** Create the directory when it does not exist. Default true. */
  createIfMissing?: boolean;
  /** Fail when the directory already holds an engine. Default false. */
  errorIfExists?: boolean;
  /** Flush the memtable into a table on close (faster reopen). Default true. */
  flushOnClose?: boolean;
  /** File system seam. Default: the real one. */
  fs?: FileSystem;
  /** Clock seam for TTL and tombstone grace. Default: system clock. */
  clock?: EngineClock;
  /** Structured logger. Default: silent. */
  logger?: EngineLogger;
}

export type ResolvedEngineOptions = Required<EngineOptions>;

const MiB = 1024 * 1024;

export const engineDefaults: Omit<ResolvedEngineOptions, 'fs' | 'clock' | 'logger' | 'tombstoneHorizon'> = {
  sync: 'batch',
  memtableSizeBytes: 8 * MiB,
  memtableJitterPercent: 25,
  maxImmutableMemtables: 2,
  maxGroupCommitBytes: 4 * MiB,
  walRecycleSegments: 0,
  blockSizeBytes: 4096,
  blockCacheSizeBytes: 32 * MiB,
  blockReadMode: 'auto',
  bloomBitsPerKey: 10,
  compactionRateBytesPerSec: 64 * MiB,
  compactionTriggerTables: 4,
  compactionSizeRatioPercent: 100,
  compactionMaxTables: 20,
  maxSizeAmplificationPercent: 200,
  compactionThread: 'worker',
  compactionThreadNice: 10,
  autoCompaction: true,
  tombstoneGraceMs: 10 * 24 * 3600 * 1000,
  maxKeyBytes: 256,
  maxValueBytes: MiB,
  errorRetryInitialMs: 100,
  errorRetryMaxMs: 5000,
  compactionRetryMaxMs: 60_000,
  maxRecoveryHardFailures: 10,
  createIfMissing: true,
  errorIfExists: false,
  flushOnClose: true,
};

function int(name: string, v: unknown, min: number, max = Number.MAX_SAFE_INTEGER): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
    throw new InvalidArgumentError(`engine option ${name} must be an integer in [${min}, ${max}], got ${String(v)}`);
  }
  return v;
}

function bool(name: string, v: unknown): boolean {
  if (typeof v !== 'boolean') throw new InvalidArgumentError(`engine option ${name} must be a boolean, got ${String(v)}`);
  return v;
}

/** Fills defaults and validates; throws InvalidArgumentError naming the bad option. */
export function resolveEngineOptions(o: EngineOptions = {}): ResolvedEngineOptions {
  const d = engineDefaults;
  const sync = o.sync ?? d.sync;
  if (sync !== 'always' && sync !== 'batch' && sync !== 'none') {
    throw new InvalidArgumentError(`engine option sync must be always, batch or none, got ${String(sync)}`);
  }
  const blockReadMode = o.blockReadMode ?? d.blockReadMode;
  if (blockReadMode !== 'sync' && blockReadMode !== 'async' && blockReadMode !== 'auto') {
    throw new InvalidArgumentError(`engine option blockReadMode must be sync, async or auto, got ${String(blockReadMode)}`);
  }
  const compactionThread = o.compactionThread ?? d.compactionThread;
  if (compactionThread !== 'worker' && compactionThread !== 'engine') {
    throw new InvalidArgumentError(`engine option compactionThread must be worker or engine, got ${String(compactionThread)}`);
  }
  return {
    sync,
    blockReadMode,
    compactionThread,
    memtableSizeBytes: int('memtableSizeBytes', o.memtableSizeBytes ?? d.memtableSizeBytes, 4096),
    memtableJitterPercent: int('memtableJitterPercent', o.memtableJitterPercent ?? d.memtableJitterPercent, 0, 90),
    maxImmutableMemtables: int('maxImmutableMemtables', o.maxImmutableMemtables ?? d.maxImmutableMemtables, 1, 64),
    maxGroupCommitBytes: int('maxGroupCommitBytes', o.maxGroupCommitBytes ?? d.maxGroupCommitBytes, 4096),
    walRecycleSegments: int('walRecycleSegments', o.walRecycleSegments ?? d.walRecycleSegments, 0, 64),
    blockSizeBytes: int('blockSizeBytes', o.blockSizeBytes ?? d.blockSizeBytes, 256, 1024 * 1024),
    blockCacheSizeBytes: int('blockCacheSizeBytes', o.blockCacheSizeBytes ?? d.blockCacheSizeBytes, 0),
    bloomBitsPerKey: int('bloomBitsPerKey', o.bloomBitsPerKey ?? d.bloomBitsPerKey, 1, 40),
    compactionThreadNice: int('compactionThreadNice', o.compactionThreadNice ?? d.compactionThreadNice, 0, 19),
    compactionRateBytesPerSec: int('compactionRateBytesPerSec', o.compactionRateBytesPerSec ?? d.compactionRateBytesPerSec, 0),
    compactionTriggerTables: int('compactionTriggerTables', o.compactionTriggerTables ?? d.compactionTriggerTables, 2, 1000),
    compactionSizeRatioPercent: int('compactionSizeRatioPercent', o.compactionSizeRatioPercent ?? d.compactionSizeRatioPercent, 0, 10000),
    compactionMaxTables: int('compactionMaxTables', o.compactionMaxTables ?? d.compactionMaxTables, 2, 1000),
    maxSizeAmplificationPercent: int(
      'maxSizeAmplificationPercent',
      o.maxSizeAmplificationPercent ?? d.maxSizeAmplificationPercent,
      1,
      1_000_000,
    ),
    autoCompaction: bool('autoCompaction', o.autoCompaction ?? d.autoCompaction),
    tombstoneGraceMs: int('tombstoneGraceMs', o.tombstoneGraceMs ?? d.tombstoneGraceMs, 0),
    maxKeyBytes: int('maxKeyBytes', o.maxKeyBytes ?? d.maxKeyBytes, 1, 4096),
    maxValueBytes: int('maxValueBytes', o.maxValueBytes ?? d.maxValueBytes, 1, 16 * MiB),
    errorRetryInitialMs: int('errorRetryInitialMs', o.errorRetryInitialMs ?? d.errorRetryInitialMs, 1, 3_600_000),
    errorRetryMaxMs: int('errorRetryMaxMs', o.errorRetryMaxMs ?? d.errorRetryMaxMs, 1, 3_600_000),
    compactionRetryMaxMs: int('compactionRetryMaxMs', o.compactionRetryMaxMs ?? d.compactionRetryMaxMs, 1, 3_600_000),
    maxRecoveryHardFailures: int('maxRecoveryHardFailures', o.maxRecoveryHardFailures ?? d.maxRecoveryHardFailures, 1, 1_000_000),
    createIfMissing: bool('createIfMissing', o.createIfMissing ?? d.createIfMissing),
    errorIfExists: bool('errorIfExists', o.errorIfExists ?? d.errorIfExists),
    flushOnClose: bool('flushOnClose', o.flushOnClose ?? d.flushOnClose),
    tombstoneHorizon: o.tombstoneHorizon ?? noHorizon,
    fs: o.fs ?? new NodeFileSystem(),
    clock: o.clock ?? systemClock,
    logger: o.logger ?? pino({ level: 'silent' }),
  };
}

function noHorizon(): undefined {
  return undefined;
}
