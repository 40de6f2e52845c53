// The file-system seam of the engine. Everything the engine does to disk goes through a
// FileSystem: the real one (NodeFileSystem) and an in-memory one (MemoryFileSystem) that
// can simulate a crash by keeping only what was synced, and inject I/O errors.
// Handles are not thread-safe in the sense of overlapping writes: callers serialize
// writes to one handle (await the previous one); reads may overlap freely.

import fs from 'node:fs';
import path from 'node:path';
import { IoError, LockedError } from '../../sdk/errors.js';

/** An open file. Positions are absolute byte offsets. */
export interface FileHandle {
  readonly path: string;
  /** Reads up to `length` bytes at `position` into `buf` at `offset`; resolves with the count read. */
  read(buf: Buffer, offset: number, length: number, position: number): Promise<number>;
  /**
   * read(), done on the calling thread: the event loop waits for the disk. Cheap when the
   * bytes are in the page cache (no thread-pool round trip); used for point-lookup block
   * reads under `blockReadMode: 'sync'`.
   */
  readSync(buf: Buffer, offset: number, length: number, position: number): number;
  /** Writes all of `buf` at `position`. */
  write(buf: Buffer, position: number): Promise<void>;
  /** write(), done on the calling thread (small WAL appends: a copy into the page cache). */
  writeSync(buf: Buffer, position: number): void;
  /** Makes the file's data durable (fdatasync). */
  sync(): Promise<void>;
  truncate(lengthBytes: number): Promise<void>;
  size(): Promise<number>;
  close(): Promise<void>;
}

export type OpenMode =
  /** read only; the file must exist */
  | 'read'
  /** read/write; the file is created when missing, kept when present */
  | 'readwrite'
  /** write; the file must not exist */
  | 'create';

/** A directory lock; `release` removes it. */
export interface FileLock {
  release(): Promise<void>;
}

export interface FileSystem {
  open(file: string, mode: OpenMode): Promise<FileHandle>;
  readFile(file: string): Promise<Buffer>;
  /** Creates or replaces `file` with `data` and syncs it (not atomic by itself: use rename). */
  writeFileSync(file: string, data: Buffer): Promise<void>;
  rename(from: string, to: string): Promise<void>;
  unlink(file: string): Promise<void>;
  readdir(dir: string): Promise<string[]>;
  mkdirp(dir: string): Promise<void>;
  /** Makes the directory's entries (creates, renames, unlinks) durable. */
  syncDir(dir: string): Promise<void>;
  exists(file: string): Promise<boolean>;
  /**
   * Takes an exclusive lock on `file` for this process. Fails with LockedError when a live
   * process holds it. A lock left by a dead process is taken over.
   */
  lock(file: string): Promise<FileLock>;
}

function ioError(op: string, file: string, err: unknown): IoError {
  const e = err as NodeJS.ErrnoException;
  return new IoError(`${op} ${file}: ${e?.message ?? String(err)}`, err, { file, op, errno: e?.code });
}

class NodeFileHandle implements FileHandle {
  constructor(
    readonly path: string,
    private readonly fd: number,
  ) {}

  read(buf: Buffer, offset: number, length: number, position: number): Promise<number> {
    return new Promise((resolve, reject) => {
      fs.read(this.fd, buf, offset, length, position, (err, n) => (err ? reject(ioError('read', this.path, err)) : resolve(n)));
    });
  }

  readSync(buf: Buffer, offset: number, length: number, position: number): number {
    try {
      return fs.readSync(this.fd, buf, offset, length, position);
    } catch (err) {
      throw ioError('read', this.path, err);
    }
  }

  async write(buf: Buffer, position: number): Promise<void> {
    let done = 0;
    while (done < buf.length) {
      const n = await new Promise<number>((resolve, reject) => {
        fs.write(this.fd, buf, done, buf.length - done, position + done, (err, written) =>
          err ? reject(ioError('write', this.path, err)) : resolve(written),
        );
      });
      done += n;
    }
  }

  writeSync(buf: Buffer, position: number): void {
    let done = 0;
    try {
      while (done < buf.length) done += fs.writeSync(this.fd, buf, done, buf.length - done, position + done);
    } catch (err) {
      throw ioError('write', this.path, err);
    }
  }

