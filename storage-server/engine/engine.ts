// The storage engine: a log-structured merge tree (see ./engine-format.md for the files
// and ./README.md for the design). Writes go to the WAL with group commit, then to the
// memtable; full memtables are flushed to SSTables in the background while writes go on
// into a new memtable and WAL segment; universal compaction merges tables, rate-limited.
//
// Concurrency: every public method may be called concurrently. Writes are queued and
// applied in the order they were called by a single group-commit leader; a write resolves
// only after its sync policy is met and it is visible to gets. Flush and compaction run
// one at a time in the background; reads pin a TableSet so they never lose a table.
//
// Errors heal (engine-health.ts, README "Errors"): a write refused by the disk (no space,
// no descriptors) stops writes until a background probe makes the next WAL segment; a
// failed fsync or EIO reopens the write path internally from what is durable; a failed
// flush or compaction is retried with back-off. Background work that needs exclusive use
// of the WAL (probes, recovery) runs as a task of the group-commit leader. A data block
// that fails its checksum is quarantined (table.ts) instead of failing every scan.

import path from 'node:path';
import {
  ClosedError,
  CorruptionError,
  InvalidArgumentError,
  ManifestMissingError,
  EngineError,
  WriteFailedError,
  WriteRefusedError,
} from './engine-errors.js';
import { checkContentType, checkKey, checkValue } from './engine-limits.js';
import { BlockReadGovernor } from './block-read-governor.js';
import { bloomHash } from './bloom-filter.js';
import { varintSize } from './coding.js';
import { pickCompaction } from './compaction-picker.js';
import type { EngineHealth, ErrorSource, RetryEpisode } from './engine-health.js';
import { backoffMs, classifyIoError, ErrorLog, IoFailure } from './engine-health.js';
import { GroupCommit } from './group-commit.js';
import type { EngineOptions, ResolvedEngineOptions } from './engine-options.js';
import { resolveEngineOptions } from './engine-options.js';
import type { FileLock } from './file-system.js';
import { NodeFileSystem } from './file-system.js';
import { LOCK_FILE, parseFileName, tableFile, walFile, walTempFile } from './filenames.js';
import type { Manifest } from './manifest.js';
import { MANIFEST_FORMAT_VERSION, readManifest, writeManifest } from './manifest.js';
import { Memtable } from './memtable.js';
import type { CompactionOutcome } from './compaction.js';
import { compactToFile } from './compaction.js';
import { CompactionThread } from './compaction-thread.js';
import { mergeNewest } from './merge-iterator.js';
import { RateLimiter } from './rate-limiter.js';
import type { EngineRecord } from './record.js';
import { isLive, RecordSpan, recordSize } from './record.js';
import type { BadBlock, BlockCache, ReadStats } from './table.js';
import { createBlockCache, NEEDS_READ, TableBuilder, TableReader } from './table.js';
import { TableSet } from './table-set.js';
import { replayWal, WAL_MAX_FRAME_BYTES, WAL_MAX_FRAME_HEADER_BYTES, WalWriter } from './wal.js';

const EMPTY = Buffer.alloc(0);

/** Gets answered without waiting in one turn of the event loop before the next ones yield to it. */
const MAX_SYNC_LOOKUPS = 128;

/** One operation of an atomic write batch. */
export type WriteOp =
  | {
      type: 'put';
      key: Buffer;
      value: Buffer;
      /** Time to live in ms from now; overrides expiresAtMs. */
      ttlMs?: number;
      /** Absolute expiry, ms since epoch; 0 or absent = never. */
      expiresAtMs?: number;
      /** Replication version (opaque to the engine). */
      version?: Buffer;
      contentType?: string;
      flags?: number;
    }
  | {
      type: 'del';
      key: Buffer;
      version?: Buffer;
      /** When the deletion happened (grace counts from it); default now. */
      deletedAtMs?: number;
    };

export type PutOptions = Omit<Extract<WriteOp, { type: 'put' }>, 'type' | 'key' | 'value'>;
export type DeleteOptions = Omit<Extract<WriteOp, { type: 'del' }>, 'type' | 'key'>;

export interface IterateOptions {
  /** Inclusive lower bound. */
  gte?: Buffer;
  /** Exclusive lower bound. */
  gt?: Buffer;
  /** Exclusive upper bound. */
  lt?: Buffer;
  /** Inclusive upper bound. */
  lte?: Buffer;
  /** Also yield tombstones (and expired values). Default false. */
  includeTombstones?: boolean;
  /** Stop after this many records. */
  limit?: number;
  /**
   * Pass over data blocks that fail their checksum (they are quarantined: see
   * Engine.quarantine()) instead of throwing CORRUPTION. Default false.
   */
  skipCorrupt?: boolean;
}

/** A quarantined data block, as Engine.quarantine() lists it. */
export interface QuarantinedBlock {
  /** Stable while the table lives: `<table>:<block>`. */
  id: string;
  file: string;
  table: number;
  block: number;
  offset: number;
  length: number;
  /** The key range the block can hold, inclusive. */
  first: Buffer;
  last: Buffer;
  reason: string;
  detectedAtMs: number;
  repaired: boolean;
}

export interface EngineStats {
  lastSeq: number;
  memtableBytes: number;
  memtableEntries: number;
  immutableMemtables: number;
  tableCount: number;
  tableBytes: number;
  /** Entries across tables and memtables (counts shadowed versions and tombstones). */
  approximateEntries: number;
  tables: { file: number; sizeBytes: number; entries: number; tombstones: number; minSeq: number; maxSeq: number }[];
  pinnedBytes: number;
  blockCacheBytes: number;
  blockCacheEntries: number;
  blockReads: number;
  scanBlockReads: number;
  blockCacheHits: number;
  bloomNegatives: number;
  bloomPositives: number;
  writes: number;
  writeGroups: number;
  walBytesWritten: number;
  walSyncs: number;
  writeStalls: number;
  flushes: number;
  /** Bytes of tables written by flushes (the first write of data after the WAL). */
  flushBytesWritten: number;
  compactions: number;
  compactionBytesRead: number;
  compactionBytesWritten: number;
  compactionDroppedRecords: number;
  compactionErrors: number;
  /** Data blocks quarantined since open (checksum failures met by reads, scans or compactions). */
  corruptBlocks: number;
  /** Quarantined blocks dropped by compactions (after their keys were repaired). */
  corruptBlocksDropped: number;
  recoveredWalRecords: number;
  recoveredTornTailBytes: number;
  /** WAL segments made from a retired segment's file (walRecycleSegments > 0). */
  walSegmentsRecycled: number;
  /** WAL segments made from a new file filled with zeros (walRecycleSegments > 0, none retired at hand). */
  walSegmentsPreallocated: number;
  /** Retired WAL segment files kept for reuse now. */
  walSegmentsKept: number;
}

class CompactionAborted extends Error {}

/** Compaction errors that quarantined the block they met (not retried as I/O errors). */
const metCorruption = new WeakSet<object>();

/** An open storage engine over one directory. Create with Engine.open(). */
export class Engine {
  readonly dir: string;
  readonly options: ResolvedEngineOptions;
  private readonly fs: ResolvedEngineOptions['fs'];
  private readonly clock: ResolvedEngineOptions['clock'];
  private readonly log: ResolvedEngineOptions['logger'];
  private readonly lock: FileLock;
  private readonly cache: BlockCache;
  private readonly readStats: ReadStats;
  private readonly limiter: RateLimiter;
  private readonly blockReads: BlockReadGovernor;
  /** Gets answered without waiting since the event loop last reached setImmediate (see lookup). */
  private syncLookups = 0;
  private readonly resetSyncLookups = (): void => {
    this.syncLookups = 0;
  };
  /** Runs compactions off this thread (real file system only); undefined: on this thread. */
  private readonly thread: CompactionThread | undefined;

  private mem: Memtable;
  /** The size at which this.mem is frozen (memtableSizeBytes less a random jitter). */
  private memLimitBytes: number;
  private imm: Memtable[] = [];
  private current: TableSet;
  private wal: WalWriter;
  private seq: number;
  private nextFile: number;

