// An in-memory FileSystem that models what a power cut can leave on disk, and injects
// I/O errors. Single-threaded like the engine that uses it; `powerCut()` and
// `processCrash()` return a new file system and leave this one running untouched.
//
// The model (what a real disk with a journaling file system may do):
// - A file's writes and truncations reach the disk only on fsync/fdatasync of the file
//   (`FileHandle.sync`). Until then they are pending, in order. At a power cut each file
//   keeps its synced contents plus, in a seeded (random) cut, a prefix of its pending
//   writes, the last one possibly torn (only its first bytes written), and possibly with
//   the rest of its range reading as zeros (the size reached the disk, the data did not:
//   ext4 data=writeback, XFS). The pessimistic cut keeps none of them.
// - Directory entries (a creation, a rename, an unlink) reach the disk only on fsync of the
//   directory (`syncDir`); until then they are pending, in order, per directory. At a power
//   cut each directory keeps its synced entries plus, in a seeded cut, a prefix of its
//   pending changes (a journal commits metadata in order) or, with `dirOrder: 'any'`, any
//   subset of them (all that POSIX promises). A synced file whose name never reached the
//   disk is lost.
// - A failed fsync (injected) loses the file's pending writes for good: they stay readable
//   until the power cut, but a later fsync does not bring them back (Linux since 4.13 marks
//   the pages clean after reporting the error: PostgreSQL's "fsyncgate").

import path from 'node:path';
import { IoError, LockedError } from './engine-errors.js';
import type { FileHandle, FileLock, FileSystem, OpenMode } from './file-system.js';

/** Names an operation for fault injection. */
export type FsOp =
  | 'open'
  | 'read'
  | 'write'
  | 'sync'
  | 'truncate'
  | 'close'
  | 'rename'
  | 'unlink'
  | 'readdir'
  | 'syncDir'
  | 'writeFile';

/** Fails matching operations with an IoError carrying `errno`, as the real file system would. */
export interface FaultRule {
  op: FsOp | readonly FsOp[];
  /** Only paths containing this string or matching this RegExp. Default: every path. */
  file?: string | RegExp;
  /** The errno to report: 'EIO', 'ENOSPC', 'EMFILE', 'EDQUOT', ... */
  errno: string;
  /** Matching calls that succeed before the first failure. Default 0. */
  after?: number;
  /** Failures before the rule retires. Default: no limit. */
  times?: number;
  /**
   * For a write: this many bytes of it are written before the error (a short write, then
   * the error: what a disk that fills up mid-write does). Default 0.
   */
  partialBytes?: number;
}

/** A pending (unsynced) change to a file's contents, in the order it was made. */
export type PendingFileOp = { kind: 'write'; position: number; bytes: Buffer } | { kind: 'truncate'; length: number };

/** What survives of a file's pending changes: the first `ops` whole, then `tornBytes` of the next write. */
export interface FileCut {
  ops: number;
  /** Bytes of the next write that reached the disk (a torn write). Default 0. */
  tornBytes?: number;
  /** The rest of the torn write's range reads as zeros (its size reached the disk). Default false. */
  zeroFill?: boolean;
}

export interface PowerCutOptions {
  /**
   * Without a seed (and without the callbacks below) the cut is pessimistic: nothing pending
   * survives. With a seed every file and directory keeps a random prefix of its pending
   * changes (see the file header), reproducibly.
   */
  seed?: number;
  /**
   * With a seed: `prefix` (default) keeps a prefix of each directory's pending changes, as a
   * journaling file system that commits metadata in order does; `any` keeps each one or not
   * independently, as POSIX allows (nothing is promised before the directory's fsync).
   */
  dirOrder?: 'prefix' | 'any';
  /** Decides per file (path, pending changes) what survives; overrides the seed for files. */
  files?: (file: string, pending: readonly PendingFileOp[]) => FileCut;
  /**
   * Decides per directory which of its pending changes survive: how many, from the first
   * (a number), or each one (a mask of pending.length booleans). Overrides the seed for
   * directories.
   */
  dirs?: (dir: string, pending: readonly DirOp[]) => number | readonly boolean[];
}

/** A pending (unsynced) change to a directory's entries. */
export type DirOp = { kind: 'link'; name: string; inode: Inode } | { kind: 'unlink'; name: string } | { kind: 'rename'; from: string; to: string };

