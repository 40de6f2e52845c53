// How one system is measured, the same way for ringkv and each peer: start it, load the
// records, warm up, then either (open loop, the default) find the most it does in a
// closed loop, search for the highest open-loop rate whose p99 stays under the SLO in
// short steps, and measure at that rate for the full duration — stepping down and
// measuring again while the full-length phase misses the SLO, so the rate reported as
// meeting it is one whose own measured phase did — or measure at --rate; or (closed loop)
// measure flat out for the full duration. Then stop it. One system at a time, never overlapping.

import os from 'node:os';
import type { Distribution } from './key-chooser.js';
import { makeChooser, recordKey, SeededRandom } from './key-chooser.js';
import type { LatencySummary } from './latency-recorder.js';
import { summarize } from './latency-recorder.js';
import type { KvStore, LoopMode, RunResult } from './load-runner.js';
import { loadRecords, runLoad } from './load-runner.js';
import { sleep } from './processes.js';
import type { SystemOptions, SystemSpec } from './systems.js';
import type { OpKind, Workload } from './workloads.js';
import { OP_KINDS } from './workloads.js';
import { SelfProfiler } from './cpu-profile.js';
import { RingkvStore } from './stores/ringkv-store.js';

export interface BenchParams {
  workload: Workload;
  distribution: Distribution;
  records: number;
  valueBytes: number;
  durationMs: number;
  warmupMs: number;
  concurrency: number;
  mode: LoopMode;
  /** Fixed open-loop rate; without it the rate is searched for. */
  rate: number | undefined;
  sloMs: number;
  probeMs: number;
  stepMs: number;
  /** Measured phases tried, from the searched rate down, until one meets the SLO (open loop, no --rate). Default 3. */
  confirmAttempts?: number;
  seed: number;
  /** Key prefix (keeps benchmark keys apart in a shared cluster). */
  keyPrefix: string;
  /** Profile the load generator + SDK during ringkv's main phase into this file. */
  sdkProfileFile?: string;
}

export interface SearchStep {
  rate: number;
  opsPerSec: number;
  p99Ms: number;
  errors: number;
  pass: boolean;
}

/** One full-length measured phase at a rate (open loop with the rate search). */
export interface MeasuredAttempt {
  rate: number;
  opsPerSec: number;
  p99Ms: number;
  errors: number;
  pass: boolean;
}

export interface SystemResult {
  system: string;
  description: string;
  settings: Record<string, unknown>;
  loadRecordsPerSec: number;
  /** Closed-loop throughput (the probe, or the main phase in closed mode). */
  maxOpsPerSec: number | undefined;
  /**
   * The rate whose own full-length measured phase (the figures below) met the SLO;
   * 0: none did; undefined: no search (--rate, or closed loop).
   */
  sloRatePerSec: number | undefined;
  /** What the short search steps found (0: no step passed), before the measured phase confirmed or lowered it. */
  searchRatePerSec?: number | undefined;
  search: SearchStep[];
  /** The full-length measured phases in order; the last is the one reported. */
  attempts?: MeasuredAttempt[];
  /** The main phase: its mode and target rate. */
  mode: LoopMode;
  targetRate: number | undefined;
  opsPerSec: number;
  p50Ms: number;
  p90Ms: number;
  p99Ms: number;
  p999Ms: number;
  maxMs: number;
  errors: number;
  errorCodes: Record<string, number>;
  unissued: number;
  abandoned: number;
  byKind: Partial<Record<OpKind, LatencySummary>>;
  /** ringkv: SDK batch requests and operations they carried during the main phase. */
  batching?: { batches: number; ops: number; opsPerBatch: number; readRepairs: number };
  /** 1-minute load average of the machine before and after the main phase (noise from other work shows here). */
  loadAverage: [number, number];
}