  /** The write queue and its leader (group-commit.ts). */
  private readonly commits: GroupCommit;
  /** Set when the engine gave up (state `failed`): every write fails with it until reopen. */
  private bgError: EngineError | undefined;
  private failedAtMs = 0;
  private readonly errorLog = new ErrorLog();
  /** A soft error on the write path: writes refused until a probe makes the next segment. */
  private walEpisode: RetryEpisode | undefined;
  /** A hard error: the write path is being reopened; writes refused until it is. */
  private recoveryEpisode: RetryEpisode | undefined;
  /** Consecutive recovery attempts that failed with a hard error. */
  private recoveryHardFailures = 0;
  /** The last flush failed: it is retried after a back-off; memtables stay meanwhile. */
  private flushEpisode: RetryEpisode | undefined;
  private compactionEpisode: RetryEpisode | undefined;
  private readonly healthCounts = { autoResumes: 0, recoveries: 0 };
  private readonly corruptListeners: ((b: QuarantinedBlock) => void)[] = [];
  private closing = false;
  private closed = false;
  private closePromise: Promise<void> | undefined;

  private manifestChain: Promise<unknown> = Promise.resolve();
  private flushing: Promise<void> | undefined;
  private flushWaiters: (() => void)[] = [];
  private compacting: Promise<void> | undefined;

  private counters = {
    writes: 0,
    writeGroups: 0,
    walBytesWritten: 0,
    walSyncs: 0,
    writeStalls: 0,
    flushes: 0,
    flushBytesWritten: 0,
    compactions: 0,
    compactionBytesRead: 0,
    compactionBytesWritten: 0,
    compactionDroppedRecords: 0,
    compactionErrors: 0,
    corruptBlocks: 0,
    corruptBlocksDropped: 0,
    recoveredWalRecords: 0,
    recoveredTornTailBytes: 0,
    walSegmentsRecycled: 0,
    walSegmentsPreallocated: 0,
  };
  /**
   * Retired WAL segments kept for reuse (walRecycleSegments), oldest first: file numbers
   * below the durable manifest's logNumber, so replay never looks at them.
   */
  private readonly walPool: number[] = [];

  private constructor(
    dir: string,
    o: ResolvedEngineOptions,
    lock: FileLock,
    cache: BlockCache,
    readStats: ReadStats,
    tables: TableReader[],
    mem: Memtable,
    wal: WalWriter,
    seq: number,
    nextFile: number,
  ) {
    this.dir = dir;
    this.options = o;
    this.fs = o.fs;
    this.clock = o.clock;
    this.log = o.logger;
    this.lock = lock;
    this.cache = cache;
    this.readStats = readStats;
    this.current = new TableSet(tables);
    for (const t of tables) {
      t.onBadBlock = this.onBadBlock;
      t.unref(); // the set holds them now
    }
    this.mem = mem;
    this.memLimitBytes = this.drawMemLimit();
    this.wal = wal;
    this.seq = seq;
    this.nextFile = nextFile;
    this.limiter = new RateLimiter(o.compactionRateBytesPerSec);
    this.blockReads = new BlockReadGovernor(o.blockReadMode);
    this.thread = o.compactionThread === 'worker' && o.fs instanceof NodeFileSystem ? new CompactionThread(() => new CompactionAborted(), o.compactionThreadNice) : undefined;
    // The leader's view of the engine: its memtable and WAL of the moment, the write path's errors.
    const engine = this;
    this.commits = new GroupCommit(
      {
        get mem() {
          return engine.mem;
        },
        get wal() {
          return engine.wal;
        },
        refusal: () => this.refusal(),
        onWritePathError: (err) => this.onWritePathError(err),
        full: () => this.mem.bytes >= this.memLimitBytes || this.wal.full,
        rotate: (force) => this.rotate(force),
        onSync: () => {
          this.counters.walSyncs++;
        },
        onGroup: (frameBytes) => {
          this.counters.walBytesWritten += frameBytes;
          this.counters.writeGroups++;
        },
      },
      { sync: o.sync, maxGroupCommitBytes: o.maxGroupCommitBytes },
    );
  }

  /**
   * Opens (or creates) the engine in `dir`: takes the directory lock, reads the manifest,
   * opens the live tables, replays the WAL (cutting off a torn tail) and flushes what it
   * replayed into a table. Throws LockedError, ManifestMissingError or CorruptionError
   * (naming file and offset) instead of ever opening damaged data as if it were whole.
   */
  static async open(dir: string, options: EngineOptions = {}): Promise<Engine> {
    const o = resolveEngineOptions(options);
    const fs = o.fs;
    dir = path.resolve(dir);
    if (!(await fs.exists(dir))) {
      if (!o.createIfMissing) throw new InvalidArgumentError(`data directory ${dir} does not exist`);
      await fs.mkdirp(dir);
    }
    const lock = await fs.lock(path.join(dir, LOCK_FILE));
    const cache = createBlockCache(o.blockCacheSizeBytes);
    const tables: TableReader[] = [];
    const stats: ReadStats = { blockReads: 0, scanBlockReads: 0, blockCacheHits: 0, bloomNegatives: 0, bloomPositives: 0 };
    try {
      const names = await fs.readdir(dir);
      const files = names.map((name) => ({ name, ...parseFileName(name) }));
      let manifest = await readManifest(fs, dir);
      if (!manifest) {
        if (files.some((f) => f.kind === 'wal' || f.kind === 'table')) throw new ManifestMissingError(dir);
        manifest = { format: MANIFEST_FORMAT_VERSION, nextFileNumber: 1, lastSeq: 0, logNumber: 0, tables: [] };
        await writeManifest(fs, dir, manifest);
      } else if (o.errorIfExists) {
        throw new InvalidArgumentError(`data directory ${dir} already holds an engine`);
      }

      let nextFile = manifest.nextFileNumber;
      for (const f of files) if (f.number >= nextFile) nextFile = f.number + 1;

      for (const n of manifest.tables) {
        const file = tableFile(dir, n);
        if (!(await fs.exists(file))) throw new CorruptionError('manifest names a table that does not exist', { file });
        tables.push(await TableReader.open(await fs.open(file, 'read'), n, cache, stats));
      }

      // Tables not in the manifest are leftovers of an interrupted flush or compaction;
      // segments below logNumber are retired (kept for reuse, up to walRecycleSegments).
      const live = new Set(manifest.tables);
      const walPool: number[] = [];
      for (const f of [...files].sort((a, b) => a.number - b.number)) {
        if (f.kind === 'wal' && f.number < manifest.logNumber && walPool.length < o.walRecycleSegments) walPool.push(f.number);
        else if ((f.kind === 'table' && !live.has(f.number)) || f.kind === 'manifest-temp' || f.kind === 'wal-temp' || (f.kind === 'wal' && f.number < manifest.logNumber)) {
          await fs.unlink(path.join(dir, f.name));
        }
      }
      const counters = { walSegmentsRecycled: 0, walSegmentsPreallocated: 0 };

      // Replay WAL segments that are not yet in tables, oldest first.
      const logs = files.filter((f) => f.kind === 'wal' && f.number >= manifest.logNumber).sort((a, b) => a.number - b.number);
      const replayed = new Memtable(0, o.memtableSizeBytes);
      let seq = manifest.lastSeq;
      let walRecords = 0;
      let tornBytes = 0;
      for (let i = 0; i < logs.length; i++) {
        const fh = await fs.open(path.join(dir, logs[i]!.name), 'readwrite');
        try {
          const r = await replayWal(fh, { isLastSegment: i === logs.length - 1, truncateTail: true, segmentNumber: logs[i]!.number, format1Allowed: manifest.format < 2 }, (rec) => {
            replayed.add(rec);
            if (rec.seq > seq) seq = rec.seq;
          });
          walRecords += r.records;
          tornBytes += r.tornTailBytes;
          if (r.format === 1) o.logger.info({ file: fh.path, records: r.records }, 'replayed a WAL segment of log format 1 (the directory is rewritten in format 2)');
          if (r.tornTailBytes > 0) {
            o.logger.warn({ file: fh.path, offset: r.validBytes, bytes: r.tornTailBytes }, 'truncated a torn write at the end of the WAL');
          }
        } finally {
          await fh.close();
        }
      }

      // Put what was replayed into a table, then start a fresh WAL segment.
      const tableNumbers = [...manifest.tables];
      if (replayed.size > 0) {
        const n = nextFile++;
        const t = await Engine.buildTable(o, dir, n, replayed, cache, stats);
        tables.push(t);
        tableNumbers.push(n);
      }
      const walNumber = nextFile++;
      const wal = await Engine.makeSegment(o, dir, walNumber, walPool, counters);
      await fs.syncDir(dir);
      await writeManifest(fs, dir, { format: MANIFEST_FORMAT_VERSION, nextFileNumber: nextFile, lastSeq: seq, logNumber: walNumber, tables: tableNumbers });
      for (const l of logs) {
        if (walPool.length < o.walRecycleSegments) walPool.push(l.number);
        else await fs.unlink(path.join(dir, l.name));
      }

      const engine = new Engine(dir, o, lock, cache, stats, tables, new Memtable(walNumber, o.memtableSizeBytes), wal, seq, nextFile);
      engine.walPool.push(...walPool);
      engine.counters.walSegmentsRecycled = counters.walSegmentsRecycled;
      engine.counters.walSegmentsPreallocated = counters.walSegmentsPreallocated;
      engine.counters.recoveredWalRecords = walRecords;
      engine.counters.recoveredTornTailBytes = tornBytes;
      o.logger.info({ dir, tables: tables.length, walRecords, tornBytes, seq }, 'engine opened');
      engine.maybeCompact();
      return engine;
    } catch (err) {
      for (const t of tables) t.unref();
      await lock.release();
      throw err;
    }
  }

