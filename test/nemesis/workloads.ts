// The nemesis workloads: what each client worker does in a loop (registers, unique inserts,
// vector-clock read-modify-writes, counter increments, data-type set adds and removes), the
// messages between the runner and its workers, and the runner's final reads after healing. Each logical client runs one operation at a time
// and records it as a HistoryOp (history.ts); loops are bounded in count and time.

import type { RingkvClient } from '../../sdk/client.js';
import type { Consistency } from '../../sdk/consistency.js';
import type { HistoryOp, Outcome } from './history.js';
import { SeededRandom } from '../sdk/seeded-random.js';

export type WorkloadName = 'register' | 'insert' | 'vclock' | 'counter' | 'dt-set';

/** What the runner tells a worker to do (the first message it sends). */
export interface WorkerConfig {
  /** Worker index (0-based). */
  worker: number;
  /** The logical clients it runs, one operation at a time each ("c1", "c2"). */
  clients: string[];
  seeds: string[];
  /** Source address of its connections (inside the runner's namespace); none outside it. */
  localAddress?: string;
  timeoutMs: number;
  /** Consistency level of every call ('linearizable', 'strong', 'eventual'). */
  level: string;
  conflictMode: 'lww' | 'vector-clock';
  workload: WorkloadName;
  /** Number of keys of the register, vector-clock, counter and data-type set workloads. */
  keys: number;
  seed: number;
  /** The run's start, `performance.timeOrigin + performance.now()` in the runner. */
  runStartEpochMs: number;
  /** Pause between two operations of one client: uniform in [min, max] ms. */
  opDelayMs: [number, number];
  /** Safety bound: the loops end by themselves after this long even without `stop`. */
  maxRunMs: number;
}

/** Runner -> worker. */
export type ToWorker = { type: 'start'; cfg: WorkerConfig } | { type: 'go' } | { type: 'skew'; ms: number } | { type: 'stop' };

/** Worker -> runner. */
export type FromWorker =
  | { type: 'ready' }
  | { type: 'op'; op: HistoryOp }
  | { type: 'fatal'; code: string; message: string }
  | { type: 'stopped' };

/** Largest number of operations one logical client issues in one run. */
export const MAX_OPS_PER_CLIENT = 50_000;

/** Milliseconds since the run started on this machine's monotonic clock (never a skewed one). */
export function sinceStart(runStartEpochMs: number): number {
  return Math.round((performance.timeOrigin + performance.now() - runStartEpochMs) * 1000) / 1000;
}

/** The error code of a failed call ('ERROR' when it has none). */
export function errorCode(err: unknown): string {
  const c = (err as { code?: unknown })?.code;
  return typeof c === 'string' && c.length > 0 ? c : 'ERROR';
}

/**
 * How a failed call counts: a read that failed constrains nothing (`fail`); a write, delete
 * or insert definitely did not happen only when the SDK says so (`err.notApplied === true`),
 * otherwise it may have happened, now or later (`unknown`).
 */
export function failedOutcome(f: HistoryOp['f'], err: unknown): Outcome {
  if (f === 'read') return 'fail';
  return (err as { notApplied?: unknown })?.notApplied === true ? 'fail' : 'unknown';
}

/** What one logical client needs to run its loop. */
export interface ClientContext {
  kv: RingkvClient<string>;
  cfg: WorkerConfig;
  /** Its base name ("c2"); after an unknown outcome it continues as "c2.1", "c2.2", … */
  name: string;
  rng: SeededRandom;
  emit: (op: HistoryOp) => void;
  stopped: () => boolean;
}

/**
 * One logical client: after an operation whose outcome is unknown, the client continues
 * under a new process name (Jepsen's convention), since that operation may still be
 * pending forever and a process runs one operation at a time.
 */
class Recorder {
  private incarnation = 0;
  private seq = 0;
  constructor(private readonly c: ClientContext) {}

  get process(): string {
    return this.incarnation === 0 ? this.c.name : `${this.c.name}.${this.incarnation}`;
  }

  /** A value no other operation of the run writes: "<client>-<n>". */
  nextValue(): string {
    return `${this.c.name}-${++this.seq}`;
  }

  /** Runs `call`, records the operation `describe` completes, returns the call's result (undefined on error). */
  async run<T>(
    f: HistoryOp['f'],
    key: string,
    call: () => Promise<T>,
    describe: (res: T | undefined) => Pick<HistoryOp, 'value'> & Partial<Pick<HistoryOp, 'siblings' | 'context' | 'amount' | 'members'>>,
  ): Promise<{ ok: true; res: T } | { ok: false }> {
    const process = this.process;
    const invokeMs = sinceStart(this.c.cfg.runStartEpochMs);
    let res: T | undefined;
    let outcome: Outcome = 'ok';
    let error: string | undefined;
    try {
      res = await call();
    } catch (err) {
      outcome = failedOutcome(f, err);
      error = errorCode(err);
    }
    const completeMs = sinceStart(this.c.cfg.runStartEpochMs);
    const op: HistoryOp = { id: 0, process, f, key, ...describe(res), level: this.c.cfg.level, invokeMs, completeMs, outcome };
    if (error !== undefined) op.error = error;
    this.c.emit(op);
    if (outcome === 'unknown') this.incarnation++;
    return outcome === 'ok' ? { ok: true, res: res as T } : { ok: false };
  }
}