/** A file's contents: a growable byte array. */
class Bytes {
  buf: Buffer;
  length: number;
  constructor(data: Buffer = Buffer.alloc(0)) {
    this.buf = Buffer.from(data);
    this.length = data.length;
  }
  write(position: number, data: Buffer): void {
    const end = position + data.length;
    if (end > this.buf.length) {
      const grown = Buffer.alloc(Math.max(end, this.buf.length * 2, 4096));
      this.buf.copy(grown, 0, 0, this.length);
      this.buf = grown;
    }
    // Writing past the end leaves a hole of zeros (the buffer is zeroed beyond length).
    if (position > this.length) this.buf.fill(0, this.length, position);
    data.copy(this.buf, position);
    this.length = Math.max(this.length, end);
  }
  truncate(length: number): void {
    if (length < this.length) {
      this.buf.fill(0, length, this.length);
      this.length = length;
    } else if (length > this.length) {
      this.write(this.length, Buffer.alloc(length - this.length));
    }
  }
  apply(op: PendingFileOp): void {
    if (op.kind === 'write') this.write(op.position, op.bytes);
    else this.truncate(op.length);
  }
  view(): Buffer {
    return this.buf.subarray(0, this.length);
  }
}

/** A file, independent of the names it has (renames move names, not inodes). */
export class Inode {
  /** What reads see (the page cache). */
  readonly data: Bytes;
  /** What is on disk. */
  durable: Bytes;
  /** Changes since the last sync, oldest first. */
  pending: PendingFileOp[] = [];
  constructor(contents?: Buffer) {
    this.data = new Bytes(contents);
    this.durable = new Bytes(contents);
  }
}

interface DirState {
  /** Entries as on disk (after the last syncDir). */
  durable: Map<string, Inode>;
  /** Changes to the entries since the last syncDir, oldest first. */
  pending: DirOp[];
}

/** A small seeded PRNG (mulberry32), so a random power cut is reproducible from its seed. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let x = a;
    x = Math.imul(x ^ (x >>> 15), x | 1);
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61);
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * A file system in memory with a power-cut model (see the file header) and fault
 * injection: `faultHook` runs before every operation and may throw (or observe, e.g. take
 * a `powerCut()` at that very point); `injectFault` fails matching operations with an errno;
 * `delayHook` holds asynchronous operations.
 */
export class MemoryFileSystem implements FileSystem {
  /** Current names (absolute path → inode): what readdir and open see. */
  private readonly names = new Map<string, Inode>();
  /** Directories (never lost: made once, before the engine runs). */
  private readonly dirs = new Map<string, DirState>([['/', { durable: new Map(), pending: [] }]]);
  private readonly locks = new Set<string>();
  private readonly rules: { rule: FaultRule; seen: number; failed: number }[] = [];
  /** Runs before every operation; may throw to fail it. */
  faultHook: ((op: FsOp, file: string) => void) | undefined;
  /**
   * Runs before every asynchronous operation (not readSync/writeSync); a returned promise
   * holds the operation until it settles (a slow disk; a flush held while a test looks).
   */
  delayHook: ((op: FsOp, file: string) => Promise<void> | void) | undefined;
  /** Operations started (every call that goes through the fault stage). */
  opCount = 0;

  /** Fails matching operations from now on (see FaultRule); returns a function that removes the rule. */
  injectFault(rule: FaultRule): () => void {
    const entry = { rule, seen: 0, failed: 0 };
    this.rules.push(entry);
    return () => {
      const i = this.rules.indexOf(entry);
      if (i >= 0) this.rules.splice(i, 1);
    };
  }

  clearFaults(): void {
    this.rules.length = 0;
  }

  /** @internal The delay stage of asynchronous operations (before the fault stage). */
  async _delay(op: FsOp, file: string): Promise<void> {
    const d = this.delayHook?.(op, file);
    if (d) await d;
  }

  /** @internal The fault stage every operation passes first (handles call it too). */
  _fault(op: FsOp, file: string): void {
    this.opCount++;
    if (this.faultHook) this.faultHook(op, file);
    for (const r of this.rules) {
      const ops = typeof r.rule.op === 'string' ? [r.rule.op] : r.rule.op;
      if (!ops.includes(op)) continue;
      const f = r.rule.file;
      if (f !== undefined && !(typeof f === 'string' ? file.includes(f) : f.test(file))) continue;
      if (r.seen++ < (r.rule.after ?? 0)) continue;
      if (r.failed >= (r.rule.times ?? Infinity)) continue;
      r.failed++;
      throw new IoError(`${op} ${file}: ${r.rule.errno} (injected)`, undefined, { file, op, errno: r.rule.errno, partialBytes: r.rule.partialBytes ?? 0 });
    }
  }