  sync(): Promise<void> {
    return new Promise((resolve, reject) => {
      fs.fdatasync(this.fd, (err) => (err ? reject(ioError('fdatasync', this.path, err)) : resolve()));
    });
  }

  truncate(lengthBytes: number): Promise<void> {
    return new Promise((resolve, reject) => {
      fs.ftruncate(this.fd, lengthBytes, (err) => (err ? reject(ioError('ftruncate', this.path, err)) : resolve()));
    });
  }

  size(): Promise<number> {
    return new Promise((resolve, reject) => {
      fs.fstat(this.fd, (err, st) => (err ? reject(ioError('fstat', this.path, err)) : resolve(st.size)));
    });
  }

  close(): Promise<void> {
    return new Promise((resolve, reject) => {
      fs.close(this.fd, (err) => (err ? reject(ioError('close', this.path, err)) : resolve()));
    });
  }
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

// Locks held by this process, so that a second open in the same process fails too.
const heldLocks = new Set<string>();

/** The real file system, through node:fs. */
export class NodeFileSystem implements FileSystem {
  async open(file: string, mode: OpenMode): Promise<FileHandle> {
    const flags = mode === 'read' ? 'r' : mode === 'create' ? 'wx+' : fs.constants.O_RDWR | fs.constants.O_CREAT;
    // A raw fd and the callback API: measurably cheaper per call than fs.promises.FileHandle.
    const fd = await new Promise<number>((resolve, reject) => {
      fs.open(file, flags, 0o644, (err, fd) => (err ? reject(ioError('open', file, err)) : resolve(fd)));
    });
    return new NodeFileHandle(file, fd);
  }

  async readFile(file: string): Promise<Buffer> {
    try {
      return await fs.promises.readFile(file);
    } catch (err) {
      throw ioError('readFile', file, err);
    }
  }

  async writeFileSync(file: string, data: Buffer): Promise<void> {
    let h: fs.promises.FileHandle | undefined;
    try {
      h = await fs.promises.open(file, 'w');
      await h.writeFile(data);
      await h.datasync();
    } catch (err) {
      throw ioError('writeFile', file, err);
    } finally {
      await h?.close();
    }
  }

  async rename(from: string, to: string): Promise<void> {
    try {
      await fs.promises.rename(from, to);
    } catch (err) {
      throw ioError('rename', from, err);
    }
  }

  async unlink(file: string): Promise<void> {
    try {
      await fs.promises.unlink(file);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw ioError('unlink', file, err);
    }
  }

  async readdir(dir: string): Promise<string[]> {
    try {
      return await fs.promises.readdir(dir);
    } catch (err) {
      throw ioError('readdir', dir, err);
    }
  }

  async mkdirp(dir: string): Promise<void> {
    try {
      await fs.promises.mkdir(dir, { recursive: true });
    } catch (err) {
      throw ioError('mkdir', dir, err);
    }
  }

  async syncDir(dir: string): Promise<void> {
    let h: fs.promises.FileHandle | undefined;
    try {
      h = await fs.promises.open(dir, 'r');
      await h.sync();
    } catch (err) {
      throw ioError('fsync dir', dir, err);
    } finally {
      await h?.close();
    }
  }

  async exists(file: string): Promise<boolean> {
    try {
      await fs.promises.access(file);
      return true;
    } catch {
      return false;
    }
  }

