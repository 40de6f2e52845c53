// Group commit, after LevelDB's DBImpl::Write: writes queue up and one leader at a time
// drains the queue — everything queued (up to maxGroupCommitBytes; one write at a time with
// sync `always`) goes to the WAL as one frame, encoded once straight into the memtable's
// arena, with one fdatasync for the whole group, and only then becomes visible and resolves.
// The queue also carries markers (a memtable rotation for a flush; close's wait for the
// writes before it) and tasks that need the WAL to themselves (a probe, a recovery), run
// by the leader in their turn. Concurrency: any caller on the event loop may enqueue; only
// the leader touches the WAL and the memtable's write side.

import type { EngineError } from './engine-errors.js';
import { IoFailure } from './engine-health.js';
import type { IoPhase } from './engine-health.js';
import type { SyncPolicy } from './engine-options.js';
import type { Memtable } from './memtable.js';
import type { EngineRecord } from './record.js';
import { writeRecord } from './record.js';
import type { WalWriter } from './wal.js';
import { WAL_MAX_FRAME_BYTES, WAL_MAX_FRAME_HEADER_BYTES } from './wal.js';

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

/** Work that needs the WAL to itself (a probe, a recovery), run by the leader in its turn. */
interface PendingTask {
  kind: 'task';
  run: () => Promise<void>;
  resolve: () => void;
  reject: (err: Error) => void;
}

/** What the leader needs of the engine: its current memtable and WAL, and its write-path error handling. */
export interface GroupCommitHost {
  /** The memtable writes go to now (a rotation replaces it). */
  readonly mem: Memtable;
  /** The WAL segment writes go to now (a rotation replaces it). */
  readonly wal: WalWriter;
  /** Why writes are refused now (a failure being healed, or the engine failed); undefined when accepted. */
  refusal(): EngineError | undefined;
  /** Takes a failure of the write path, starts what heals it, and returns the error for the writes it failed. */
  onWritePathError(err: unknown): EngineError;
  /** True when the memtable or the WAL segment is full: the leader rotates before the next group. */
  full(): boolean;
  /** Freezes the memtable and starts a new WAL segment (`force`: even when it is empty). REQUIRES: run by the leader. */
  rotate(force: boolean): Promise<void>;
  /** Told each fdatasync of the WAL done for a group. */
  onSync(): void;
  /** Told each group written (synced by the policy) before it becomes visible: its frame's bytes. */
  onGroup(frameBytes: number): void;
}

export interface GroupCommitOptions {
  sync: SyncPolicy;
  /** Most bytes one group writes at once. */
  maxGroupCommitBytes: number;
}

export class GroupCommit {
  private queue: (PendingWrite | PendingRotate | PendingTask)[] = [];
  private writing = false;

  constructor(
    private readonly host: GroupCommitHost,
    private readonly o: GroupCommitOptions,
  ) {}

  /** Queues validated records (`bytes` encoded); resolves once written, synced by the policy and visible. */
  write(records: EngineRecord[], bytes: number): Promise<void> {
    return new Promise<void>((resolve, reject) => this.enqueue({ kind: 'write', records, bytes, resolve, reject }));
  }

  /** Resolves once every write queued before has been handled; with `rotate`, after freezing a non-empty memtable. */
  marker(rotate: boolean): Promise<void> {
    return new Promise<void>((resolve, reject) => this.enqueue({ kind: 'rotate', rotate, resolve, reject }));
  }

  /** Runs `run` as a task of the leader (exclusive use of the WAL and memtables). */
  runTask(run: () => Promise<void>): Promise<void> {
    return new Promise<void>((resolve, reject) => this.enqueue({ kind: 'task', run, resolve, reject }));
  }

  private enqueue(entry: PendingWrite | PendingRotate | PendingTask): void {
    this.queue.push(entry);
    this.startLeader();
  }

  /**
   * Schedules the leader unless it is running or scheduled. It starts from setImmediate, not
   * at once: the writes issued in this turn of the event loop (e.g. by every client whose
   * previous write just resolved) join its first group, and I/O callbacks (flushes,
   * compaction reads) get their turn between groups.
   */
  private startLeader(): void {
    if (this.writing) return;
    this.writing = true;
    setImmediate(this.runLeader);
  }

  private readonly runLeader = (): void => void this.lead();

  /** The leader: drains the queue, one WAL write (+ sync) per group. */
  private async lead(): Promise<void> {
    const host = this.host;
    this.writing = true;
    try {
      while (this.queue.length > 0) {
        const head = this.queue[0]!;
        if (head.kind === 'task') {
          this.queue.shift();
          try {
            await head.run();
            head.resolve();
          } catch (err) {
            head.reject(err as Error);
          }
          continue;
        }
        if (head.kind === 'rotate') {
          this.queue.shift();
          try {
            if (head.rotate && host.mem.size > 0) {
              const refused = host.refusal();
              if (refused) throw refused;
              await host.rotate(false).catch((err: unknown) => {
                throw host.onWritePathError(err);
              });
            }
            head.resolve();
          } catch (err) {
            head.reject(err as Error);
          }
          continue;
        }
        // While writes are refused (a soft error being retried, a recovery, a failure), the
        // queued writes fail at once; the markers and tasks behind them still run.
        const refused = host.refusal();
        if (refused) {
          this.queue.shift();
          head.reject(refused);
          continue;
        }
        if (host.full()) {
          try {
            await host.rotate(false);
          } catch (err) {
            const e = host.onWritePathError(err);
            // The writes queued now were not written: refused (the loop rejects them).
            if (!host.refusal()) {
              this.queue.shift();
              head.reject(e);
            }
            continue;
          }
        }

        // Form a group: everything queued, up to maxGroupCommitBytes (`always` takes one).
        const group: PendingWrite[] = [];
        let bytes = 0;
        const limit = this.o.sync === 'always' ? 1 : Infinity;
        const maxBytes = Math.min(this.o.maxGroupCommitBytes, WAL_MAX_FRAME_BYTES - WAL_MAX_FRAME_HEADER_BYTES);
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
        const mem = host.mem;
        const wal = host.wal;
        let frameBytes = 0;
        let phase: IoPhase = 'other';
        try {
          const area = mem.reserve(wal.frameHeaderBytes + bytes);
          const start = area.start + wal.frameHeaderBytes;
          let end = start;
          for (const w of group) {
            for (let i = 0; i < w.records.length; i++) end = writeRecord(area.buf, end, w.records[i]!);
          }
          if (end !== start + bytes) throw new Error(`group encoded to ${end - start} bytes, expected ${bytes}`);
          const frame = wal.seal(area.buf, area.start, end);
          frameBytes = frame.length;
          phase = 'append';
          const appending = wal.append(frame);
          if (appending) await appending;
          if (this.o.sync !== 'none') {
            phase = 'sync';
            await wal.sync();
            host.onSync();
          }
          mem.commit(area.buf, start, end);
        } catch (err) {
          // The group is not acknowledged: refused when nothing of it can have been written
          // (soft), of unknown outcome when it may be durable (hard, fatal).
          const e = host.onWritePathError(new IoFailure(phase, err));
          for (const w of group) w.reject(e);
          continue;
        }
        host.onGroup(frameBytes);
        for (const w of group) w.resolve();
      }
    } finally {
      this.writing = false;
    }
  }
}
