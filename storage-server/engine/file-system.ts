// The file-system seam of the engine. Everything the engine does to disk goes through a
// FileSystem: the real one (NodeFileSystem, here) and an in-memory one that models power
// cuts and injects I/O errors (MemoryFileSystem, memory-file-system.ts).
// Handles are not thread-safe in the sense of overlapping writes: callers serialize
// writes to one handle (await the previous one); reads may overlap freely.

import fs from 'node:fs';
import path from 'node:path';
import { IoError, LockedError } from './engine-errors.js';

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