async function pause(c: ClientContext): Promise<void> {
  const [lo, hi] = c.cfg.opDelayMs;
  const ms = lo + c.rng.next() * (hi - lo);
  if (ms > 0) await new Promise((r) => setTimeout(r, ms));
}

/** Runs the configured workload for one logical client until told to stop (or its bounds). */
export async function runClient(c: ClientContext): Promise<void> {
  const rec = new Recorder(c);
  const started = Date.now();
  const level = c.cfg.level as Consistency;
  for (let n = 0; n < MAX_OPS_PER_CLIENT && !c.stopped() && Date.now() - started < c.cfg.maxRunMs; n++) {
    await pause(c);
    if (c.stopped()) break;
    if (c.cfg.workload === 'register') await registerStep(c, rec, level);
    else if (c.cfg.workload === 'insert') await insertStep(c, rec, level);
    else if (c.cfg.workload === 'counter') await counterStep(c, rec, level);
    else if (c.cfg.workload === 'dt-set') await dtSetStep(c, rec, level);
    else await vclockStep(c, rec, level);
  }
}

/** Registers: random reads (50%), writes of unique values (40%) and deletes (10%) of `keys` keys. */
async function registerStep(c: ClientContext, rec: Recorder, level: Consistency): Promise<void> {
  const key = `r${c.rng.int(c.cfg.keys)}`;
  const x = c.rng.next();
  if (x < 0.5) {
    await rec.run('read', key, () => c.kv.get(key, { consistency: level }), (r) => ({ value: r ? r.value : null }));
  } else if (x < 0.9) {
    const value = rec.nextValue();
    await rec.run('write', key, () => c.kv.put(key, value, { consistency: level }), () => ({ value }));
  } else {
    await rec.run('delete', key, () => c.kv.delete(key, { consistency: level }), () => ({ value: null }));
  }
}

/** Unique inserts: every key is written once ("i-c2-417"). */
async function insertStep(c: ClientContext, rec: Recorder, level: Consistency): Promise<void> {
  const value = rec.nextValue();
  const key = `i-${value}`;
  await rec.run('insert', key, () => c.kv.put(key, value, { consistency: level }), () => ({ value }));
}

/** The values of a vector-clock read: every live sibling (sorted), or [] when absent. */
export function siblingValues(r: { value: string; siblings?: { value: string }[] } | undefined): string[] {
  if (!r) return [];
  return (r.siblings ? r.siblings.map((s) => s.value) : [r.value]).sort();
}

/**
 * Vector clocks: read (30%), or read then write with the read's context (60%) or delete
 * with it (5%, when the read found a value), or a blind write without context (5%), on
 * `keys` keys. A write after a read that found nothing carries no context (`context: []`).
 */
async function vclockStep(c: ClientContext, rec: Recorder, level: Consistency): Promise<void> {
  const key = `v${c.rng.int(c.cfg.keys)}`;
  const x = c.rng.next();
  if (x >= 0.95) {
    const value = rec.nextValue();
    await rec.run('write', key, () => c.kv.put(key, value, { consistency: level }), () => ({ value, context: [] }));
    return;
  }
  const read = await rec.run('read', key, () => c.kv.get(key, { consistency: level }), (r) => ({
    value: r ? r.value : null,
    siblings: siblingValues(r),
  }));
  if (!read.ok || x < 0.3 || c.stopped()) return;
  const seen = siblingValues(read.res);
  const ctx = read.res ? { context: read.res.context } : {};
  // A delete without a context would make the SDK read one itself, which the history could
  // not record: after a read that found nothing, write instead.
  if (x < 0.9 || !read.res) {
    const value = rec.nextValue();
    await rec.run('write', key, () => c.kv.put(key, value, { consistency: level, ...ctx }), () => ({ value, context: seen }));
  } else {
    await rec.run('delete', key, () => c.kv.delete(key, { consistency: level, ...ctx }), () => ({ value: null, context: seen }));
  }
}

/** Counters: increments by 1..5 (70%) and reads (30%) of `keys` counters. */
async function counterStep(c: ClientContext, rec: Recorder, level: Consistency): Promise<void> {
  const key = `ctr${c.rng.int(c.cfg.keys)}`;
  if (c.rng.next() < 0.7) {
    const amount = 1 + c.rng.int(5);
    await rec.run('incr', key, () => c.kv.counter(key).increment(amount, { consistency: level }), () => ({ value: null, amount }));
  } else {
    await rec.run('read', key, () => c.kv.counter(key).value({ consistency: level }), (v) => ({ value: v === undefined ? null : String(v) }));
  }
}

