// The storage engine: a log-structured merge tree (see ./engine-format.md for the files
// and ./README.md for the design). Writes go to the WAL with group commit, then to the
// memtable; full memtables are flushed to SSTables in the background while writes go on
// into a new memtable and WAL segment; universal compaction merges tables, rate-limited.
//
// Concurrency: every public method may be called concurrently. Writes are queued and
// applied in the order they were called by a single group-commit leader; a write resolves
// only after its sync policy is met and it is visible to gets. A failed WAL write or sync
// is sticky: the engine refuses further writes until reopened. Flush and compaction run
// one at a time in the background; reads pin a TableSet so they never lose a table.

import path from 'node:path';
import {
  ClosedError,
  CorruptionError,
  InvalidArgumentError,
  ManifestMissingError,
  RingkvError,
  WriteFailedError,
} from '../../sdk/errors.js';
import { checkContentType, checkKey, checkValue } from '../../sdk/limits.js';
import { BlockReadGovernor } from './block-read-governor.js';
import { bloomHash } from './bloom-filter.js';
import { varintSize } from './coding.js';
import { pickCompaction } from './compaction-picker.js';
import type { EngineOptions, ResolvedEngineOptions } from './engine-options.js';
import { resolveEngineOptions } from './engine-options.js';
import type { FileLock } from './file-system.js';
import { NodeFileSystem } from './file-system.js';
import { LOCK_FILE, parseFileName, tableFile, walFile } from './filenames.js';
import type { Manifest } from './manifest.js';
import { MANIFEST_FORMAT_VERSION, readManifest, writeManifest } from './manifest.js';
import { Memtable } from './memtable.js';
import type { CompactionOutcome } from './compaction.js';
import { compactToFile } from './compaction.js';
import { CompactionThread } from './compaction-thread.js';
import { mergeNewest } from './merge-iterator.js';
import { RateLimiter } from './rate-limiter.js';
import type { EngineRecord } from './record.js';
import { isLive, RecordSpan, recordSize, writeRecord } from './record.js';
import type { BlockCache, ReadStats } from './table.js';
import { createBlockCache, NEEDS_READ, TableBuilder, TableReader } from './table.js';
import { TableSet } from './table-set.js';
import { replayWal, WAL_FRAME_HEADER_BYTES, WAL_MAX_FRAME_BYTES, WalWriter } from './wal.js';

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
  recoveredWalRecords: number;
  recoveredTornTailBytes: number;
}

interface PendingWrite {
  kind: 'write';
  records: EngineRecord[];
  /** Encoded size of the records. */
  bytes: number;
  resolve: () => void;
  reject: (err: Error) => void;
}

/** A marker in the write queue: rotates the memtable (when `rotate`), else only waits its turn. */
interface PendingRotate {
  kind: 'rotate';
  rotate: boolean;
  resolve: () => void;
  reject: (err: Error) => void;
}

