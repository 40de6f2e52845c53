// The engine's side of the compaction worker (compaction-worker.ts): starts the worker
// thread on the first job, posts jobs and turns replies back into results or errors (a
// EngineError keeps its code and details across the thread). Used only with the real file
// system: the worker opens files by path, which an in-memory FileSystem cannot share.
// One job at a time (the engine runs one compaction at a time); abort() asks the running
// job to stop between records; close() ends the thread. The thread is unref'd: it never
// keeps the process alive.

import { Worker } from 'node:worker_threads';
import type { EngineErrorCode } from './engine-errors.js';
import { EngineError } from './engine-errors.js';
import type { CompactionOutcome, CompactionSettings } from './compaction.js';
import type { WorkerJob, WorkerReply, WorkerStart } from './compaction-worker.js';

/** Starts the worker thread: dist/…/compaction-worker.js, or its TypeScript source under tsx. */
function startWorker(workerData: WorkerStart): Worker {
  if (!import.meta.url.endsWith('.ts')) return new Worker(new URL('./compaction-worker.js', import.meta.url), { workerData });
  // Running from the TypeScript sources under tsx (the tests): a worker does not inherit
  // tsx's loader hooks, so it registers them before importing the worker module.
  const tsx = import.meta.resolve('tsx/esm/api');
  const entry = new URL('./compaction-worker.ts', import.meta.url).href;
  return new Worker(`import(${JSON.stringify(tsx)}).then((m) => { m.register(); return import(${JSON.stringify(entry)}); });`, { eval: true, workerData });
}

export interface ThreadJob {
  outputFile: string;
  inputFiles: string[];
  olderFiles: string[];
  /** Per input, the quarantined (and repaired) data blocks to drop. */
  skipBlocks: number[][];
  settings: CompactionSettings;
  rateBytesPerSec: number;
}

export class CompactionThread {
  private worker: Worker | undefined;
  private nextId = 1;
  private pending:
    | { id: number; abort: Int32Array; resolve: (o: CompactionOutcome & { scanBlockReads: number }) => void; reject: (e: Error) => void }
    | undefined;

  /** `abortError` makes the error an aborted job rejects with; `nice` is the thread's niceness. */
  constructor(
    private readonly abortError: () => Error,
    private readonly nice = 0,
  ) {}

  /** Runs `job` on the worker. REQUIRES: the previous job has settled. */
  run(job: ThreadJob): Promise<CompactionOutcome & { scanBlockReads: number }> {
    if (this.pending) return Promise.reject(new Error('CompactionThread: a job is already running'));
    const w = this.start();
    const abort = new SharedArrayBuffer(4);
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending = { id, abort: new Int32Array(abort), resolve, reject };
      const msg: WorkerJob = { id, abort, ...job };
      w.postMessage(msg);
    });
  }

  /** Asks the running job, if any, to stop; it then rejects with abortError(). */
  abort(): void {
    if (this.pending) Atomics.store(this.pending.abort, 0, 1);
  }

  /** Ends the thread (after abort(), wait for the job to settle first). */
  async close(): Promise<void> {
    const w = this.worker;
    this.worker = undefined;
    if (w) await w.terminate();
  }

  private start(): Worker {
    if (this.worker) return this.worker;
    const w = startWorker({ nice: this.nice });
    w.unref();
    w.on('message', (reply: WorkerReply) => {
      const p = this.pending;
      if (!p || p.id !== reply.id) return;
      this.pending = undefined;
      if (reply.ok) p.resolve({ count: reply.count, dropped: reply.dropped, scanBlockReads: reply.scanBlockReads });
      else if (reply.aborted) p.reject(this.abortError());
      else if (reply.code) p.reject(new EngineError(reply.code as EngineErrorCode, reply.message, reply.details));
      else p.reject(new Error(`compaction worker: ${reply.message}`));
    });
    const fail = (err: Error): void => {
      if (this.worker === w) this.worker = undefined;
      const p = this.pending;
      this.pending = undefined;
      p?.reject(err);
    };
    w.on('error', (err) => fail(err));
    w.on('exit', (code) => fail(new Error(`compaction worker exited (code ${code})`)));
    this.worker = w;
    return w;
  }
}
