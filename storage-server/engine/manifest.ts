// The manifest: which tables are live (oldest first), which WAL segments still matter,
// and the counters. Written atomically (temp file, fsync, rename, fsync of the directory)
// and read on open. Format in ./engine-format.md. Callers serialize writes.

import path from 'node:path';
import { CorruptionError } from './engine-errors.js';
import { crc32 } from './coding.js';
import type { FileSystem } from './file-system.js';
import { MANIFEST_FILE, MANIFEST_TEMP_FILE } from './filenames.js';

/**
 * The format written. Format 2 says the directory's WAL segments are log format 2; a
 * format-1 manifest (read, rewritten as 2 at open) may sit beside log-format-1 segments.
 */
export const MANIFEST_FORMAT_VERSION = 2;
const READABLE_VERSIONS = [1, 2];
const HEADER = 'RINGKV-MANIFEST';

export interface Manifest {
  format: number;
  /** Next number for a WAL segment or table. */
  nextFileNumber: number;
  /** Highest sequence number that any table holds. */
  lastSeq: number;
  /** WAL segments numbered below this are flushed into tables and can be deleted. */
  logNumber: number;
  /** Live table numbers, oldest first (ascending sequence ranges, disjoint). */
  tables: number[];
}

/** Encodes `m` in its own format (m.format: 1 or 2; the engine writes MANIFEST_FORMAT_VERSION). */
export function encodeManifest(m: Manifest): Buffer {
  const body = JSON.stringify(m);
  const sum = crc32(Buffer.from(body, 'utf8')).toString(16).padStart(8, '0');
  return Buffer.from(`${HEADER} ${m.format}\n${body}\ncrc32 ${sum}\n`, 'utf8');
}

export function decodeManifest(buf: Buffer, file: string): Manifest {
  const text = buf.toString('utf8');
  const lines = text.split('\n');
  const bad = (why: string): never => {
    throw new CorruptionError(`manifest is unreadable: ${why}`, { file, offset: 0 });
  };
  if (lines.length < 3 || !lines[0]!.startsWith(`${HEADER} `)) bad('missing header');
  const version = Number(lines[0]!.slice(HEADER.length + 1));
  if (!READABLE_VERSIONS.includes(version)) bad(`unsupported format version ${lines[0]!.slice(HEADER.length + 1)}`);
  const body = lines[1]!;
  const m = /^crc32 ([0-9a-f]{8})$/.exec(lines[2]!);
  if (!m) bad('missing checksum');
  if (crc32(Buffer.from(body, 'utf8')).toString(16).padStart(8, '0') !== m![1]) bad('checksum mismatch');
  let parsed: Manifest;
  try {
    parsed = JSON.parse(body) as Manifest;
  } catch {
    return bad('body is not JSON');
  }
  const okInt = (n: unknown) => Number.isSafeInteger(n) && (n as number) >= 0;
  if (
    !okInt(parsed.nextFileNumber) ||
    !okInt(parsed.lastSeq) ||
    !okInt(parsed.logNumber) ||
    !Array.isArray(parsed.tables) ||
    !parsed.tables.every(okInt)
  ) {
    bad('fields missing or of the wrong type');
  }
  if (parsed.format !== version) bad(`format ${String(parsed.format)} in a version ${version} header`);
  return parsed;
}

/** Reads the manifest of `dir`; undefined when there is none. Throws CorruptionError when it is damaged. */
export async function readManifest(fs: FileSystem, dir: string): Promise<Manifest | undefined> {
  const file = path.join(dir, MANIFEST_FILE);
  if (!(await fs.exists(file))) return undefined;
  return decodeManifest(await fs.readFile(file), file);
}

/**
 * Replaces the manifest of `dir` atomically. The files it names must exist (written and
 * synced); their names are synced first, so that a manifest on disk never names a file
 * whose name is not (POSIX orders no directory changes without an fsync of the directory).
 */
export async function writeManifest(fs: FileSystem, dir: string, m: Manifest): Promise<void> {
  await fs.syncDir(dir);
  const tmp = path.join(dir, MANIFEST_TEMP_FILE);
  await fs.writeFileSync(tmp, encodeManifest(m));
  await fs.rename(tmp, path.join(dir, MANIFEST_FILE));
  await fs.syncDir(dir);
}