class CompactionAborted extends Error {}

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

  private queue: (PendingWrite | PendingRotate)[] = [];
  private writing = false;
  private bgError: RingkvError | undefined;
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
    recoveredWalRecords: 0,
    recoveredTornTailBytes: 0,
  };

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
    for (const t of tables) t.unref(); // the set holds them now
    this.mem = mem;
    this.memLimitBytes = this.drawMemLimit();
    this.wal = wal;
    this.seq = seq;
    this.nextFile = nextFile;
    this.limiter = new RateLimiter(o.compactionRateBytesPerSec);
    this.blockReads = new BlockReadGovernor(o.blockReadMode);
    this.thread = o.compactionThread === 'worker' && o.fs instanceof NodeFileSystem ? new CompactionThread(() => new CompactionAborted(), o.compactionThreadNice) : undefined;
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

      // Tables not in the manifest are leftovers of an interrupted flush or compaction.
      const live = new Set(manifest.tables);
      for (const f of files) {
        if ((f.kind === 'table' && !live.has(f.number)) || f.kind === 'manifest-temp' || (f.kind === 'wal' && f.number < manifest.logNumber)) {
          await fs.unlink(path.join(dir, f.name));
        }
      }

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
      const wal = await WalWriter.create(fs, walFile(dir, walNumber), walNumber);
      await fs.syncDir(dir);
      await writeManifest(fs, dir, { format: MANIFEST_FORMAT_VERSION, nextFileNumber: nextFile, lastSeq: seq, logNumber: walNumber, tables: tableNumbers });
      for (const l of logs) await fs.unlink(path.join(dir, l.name));

      const engine = new Engine(dir, o, lock, cache, stats, tables, new Memtable(walNumber, o.memtableSizeBytes), wal, seq, nextFile);
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
    let pending: PendingWrite;
    try {
      if (this.closing) throw new ClosedError('engine');
      if (this.bgError) throw this.bgError;
      if (!Array.isArray(ops) || ops.length === 0) throw new InvalidArgumentError('write needs at least one operation');
      const now = this.clock.nowMs();
      const records: EngineRecord[] = new Array(ops.length);
      let bytes = 0;
      for (let i = 0; i < ops.length; i++) {
        const r = (records[i] = this.toRecord(ops[i]!, now, 0));
        bytes += recordSize(r);
      }
      // (Sizes so far count a 1-byte sequence number; a real one takes up to 8.)
      if (bytes + 7 * ops.length > WAL_MAX_FRAME_BYTES - WAL_FRAME_HEADER_BYTES) {
        throw new InvalidArgumentError(`a write batch may hold at most ${WAL_MAX_FRAME_BYTES - WAL_FRAME_HEADER_BYTES} bytes of records, got ${bytes}`);
      }
      // Sequence numbers are assigned only once the whole batch validated.
      for (let i = 0; i < ops.length; i++) {
        const seq = ++this.seq;
        (records[i] as { seq: number }).seq = seq;
        bytes += varintSize(seq) - 1;
      }
      pending = { kind: 'write', records, bytes, resolve: noop, reject: noop };
    } catch (err) {
      return Promise.reject(err);
    }
    this.counters.writes += ops.length;
    return new Promise<void>((resolve, reject) => {
      pending.resolve = resolve;
      pending.reject = reject;
      this.queue.push(pending);
      this.startLeader();
    });
  }

  private toRecord(op: WriteOp, now: number, seq: number): EngineRecord {
    if (!op || typeof op !== 'object') throw new InvalidArgumentError('write operation must be an object');
    const key = asBuffer(op.key, 'key');
    checkKey(key, this.options.maxKeyBytes);
    const version = op.version === undefined ? EMPTY : asBuffer(op.version, 'version');
    if (op.type === 'put') {
      const value = asBuffer(op.value, 'value');
      checkValue(value);
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
   * Schedules the group-commit leader unless it is running or scheduled. It starts from
   * setImmediate, not at once: the writes issued in this turn of the event loop (e.g. by
   * every client whose previous write just resolved) join its first group, and I/O
   * callbacks (flushes, compaction reads) get their turn between groups.
   */
  private startLeader(): void {
    if (this.writing) return;
    this.writing = true;
    setImmediate(this.runLeader);
  }

  private readonly runLeader = (): void => void this.writeLoop();

  /** The group-commit leader: drains the queue, one WAL write (+ sync) per group. */
  private async writeLoop(): Promise<void> {
    this.writing = true;
    try {
      while (this.queue.length > 0) {
        if (this.bgError) {
          this.failQueue(this.bgError);
          return;
        }
        const head = this.queue[0]!;
        if (head.kind === 'rotate') {
          this.queue.shift();
          try {
            if (head.rotate && this.mem.size > 0) await this.rotate();
            head.resolve();
          } catch (err) {
            head.reject(err as Error);
          }
          continue;
        }
        if (this.mem.bytes >= this.memLimitBytes || this.wal.full) await this.rotate();

        // Form a group: everything queued, up to maxGroupCommitBytes (`always` takes one).
        const group: PendingWrite[] = [];
        let bytes = 0;
        const limit = this.options.sync === 'always' ? 1 : Infinity;
        const maxBytes = Math.min(this.options.maxGroupCommitBytes, WAL_MAX_FRAME_BYTES - WAL_FRAME_HEADER_BYTES);
        while (this.queue.length > 0 && group.length < limit) {
          const w = this.queue[0]!;
          if (w.kind !== 'write') break;
          if (group.length > 0 && bytes + w.bytes > maxBytes) break;
          group.push(w);
          bytes += w.bytes;
          this.queue.shift();
        }
        // One WAL frame for the whole group (like LevelDB's merged batch: each batch stays
        // atomic inside it), encoded once, straight into the memtable's arena.
        const mem = this.mem;
        let frameBytes = 0;
        try {
          const area = mem.reserve(WAL_FRAME_HEADER_BYTES + bytes);
          const start = area.start + WAL_FRAME_HEADER_BYTES;
          let end = start;
          for (const w of group) {
            for (let i = 0; i < w.records.length; i++) end = writeRecord(area.buf, end, w.records[i]!);
          }
          if (end !== start + bytes) throw new Error(`group encoded to ${end - start} bytes, expected ${bytes}`);
          const frame = this.wal.seal(area.buf, area.start, end);
          frameBytes = frame.length;
          const appending = this.wal.append(frame);
          if (appending) await appending;
          if (this.options.sync !== 'none') {
            await this.wal.sync();
            this.counters.walSyncs++;
          }
          mem.commit(area.buf, start, end);
        } catch (err) {
          this.bgError = new WriteFailedError(`WAL write failed; the engine refuses writes until reopened: ${(err as Error).message}`, err);
          this.log.error({ err }, 'WAL write failed');
          for (const w of group) w.reject(this.bgError);
          this.failQueue(this.bgError);
          return;
        }
        this.counters.walBytesWritten += frameBytes;
        this.counters.writeGroups++;
        for (const w of group) w.resolve();
      }
    } catch (err) {
      // rotate() failed: the old segment could not be synced or a new one made (it set bgError).
      this.bgError ??= new WriteFailedError(`could not start a new WAL segment: ${(err as Error).message}`, err);
      this.log.error({ err }, 'memtable rotation failed');
      this.failQueue(this.bgError);
    } finally {
      this.writing = false;
    }
  }

  private failQueue(err: Error): void {
    const q = this.queue;
    this.queue = [];
    for (const w of q) w.reject(err);
  }

  /** A freezing size for the next memtable: memtableSizeBytes less up to memtableJitterPercent. */
  private drawMemLimit(): number {
    const o = this.options;
    return Math.max(4096, Math.round(o.memtableSizeBytes * (1 - (o.memtableJitterPercent / 100) * Math.random())));
  }

  /** Freezes the memtable and starts a new WAL segment. REQUIRES: called by the write leader. */
  private async rotate(): Promise<void> {
    while (this.imm.length >= this.options.maxImmutableMemtables) {
      this.counters.writeStalls++;
      await this.waitForFlush();
      if (this.bgError) throw this.bgError;
    }
    // Only the last segment may end in a torn write: the old one is made whole (under
    // `none` its tail was never synced; under the others this finds nothing to write) before
    // the new one's name can reach the disk and make it a segment before the last.
    const old = this.wal;
    try {
      await old.sync();
      this.counters.walSyncs++;
    } catch (err) {
      this.bgError ??= new WriteFailedError(`WAL sync failed; the engine refuses writes until reopened: ${(err as Error).message}`, err);
      throw this.bgError;
    }
    const n = this.nextFile++;
    let wal: WalWriter | undefined;
    try {
      wal = await WalWriter.create(this.fs, walFile(this.dir, n), n);
      await this.fs.syncDir(this.dir);
    } catch (err) {
      await wal?.close().catch(() => undefined);
      this.bgError ??= new WriteFailedError(`could not start a new WAL segment; the engine refuses writes until reopened: ${(err as Error).message}`, err);
      throw this.bgError;
    }
    this.imm.push(this.mem);
    this.mem = new Memtable(n, this.options.memtableSizeBytes);
    this.memLimitBytes = this.drawMemLimit();
    this.wal = wal;
    // Its data is durable: a failed close loses nothing.
    await old.close().catch((err) => this.log.warn({ err, file: old.fh.path }, 'closing a WAL segment failed'));
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
        sources.push(t.scan(from, to));
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
    if (this.bgError) throw this.bgError;
    await new Promise<void>((resolve, reject) => {
      this.queue.push({ kind: 'rotate', rotate: true, resolve, reject });
      this.startLeader();
    });
    while (this.imm.length > 0) {
      if (this.bgError) throw this.bgError;
      await this.waitForFlush();
    }
    if (this.bgError) throw this.bgError;
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

  private scheduleFlush(): void {
    if (this.flushing || this.imm.length === 0) return;
    this.flushing = this.flushLoop().finally(() => {
      this.flushing = undefined;
      this.notifyFlushWaiters();
      this.maybeCompact();
    });
  }

  private async flushLoop(): Promise<void> {
    while (this.imm.length > 0 && !this.bgError) {
      const m = this.imm[0]!;
      try {
        const n = this.nextFile++;
        const t = await Engine.buildTable(this.options, this.dir, n, m, this.cache, this.readStats);
        await this.withManifest(async () => {
          const tables = [...this.current.tables, t];
          const logNumber = this.imm[1]?.walNumber ?? this.mem.walNumber;
          await writeManifest(this.fs, this.dir, this.manifestFor(tables, logNumber));
          this.installTables(tables);
          t.unref();
          this.imm.shift();
        });
        await this.fs.unlink(walFile(this.dir, m.walNumber));
        this.counters.flushes++;
        this.counters.flushBytesWritten += t.sizeBytes;
        this.log.debug({ table: n, entries: m.size, bytes: t.sizeBytes }, 'memtable flushed');
      } catch (err) {
        this.bgError = new WriteFailedError(`memtable flush failed; the engine refuses writes until reopened: ${(err as Error).message}`, err);
        this.log.error({ err }, 'memtable flush failed');
      }
      this.notifyFlushWaiters();
    }
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
    const old = this.current;
    this.current = new TableSet(tables);
    old.unref();
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
    const sizes = this.current.tables.map((t) => t.sizeBytes);
    const pick = pickCompaction(sizes, {
      minMergeTables: this.options.compactionTriggerTables,
      sizeRatioPercent: this.options.compactionSizeRatioPercent,
      maxSizeAmplificationPercent: this.options.maxSizeAmplificationPercent,
      maxTables: this.options.compactionMaxTables,
    });
    if (!pick) return;
    this.compacting = this.compactRange(pick.start, pick.end, pick.reason, true).then(
      () => {
        this.compacting = undefined;
        this.maybeCompact();
      },
      (err) => {
        // A failed compaction is not retried in a tight loop: the next flush triggers one.
        this.compacting = undefined;
        if (err instanceof CompactionAborted) return;
        this.counters.compactionErrors++;
        this.log.error({ err }, 'compaction failed');
      },
    );
  }

  /**
   * Compacts every table into one (after flushing the memtables): drops shadowed versions,
   * and tombstones and expired values older than the grace period.
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
    const inputs = set.tables.slice(start, end);
    const older = set.tables.slice(0, start);
    const now = this.clock.nowMs();
    const n = this.nextFile++;
    const file = tableFile(this.dir, n);
    let output: TableReader | undefined;
    let dropped = 0;
    try {
      const settings = {
        blockSizeBytes: this.options.blockSizeBytes,
        bloomBitsPerKey: this.options.bloomBitsPerKey,
        nowMs: now,
        tombstoneGraceMs: this.options.tombstoneGraceMs,
      };
      let outcome: CompactionOutcome;
      if (this.thread) {
        const r = await this.thread.run({
          outputFile: file,
          inputFiles: inputs.map((t) => t.file),
          olderFiles: older.map((t) => t.file),
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
          throttled ? (bytes) => this.limiter.consume(bytes, () => this.closing) : undefined,
          () => this.closing,
          () => new CompactionAborted(),
        );
      }
      dropped = outcome.dropped;
      if (outcome.count > 0) output = await TableReader.open(await this.fs.open(file, 'read'), n, this.cache, this.readStats);

      await this.withManifest(async () => {
        const cur = [...this.current.tables];
        const at = cur.indexOf(inputs[0]!);
        if (at < 0 || inputs.some((t, i) => cur[at + i] !== t)) throw new Error('compaction inputs changed underneath');
        cur.splice(at, inputs.length, ...(output ? [output] : []));
        await writeManifest(this.fs, this.dir, this.manifestFor(cur, this.imm[0]?.walNumber ?? this.mem.walNumber));
        for (const t of inputs) t.markObsolete(() => void this.fs.unlink(t.file).catch(() => undefined));
        this.installTables(cur);
      });
      const bytesIn = inputs.reduce((s, t) => s + t.sizeBytes, 0);
      this.counters.compactions++;
      this.counters.compactionBytesRead += bytesIn;
      this.counters.compactionBytesWritten += output?.sizeBytes ?? 0;
      this.counters.compactionDroppedRecords += dropped;
      this.log.info(
        { reason, inputs: inputs.map((t) => t.fileNumber), output: output?.fileNumber, bytesIn, bytesOut: output?.sizeBytes ?? 0, dropped },
        'compaction done',
      );
    } catch (err) {
      await this.fs.unlink(file).catch(() => undefined);
      throw err;
    } finally {
      if (output) output.unref();
      set.unref();
    }
  }

  // -------------------------------------------------------------------------------------
  // Status and shutdown

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
    };
  }

  /** True once a write or flush failed; the engine then refuses writes until reopened. */
  get failed(): RingkvError | undefined {
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
    this.thread?.abort();
    await new Promise<void>((resolve) => {
      this.queue.push({ kind: 'rotate', rotate: false, resolve, reject: () => resolve() });
      this.startLeader();
    });
    if (this.options.flushOnClose && !this.bgError) {
      await this.flush().catch((err) => this.log.warn({ err }, 'flush on close failed'));
    }
    while (this.compacting) await this.compacting;
    while (this.flushing) await this.flushing;
    await this.thread?.close();
    this.closed = true;
    // Under `none` (or with flushOnClose false) the WAL's tail may not be on disk yet: once
    // close() returns, every write is.
    if (!this.bgError) await this.wal.sync().catch((err) => this.log.warn({ err }, 'WAL sync on close failed'));
    await this.wal.close().catch(() => undefined);
    this.current.unref();
    await this.lock.release();
  }
}

function noop(): void {}

function asBuffer(v: unknown, what: string): Buffer {
  if (Buffer.isBuffer(v)) return v;
  if (v instanceof Uint8Array) return Buffer.from(v.buffer, v.byteOffset, v.byteLength);
  if (typeof v === 'string') return Buffer.from(v, 'utf8');
  throw new InvalidArgumentError(`${what} must be a Buffer, Uint8Array or string`);
}