  async lock(file: string): Promise<FileLock> {
    const abs = path.resolve(file);
    if (heldLocks.has(abs)) throw new LockedError(path.dirname(abs), `this process (pid ${process.pid})`);
    const body = Buffer.from(`${process.pid}\n`);
    for (let attempt = 0; attempt < 3; attempt++) {
      try {
        const h = await fs.promises.open(abs, 'wx');
        await h.writeFile(body);
        await h.datasync();
        await h.close();
        heldLocks.add(abs);
        return {
          release: async () => {
            heldLocks.delete(abs);
            await fs.promises.unlink(abs).catch(() => undefined);
          },
        };
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw ioError('lock', abs, err);
      }
      // Someone holds or held it: take it over only when that process is gone.
      const text = await fs.promises.readFile(abs, 'utf8').catch(() => '');
      const pid = Number.parseInt(text, 10);
      if (Number.isInteger(pid) && pid > 0 && pid !== process.pid && processAlive(pid)) {
        throw new LockedError(path.dirname(abs), `process ${pid}`);
      }
      await fs.promises.unlink(abs).catch(() => undefined);
    }
    throw new LockedError(path.dirname(abs), 'another process racing for the lock');
  }
}

// ---------------------------------------------------------------------------------------
// In-memory file system with crash simulation.

interface MemNode {
  /** Current contents (what reads see). */
  data: Buffer;
  length: number;
  /** Contents as of the last sync: what survives a crash. */
  durable: Buffer;
}

/** Names an operation for fault injection. */
export type FsOp = 'open' | 'read' | 'write' | 'sync' | 'truncate' | 'rename' | 'unlink' | 'readdir' | 'syncDir' | 'writeFile';

/**
 * A file system in memory. File data becomes durable on sync(); directory entries
 * (creates, renames, unlinks) become durable on syncDir(). crash() returns the state a
 * machine would find after power loss: only durable data under durable names.
 * `faultHook` can throw to inject an I/O error into any operation.
 */
export class MemoryFileSystem implements FileSystem {
  private readonly names = new Map<string, MemNode>();
  private readonly durableNames = new Map<string, MemNode>();
  private readonly dirs = new Set<string>(['/']);
  private readonly locks = new Set<string>();
  faultHook: ((op: FsOp, file: string) => void) | undefined;

  private fault(op: FsOp, file: string): void {
    if (this.faultHook) this.faultHook(op, file);
  }

  private node(file: string): MemNode {
    const n = this.names.get(path.resolve(file));
    if (!n) throw new IoError(`no such file ${file}`, undefined, { file, errno: 'ENOENT' });
    return n;
  }

  async open(file: string, mode: OpenMode): Promise<FileHandle> {
    this.fault('open', file);
    const abs = path.resolve(file);
    if (!this.dirs.has(path.dirname(abs))) throw new IoError(`no such directory for ${file}`, undefined, { file, errno: 'ENOENT' });
    let n = this.names.get(abs);
    if (mode === 'create' && n) throw new IoError(`file exists ${file}`, undefined, { file, errno: 'EEXIST' });
    if (mode === 'read' && !n) throw new IoError(`no such file ${file}`, undefined, { file, errno: 'ENOENT' });
    if (!n) {
      n = { data: Buffer.alloc(0), length: 0, durable: Buffer.alloc(0) };
      this.names.set(abs, n);
    }
    return new MemFileHandle(this, abs, n);
  }

  /** @internal used by handles for fault injection */
  _fault(op: FsOp, file: string): void {
    this.fault(op, file);
  }

  async readFile(file: string): Promise<Buffer> {
    this.fault('read', file);
    const n = this.node(file);
    return Buffer.from(n.data.subarray(0, n.length));
  }

  async writeFileSync(file: string, data: Buffer): Promise<void> {
    this.fault('writeFile', file);
    const abs = path.resolve(file);
    const n: MemNode = { data: Buffer.from(data), length: data.length, durable: Buffer.from(data) };
    this.names.set(abs, n);
  }

  async rename(from: string, to: string): Promise<void> {
    this.fault('rename', from);
    const n = this.node(from);
    this.names.delete(path.resolve(from));
    this.names.set(path.resolve(to), n);
  }

  async unlink(file: string): Promise<void> {
    this.fault('unlink', file);
    this.names.delete(path.resolve(file));
  }

  async readdir(dir: string): Promise<string[]> {
    this.fault('readdir', dir);
    const abs = path.resolve(dir);
    if (!this.dirs.has(abs)) throw new IoError(`no such directory ${dir}`, undefined, { file: dir, errno: 'ENOENT' });
    const out: string[] = [];
    for (const name of this.names.keys()) if (path.dirname(name) === abs) out.push(path.basename(name));
    for (const d of this.dirs) if (d !== abs && path.dirname(d) === abs) out.push(path.basename(d));
    return out.sort();
  }

  async mkdirp(dir: string): Promise<void> {
    let d = path.resolve(dir);
    while (!this.dirs.has(d)) {
      this.dirs.add(d);
      d = path.dirname(d);
    }
  }

