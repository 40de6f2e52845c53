// Drives a workload against a store for a fixed time and records latencies.
//
// Open loop (the default): operation i is due at start + i / rate, whether or not earlier
// ones have finished, and its latency is measured from that intended start. When the
// store falls behind, due operations wait for a free slot (at most `concurrency` in
// flight) and that wait is part of their latency, so coordinated omission cannot hide
// queueing. Closed loop: `concurrency` loops each issue the next operation as soon as the
// previous one returns; latency is measured from the actual start. That finds the most
// a store can do, not the latency a user would see at a given rate.
//
// One run at a time per runner; everything happens on the calling thread's event loop.

import type { KeyChooser } from './key-chooser.js';
import { SeededRandom } from './key-chooser.js';
import { LatencyRecorder } from './latency-recorder.js';
import type { OpKind, Workload } from './workloads.js';
import { OpChooser } from './workloads.js';

/** The operations a benchmarked system offers; each peer adapts its client to this. */
export interface KvStore {
  /** Label in tables ("ringkv", "redis", ...). */
  readonly name: string;
  read(key: Buffer): Promise<Buffer | undefined>;
  update(key: Buffer, value: Buffer): Promise<void>;
  /** Adds `by` to the counter `key` (the counter workload; stores without counters leave it out). */
  increment?(key: Buffer, by: number): Promise<void>;
  /** Inserts records in bulk for the load phase (a store without it gets concurrent updates). */
  insertMany?(records: [Buffer, Buffer][]): Promise<void>;
  close(): Promise<void>;
}

/** The open-loop schedule: when operation i is due. */
export class Pacer {
  constructor(
    readonly ratePerSec: number,
    readonly startMs: number,
  ) {
    if (!(ratePerSec > 0 && Number.isFinite(ratePerSec))) throw new RangeError(`rate must be a positive number, got ${ratePerSec}`);
  }

  /** Intended start of operation `i` (0-based). */
  intendedMs(i: number): number {
    return this.startMs + (i * 1000) / this.ratePerSec;
  }

  /** How many operations are due at `nowMs` (those whose intended start is ≤ now). */
  dueBy(nowMs: number): number {
    if (nowMs < this.startMs) return 0;
    return Math.floor(((nowMs - this.startMs) * this.ratePerSec) / 1000) + 1;
  }

  /** How many operations fall in the first `durationMs` (intended start < start + duration). */
  countWithin(durationMs: number): number {
    return Math.ceil((durationMs * this.ratePerSec) / 1000);
  }
}

export type LoopMode = 'open' | 'closed';

export interface RunOptions {
  mode: LoopMode;
  /** Target rate of the open loop. */
  ratePerSec?: number;
  /** Most operations in flight (open loop: a cap; closed loop: the number of loops). */
  concurrency: number;
  durationMs: number;
  workload: Workload;
  /** Record keys; the chooser picks indexes into it. */
  keys: readonly Buffer[];
  chooser: KeyChooser;
  /** Values written by updates, used in turn. */
  values: readonly Buffer[];
  /** Seed of the operation-kind draw. */
  seed?: number;
  /** Keep a per-second series (by completion time). */
  perSecond?: boolean;
  /** After the last intended start, wait this long for stragglers before giving up on them. */
  drainTimeoutMs?: number;
  /** Clock seam: milliseconds, monotonic. Default performance.now. */
  now?: () => number;
}

export interface RunResult {
  mode: LoopMode;
  targetRate: number | undefined;
  recorder: LatencyRecorder;
  /** From the first intended start to the last completion (or the drain timeout). */
  elapsedMs: number;
  /** Successful operations per second over elapsedMs. */
  opsPerSec: number;
  issued: number;
  /** Open loop: operations that were due but never issued before the drain timeout. */
  unissued: number;
  /** Operations still in flight when the drain timeout ended the run. */
  abandoned: number;
  /** Open loop: most due-but-not-yet-issued operations at once. */
  maxBacklog: number;
}

function errorCode(err: unknown): string {
  const c = (err as { code?: unknown })?.code;
  if (typeof c === 'string' && c) return c;
  return (err as Error)?.constructor?.name ?? 'Error';
}

/** Runs one phase and resolves with what it measured. */
export function runLoad(store: KvStore, o: RunOptions): Promise<RunResult> {
  if (!(o.concurrency >= 1)) throw new RangeError('concurrency must be at least 1');
  if (!(o.durationMs > 0)) throw new RangeError('duration must be positive');
  if (o.keys.length < o.chooser.count) throw new RangeError('fewer keys than the chooser picks from');
  if (o.values.length === 0) throw new RangeError('need at least one value');
  if (o.mode === 'open' && o.ratePerSec === undefined) throw new RangeError('the open loop needs a rate');
  return o.mode === 'open' ? runOpen(store, o) : runClosed(store, o);
}

/** Executes one operation of `kind`. */
function execute(store: KvStore, kind: OpKind, key: Buffer, value: Buffer): Promise<unknown> {
  if (kind === 'read') return store.read(key);
  if (kind === 'update') return store.update(key, value);
  if (kind === 'incr') return store.increment ? store.increment(key, 1) : Promise.reject(new Error(`${store.name} has no counters`));
  return store.read(key).then(() => store.update(key, value));
}