/** Record keys and a pool of values, the same for every system of a run. */
export function makeData(p: BenchParams): { keys: Buffer[]; values: Buffer[] } {
  const keys: Buffer[] = [];
  for (let i = 0; i < p.records; i++) keys.push(recordKey(p.keyPrefix, i));
  const rng = new SeededRandom(p.seed ^ 0x5bd1e995);
  const values: Buffer[] = [];
  for (let i = 0; i < 64; i++) {
    const b = Buffer.allocUnsafe(p.valueBytes);
    for (let j = 0; j < b.length; j++) b[j] = rng.nextUint32() & 0xff;
    values.push(b);
  }
  return { keys, values };
}

/** The SLO test of one open-loop step: p99 within the bound, the rate kept, (almost) no errors. */
export function meetsSlo(r: RunResult, sloMs: number): boolean {
  const s = summarize(r.recorder.overall);
  const total = r.recorder.count + r.recorder.errors;
  return (
    s.count > 0 &&
    s.p99Ms <= sloMs &&
    r.unissued === 0 &&
    r.abandoned === 0 &&
    r.recorder.errors <= Math.max(0, total * 0.001) &&
    r.opsPerSec >= 0.95 * (r.targetRate ?? 0)
  );
}

type Log = (line: string) => void;

export async function measureSystem(spec: SystemSpec, so: SystemOptions, p: BenchParams, data: { keys: Buffer[]; values: Buffer[] }, log: Log): Promise<SystemResult> {
  const description = spec.describe(so);
  log(`\n== ${spec.name}: ${description}`);
  const sys = await spec.start(so);
  try {
    const store = sys.store;
    const t0 = performance.now();
    let loadRate = 0;
    if (p.workload.counters) log(`   ${p.records} counters, each created by its first increment`);
    else {
      loadRate = await loadRecords(store, data.keys, data.values, Math.min(256, p.concurrency), log);
      log(`   loaded ${p.records} records of ${p.valueBytes} B in ${((performance.now() - t0) / 1000).toFixed(1)} s (${Math.round(loadRate)}/s)`);
    }
    let seed = p.seed;
    const phase = (mode: LoopMode, durationMs: number, rate?: number, perSecond = false) =>
      runLoad(store, {
        mode,
        ...(rate !== undefined ? { ratePerSec: rate } : {}),
        concurrency: p.concurrency,
        durationMs,
        workload: p.workload,
        keys: data.keys,
        chooser: makeChooser(p.distribution, p.records, ++seed),
        values: data.values,
        seed: ++seed,
        perSecond,
        drainTimeoutMs: Math.max(2000, p.sloMs * 100),
      });
    if (p.warmupMs > 0) {
      const w = await phase('closed', p.warmupMs);
      log(`   warm-up ${(p.warmupMs / 1000).toFixed(1)} s closed loop: ${Math.round(w.opsPerSec)} ops/s`);
    }
    let maxOpsPerSec: number | undefined;
    let sloRatePerSec: number | undefined;
    let searchRatePerSec: number | undefined;
    const search: SearchStep[] = [];
    const ringkvStore = store instanceof RingkvStore ? store : undefined;
    const profiler = ringkvStore && p.sdkProfileFile ? new SelfProfiler() : undefined;
    let batch0: { batches: number; ops: number; readRepairs: number } | undefined;
    let load0 = 0;
    let load1 = 0;
    /** One full-length measured phase; the counters and load average are those of the last one (the SDK profile spans them all). */
    let profiling = false;
    const measured = async (rate: number | undefined): Promise<RunResult> => {
      if (profiler && !profiling) {
        profiling = true;
        await profiler.start();
      }
      batch0 = ringkvStore ? { ...ringkvStore.client.batchCounters, readRepairs: ringkvStore.client.counters.readRepairs } : undefined;
      load0 = os.loadavg()[0]!;
      const r = await phase(p.mode, p.durationMs, rate);
      load1 = os.loadavg()[0]!;
      return r;
    };
    let main: RunResult;
    let mainRate: number | undefined;
    let attempts: MeasuredAttempt[] | undefined;
    if (p.mode === 'open' && p.rate === undefined) {
      const probe = await phase('closed', p.probeMs);
      maxOpsPerSec = probe.opsPerSec;
      log(`   closed loop (${p.concurrency} in flight): ${Math.round(maxOpsPerSec)} ops/s, p99 ${summarize(probe.recorder.overall).p99Ms} ms`);
      searchRatePerSec = await findSloRate(store, maxOpsPerSec, p, phase, search, log);
      const fallback = Math.max(1, Math.round(maxOpsPerSec * 0.05));
      if (searchRatePerSec === 0) log(`   no step met p99 <= ${p.sloMs} ms; the main phase runs at ${fallback} ops/s`);
      const confirmed = await measureAtSloRate(searchRatePerSec, fallback, p.confirmAttempts ?? 3, async (rate) => {
        const r = await measured(rate);
        const s = summarize(r.recorder.overall);
        const pass = meetsSlo(r, p.sloMs);
        log(`   measured ${(p.durationMs / 1000).toFixed(0)} s at ${rate} ops/s: p99 ${s.p99Ms} ms ${pass ? 'ok' : `over the SLO${searchRatePerSec ? ', stepping down' : ''}`}`);
        return { result: r, pass, attempt: { rate, opsPerSec: Math.round(r.opsPerSec), p99Ms: s.p99Ms, errors: r.recorder.errors + r.unissued + r.abandoned, pass } };
      });
      sloRatePerSec = confirmed.sloRatePerSec;
      attempts = confirmed.attempts;
      main = confirmed.final;
      mainRate = attempts[attempts.length - 1]!.rate;
      if (searchRatePerSec > 0 && sloRatePerSec === 0) log(`   no measured phase met p99 <= ${p.sloMs} ms in ${attempts.length} attempt(s): no SLO rate`);
    } else {
      mainRate = p.mode === 'open' ? p.rate : undefined;
      main = await measured(mainRate);
    }
    if (profiler && p.sdkProfileFile) await profiler.stop(p.sdkProfileFile);
    if (p.mode === 'closed') maxOpsPerSec = main.opsPerSec;
    const s = summarize(main.recorder.overall);
    const byKind: Partial<Record<OpKind, LatencySummary>> = {};
    for (const k of OP_KINDS) if (main.recorder.byKind[k].totalCount > 0) byKind[k] = summarize(main.recorder.byKind[k]);
    let batching: SystemResult['batching'];
    if (ringkvStore && batch0) {
      const b = ringkvStore.client.batchCounters;
      const batches = b.batches - batch0.batches;
      const ops = b.ops - batch0.ops;
      const readRepairs = ringkvStore.client.counters.readRepairs - batch0.readRepairs;
      batching = { batches, ops, opsPerBatch: batches > 0 ? Math.round((ops / batches) * 10) / 10 : 0, readRepairs };
    }
    log(
      `   main ${p.mode} loop${mainRate ? ` at ${mainRate} ops/s` : ''} for ${(p.durationMs / 1000).toFixed(0)} s: ${Math.round(main.opsPerSec)} ops/s, ` +
        `p50 ${s.p50Ms} p99 ${s.p99Ms} p99.9 ${s.p999Ms} ms, ${main.recorder.errors} errors` +
        (main.unissued + main.abandoned > 0 ? `, ${main.unissued} never issued, ${main.abandoned} unanswered` : '') +
        (batching ? `; ${batching.opsPerBatch} ops per SDK batch, ${batching.readRepairs} read repairs` : '') +
        `; load average ${load0.toFixed(1)} -> ${load1.toFixed(1)}`,
    );
    return {
      system: spec.name,
      description,
      settings: sys.settings,
      loadRecordsPerSec: Math.round(loadRate),
      maxOpsPerSec: maxOpsPerSec === undefined ? undefined : Math.round(maxOpsPerSec),
      sloRatePerSec,
      ...(searchRatePerSec !== undefined ? { searchRatePerSec } : {}),
      search,
      ...(attempts ? { attempts } : {}),
      mode: p.mode,
      targetRate: mainRate,
      opsPerSec: Math.round(main.opsPerSec),
      p50Ms: s.p50Ms,
      p90Ms: s.p90Ms,
      p99Ms: s.p99Ms,
      p999Ms: s.p999Ms,
      maxMs: s.maxMs,
      errors: main.recorder.errors + main.unissued + main.abandoned,
      errorCodes: Object.fromEntries(main.recorder.errorCodes),
      unissued: main.unissued,
      abandoned: main.abandoned,
      byKind,
      ...(batching ? { batching } : {}),
      loadAverage: [Math.round(load0 * 100) / 100, Math.round(load1 * 100) / 100],
    };
  } finally {
    await sys.stop();
  }
}