  async syncDir(dir: string): Promise<void> {
    this.fault('syncDir', dir);
    const abs = path.resolve(dir);
    for (const name of [...this.durableNames.keys()]) {
      if (path.dirname(name) === abs && !this.names.has(name)) this.durableNames.delete(name);
    }
    for (const [name, n] of this.names) if (path.dirname(name) === abs) this.durableNames.set(name, n);
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
   * The state after a power loss: a new file system holding only synced data under synced
   * names. Unsynced appends are dropped; with `keepUnsyncedPrefixBytes` a torn write can
   * be modelled by keeping part of the unsynced tail of every file.
   */
  crash(opts: { keepUnsyncedPrefixBytes?: number } = {}): MemoryFileSystem {
    const next = new MemoryFileSystem();
    for (const d of this.dirs) next.dirs.add(d);
    for (const [name, n] of this.durableNames) {
      let data = Buffer.from(n.durable);
      const keep = opts.keepUnsyncedPrefixBytes ?? 0;
      if (keep > 0 && n.length > data.length && n.data.subarray(0, data.length).equals(data)) {
        data = Buffer.from(n.data.subarray(0, Math.min(n.length, data.length + keep)));
      }
      const copy: MemNode = { data, length: data.length, durable: Buffer.from(data) };
      next.names.set(name, copy);
      next.durableNames.set(name, copy);
    }
    return next;
  }

  /** The state after the process died but the machine did not: everything written survives. */
  processCrash(): MemoryFileSystem {
    const next = new MemoryFileSystem();
    for (const d of this.dirs) next.dirs.add(d);
    for (const [name, n] of this.names) {
      const data = Buffer.from(n.data.subarray(0, n.length));
      const copy: MemNode = { data, length: data.length, durable: Buffer.from(data) };
      next.names.set(name, copy);
      next.durableNames.set(name, copy);
    }
    return next;
  }

  /** Direct access for tests that damage files. */
  rawFile(file: string): Buffer {
    const n = this.node(file);
    return n.data.subarray(0, n.length);
  }

  setRawFile(file: string, data: Buffer): void {
    const abs = path.resolve(file);
    const n: MemNode = { data: Buffer.from(data), length: data.length, durable: Buffer.from(data) };
    this.names.set(abs, n);
    this.durableNames.set(abs, n);
  }
}

class MemFileHandle implements FileHandle {
  private closed = false;
  constructor(
    private readonly fs: MemoryFileSystem,
    readonly path: string,
    private readonly n: MemNode,
  ) {}

  private check(): void {
    if (this.closed) throw new IoError(`file ${this.path} is closed`, undefined, { file: this.path, errno: 'EBADF' });
  }

  async read(buf: Buffer, offset: number, length: number, position: number): Promise<number> {
    return this.readSync(buf, offset, length, position);
  }

  readSync(buf: Buffer, offset: number, length: number, position: number): number {
    this.check();
    this.fs._fault('read', this.path);
    const end = Math.min(this.n.length, position + length);
    if (end <= position) return 0;
    this.n.data.copy(buf, offset, position, end);
    return end - position;
  }

  async write(buf: Buffer, position: number): Promise<void> {
    this.writeSync(buf, position);
  }

  writeSync(buf: Buffer, position: number): void {
    this.check();
    this.fs._fault('write', this.path);
    const end = position + buf.length;
    if (end > this.n.data.length) {
      const grown = Buffer.alloc(Math.max(end, this.n.data.length * 2, 4096));
      this.n.data.copy(grown, 0, 0, this.n.length);
      this.n.data = grown;
    }
    buf.copy(this.n.data, position);
    this.n.length = Math.max(this.n.length, end);
  }

  async sync(): Promise<void> {
    this.check();
    this.fs._fault('sync', this.path);
    this.n.durable = Buffer.from(this.n.data.subarray(0, this.n.length));
  }

  async truncate(lengthBytes: number): Promise<void> {
    this.check();
    this.fs._fault('truncate', this.path);
    if (lengthBytes < this.n.length) this.n.data.fill(0, lengthBytes, this.n.length);
    this.n.length = Math.min(this.n.length, lengthBytes);
  }

  async size(): Promise<number> {
    this.check();
    return this.n.length;
  }

  async close(): Promise<void> {
    this.closed = true;
  }
}
