// The compaction worker: a worker_threads entry point that runs compaction jobs
// (compaction.ts, compactToFile) off the engine's thread, on the real file system. It opens
// the job's tables by path with its own NodeFileSystem (the engine keeps them referenced,
// so they exist until the job ends; the inputs as ScanTables, without filters, indexes
// streamed), writes and syncs the output table, closes what it
// opened and answers. Jobs arrive one at a time from CompactionThread
// (compaction-thread.ts); an abort flag in shared memory stops one between records.

import os from 'node:os';
import { parentPort, workerData } from 'node:worker_threads';
import { EngineError } from './engine-errors.js';
import type { CompactionSettings } from './compaction.js';
import { compactToFile } from './compaction.js';
import { NodeFileSystem } from './file-system.js';
import { RateLimiter } from './rate-limiter.js';
import { ScanTable } from './scan-table.js';
import type { ReadStats } from './table.js';
import { createBlockCache, TableReader } from './table.js';

/** What the thread starts with (workerData). */
export interface WorkerStart {
  /** Niceness of this thread: os.setPriority without a pid sets the calling thread's on Linux. */
  nice: number;
}

/** A job, as posted by CompactionThread. */
export interface WorkerJob {
  id: number;
  outputFile: string;
  /** Input tables, oldest first. */
  inputFiles: string[];
  /** Tables older than the inputs (their filters decide whether a tombstone may go). */
  olderFiles: string[];
  /** Per input, the quarantined (and repaired) data blocks to drop. */
  skipBlocks: number[][];
  settings: CompactionSettings;
  /** Output write rate, bytes per second; 0 = unthrottled. */
  rateBytesPerSec: number;
  /** Int32 flag: non-zero asks the job to stop. */
  abort: SharedArrayBuffer;
}

export type WorkerReply =
  | { id: number; ok: true; count: number; dropped: number; scanBlockReads: number }
  | { id: number; ok: false; aborted: boolean; code: string | undefined; message: string; details: Record<string, unknown> | undefined };

class Aborted extends Error {}

async function run(job: WorkerJob): Promise<WorkerReply> {
  const fs = new NodeFileSystem();
  // Cursors bypass the block cache; the readers need one all the same.
  const cache = createBlockCache(1);
  const stats: ReadStats = { blockReads: 0, scanBlockReads: 0, blockCacheHits: 0, bloomNegatives: 0, bloomPositives: 0 };
  const opened: TableReader[] = [];
  const scanned: ScanTable[] = [];
  const flag = new Int32Array(job.abort);
  try {
    const open = async (file: string): Promise<TableReader> => {
      const t = await TableReader.open(await fs.open(file, 'read'), 0, cache, stats);
      opened.push(t);
      return t;
    };
    // The inputs are only scanned: no filters, the indexes read as the cursors go (a
    // compaction over everything held a second copy of every input's filter and index here).
    const inputs: ScanTable[] = [];
    for (const f of job.inputFiles) {
      const t = await ScanTable.open(await fs.open(f, 'read'), stats);
      scanned.push(t);
      inputs.push(t);
    }
    const older: TableReader[] = [];
    for (const f of job.olderFiles) older.push(await open(f));
    const limiter = new RateLimiter(job.rateBytesPerSec);
    const aborted = (): boolean => Atomics.load(flag, 0) !== 0;
    const outcome = await compactToFile(
      fs,
      job.outputFile,
      inputs,
      older,
      job.settings,
      job.skipBlocks,
      limiter.unlimited ? undefined : (bytes) => limiter.consume(bytes, aborted),
      aborted,
      () => new Aborted(),
    );
    return { id: job.id, ok: true, ...outcome, scanBlockReads: stats.scanBlockReads };
  } catch (err) {
    const e = err as Error;
    return {
      id: job.id,
      ok: false,
      aborted: err instanceof Aborted,
      code: err instanceof EngineError ? err.code : undefined,
      message: e?.message ?? String(err),
      details: err instanceof EngineError ? err.details : undefined,
    };
  } finally {
    for (const t of opened) t.unref();
    for (const t of scanned) await t.close().catch(() => undefined);
  }
}

const start = workerData as WorkerStart | undefined;
if (start && start.nice > 0) {
  try {
    os.setPriority(start.nice);
  } catch {
    // Not permitted here (or not supported): the merge runs at the server's priority.
  }
}

parentPort?.on('message', (job: WorkerJob) => {
  void run(job).then((reply) => parentPort!.postMessage(reply));
});