  // -------------------------------------------------------------------------------------
  // Writes

  /** Writes one value. Resolves when durable under the sync policy and visible to gets. */
  put(key: Buffer, value: Buffer, opts: PutOptions = {}): Promise<void> {
    return this.write([{ type: 'put', key, value, ...opts }]);
  }

  /** Writes a tombstone for `key`. */
  delete(key: Buffer, opts: DeleteOptions = {}): Promise<void> {
    return this.write([{ type: 'del', key, ...opts }]);
  }

  /**
   * Applies `ops` atomically: after a crash either all of them are there or none. Bad input
   * (empty or oversize key, oversize value, bad metadata) rejects the whole batch with a
   * typed error before anything is written.
   */
  write(ops: readonly WriteOp[]): Promise<void> {
    let records: EngineRecord[];
    let bytes = 0;
    try {
      if (this.closing) throw new ClosedError('engine');
      const refused = this.refusal();
      if (refused) throw refused;
      if (!Array.isArray(ops) || ops.length === 0) throw new InvalidArgumentError('write needs at least one operation');
      const now = this.clock.nowMs();
      records = new Array(ops.length);
      for (let i = 0; i < ops.length; i++) {
        const r = (records[i] = this.toRecord(ops[i]!, now, 0));
        bytes += recordSize(r);
      }
      // (Sizes so far count a 1-byte sequence number; a real one takes up to 8.)
      if (bytes + 7 * ops.length > WAL_MAX_FRAME_BYTES - WAL_MAX_FRAME_HEADER_BYTES) {
        throw new InvalidArgumentError(`a write batch may hold at most ${WAL_MAX_FRAME_BYTES - WAL_MAX_FRAME_HEADER_BYTES} bytes of records, got ${bytes}`);
      }
      // Sequence numbers are assigned only once the whole batch validated.
      for (let i = 0; i < ops.length; i++) {
        const seq = ++this.seq;
        (records[i] as { seq: number }).seq = seq;
        bytes += varintSize(seq) - 1;
      }
    } catch (err) {
      return Promise.reject(err);
    }
    this.counters.writes += ops.length;
    return this.commits.write(records, bytes);
  }

  private toRecord(op: WriteOp, now: number, seq: number): EngineRecord {
    if (!op || typeof op !== 'object') throw new InvalidArgumentError('write operation must be an object');
    const key = asBuffer(op.key, 'key');
    checkKey(key, this.options.maxKeyBytes);
    const version = op.version === undefined ? EMPTY : asBuffer(op.version, 'version');
    if (op.type === 'put') {
      const value = asBuffer(op.value, 'value');
      checkValue(value, this.options.maxValueBytes);
      let expiresAtMs = 0;
      if (op.ttlMs !== undefined) {
        if (!Number.isFinite(op.ttlMs) || op.ttlMs <= 0) throw new InvalidArgumentError(`ttlMs must be a positive number, got ${op.ttlMs}`);
        expiresAtMs = Math.ceil(now + op.ttlMs);
      } else if (op.expiresAtMs !== undefined && op.expiresAtMs !== 0) {
        if (!Number.isSafeInteger(op.expiresAtMs) || op.expiresAtMs < 0) throw new InvalidArgumentError(`expiresAtMs must be a non-negative integer`);
        expiresAtMs = op.expiresAtMs;
      }
      const contentType = op.contentType ?? '';
      if (contentType) checkContentType(contentType);
      const flags = op.flags ?? 0;
      if (!Number.isSafeInteger(flags) || flags < 0) throw new InvalidArgumentError('flags must be a non-negative integer');
      return { key, seq, tombstone: false, expiresAtMs, flags, contentType, version, value };
    }
    if (op.type === 'del') {
      const deletedAtMs = op.deletedAtMs ?? now;
      if (!Number.isSafeInteger(deletedAtMs) || deletedAtMs <= 0) throw new InvalidArgumentError('deletedAtMs must be a positive integer');
      return { key, seq, tombstone: true, expiresAtMs: deletedAtMs, flags: 0, contentType: '', version, value: EMPTY };
    }
    throw new InvalidArgumentError(`unknown write operation type ${String((op as { type?: unknown }).type)}`);
  }

  /**
   * Why a write would be refused now (fails at once): the engine failed (WRITE_FAILED), is
   * recovering, is retrying a soft error on the WAL, or its memtables are full while their
   * flush keeps failing (WRITE_REFUSED). Undefined when writes are accepted.
   */
  private refusal(): EngineError | undefined {
    if (this.bgError) return this.bgError;
    const last = this.errorLog.last;
    const why = last ? `${last.errno ?? last.code}: ${last.message}` : 'an earlier failure';
    if (this.recoveryEpisode) {
      return new WriteRefusedError(`the engine is reopening its write path after a failed write (${why}); nothing was written, retry shortly`, undefined, { state: 'recovering' });
    }
    if (this.walEpisode) {
      return new WriteRefusedError(`the engine refuses writes until the disk takes them again (${why}); nothing was written, it retries by itself`, undefined, {
        state: 'degraded-retrying',
        errno: last?.errno,
      });
    }
    if (this.flushEpisode && this.imm.length >= this.options.maxImmutableMemtables) {
      return new WriteRefusedError(`the memtables are full and their flush keeps failing (${why}); nothing was written, it retries by itself`, undefined, {
        state: 'degraded-retrying',
        errno: last?.errno,
      });
    }
    return undefined;
  }

  /**
   * Takes a failure of the write path (the group commit, a rotation, a probe) and starts
   * what heals it: a soft error starts (or continues) the WAL probe, a hard one a recovery,
   * a fatal one fails the engine. Returns the error for the writes it failed.
   */
  private onWritePathError(err: unknown): EngineError {
    if (err instanceof WriteRefusedError) return err; // a refusal, not a new failure
    const phase = err instanceof IoFailure ? err.phase : 'other';
    const cause = err instanceof IoFailure ? err.cause : err;
    const severity = classifyIoError(cause, phase);
    const info = this.errorLog.note('wal', severity, cause, this.clock.nowMs());
    const what = `${info.errno ?? info.code}: ${info.message}`;
    if (severity === 'soft') {
      this.startWalEpisode(cause);
      return new WriteRefusedError(`the WAL refused the write (${what}); nothing was written; the engine retries by itself`, cause, { errno: info.errno });
    }
    if (severity === 'hard') {
      this.startRecovery(cause);
      return new WriteFailedError(`WAL ${phase === 'sync' ? 'sync' : 'write'} failed (${what}): the outcome of this write is unknown; the engine reopens its write path from what is durable`, cause);
    }
    this.fail(cause, `the WAL failed (${what})`);
    return this.bgError!;
  }