  private dirOf(abs: string): DirState {
    const d = this.dirs.get(path.dirname(abs));
    if (!d) throw new IoError(`no such directory for ${abs}`, undefined, { file: abs, errno: 'ENOENT' });
    return d;
  }

  private inode(file: string): Inode {
    const n = this.names.get(path.resolve(file));
    if (!n) throw new IoError(`no such file ${file}`, undefined, { file, errno: 'ENOENT' });
    return n;
  }

  /** Gives `abs` a new empty inode (a creation, pending until the directory is synced). */
  private link(abs: string): Inode {
    const d = this.dirOf(abs);
    const n = new Inode();
    this.names.set(abs, n);
    d.pending.push({ kind: 'link', name: path.basename(abs), inode: n });
    return n;
  }

  async open(file: string, mode: OpenMode): Promise<FileHandle> {
    await this._delay('open', file);
    this._fault('open', file);
    const abs = path.resolve(file);
    this.dirOf(abs);
    let n = this.names.get(abs);
    if (mode === 'create' && n) throw new IoError(`file exists ${file}`, undefined, { file, errno: 'EEXIST' });
    if (mode === 'read' && !n) throw new IoError(`no such file ${file}`, undefined, { file, errno: 'ENOENT' });
    n ??= this.link(abs);
    return new MemFileHandle(this, abs, n, mode === 'read');
  }

  async readFile(file: string): Promise<Buffer> {
    await this._delay('read', file);
    this._fault('read', file);
    return Buffer.from(this.inode(file).data.view());
  }

  /**
   * As NodeFileSystem: opens (creating, or truncating in place), writes, fdatasyncs — the
   * sync a step of its own ('sync' for faults and power cuts), with the data pending before it.
   */
  async writeFileSync(file: string, data: Buffer): Promise<void> {
    await this._delay('writeFile', file);
    this._fault('writeFile', file);
    const abs = path.resolve(file);
    const n = this.names.get(abs) ?? this.link(abs);
    n.data.truncate(0);
    n.data.write(0, data);
    n.pending.push({ kind: 'truncate', length: 0 }, { kind: 'write', position: 0, bytes: Buffer.from(data) });
    try {
      this._fault('sync', file);
    } catch (err) {
      n.pending = []; // a failed fsync: see MemFileHandle.sync
      throw err;
    }
    syncInode(n);
  }

  async rename(from: string, to: string): Promise<void> {
    await this._delay('rename', from);
    this._fault('rename', from);
    const src = path.resolve(from);
    const dst = path.resolve(to);
    const n = this.inode(src);
    this.names.delete(src);
    this.names.set(dst, n);
    if (path.dirname(src) === path.dirname(dst)) {
      this.dirOf(src).pending.push({ kind: 'rename', from: path.basename(src), to: path.basename(dst) });
    } else {
      this.dirOf(src).pending.push({ kind: 'unlink', name: path.basename(src) });
      this.dirOf(dst).pending.push({ kind: 'link', name: path.basename(dst), inode: n });
    }
  }

  async unlink(file: string): Promise<void> {
    await this._delay('unlink', file);
    this._fault('unlink', file);
    const abs = path.resolve(file);
    if (!this.names.delete(abs)) return; // as NodeFileSystem: a missing file is no error
    this.dirOf(abs).pending.push({ kind: 'unlink', name: path.basename(abs) });
  }

  async readdir(dir: string): Promise<string[]> {
    await this._delay('readdir', dir);
    this._fault('readdir', dir);
    const abs = path.resolve(dir);
    if (!this.dirs.has(abs)) throw new IoError(`no such directory ${dir}`, undefined, { file: dir, errno: 'ENOENT' });
    const out: string[] = [];
    for (const name of this.names.keys()) if (path.dirname(name) === abs) out.push(path.basename(name));
    for (const d of this.dirs.keys()) if (d !== abs && path.dirname(d) === abs) out.push(path.basename(d));
    return out.sort();
  }

  async mkdirp(dir: string): Promise<void> {
    let d = path.resolve(dir);
    while (!this.dirs.has(d)) {
      this.dirs.set(d, { durable: new Map(), pending: [] });
      d = path.dirname(d);
    }
  }