/**
 * The full-length measured phase at the SLO rate. A short search step that passed does not
 * make a rate that holds the SLO for the whole duration (a 3-second step sees no flush or
 * compaction; the highest of several noisy passes is biased up), so the rate is only called
 * the SLO rate when its own measured phase meets the SLO: from the searched rate, each
 * failing attempt is followed by one at 80% of its rate, at most `maxAttempts` in all.
 * Without a searched rate (0: no step passed) one phase runs at `fallbackRate` and no rate
 * is called the SLO rate. Resolves with the SLO rate (0: none), the last phase's result
 * (the one reported) and every attempt in order.
 */
export async function measureAtSloRate<R, A extends { rate: number; pass: boolean }>(
  searchRate: number,
  fallbackRate: number,
  maxAttempts: number,
  measure: (rate: number) => Promise<{ result: R; pass: boolean; attempt: A }>,
): Promise<{ sloRatePerSec: number; final: R; attempts: A[] }> {
  const attempts: A[] = [];
  let rate = searchRate > 0 ? searchRate : fallbackRate;
  for (;;) {
    const m = await measure(rate);
    attempts.push(m.attempt);
    if (searchRate > 0 && m.pass) return { sloRatePerSec: rate, final: m.result, attempts };
    const next = Math.round(rate * 0.8);
    if (searchRate <= 0 || attempts.length >= maxAttempts || next < 1 || next >= rate) return { sloRatePerSec: 0, final: m.result, attempts };
    rate = next;
  }
}