  /** Gives up: every write fails with WRITE_FAILED until the engine is reopened (an operator). */
  private fail(cause: unknown, what: string): void {
    if (this.bgError) return;
    this.bgError = new WriteFailedError(`${what}; the engine refuses writes until an operator fixes the cause and reopens it`, cause);
    this.failedAtMs = this.clock.nowMs();
    for (const ep of [this.walEpisode, this.recoveryEpisode]) if (ep?.timer) clearTimeout(ep.timer);
    this.walEpisode = undefined;
    this.recoveryEpisode = undefined;
    this.log.error({ err: cause }, 'engine failed: writes are refused until it is reopened');
  }

  /** Runs `run` as a task of the group-commit leader (exclusive use of the WAL and memtables). */
  private runTask(run: () => Promise<void>): Promise<void> {
    return this.commits.runTask(run);
  }

  /** A timer for a background retry that never keeps the process alive. */
  private retryTimer(ep: RetryEpisode, maxMs: number, fn: () => void): void {
    if (ep.timer) clearTimeout(ep.timer);
    ep.timer = setTimeout(() => {
      ep.timer = undefined;
      if (!this.closing) fn();
    }, backoffMs(ep.retries, this.options.errorRetryInitialMs, maxMs));
    ep.timer.unref?.();
  }

  /** A soft error on the write path: writes are refused; a probe retries with back-off. */
  private startWalEpisode(cause: unknown): void {
    if (this.recoveryEpisode || this.bgError) return;
    if (this.walEpisode) {
      this.walEpisode.retries++;
    } else {
      this.walEpisode = { sinceMs: this.clock.nowMs(), retries: 0, timer: undefined };
      this.log.warn({ err: cause }, 'the WAL refused a write (no space or no descriptors?): writes are refused, retrying in the background');
    }
    this.retryTimer(this.walEpisode, this.options.errorRetryMaxMs, () => void this.runTask(() => this.probeWal()).catch(() => undefined));
  }

  /**
   * The probe of a soft error: makes the next WAL segment (the old one's tail made whole
   * and synced, a new one created with its header synced, the directory synced) — proof
   * that descriptors and space are back — and resumes writes. REQUIRES: run by the leader.
   */
  private async probeWal(): Promise<void> {
    const ep = this.walEpisode;
    if (!ep || this.closing) return;
    try {
      await this.rotate(true);
    } catch (err) {
      this.onWritePathError(err); // reschedules, or hands over to a recovery
      // A refusal (the frozen memtables wait for a failing flush) is no new failure: probe again later.
      if (this.walEpisode === ep && !ep.timer) {
        ep.retries++;
        this.retryTimer(ep, this.options.errorRetryMaxMs, () => void this.runTask(() => this.probeWal()).catch(() => undefined));
      }
      return;
    }
    if (ep.timer) clearTimeout(ep.timer);
    this.walEpisode = undefined;
    this.healthCounts.autoResumes++;
    this.log.info({ retries: ep.retries, ms: this.clock.nowMs() - ep.sinceMs }, 'writes resumed: the WAL takes writes again');
  }

  /** A hard error on the write path: refuses writes and reopens the write path (a leader task). */
  private startRecovery(cause: unknown): void {
    if (this.bgError) return;
    if (this.walEpisode) {
      if (this.walEpisode.timer) clearTimeout(this.walEpisode.timer);
      this.walEpisode = undefined;
    }
    if (this.recoveryEpisode) return;
    this.recoveryEpisode = { sinceMs: this.clock.nowMs(), retries: 0, timer: undefined };
    this.log.error({ err: cause }, 'a WAL write or sync failed: reopening the write path from what is durable');
    void this.runTask(() => this.recover()).catch(() => undefined);
  }

  /** One attempt at reopening the write path; schedules the next one when it fails. REQUIRES: run by the leader. */
  private async recover(): Promise<void> {
    const ep = this.recoveryEpisode;
    if (!ep || this.closed || this.bgError) return;
    try {
      await this.reopenWritePath();
    } catch (err) {
      const severity = classifyIoError(err, 'other');
      const info = this.errorLog.note('recovery', severity, err, this.clock.nowMs());
      if (severity === 'hard') this.recoveryHardFailures++;
      if (severity === 'fatal' || this.recoveryHardFailures >= this.options.maxRecoveryHardFailures) {
        this.fail(err, `reopening the write path failed ${this.recoveryHardFailures > 1 ? `${this.recoveryHardFailures} times` : ''} (${info.errno ?? info.code}: ${info.message})`);
        this.notifyFlushWaiters();
        return;
      }
      ep.retries++;
      this.log.warn({ err, retries: ep.retries }, 'reopening the write path failed; retrying');
      this.retryTimer(ep, this.options.errorRetryMaxMs, () => void this.runTask(() => this.recover()).catch(() => undefined));
      return;
    }
    if (ep.timer) clearTimeout(ep.timer);
    this.recoveryEpisode = undefined;
    this.recoveryHardFailures = 0;
    this.healthCounts.recoveries++;
    this.log.warn({ retries: ep.retries, ms: this.clock.nowMs() - ep.sinceMs }, 'write path reopened: writes resume');
    this.notifyFlushWaiters();
    this.maybeCompact();
  }

  /**
   * The internal reopen after a hard error. The failed segment is never synced again:
   * what is durable is read back — every frozen memtable's segment (each was synced when
   * it was rolled) and the current one up to its last successful sync (under `none`, all
   * it holds that still reads back: that policy acknowledged those writes unsynced) — into
   * one new table; a new segment is started, a manifest naming the table and moving
   * `logNumber` past the old segments is written, and the memtables are swapped for an
   * empty one in one step (reads see the same data before and after). The writes of the
   * failed group are not in it: they were never acknowledged.
   * REQUIRES: run by the leader; the flush loop is kept from starting (recoveryEpisode).
   */
  private async reopenWritePath(): Promise<void> {
    while (this.flushing) await this.flushing;
    const cur = this.wal;
    await cur.close().catch(() => undefined); // idempotent enough: a second close fails quietly
    const segments = [...this.imm.map((m) => m.walNumber), this.mem.walNumber];
    const replayed = new Memtable(0, this.options.memtableSizeBytes);
    let records = 0;
    for (const n of segments) {
      const fh = await this.fs.open(walFile(this.dir, n), 'read');
      try {
        const last = n === cur.number;
        const r = await replayWal(
          fh,
          {
            isLastSegment: last,
            truncateTail: false,
            segmentNumber: n,
            format1Allowed: false,
            ...(last ? { endOffset: this.options.sync === 'none' ? cur.sizeBytes : cur.syncedBytes } : {}),
          },
          (rec) => replayed.add(rec),
        );
        records += r.records;
      } finally {
        await fh.close().catch(() => undefined);
      }
    }
    let table: TableReader | undefined;
    let tableNumber = -1;
    let wal: WalWriter | undefined;
    let manifestWritten = false;
    try {
      if (replayed.size > 0) {
        tableNumber = this.nextFile++;
        table = await Engine.buildTable(this.options, this.dir, tableNumber, replayed, this.cache, this.readStats);
        table.onBadBlock = this.onBadBlock;
      }
      const walNumber = this.nextFile++;
      wal = await Engine.makeSegment(this.options, this.dir, walNumber, this.walPool, this.counters);
      await this.withManifest(async () => {
        const tables = table ? [...this.current.tables, table] : [...this.current.tables];
        manifestWritten = true;
        await writeManifest(this.fs, this.dir, this.manifestFor(tables, walNumber));
        if (table) this.installTables(tables);
        this.imm = [];
        this.mem = new Memtable(walNumber, this.options.memtableSizeBytes);
        this.memLimitBytes = this.drawMemLimit();
        this.wal = wal!;
      });
    } catch (err) {
      table?.unref();
      if (wal && this.wal !== wal) await wal.close().catch(() => undefined);
      // A table a manifest on disk may name is left for open to judge (a leftover there).
      if (tableNumber >= 0 && !manifestWritten) await this.fs.unlink(tableFile(this.dir, tableNumber)).catch(() => undefined);
      throw err;
    }
    table?.unref();
    for (const n of segments) await this.fs.unlink(walFile(this.dir, n)).catch(() => undefined);
    this.log.info({ segments, records, table: table ? tableNumber : undefined }, 'replayed the durable WAL into a table');
  }