  async syncDir(dir: string): Promise<void> {
    await this._delay('syncDir', dir);
    this._fault('syncDir', dir);
    const abs = path.resolve(dir);
    const d = this.dirs.get(abs);
    if (!d) throw new IoError(`no such directory ${dir}`, undefined, { file: dir, errno: 'ENOENT' });
    d.durable = new Map();
    for (const [name, n] of this.names) if (path.dirname(name) === abs) d.durable.set(path.basename(name), n);
    d.pending = [];
  }

  async exists(file: string): Promise<boolean> {
    const abs = path.resolve(file);
    return this.names.has(abs) || this.dirs.has(abs);
  }

  async lock(file: string): Promise<FileLock> {
    const abs = path.resolve(file);
    if (this.locks.has(abs)) throw new LockedError(path.dirname(abs), 'another engine in this process');
    this.locks.add(abs);
    return {
      release: async () => {
        this.locks.delete(abs);
      },
    };
  }

  /**
   * The state a machine finds after losing power now: synced data under synced names, plus
   * (with a seed or callbacks) some of what was pending — see the file header. Everything
   * in the new file system is synced. This file system is left as it was.
   */
  powerCut(opts: PowerCutOptions = {}): MemoryFileSystem {
    const rand = opts.seed === undefined ? undefined : prng(opts.seed);
    const fileCut =
      opts.files ??
      ((_file: string, pending: readonly PendingFileOp[]): FileCut => {
        if (!rand || pending.length === 0) return { ops: 0 };
        const ops = Math.floor(rand() * (pending.length + 1));
        const next = pending[ops];
        if (next?.kind !== 'write' || rand() < 0.5) return { ops };
        return { ops, tornBytes: Math.floor(rand() * next.bytes.length), zeroFill: rand() < 1 / 3 };
      });
    const dirCut = opts.dirs ?? ((_dir: string, pending: readonly DirOp[]): number => (rand ? Math.floor(rand() * (pending.length + 1)) : 0));

    const next = new MemoryFileSystem();
    const cutInodes = new Map<Inode, Inode>();
    for (const [dirPath, d] of this.dirs) {
      const entries = new Map(d.durable);
      let kept: DirOp[];
      if (rand && !opts.dirs && opts.dirOrder === 'any') {
        kept = d.pending.filter(() => rand() < 0.5);
      } else {
        const keep = dirCut(dirPath, d.pending);
        kept = typeof keep === 'number' ? d.pending.slice(0, Math.max(0, Math.floor(keep))) : d.pending.filter((_, i) => keep[i] === true);
      }
      for (const op of kept) {
        if (op.kind === 'link') entries.set(op.name, op.inode);
        else if (op.kind === 'unlink') entries.delete(op.name);
        else {
          const n = entries.get(op.from);
          entries.delete(op.from);
          if (n) entries.set(op.to, n);
        }
      }
      const nd: DirState = { durable: new Map(), pending: [] };
      next.dirs.set(dirPath, nd);
      for (const [name, n] of entries) {
        let copy = cutInodes.get(n);
        if (!copy) {
          copy = new Inode(cutContents(path.join(dirPath, name), n, fileCut));
          cutInodes.set(n, copy);
        }
        nd.durable.set(name, copy);
        next.names.set(path.join(dirPath, name), copy);
      }
    }
    return next;
  }

  /** The state after the process died but the machine did not: everything written survives. */
  processCrash(): MemoryFileSystem {
    const next = new MemoryFileSystem();
    for (const d of this.dirs.keys()) next.dirs.set(d, { durable: new Map(), pending: [] });
    for (const [name, n] of this.names) {
      const copy = new Inode(Buffer.from(n.data.view()));
      next.names.set(name, copy);
      next.dirOf(name).durable.set(path.basename(name), copy);
    }
    return next;
  }

  /** A file's current bytes (a view: do not keep it across writes). For tests that inspect or damage files. */
  rawFile(file: string): Buffer {
    return this.inode(file).data.view();
  }

  /** Replaces a file's bytes and makes the file and its name durable at once (tests that damage files). */
  setRawFile(file: string, data: Buffer): void {
    const abs = path.resolve(file);
    const d = this.dirOf(abs);
    const n = new Inode(Buffer.from(data));
    this.names.set(abs, n);
    d.durable.set(path.basename(abs), n);
  }

