// The engine's health: how an I/O failure is classified (a refusal that lost nothing, a
// failure that may have lost data, or one that needs an operator), the state the engine
// reports, and the back-off of its background retries. Plain synchronous bookkeeping,
// single-threaded; engine.ts decides what to retry and calls in here.
//
// Modelled on RocksDB's ErrorHandler: soft errors (no space, no descriptors) stop writes
// until a background probe succeeds; hard errors (a failed fsync, EIO on a write) are
// recovered by reopening the write path internally; fatal ones stop writes for good.

import { CorruptionError, EngineError } from './engine-errors.js';

/**
 * - `ok`: writes, flushes and compactions work;
 * - `degraded-retrying`: something failed with a soft error (or a flush or compaction
 *   failed) and is retried in the background; writes may be refused meanwhile (see
 *   `writesRefused`);
 * - `recovering`: a write may have been lost (failed fsync, EIO): the write path is being
 *   reopened internally; writes are refused until it is;
 * - `failed`: the engine gave up (damaged data, read-only file system, recovery failing
 *   again and again): writes fail until an operator fixes the cause and reopens it.
 */
export type EngineState = 'ok' | 'degraded-retrying' | 'recovering' | 'failed';

/**
 * - `soft`: refused before anything was written (ENOSPC, EDQUOT, EMFILE, ENFILE on an open,
 *   a write or a create): nothing was lost, the same work can be tried again;
 * - `hard`: possibly lost (any failed fsync/fdatasync, EIO or an unknown error on a write):
 *   the file's state is unknown, it is never synced again;
 * - `fatal`: retrying cannot help (corruption, a read-only file system, permissions).
 */
export type ErrorSeverity = 'soft' | 'hard' | 'fatal';

/** Which part of the engine met the error. */
export type ErrorSource = 'wal' | 'flush' | 'compaction' | 'recovery';

/** What the engine was doing to a file when it failed (decides soft against hard). */
export type IoPhase = 'append' | 'sync' | 'create' | 'other';

/** A failure of the write path, with what was being done to the file (decides its severity). */
export class IoFailure extends Error {
  constructor(
    readonly phase: IoPhase,
    override readonly cause: unknown,
  ) {
    super((cause as Error)?.message ?? String(cause));
  }
}

const SOFT_ERRNOS = new Set(['ENOSPC', 'EDQUOT', 'EMFILE', 'ENFILE']);
const FATAL_ERRNOS = new Set(['EROFS', 'EACCES', 'EPERM']);

/** The errno of an error from the file-system seam (IoError details), if any. */
export function errnoOf(err: unknown): string | undefined {
  if (err instanceof EngineError && typeof err.details?.errno === 'string') return err.details.errno;
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  return typeof code === 'string' && /^E[A-Z]+$/.test(code) ? code : undefined;
}

/** Classifies a failure of `phase` (see ErrorSeverity). */
export function classifyIoError(err: unknown, phase: IoPhase): ErrorSeverity {
  if (err instanceof CorruptionError) return 'fatal';
  const errno = errnoOf(err);
  if (errno !== undefined && FATAL_ERRNOS.has(errno)) return 'fatal';
  // A failed fsync may have dropped the dirty pages, whatever the errno says (fsyncgate).
  if (phase === 'sync') return 'hard';
  if (errno !== undefined && SOFT_ERRNOS.has(errno)) return 'soft';
  // Making a new file (a WAL segment) puts nothing acknowledged at stake: try again later.
  if (phase === 'create') return 'soft';
  return 'hard';
}

export interface EngineErrorInfo {
  source: ErrorSource;
  severity: ErrorSeverity;
  /** The ringkv error code of the failure (IO_ERROR, CORRUPTION, ...). */
  code: string;
  errno: string | undefined;
  message: string;
  atMs: number;
}

/** What `Engine.health()` reports (also in the server's /health, /metrics and status). */
export interface EngineHealth {
  state: EngineState;
  /** True while new writes fail at once (WRITE_REFUSED, or WRITE_FAILED once `failed`). */
  writesRefused: boolean;
  /** The parts being retried in the background. */
  retrying: ErrorSource[];
  /** When the current episode (state other than ok) began, ms since epoch; null when ok. */
  sinceMs: number | null;
  /** Retries made in the current episode. */
  retries: number;
  /** The last error met (kept after recovery, for the record). */
  lastError: EngineErrorInfo | null;
  /** Errors met since open, by `source:errno` (or `source:code` without an errno). */
  errors: Record<string, number>;
  /** Times writes resumed by themselves after a soft error. */
  autoResumes: number;
  /** Internal reopens of the write path that completed. */
  recoveries: number;
}

/** One part of the engine being retried: since when, how often, and its timer. */
export interface RetryEpisode {
  sinceMs: number;
  retries: number;
  timer: NodeJS.Timeout | undefined;
}

/** Delay before retry number `retries` (0-based): initial × 2^retries, at most max. */
export function backoffMs(retries: number, initialMs: number, maxMs: number): number {
  return Math.min(maxMs, initialMs * 2 ** Math.min(retries, 30));
}

/** Error bookkeeping of one engine: the last error and counts by source and errno. */
export class ErrorLog {
  last: EngineErrorInfo | null = null;
  readonly counts: Record<string, number> = {};

  note(source: ErrorSource, severity: ErrorSeverity, err: unknown, nowMs: number): EngineErrorInfo {
    const errno = errnoOf(err);
    const code = err instanceof EngineError ? err.code : 'INTERNAL';
    const info: EngineErrorInfo = { source, severity, code, errno, message: (err as Error)?.message ?? String(err), atMs: nowMs };
    this.last = info;
    const k = `${source}:${errno ?? code}`;
    this.counts[k] = (this.counts[k] ?? 0) + 1;
    return info;
  }
}