  /**
   * Makes WAL segment `n` (its file is named; the caller syncs the directory). With
   * walRecycleSegments 0: a new file, format 2. Otherwise format 3 (log-format.md), in the
   * oldest retired segment's file taken from `pool` (renamed), or in a new file filled with
   * zeros up to memtableSizeBytes: either way the file is already as large as a segment
   * grows, so a group commit's fdatasync has no file size to commit.
   */
  private static async makeSegment(
    o: ResolvedEngineOptions,
    dir: string,
    n: number,
    pool: number[],
    counters: { walSegmentsRecycled: number; walSegmentsPreallocated: number },
  ): Promise<WalWriter> {
    if (o.walRecycleSegments === 0) return WalWriter.create(o.fs, walFile(dir, n), n);
    const k = pool.shift();
    const wal = await WalWriter.createRecyclable(o.fs, {
      file: walFile(dir, n),
      number: n,
      from: k === undefined ? walTempFile(dir) : walFile(dir, k),
      recycled: k !== undefined,
      preallocateBytes: o.memtableSizeBytes,
    });
    if (k === undefined) counters.walSegmentsPreallocated++;
    else counters.walSegmentsRecycled++;
    return wal;
  }

  /** A freezing size for the next memtable: memtableSizeBytes less up to memtableJitterPercent. */
  private drawMemLimit(): number {
    const o = this.options;
    return Math.max(4096, Math.round(o.memtableSizeBytes * (1 - (o.memtableJitterPercent / 100) * Math.random())));
  }

  /**
   * Freezes the memtable and starts a new WAL segment. With `force` (a probe) a new
   * segment is made even when the memtable is empty (then the old segment, which holds no
   * record, is deleted and the memtable kept). Failures are IoFailures naming the phase.
   * REQUIRES: called by the write leader.
   */
  private async rotate(force: boolean): Promise<void> {
    const freeze = this.mem.size > 0;
    if (!freeze && !force) return;
    while (freeze && this.imm.length >= this.options.maxImmutableMemtables) {
      if (this.bgError) throw this.bgError;
      const refused = this.refusal();
      if (refused && this.flushEpisode) throw refused;
      this.counters.writeStalls++;
      await this.waitForFlush();
    }
    // Only the last segment may end in a torn write: the old one is made whole (a failed
    // append's bytes cut off; under `none` its tail was never synced; under the others this
    // finds nothing to write) before the new one's name can reach the disk and make it a
    // segment before the last.
    const old = this.wal;
    try {
      await old.repairTail();
    } catch (err) {
      throw new IoFailure('other', err);
    }
    try {
      await old.sync();
      this.counters.walSyncs++;
    } catch (err) {
      throw new IoFailure('sync', err);
    }
    const n = this.nextFile++;
    let wal: WalWriter | undefined;
    try {
      wal = await Engine.makeSegment(this.options, this.dir, n, this.walPool, this.counters);
      await this.fs.syncDir(this.dir);
    } catch (err) {
      if (wal) {
        await wal.close().catch(() => undefined);
        await this.fs.unlink(walFile(this.dir, n)).catch(() => undefined);
      }
      throw new IoFailure('create', err);
    }
    if (freeze) this.imm.push(this.mem);
    this.mem = new Memtable(n, this.options.memtableSizeBytes);
    this.memLimitBytes = this.drawMemLimit();
    this.wal = wal;
    // Its data is durable: a failed close loses nothing.
    await old.close().catch((err) => this.log.warn({ err, file: old.fh.path }, 'closing a WAL segment failed'));
    // A segment without records (a probe's, of an empty memtable) is not needed by anyone.
    if (!freeze) await this.fs.unlink(walFile(this.dir, old.number)).catch(() => undefined);
    this.scheduleFlush();
  }

  // -------------------------------------------------------------------------------------
  // Reads

  /**
   * The live record for `key`, or undefined when it is missing, deleted or expired.
   * The record owns its bytes (they are copied out of the block or memtable).
   */
  get(key: Buffer): Promise<EngineRecord | undefined> {
    return this.lookup(key, true);
  }

  /** The newest record for `key` including tombstones and expired values (for version merges). */
  getRaw(key: Buffer): Promise<EngineRecord | undefined> {
    return this.lookup(key, false);
  }

  /**
   * get() and getRaw(): runs synchronously through the memtables, the bloom filters, the
   * block cache and the block reads the BlockReadGovernor makes synchronous; only an async
   * block read continues in lookupAsync(). No await, so the table set cannot change underneath.
   */
  private lookup(key: Buffer, liveOnly: boolean): Promise<EngineRecord | undefined> {
    let r: EngineRecord | undefined;
    try {
      if (this.closed) throw new ClosedError('engine');
      key = asBuffer(key, 'key');
      checkKey(key, this.options.maxKeyBytes);
      const hash = bloomHash(key);
      r = this.mem.get(key, hash);
      for (let i = this.imm.length - 1; r === undefined && i >= 0; i--) r = this.imm[i]!.get(key, hash);
      if (r === undefined) {
        const tables = this.current.tables;
        for (let i = tables.length - 1; i >= 0; i--) {
          const t = tables[i]!;
          if (!t.mayContain(key, hash)) continue;
          const found = t.getNow(key, this.blockReads);
          if (found === NEEDS_READ) return this.lookupAsync(key, hash, i, liveOnly);
          if (found) {
            r = found;
            break;
          }
        }
      }
    } catch (err) {
      return Promise.reject(err);
    }
    const result = r !== undefined && liveOnly && !isLive(r, this.clock.nowMs()) ? undefined : r;
    // A get that never waits resolves in a microtask, so a client looping over gets would
    // keep the event loop from ever reaching I/O callbacks (flushes, compactions, other
    // connections). After MAX_SYNC_LOOKUPS of them in one turn, results wait for setImmediate.
    if (++this.syncLookups === 1) setImmediate(this.resetSyncLookups);
    else if (this.syncLookups > MAX_SYNC_LOOKUPS) return new Promise((resolve) => setImmediate(resolve, result));
    return Promise.resolve(result);
  }

  /** The rest of lookup() from table `from` (whose filter said maybe) down, with async block reads. */
  private async lookupAsync(key: Buffer, hash: number, from: number, liveOnly: boolean): Promise<EngineRecord | undefined> {
    const set = this.current.ref();
    try {
      const tables = set.tables;
      for (let i = from; i >= 0; i--) {
        const t = tables[i]!;
        if (i !== from && !t.mayContain(key, hash)) continue;
        const r = await t.get(key);
        if (r) return liveOnly && !isLive(r, this.clock.nowMs()) ? undefined : r;
      }
      return undefined;
    } finally {
      set.unref();
    }
  }