  /** Pending (unsynced) changes of a file and of its directory: for tests of the model itself. */
  unsynced(file: string): { fileOps: number; dirOps: number } {
    const abs = path.resolve(file);
    return { fileOps: this.names.get(abs)?.pending.length ?? 0, dirOps: this.dirs.get(path.dirname(abs))?.pending.length ?? 0 };
  }
}

/** Applies a file's pending changes to its durable contents (a successful fsync). */
function syncInode(n: Inode): void {
  for (const op of n.pending) n.durable.apply(op);
  n.pending = [];
}

/** The contents of inode `n` after a power cut that keeps what `cut` says of its pending changes. */
function cutContents(file: string, n: Inode, cut: (file: string, pending: readonly PendingFileOp[]) => FileCut): Buffer {
  const out = new Bytes(n.durable.view());
  if (n.pending.length === 0) return Buffer.from(out.view());
  const c = cut(file, n.pending);
  const ops = Math.max(0, Math.min(n.pending.length, Math.floor(c.ops)));
  for (let i = 0; i < ops; i++) out.apply(n.pending[i]!);
  const torn = n.pending[ops];
  if (torn?.kind === 'write' && ((c.tornBytes ?? 0) > 0 || c.zeroFill)) {
    const keep = Math.max(0, Math.min(torn.bytes.length, Math.floor(c.tornBytes ?? 0)));
    const bytes = c.zeroFill ? Buffer.concat([torn.bytes.subarray(0, keep), Buffer.alloc(torn.bytes.length - keep)]) : torn.bytes.subarray(0, keep);
    out.write(torn.position, bytes);
  }
  return Buffer.from(out.view());
}

class MemFileHandle implements FileHandle {
  private closed = false;
  constructor(
    private readonly fs: MemoryFileSystem,
    readonly path: string,
    private readonly n: Inode,
    private readonly readOnly: boolean,
  ) {}

  private check(): void {
    if (this.closed) throw new IoError(`file ${this.path} is closed`, undefined, { file: this.path, errno: 'EBADF' });
  }

  private checkWritable(): void {
    if (this.readOnly) throw new IoError(`file ${this.path} is open read-only`, undefined, { file: this.path, errno: 'EBADF' });
  }

  async read(buf: Buffer, offset: number, length: number, position: number): Promise<number> {
    await this.fs._delay('read', this.path);
    return this.readSync(buf, offset, length, position);
  }

  readSync(buf: Buffer, offset: number, length: number, position: number): number {
    this.check();
    this.fs._fault('read', this.path);
    const data = this.n.data;
    const end = Math.min(data.length, position + length);
    if (end <= position) return 0;
    data.buf.copy(buf, offset, position, end);
    return end - position;
  }

  async write(buf: Buffer, position: number): Promise<void> {
    await this.fs._delay('write', this.path);
    this.writeSync(buf, position);
  }

  writeSync(buf: Buffer, position: number): void {
    this.check();
    this.checkWritable();
    try {
      this.fs._fault('write', this.path);
    } catch (err) {
      const partial = Math.min(buf.length, Number((err as IoError).details?.partialBytes) || 0);
      if (partial > 0) {
        const bytes = Buffer.from(buf.subarray(0, partial));
        this.n.data.write(position, bytes);
        this.n.pending.push({ kind: 'write', position, bytes });
      }
      throw err;
    }
    const bytes = Buffer.from(buf);
    this.n.data.write(position, bytes);
    this.n.pending.push({ kind: 'write', position, bytes });
  }

  async sync(): Promise<void> {
    await this.fs._delay('sync', this.path);
    this.check();
    try {
      this.fs._fault('sync', this.path);
    } catch (err) {
      // As Linux does: the dirty pages are dropped (marked clean) once the error is reported.
      this.n.pending = [];
      throw err;
    }
    syncInode(this.n);
  }

  async truncate(lengthBytes: number): Promise<void> {
    await this.fs._delay('truncate', this.path);
    this.check();
    this.checkWritable();
    this.fs._fault('truncate', this.path);
    this.n.data.truncate(lengthBytes);
    this.n.pending.push({ kind: 'truncate', length: lengthBytes });
  }

  async size(): Promise<number> {
    this.check();
    return this.n.data.length;
  }

  async close(): Promise<void> {
    await this.fs._delay('close', this.path);
    // As close(2): the descriptor is gone even when an error is reported.
    this.closed = true;
    this.fs._fault('close', this.path);
  }
}
