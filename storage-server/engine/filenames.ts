// The only place that makes and parses the engine's file names (see ./engine-format.md).
// Numbered files share one counter: WAL segments NNNNNN.log, tables NNNNNN.sst.
// (Retired WAL segments kept for reuse keep their names: numbers below the manifest's logNumber.)

import path from 'node:path';

export const LOCK_FILE = 'LOCK';
export const MANIFEST_FILE = 'MANIFEST';
export const MANIFEST_TEMP_FILE = 'MANIFEST.tmp';
/** A WAL segment file being preallocated, renamed to its segment's name once its header is durable. */
export const WAL_TEMP_FILE = 'WAL.tmp';

function pad(n: number): string {
  return String(n).padStart(6, '0');
}

export function walFile(dir: string, n: number): string {
  return path.join(dir, `${pad(n)}.log`);
}

export function tableFile(dir: string, n: number): string {
  return path.join(dir, `${pad(n)}.sst`);
}

export function walTempFile(dir: string): string {
  return path.join(dir, WAL_TEMP_FILE);
}

export type FileKind = 'wal' | 'wal-temp' | 'table' | 'manifest' | 'manifest-temp' | 'lock' | 'other';

/** Classifies a file name found in the data directory. */
export function parseFileName(name: string): { kind: FileKind; number: number } {
  const m = /^(\d{6,})\.(log|sst)$/.exec(name);
  if (m) return { kind: m[2] === 'log' ? 'wal' : 'table', number: Number(m[1]) };
  if (name === MANIFEST_FILE) return { kind: 'manifest', number: 0 };
  if (name === MANIFEST_TEMP_FILE) return { kind: 'manifest-temp', number: 0 };
  if (name === WAL_TEMP_FILE) return { kind: 'wal-temp', number: 0 };
  if (name === LOCK_FILE) return { kind: 'lock', number: 0 };
  return { kind: 'other', number: 0 };
}