  /**
   * Records in key order within the bounds, newest version of each key; tombstones and
   * expired values only with `includeTombstones`. A snapshot: writes made after the call
   * are not seen. Memory stays bounded (tables are read ahead block by block).
   */
  async *iterate(opts: IterateOptions = {}): AsyncGenerator<EngineRecord> {
    if (this.closed) throw new ClosedError('engine');
    const from = opts.gte ?? (opts.gt ? Buffer.concat([opts.gt, Buffer.from([0])]) : undefined);
    const to = opts.lt ?? (opts.lte ? Buffer.concat([opts.lte, Buffer.from([0])]) : undefined);
    const sources: (AsyncIterator<EngineRecord> | Iterator<EngineRecord>)[] = [];
    sources.push(this.mem.range(from, to)[Symbol.iterator]());
    for (const m of this.imm) sources.push(m.range(from, to)[Symbol.iterator]());
    const set = this.current.ref();
    try {
      for (const t of set.tables) {
        if ((to !== undefined && Buffer.compare(t.smallest, to) >= 0) || (from !== undefined && Buffer.compare(t.largest, from) < 0)) continue;
        sources.push(t.scan(from, to, undefined, opts.skipCorrupt === true));
      }
      const now = this.clock.nowMs();
      const includeTombstones = opts.includeTombstones === true;
      let left = opts.limit ?? Infinity;
      if (left <= 0) return;
      for await (const r of mergeNewest(sources)) {
        if (!includeTombstones && !isLive(r, now)) continue;
        yield r;
        if (--left <= 0) return;
      }
    } finally {
      set.unref();
    }
  }

  // -------------------------------------------------------------------------------------
  // Flush

  /** Flushes the memtable to a table and waits until every frozen memtable is in a table. */
  async flush(): Promise<void> {
    if (this.closed) throw new ClosedError('engine');
    const refused = this.refusal();
    if (refused) throw refused;
    await this.commits.marker(true);
    while (this.imm.length > 0) {
      if (this.bgError) throw this.bgError;
      if (this.flushEpisode) throw this.flushFailedError();
      await this.waitForFlush();
    }
    if (this.bgError) throw this.bgError;
  }

  private flushFailedError(): WriteRefusedError {
    const last = this.errorLog.last;
    return new WriteRefusedError(`the memtable flush failed (${last ? `${last.errno ?? last.code}: ${last.message}` : 'unknown'}); it is retried in the background, the data is safe in the WAL`);
  }

  private waitForFlush(): Promise<void> {
    return new Promise((resolve) => {
      this.flushWaiters.push(resolve);
      this.scheduleFlush();
    });
  }

  private notifyFlushWaiters(): void {
    const w = this.flushWaiters;
    this.flushWaiters = [];
    for (const f of w) f();
  }

  /** Starts the flush loop unless it runs, there is nothing to flush, or a failed flush waits for its retry. */
  private scheduleFlush(retry = false): void {
    if (this.flushing || this.imm.length === 0 || this.recoveryEpisode || this.bgError) {
      if (this.imm.length === 0 || this.bgError) this.notifyFlushWaiters();
      return;
    }
    if (this.flushEpisode && !retry) return;
    this.flushing = this.flushLoop().finally(() => {
      this.flushing = undefined;
      this.notifyFlushWaiters();
      this.maybeCompact();
    });
  }

  /**
   * Writes the frozen memtables into tables, oldest first. A failure keeps the memtable
   * (its WAL segment stays too, so nothing is lost) and retries after a back-off; writes go
   * on into the current memtable until the frozen ones fill up (then they are refused).
   */
  private async flushLoop(): Promise<void> {
    while (this.imm.length > 0 && !this.bgError && !this.recoveryEpisode) {
      const m = this.imm[0]!;
      const n = this.nextFile++;
      let built: TableReader | undefined;
      let manifestWritten = false;
      try {
        const t = await Engine.buildTable(this.options, this.dir, n, m, this.cache, this.readStats);
        built = t;
        t.onBadBlock = this.onBadBlock;
        await this.withManifest(async () => {
          const tables = [...this.current.tables, t];
          const logNumber = this.imm[1]?.walNumber ?? this.mem.walNumber;
          manifestWritten = true;
          await writeManifest(this.fs, this.dir, this.manifestFor(tables, logNumber));
          this.installTables(tables);
          this.imm.shift();
        });
        t.unref();
      } catch (err) {
        built?.unref();
        // A table a manifest on disk may name (the write failed after its rename) is left
        // for open to judge; otherwise it is a partial file nobody needs.
        if (!manifestWritten) await this.fs.unlink(tableFile(this.dir, n)).catch(() => undefined);
        this.onFlushError(err);
        break;
      }
      // The manifest no longer needs the segment: kept for reuse, or deleted (a failed unlink
      // leaves it for open to delete).
      if (this.walPool.length < this.options.walRecycleSegments) this.walPool.push(m.walNumber);
      else await this.fs.unlink(walFile(this.dir, m.walNumber)).catch((err) => this.log.warn({ err }, 'could not delete a flushed WAL segment'));
      this.counters.flushes++;
      this.counters.flushBytesWritten += built.sizeBytes;
      this.log.debug({ table: n, entries: m.size, bytes: built.sizeBytes }, 'memtable flushed');
      if (this.flushEpisode) {
        const ep = this.flushEpisode;
        if (ep.timer) clearTimeout(ep.timer);
        this.flushEpisode = undefined;
        this.log.info({ retries: ep.retries, ms: this.clock.nowMs() - ep.sinceMs }, 'memtable flushes work again');
      }
      this.notifyFlushWaiters();
    }
  }

  private onFlushError(err: unknown): void {
    const info = this.errorLog.note('flush', classifyIoError(err, 'other'), err, this.clock.nowMs());
    if (this.flushEpisode) this.flushEpisode.retries++;
    else {
      this.flushEpisode = { sinceMs: this.clock.nowMs(), retries: 0, timer: undefined };
      this.log.warn({ err, errno: info.errno }, 'memtable flush failed: the memtable and its WAL are kept; retrying in the background');
    }
    this.retryTimer(this.flushEpisode, this.options.errorRetryMaxMs, () => this.scheduleFlush(true));
  }

  /** Writes the records of `mem` into table `n` (copying their encoded bytes) and opens it. */
  private static async buildTable(o: ResolvedEngineOptions, dir: string, n: number, mem: Memtable, cache: BlockCache, stats: ReadStats): Promise<TableReader> {
    const file = tableFile(dir, n);
    const fh = await o.fs.open(file, 'create');
    try {
      const b = new TableBuilder(fh, { blockSizeBytes: o.blockSizeBytes, bloomBitsPerKey: o.bloomBitsPerKey, nowMs: o.clock.nowMs() });
      const ids = await mem.sortedIdsSliced();
      const span = new RecordSpan();
      for (let i = 0; i < ids.length; i++) {
        b.addRaw(mem.spanOf(ids[i]!, span), span);
        if (b.needsDrain) await b.drain();
      }
      await b.finish();
    } finally {
      await fh.close();
    }
    return TableReader.open(await o.fs.open(file, 'read'), n, cache, stats);
  }

  private manifestFor(tables: readonly TableReader[], logNumber: number): Manifest {
    return {
      format: MANIFEST_FORMAT_VERSION,
      nextFileNumber: this.nextFile,
      lastSeq: this.seq,
      logNumber,
      tables: tables.map((t) => t.fileNumber),
    };
  }

  private installTables(tables: TableReader[]): void {
    for (const t of tables) t.onBadBlock ??= this.onBadBlock;
    const old = this.current;
    this.current = new TableSet(tables);
    old.unref();
  }

  /**
   * A checkpoint (snapshots, storage-server/snapshot.ts): flushes the memtable, then —
   * between two manifest changes, so that no flush or compaction swaps tables meanwhile —
   * hands `fn` the files of the current tables and a manifest naming exactly them, whose
   * log number is past every WAL segment (a copy needs no WAL: what was written before the
   * flush is in the tables). The tables stay in place until `fn` settles: hard-link or copy
   * them there. Writes go on meanwhile (into the memtable, not the checkpoint).
   */
  async checkpoint<T>(fn: (tableFiles: string[], manifest: Manifest) => Promise<T>): Promise<T> {
    await this.flush();
    return this.withManifest(async () => {
      const tables = [...this.current.tables];
      return fn(
        tables.map((t) => t.file),
        this.manifestFor(tables, this.nextFile),
      );
    });
  }