function runOpen(store: KvStore, o: RunOptions): Promise<RunResult> {
  const now = o.now ?? (() => performance.now());
  const rate = o.ratePerSec;
  if (rate === undefined) throw new RangeError('the open loop needs a rate');
  const rec = new LatencyRecorder(o.perSecond ?? false);
  const kinds = new OpChooser(o.workload, new SeededRandom(o.seed ?? 1));
  const start = now();
  const pacer = new Pacer(rate, start);
  const total = pacer.countWithin(o.durationMs);
  const drainTimeoutMs = o.drainTimeoutMs ?? 10_000;
  let issued = 0;
  let inFlight = 0;
  let valueIndex = 0;
  let maxBacklog = 0;
  let lastCompletion = start;
  let timer: NodeJS.Timeout | undefined;
  let drainTimer: NodeJS.Timeout | undefined;
  let finished = false;

  return new Promise<RunResult>((resolve) => {
    const finish = () => {
      if (finished) return;
      finished = true;
      if (timer) clearTimeout(timer);
      if (drainTimer) clearTimeout(drainTimer);
      const end = issued === total && inFlight === 0 ? lastCompletion : now();
      const elapsedMs = Math.max(1, end - start);
      resolve({
        mode: 'open',
        targetRate: rate,
        recorder: rec,
        elapsedMs,
        opsPerSec: (rec.count * 1000) / elapsedMs,
        issued,
        unissued: total - issued,
        abandoned: inFlight,
        maxBacklog,
      });
    };

    const issueOne = (intended: number) => {
      inFlight++;
      const kind = kinds.next();
      const key = o.keys[o.chooser.next()]!;
      const value = o.values[valueIndex++ % o.values.length]!;
      let p: Promise<unknown>;
      try {
        p = execute(store, kind, key, value);
      } catch (err) {
        p = Promise.reject(err);
      }
      p.then(
        () => {
          const t = now();
          lastCompletion = t;
          if (!finished) rec.record(kind, (t - intended) * 1000, t - start);
          done();
        },
        (err: unknown) => {
          const t = now();
          lastCompletion = t;
          if (!finished) rec.recordError(errorCode(err), t - start, (t - intended) * 1000);
          done();
        },
      );
    };

    const done = () => {
      inFlight--;
      pump();
    };

    const pump = () => {
      if (finished) return;
      const t = now();
      const due = Math.min(pacer.dueBy(t), total);
      const backlog = due - issued;
      if (backlog > maxBacklog) maxBacklog = backlog;
      while (issued < due && inFlight < o.concurrency) issueOne(pacer.intendedMs(issued++));
      if (issued === total && inFlight === 0) finish();
    };

    const tick = () => {
      timer = undefined;
      pump();
      if (finished || issued >= total) return;
      const wait = pacer.intendedMs(issued) - now();
      timer = setTimeout(tick, wait > 1 ? Math.floor(wait) : 0);
    };

    // The run ends at the last intended start plus the drain timeout at the latest.
    drainTimer = setTimeout(finish, o.durationMs + drainTimeoutMs);
    tick();
  });
}

async function runClosed(store: KvStore, o: RunOptions): Promise<RunResult> {
  const now = o.now ?? (() => performance.now());
  const rec = new LatencyRecorder(o.perSecond ?? false);
  const kinds = new OpChooser(o.workload, new SeededRandom(o.seed ?? 1));
  const start = now();
  const end = start + o.durationMs;
  let issued = 0;
  let valueIndex = 0;
  let last = start;
  const loop = async () => {
    while (now() < end) {
      const kind = kinds.next();
      const key = o.keys[o.chooser.next()]!;
      const value = o.values[valueIndex++ % o.values.length]!;
      issued++;
      const t0 = now();
      try {
        await execute(store, kind, key, value);
        const t = now();
        rec.record(kind, (t - t0) * 1000, t - start);
        last = t;
      } catch (err) {
        const t = now();
        rec.recordError(errorCode(err), t - start, (t - t0) * 1000);
        last = t;
      }
    }
  };
  await Promise.all(Array.from({ length: o.concurrency }, loop));
  const elapsedMs = Math.max(1, last - start);
  return {
    mode: 'closed',
    targetRate: undefined,
    recorder: rec,
    elapsedMs,
    opsPerSec: (rec.count * 1000) / elapsedMs,
    issued,
    unissued: 0,
    abandoned: 0,
    maxBacklog: 0,
  };
}

/**
 * Loads records 0..keys.length-1 with values from `values` (each record gets the value at
 * its index modulo the pool), `concurrency` writes in flight, or in bulk when the store
 * can. With `progress`, a line a second (records done, rate). Resolves with records per second.
 */
export async function loadRecords(
  store: KvStore,
  keys: readonly Buffer[],
  values: readonly Buffer[],
  concurrency: number,
  progress?: (line: string) => void,
): Promise<number> {
  const t0 = performance.now();
  let done = 0;
  let lastDone = 0;
  const ticker = progress
    ? setInterval(() => {
        progress(`   loading: ${done}/${keys.length} records (${Math.round(((done - lastDone) * 1000) / 1000)}/s)`);
        lastDone = done;
      }, 1000)
    : undefined;
  try {
    if (store.insertMany) {
      const chunk = 1000;
      let next = 0;
      const worker = async () => {
        while (next < keys.length) {
          const from = next;
          next = Math.min(keys.length, next + chunk);
          const recs: [Buffer, Buffer][] = [];
          for (let i = from; i < next; i++) recs.push([keys[i]!, values[i % values.length]!]);
          await store.insertMany!(recs);
          done += recs.length;
        }
      };
      await Promise.all(Array.from({ length: Math.min(4, concurrency) }, worker));
    } else {
      let next = 0;
      const worker = async () => {
        while (next < keys.length) {
          const i = next++;
          await store.update(keys[i]!, values[i % values.length]!);
          done++;
        }
      };
      await Promise.all(Array.from({ length: concurrency }, worker));
    }
  } finally {
    if (ticker) clearInterval(ticker);
  }
  return (keys.length * 1000) / Math.max(1, performance.now() - t0);
}