/**
 * Data-type sets: adds of unique members "c2-417" (55%), reads (25%), and a fetch then the
 * remove of one member it returned, with its context (20%), on `keys` sets.
 */
async function dtSetStep(c: ClientContext, rec: Recorder, level: Consistency): Promise<void> {
  const key = `s${c.rng.int(c.cfg.keys)}`;
  const x = c.rng.next();
  if (x < 0.55) {
    const value = rec.nextValue();
    await rec.run('add', key, () => c.kv.set(key).add(value, { consistency: level }), () => ({ value }));
    return;
  }
  const read = await rec.run('read', key, () => c.kv.set(key).fetch({ consistency: level }), (r) => ({ value: null, members: r ? r.value : [] }));
  if (!read.ok || x < 0.8 || c.stopped() || read.res.value.length === 0) return;
  const seen = read.res.value;
  const victim = seen[c.rng.int(seen.length)]!;
  await rec.run('remove', key, () => c.kv.set(key).remove(victim, { context: read.res.context, consistency: level }), () => ({ value: victim, members: seen }));
}

/** Keys of the counter workload. */
export function counterKeys(n: number): string[] {
  return Array.from({ length: n }, (_, i) => `ctr${i}`);
}

/** Keys of the data-type set workload. */
export function dtSetKeys(n: number): string[] {
  return Array.from({ length: n }, (_, i) => `s${i}`);
}

/** Final values of data types (counters or sets), read at `all` after healing; a key unreadable 3 times is left out (not read). */
export async function finalDataTypes<T>(keys: string[], read: (key: string) => Promise<T>): Promise<{ values: Map<string, T>; errors: number }> {
  const values = new Map<string, T>();
  let errors = 0;
  for (const key of keys) {
    for (let attempt = 0; attempt < 3; attempt++) {
      try {
        values.set(key, await read(key));
        break;
      } catch {
        if (attempt === 2) errors++;
        else await new Promise((r) => setTimeout(r, 500));
      }
    }
  }
  return { values, errors };
}

/** Keys of the register workload. */
export function registerKeys(n: number): string[] {
  return Array.from({ length: n }, (_, i) => `r${i}`);
}

/** Keys of the vector-clock workload. */
export function vclockKeys(n: number): string[] {
  return Array.from({ length: n }, (_, i) => `v${i}`);
}

/**
 * The runner's final reads of registers after healing, recorded as operations of process
 * "final" (so the checkers see whether the last acknowledged writes survived). Each key is
 * tried up to 3 times; a failed attempt is recorded as a failed read.
 */
export async function finalRegisterReads(kv: RingkvClient<string>, keys: string[], level: string, runStartEpochMs: number): Promise<HistoryOp[]> {
  const out: HistoryOp[] = [];
  for (const key of keys) {
    for (let attempt = 0; attempt < 3; attempt++) {
      const invokeMs = sinceStart(runStartEpochMs);
      try {
        const r = await kv.get(key, { consistency: level as Consistency });
        out.push({ id: 0, process: 'final', f: 'read', key, value: r ? r.value : null, level, invokeMs, completeMs: sinceStart(runStartEpochMs), outcome: 'ok' });
        break;
      } catch (err) {
        out.push({ id: 0, process: 'final', f: 'read', key, value: null, level, invokeMs, completeMs: sinceStart(runStartEpochMs), outcome: 'fail', error: errorCode(err) });
      }
    }
  }
  return out;
}

/**
 * Final reads of the inserted keys (every insert that was attempted), at `level`: null when
 * absent; a key whose read failed 3 times is left out (the checker reports it as not read,
 * never as lost).
 */
export async function finalInsertReads(kv: RingkvClient<string>, keys: string[], level: string): Promise<{ reads: Map<string, string | null>; errors: number }> {
  const reads = new Map<string, string | null>();
  let errors = 0;
  for (const key of keys) {
    for (let attempt = 0; attempt < 3; attempt++) {
      try {
        const r = await kv.get(key, { consistency: level as Consistency });
        reads.set(key, r ? r.value : null);
        break;
      } catch {
        if (attempt === 2) errors++;
        else await new Promise((r) => setTimeout(r, 500));
      }
    }
  }
  return { reads, errors };
}

/** Final siblings of the vector-clock keys, read at `all` after healing; a key unreadable 3 times is left out (not read). */
export async function finalSiblings(kv: RingkvClient<string>, keys: string[]): Promise<{ siblings: Map<string, string[]>; errors: number }> {
  const siblings = new Map<string, string[]>();
  let errors = 0;
  for (const key of keys) {
    let got: string[] | undefined;
    for (let attempt = 0; attempt < 3 && got === undefined; attempt++) {
      try {
        got = siblingValues(await kv.get(key, { consistency: 'all' }));
      } catch {
        await new Promise((r) => setTimeout(r, 500));
      }
    }
    if (got === undefined) errors++;
    else siblings.set(key, got);
  }
  return { siblings, errors };
}