  private withManifest<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.manifestChain.then(fn);
    this.manifestChain = run.catch(() => undefined);
    return run;
  }

  // -------------------------------------------------------------------------------------
  // Compaction

  private maybeCompact(): void {
    if (!this.options.autoCompaction || this.compacting || this.closing || this.bgError) return;
    if (this.compactionEpisode?.timer) return; // a failed one waits for its retry
    const tables = this.current.tables;
    const pick = pickCompaction(
      tables.map((t) => t.sizeBytes),
      {
        minMergeTables: this.options.compactionTriggerTables,
        sizeRatioPercent: this.options.compactionSizeRatioPercent,
        maxSizeAmplificationPercent: this.options.maxSizeAmplificationPercent,
        maxTables: this.options.compactionMaxTables,
      },
    );
    if (!pick) return;
    // A table with a quarantined block whose keys are not repaired yet stays out: merging it
    // would drop the block's records while their range still needs repair (and uncover
    // older versions they shadow). Only the newer part of the run is merged meanwhile.
    let start = pick.start;
    for (let i = pick.end - 1; i >= pick.start; i--) {
      if (tables[i]!.hasUnrepairedBlocks) {
        start = i + 1;
        break;
      }
    }
    if (pick.end - start < 2) return;
    this.compacting = this.compactRange(start, pick.end, pick.reason, true).then(
      () => {
        this.compacting = undefined;
        if (this.compactionEpisode) {
          if (this.compactionEpisode.timer) clearTimeout(this.compactionEpisode.timer);
          this.log.info({ retries: this.compactionEpisode.retries }, 'compactions work again');
          this.compactionEpisode = undefined;
        }
        this.maybeCompact();
      },
      (err) => {
        this.compacting = undefined;
        if (err instanceof CompactionAborted) return;
        this.counters.compactionErrors++;
        if (metCorruption.has(err as object)) {
          // Not an I/O problem: the block is quarantined now and the picker leaves its table
          // out until it is repaired; the rest may compact at once.
          this.log.warn({ err }, 'compaction met a corrupt block (now quarantined); its table waits for the repair');
          setImmediate(() => this.maybeCompact());
          return;
        }
        const info = this.errorLog.note('compaction', classifyIoError(err, 'other'), err, this.clock.nowMs());
        // Dropped, nothing lost (the inputs stay); retried after a growing back-off.
        const ep = (this.compactionEpisode ??= { sinceMs: this.clock.nowMs(), retries: -1, timer: undefined });
        ep.retries++;
        this.log.error({ err, errno: info.errno, retries: ep.retries }, 'compaction failed; it is retried later');
        this.retryTimer(ep, this.options.compactionRetryMaxMs, () => this.maybeCompact());
      },
    );
  }

  /**
   * Compacts every table into one (after flushing the memtables): drops shadowed versions,
   * and tombstones and expired values older than the grace period, and quarantined blocks
   * whose keys were repaired. Refused with CORRUPTION while a quarantined block is not
   * repaired yet (its records would be lost before their range is repaired).
   */
  async compact(): Promise<void> {
    await this.flush();
    while (this.compacting) await this.compacting;
    const n = this.current.tables.length;
    if (n === 0) return;
    const run = this.compactRange(0, n, 'manual', false);
    this.compacting = run.then(
      () => undefined,
      () => undefined,
    );
    try {
      await run;
    } finally {
      this.compacting = undefined;
    }
  }

  private async compactRange(start: number, end: number, reason: string, throttled: boolean): Promise<void> {
    const set = this.current.ref();
    let held: TableSet | undefined = set;
    const inputs = set.tables.slice(start, end);
    const older = set.tables.slice(0, start);
    const now = this.clock.nowMs();
    const n = this.nextFile++;
    const file = tableFile(this.dir, n);
    let output: TableReader | undefined;
    let dropped = 0;
    let manifestWritten = false;
    try {
      const unrepaired = inputs.find((t) => t.hasUnrepairedBlocks);
      if (unrepaired) {
        const b = unrepaired.badBlocks.find((x) => !x.repaired)!;
        throw new CorruptionError('this table has a quarantined block whose keys are not repaired from the other replicas yet: repair first, then compact', {
          file: unrepaired.file,
          offset: b.offset,
        });
      }
      // Quarantined blocks whose keys were repaired are dropped (their versions live on newer).
      const skipBlocks = inputs.map((t) => t.badBlocks.filter((b) => b.repaired).map((b) => b.index));
      const settings = {
        blockSizeBytes: this.options.blockSizeBytes,
        bloomBitsPerKey: this.options.bloomBitsPerKey,
        nowMs: now,
        tombstoneGraceMs: graceAt(now, this.options.tombstoneGraceMs, this.options.tombstoneHorizon()),
      };
      let outcome: CompactionOutcome;
      try {
        if (this.thread) {
          const r = await this.thread.run({
            outputFile: file,
            inputFiles: inputs.map((t) => t.file),
            olderFiles: older.map((t) => t.file),
            skipBlocks,
            settings,
            rateBytesPerSec: throttled ? this.options.compactionRateBytesPerSec : 0,
          });
          this.readStats.scanBlockReads += r.scanBlockReads;
          outcome = r;
        } else {
          outcome = await compactToFile(
            this.fs,
            file,
            inputs,
            older,
            settings,
            skipBlocks,
            throttled ? (bytes) => this.limiter.consume(bytes, () => this.closing) : undefined,
            () => this.closing,
            () => new CompactionAborted(),
          );
        }
      } catch (err) {
        // A damaged block met by the merge is quarantined like one met by a read.
        if (err instanceof EngineError && err.code === 'CORRUPTION' && typeof err.details?.file === 'string') {
          const t = inputs.find((x) => x.file === err.details!.file);
          const i = t ? t.blockAtOffset(Number(err.details.offset)) : -1;
          if (t && i >= 0) {
            t.quarantine(i, err.message);
            metCorruption.add(err);
          }
        }
        throw err;
      }
      dropped = outcome.dropped;
      if (outcome.count > 0) output = await TableReader.open(await this.fs.open(file, 'read'), n, this.cache, this.readStats);
      if (output) output.onBadBlock = this.onBadBlock;

      await this.withManifest(async () => {
        const cur = [...this.current.tables];
        const at = cur.indexOf(inputs[0]!);
        if (at < 0 || inputs.some((t, i) => cur[at + i] !== t)) throw new Error('compaction inputs changed underneath');
        cur.splice(at, inputs.length, ...(output ? [output] : []));
        manifestWritten = true;
        await writeManifest(this.fs, this.dir, this.manifestFor(cur, this.imm[0]?.walNumber ?? this.mem.walNumber));
        for (const t of inputs) t.markObsolete(() => void this.fs.unlink(t.file).catch(() => undefined));
        this.installTables(cur);
      });
      // The inputs' filters and indexes are released as soon as no reader holds them: this
      // job's own reference on them goes now, not after the bookkeeping below.
      held.unref();
      held = undefined;
      const bytesIn = inputs.reduce((s, t) => s + t.sizeBytes, 0);
      this.counters.compactions++;
      this.counters.compactionBytesRead += bytesIn;
      this.counters.compactionBytesWritten += output?.sizeBytes ?? 0;
      this.counters.compactionDroppedRecords += dropped;
      inputs.forEach((t, i) => {
        for (const b of t.badBlocks.filter((x) => skipBlocks[i]!.includes(x.index))) {
          this.counters.corruptBlocksDropped++;
          this.log.warn(
            { file: t.file, offset: b.offset, block: b.index, first: b.first.toString('hex'), last: b.last.toString('hex'), output: output?.fileNumber },
            'compaction dropped a quarantined block: its keys were repaired from the other replicas',
          );
        }
      });
      this.log.info(
        { reason, inputs: inputs.map((t) => t.fileNumber), output: output?.fileNumber, bytesIn, bytesOut: output?.sizeBytes ?? 0, dropped },
        'compaction done',
      );
    } catch (err) {
      // An output a manifest on disk may name (the write failed after its rename) is left
      // for open to judge (a leftover there unless named).
      if (!manifestWritten) await this.fs.unlink(file).catch(() => undefined);
      throw err;
    } finally {
      if (output) output.unref();
      held?.unref();
    }
  }

  // -------------------------------------------------------------------------------------
  // Quarantined blocks

  /** True when a live table has a quarantined block (cheap: for hot paths that then ask quarantine()). */
  get hasQuarantine(): boolean {
    for (const t of this.current.tables) if (t.badBlocks.length > 0) return true;
    return false;
  }

  /** Every quarantined data block of the live tables (blocks of tables compacted away are gone). */
  quarantine(): QuarantinedBlock[] {
    const out: QuarantinedBlock[] = [];
    for (const t of this.current.tables) {
      for (const b of t.badBlocks) out.push(quarantinedOf(t, b));
    }
    return out;
  }

  /**
   * Marks a quarantined block as repaired: the keys of its range were repaired from the
   * other replicas (newer versions written over them, or purge markers where no replica
   * holds the key). Gets, scans and compactions then pass over it, and the next
   * compaction that includes its table drops it. Returns false when no such block is live.
   */
  markRepaired(id: string): boolean {
    for (const t of this.current.tables) {
      for (const b of t.badBlocks) {
        if (`${t.fileNumber}:${b.index}` !== id) continue;
        if (!b.repaired) {
          b.repaired = true;
          this.log.warn({ file: t.file, offset: b.offset, block: b.index }, 'the keys of a quarantined block were repaired from the other replicas; the next compaction drops it');
          this.maybeCompact();
        }
        return true;
      }
    }
    return false;
  }

  /** Calls `fn` for every data block quarantined from now on. */
  onCorruptBlock(fn: (b: QuarantinedBlock) => void): void {
    this.corruptListeners.push(fn);
  }

  private readonly onBadBlock = (t: TableReader, b: BadBlock): void => {
    this.counters.corruptBlocks++;
    const q = quarantinedOf(t, b);
    this.log.error(
      { file: q.file, offset: q.offset, length: q.length, block: q.block, first: q.first.toString('hex'), last: q.last.toString('hex'), reason: q.reason },
      'a data block failed its checksum: quarantined (gets of its keys fail with CORRUPTION, scans pass over it) until its keys are repaired',
    );
    for (const fn of this.corruptListeners) {
      try {
        fn(q);
      } catch (err) {
        this.log.warn({ err }, 'a corrupt-block listener threw');
      }
    }
  };

  // -------------------------------------------------------------------------------------
  // Status and shutdown

  /** The engine's state (ok, degraded-retrying, recovering, failed), its last error and retries. */
  health(): EngineHealth {
    const episodes: [ErrorSource, RetryEpisode | undefined][] = [
      ['wal', this.walEpisode],
      ['flush', this.flushEpisode],
      ['compaction', this.compactionEpisode],
      ['recovery', this.recoveryEpisode],
    ];
    const open = episodes.filter((e): e is [ErrorSource, RetryEpisode] => e[1] !== undefined);
    const state = this.bgError ? 'failed' : this.recoveryEpisode ? 'recovering' : open.length > 0 ? 'degraded-retrying' : 'ok';
    let sinceMs: number | null = null;
    for (const [, ep] of open) if (sinceMs === null || ep.sinceMs < sinceMs) sinceMs = ep.sinceMs;
    if (this.bgError) sinceMs = this.failedAtMs;
    return {
      state,
      writesRefused: this.refusal() !== undefined,
      retrying: open.map(([source]) => source),
      sinceMs,
      retries: open.reduce((s, [, ep]) => s + ep.retries, 0),
      lastError: this.errorLog.last,
      errors: { ...this.errorLog.counts },
      autoResumes: this.healthCounts.autoResumes,
      recoveries: this.healthCounts.recoveries,
    };
  }

  stats(): EngineStats {
    const tables = this.current.tables;
    let memEntries = this.mem.size;
    for (const m of this.imm) memEntries += m.size;
    return {
      lastSeq: this.seq,
      memtableBytes: this.mem.bytes + this.imm.reduce((s, m) => s + m.bytes, 0),
      memtableEntries: memEntries,
      immutableMemtables: this.imm.length,
      tableCount: tables.length,
      tableBytes: tables.reduce((s, t) => s + t.sizeBytes, 0),
      approximateEntries: memEntries + tables.reduce((s, t) => s + t.props.entries, 0),
      tables: tables.map((t) => ({
        file: t.fileNumber,
        sizeBytes: t.sizeBytes,
        entries: t.props.entries,
        tombstones: t.props.tombstones,
        minSeq: t.props.minSeq,
        maxSeq: t.props.maxSeq,
      })),
      pinnedBytes: tables.reduce((s, t) => s + t.pinnedBytes, 0),
      blockCacheBytes: this.cache.calculatedSize,
      blockCacheEntries: this.cache.size,
      ...this.readStats,
      ...this.counters,
      walSegmentsKept: this.walPool.length,
    };
  }

  /** Set once the engine gave up (state `failed`): it refuses writes until reopened. */
  get failed(): EngineError | undefined {
    return this.bgError;
  }

  /**
   * Finishes queued writes, flushes the memtable (unless flushOnClose is false), stops
   * compaction at a safe point, syncs the WAL (every write is durable once close returns,
   * whatever the sync policy), closes files and releases the directory lock.
   */
  close(): Promise<void> {
    this.closePromise ??= this.doClose();
    return this.closePromise;
  }

  private async doClose(): Promise<void> {
    // From here new writes are refused; the ones already queued were accepted and finish.
    this.closing = true;
    for (const ep of [this.walEpisode, this.flushEpisode, this.compactionEpisode, this.recoveryEpisode]) {
      if (ep?.timer) clearTimeout(ep.timer);
      if (ep) ep.timer = undefined;
    }
    this.thread?.abort();
    await this.commits.marker(false).catch(() => undefined);
    if (this.options.flushOnClose && !this.bgError) {
      await this.flush().catch((err) => this.log.warn({ err }, 'flush on close failed'));
    }
    while (this.compacting) await this.compacting;
    while (this.flushing) await this.flushing;
    await this.thread?.close();
    this.closed = true;
    // Under `none` (or with flushOnClose false) the WAL's tail may not be on disk yet: once
    // close() returns, every write is.
    // (A segment whose sync failed is never synced again: the next open replays what is durable.)
    if (!this.bgError && !this.wal.failedSync) {
      await this.wal
        .repairTail()
        .then(() => this.wal.sync())
        .catch((err) => this.log.warn({ err }, 'WAL sync on close failed'));
    }
    await this.wal.close().catch(() => undefined);
    this.current.unref();
    await this.lock.release();
  }
}

function quarantinedOf(t: TableReader, b: BadBlock): QuarantinedBlock {
  return {
    id: `${t.fileNumber}:${b.index}`,
    file: t.file,
    table: t.fileNumber,
    block: b.index,
    offset: b.offset,
    length: b.length,
    first: b.first,
    last: b.last,
    reason: b.reason,
    detectedAtMs: b.detectedAtMs,
    repaired: b.repaired,
  };
}

function asBuffer(v: unknown, what: string): Buffer {
  if (Buffer.isBuffer(v)) return v;
  if (v instanceof Uint8Array) return Buffer.from(v.buffer, v.byteOffset, v.byteLength);
  if (typeof v === 'string') return Buffer.from(v, 'utf8');
  throw new InvalidArgumentError(`${what} must be a Buffer, Uint8Array or string`);
}

/**
 * The grace period of a compaction starting at `nowMs`: tombstoneGraceMs, lengthened so that
 * nothing deleted at or after `horizonMs` is dropped.
 */
function graceAt(nowMs: number, graceMs: number, horizonMs: number | undefined): number {
  if (horizonMs === undefined || !Number.isFinite(horizonMs)) return graceMs;
  return Math.max(graceMs, nowMs - horizonMs + 1);
}