/**
 * The highest open-loop rate whose p99 meets the SLO: steps down from 90% of the
 * closed-loop maximum until one passes, then bisects twice between it and the last
 * failing rate. Resolves with 0 when even 5% of the maximum fails.
 */
export async function findSloRate(
  _store: KvStore,
  maxOpsPerSec: number,
  p: BenchParams,
  phase: (mode: LoopMode, durationMs: number, rate?: number) => Promise<RunResult>,
  steps: SearchStep[],
  log: Log,
): Promise<number> {
  const tryRate = async (rate: number): Promise<boolean> => {
    const r = await phase('open', p.stepMs, rate);
    const s = summarize(r.recorder.overall);
    const pass = meetsSlo(r, p.sloMs);
    steps.push({ rate, opsPerSec: Math.round(r.opsPerSec), p99Ms: s.p99Ms, errors: r.recorder.errors + r.unissued + r.abandoned, pass });
    log(`   step ${String(rate).padStart(7)} ops/s: got ${String(Math.round(r.opsPerSec)).padStart(7)}, p99 ${String(s.p99Ms).padStart(8)} ms ${pass ? 'ok' : 'over'}`);
    await sleep(300);
    return pass;
  };
  let lo = 0;
  let hi: number | undefined;
  for (const f of [0.9, 0.75, 0.6, 0.45, 0.3, 0.15, 0.05]) {
    const rate = Math.max(1, Math.round(maxOpsPerSec * f));
    if (await tryRate(rate)) {
      lo = rate;
      break;
    }
    hi = rate;
  }
  if (lo === 0) return 0;
  if (hi === undefined) {
    hi = Math.max(lo + 1, Math.round(maxOpsPerSec));
    if (await tryRate(hi)) return hi;
  }
  for (let i = 0; i < 2; i++) {
    const mid = Math.round((lo + hi) / 2);
    if (mid <= lo || mid >= hi) break;
    if (await tryRate(mid)) lo = mid;
    else hi = mid;
  }
  return lo;
}
