// One nemesis scenario from start to verdict: set up what the nemesis needs (a node under
// libfaketime, a node on a small tmpfs), start the cluster and the client workers, run the
// workload under the fault schedule, heal everything, let the cluster settle, do the final
// reads, run the checkers and save the history and the results. Everything it starts is
// stopped in finally blocks, also when it fails or is aborted. One scenario at a time.

import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { TestCluster } from '../helpers/cluster.js';
import { Routes } from '../../sdk/wire/protocol.js';
import { SeededRandom } from '../sdk/seeded-random.js';
import type { CheckOutcome, FinalState } from './checks.js';
import { runChecks } from './checks.js';
import { checkConvergence } from './convergence.js';
import type { HistoryOp } from './history.js';
import { formatHistory } from './history.js';
import type { NemesisContext, ScheduleEvent } from './nemeses.js';
import { makeNemesis, runSchedule } from './nemeses.js';
import { clientAddress, Firewall, serverAddress } from './net-namespace.js';
import type { Scenario } from './scenarios.js';
import type { WorkerConfig } from './workloads.js';
import { counterKeys, dtSetKeys, finalDataTypes, finalInsertReads, finalRegisterReads, finalSiblings, registerKeys, sinceStart, vclockKeys } from './workloads.js';
import { WorkerPool } from './worker-pool.js';

/** Where libfaketime is on Debian (package faketime). */
export const LIBFAKETIME = ['/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1', '/usr/lib/aarch64-linux-gnu/faketime/libfaketime.so.1', '/usr/lib/faketime/libfaketime.so.1'].find((p) =>
  fs.existsSync(p),
);

/** Size of the disk-full node's tmpfs. */
const TMPFS_MIB = 48;
/** Keys of each workload. */
const KEYS: Record<Scenario['workload'], number> = { register: 20, insert: 20, vclock: 5, counter: 5, 'dt-set': 3 };
/** Client workers per scenario, and logical clients per worker (6 concurrent clients). */
const WORKERS = 3;
const CLIENTS_PER_WORKER = 2;

export interface RunOptions {
  durationMs: number;
  /** The run's seed; each scenario derives its own from it and its name. */
  seed: number;
  /** Where the history and results go. */
  resultsDir: string;
  /** True inside the runner's network namespace (own loopback addresses, partitions possible). */
  inNamespace: boolean;
  aborted: () => boolean;
  log: (line: string) => void;
}

export interface ScenarioResult {
  scenario: Scenario;
  status: 'PASS' | 'FAIL' | 'SKIP';
  /** Why it skipped, or the harness error that failed it. */
  reason?: string;
  seed: number;
  ops: number;
  counts: { ok: number; fail: number; unknown: number };
  checks: CheckOutcome[];
  schedule: ScheduleEvent[];
  durationMs: number;
}

/** The per-scenario seed: the run's seed mixed with the scenario's name, so --only does not change it. */
export function scenarioSeed(runSeed: number, name: string): number {
  let h = runSeed >>> 0;
  for (let i = 0; i < name.length; i++) h = Math.imul(h ^ name.charCodeAt(i), 0x9e3779b1) >>> 0;
  return h;
}

/** Why this scenario cannot run here, or undefined. */
export function skipReason(sc: Scenario, inNamespace: boolean): string | undefined {
  const nem = makeNemesis(sc.nemesis);
  if (nem.requires === 'netns' && !inNamespace) return 'needs root for a network namespace';
  if (nem.requires === 'faketime' && !LIBFAKETIME) return 'needs libfaketime (Debian package faketime)';
  if (nem.requires === 'tmpfs' && (typeof process.getuid !== 'function' || process.getuid() !== 0)) return 'needs root to mount a tmpfs';
  return undefined;
}

function fileName(sc: Scenario): string {
  return sc.name.replace(/\//g, '__');
}

export async function runScenario(sc: Scenario, o: RunOptions): Promise<ScenarioResult> {
  const seed = scenarioSeed(o.seed, sc.name);
  const started = Date.now();
  const result: ScenarioResult = { scenario: sc, status: 'FAIL', seed, ops: 0, counts: { ok: 0, fail: 0, unknown: 0 }, checks: [], schedule: [], durationMs: 0 };
  const skip = skipReason(sc, o.inNamespace);
  if (skip) {
    result.status = 'SKIP';
    result.reason = skip;
    return result;
  }
  const rng = new SeededRandom(seed);
  const nem = makeNemesis(sc.nemesis);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ringkv-nemesis-'));
  const nodes = nem.nodes;
  const target = `n${1 + rng.int(nodes)}`;
  const ctxExtra: Partial<NemesisContext> = {};
  let mounted: string | undefined;
  let cluster: TestCluster | undefined;
  const pool = new WorkerPool();
  let firewall: Firewall | undefined;
  let history: HistoryOp[] = [];
  try {
    if (nem.requires === 'faketime') {
      ctxExtra.faketimeFile = path.join(dir, 'faketime');
      fs.writeFileSync(ctxExtra.faketimeFile, '+0\n');
    }
    if (nem.requires === 'tmpfs') {
      const mnt = path.join(dir, 'tmpfs');
      fs.mkdirSync(mnt);
      const r = spawnSync('mount', ['-t', 'tmpfs', '-o', `size=${TMPFS_MIB}m`, 'tmpfs', mnt], { encoding: 'utf8' });
      if (r.status !== 0) throw new Error(`mount tmpfs failed: ${r.stderr}`);
      mounted = mnt;
      ctxExtra.tmpfsDir = mnt;
    }
    if (o.inNamespace) firewall = Firewall.open();
    const faketimeEnv: Record<string, string> = ctxExtra.faketimeFile
      ? {
          LD_PRELOAD: LIBFAKETIME!,
          FAKETIME_TIMESTAMP_FILE: ctxExtra.faketimeFile,
          FAKETIME_CACHE_DURATION: '1',
          FAKETIME_DONT_FAKE_MONOTONIC: '1',
        }
      : {};
    cluster = await TestCluster.start(undefined, {
      nodes,
      logLevel: 'error',
      ...(o.inNamespace ? { hosts: Array.from({ length: nodes }, (_, i) => serverAddress(i)) } : {}),
      ...(mounted ? { dataDirOf: (id: string) => (id === target ? path.join(mounted!, 'data') : path.join(dir, id)) } : {}),
      nodeEnv: ({ id }) => (id === target ? faketimeEnv : {}),
    });
    const runStartEpochMs = performance.timeOrigin + performance.now();
    const workerAddresses = Array.from({ length: WORKERS }, (_, i) => (o.inNamespace ? clientAddress(i) : '127.0.0.1'));
    const cfgs: WorkerConfig[] = Array.from({ length: WORKERS }, (_, w) => ({
      worker: w,
      clients: Array.from({ length: CLIENTS_PER_WORKER }, (_, k) => `c${1 + w * CLIENTS_PER_WORKER + k}`),
      seeds: cluster!.addresses,
      ...(o.inNamespace ? { localAddress: workerAddresses[w]! } : {}),
      timeoutMs: 1500,
      level: sc.level,
      conflictMode: sc.workload === 'vclock' ? 'vector-clock' : 'lww',
      workload: sc.workload,
      keys: KEYS[sc.workload],
      seed: (seed + w) >>> 0,
      runStartEpochMs,
      opDelayMs: [20, 60],
      maxRunMs: o.durationMs + 30_000,
    }));
    await pool.start(cfgs);
    if (pool.fatal.length > 0) {
      const f = pool.fatal[0]!;
      throw new Error(`client worker w${f.worker} could not run: ${f.code}: ${f.message}`);
    }
    const ctx: NemesisContext = {
      cluster,
      workers: pool,
      rng,
      workerAddresses,
      skewedWorker: rng.int(WORKERS),
      target,
      ...(firewall ? { firewall } : {}),
      ...ctxExtra,
    };
    pool.go();
    try {
      result.schedule = await runSchedule(nem, ctx, o.durationMs, { aborted: o.aborted });
    } finally {
      await pool.stopAll();
    }
    for (const e of result.schedule) o.log(`  ${(e.atMs / 1000).toFixed(1).padStart(5)} s  ${e.what}`);
    if (o.aborted()) throw new Aborted();
    if (pool.fatal.length > 0) {
      const f = pool.fatal[0]!;
      throw new Error(`client worker w${f.worker} failed: ${f.code}: ${f.message}`);
    }
    await healEverything(cluster, firewall, ctxExtra);
    await settle(cluster, o.log);
    history = pool.ops.slice();

    // Final reads, then the verdict.
    const final: FinalState = { finalReadsInvokedMs: sinceStart(runStartEpochMs) };
    if (sc.workload === 'register' && sc.level !== 'eventual') {
      const kv = await cluster.client<string>({ valueEncoding: 'utf8', consistency: sc.level as 'strong', timeoutMs: 3000 });
      history.push(...(await finalRegisterReads(kv, registerKeys(20), sc.level, runStartEpochMs)));
    } else if (sc.workload === 'insert') {
      const kv = await cluster.client<string>({ valueEncoding: 'utf8', timeoutMs: 3000 });
      const keys = [...new Set(history.filter((h) => h.f === 'insert').map((h) => h.key))];
      const r = await finalInsertReads(kv, keys, 'strong');
      if (r.errors > 0) o.log(`  ${r.errors} final reads failed 3 times (left out: not read)`);
      final.finalReads = r.reads;
    } else if (sc.workload === 'vclock') {
      const kv = await cluster.client<string>({ valueEncoding: 'utf8', conflictMode: 'vector-clock', timeoutMs: 3000 });
      const r = await finalSiblings(kv, vclockKeys(5));
      if (r.errors > 0) o.log(`  ${r.errors} final sibling reads failed 3 times (left out: not read)`);
      final.finalSiblings = r.siblings;
    } else if (sc.workload === 'counter') {
      const kv = await cluster.client<string>({ valueEncoding: 'utf8', timeoutMs: 3000 });
      const r = await finalDataTypes(counterKeys(KEYS.counter), (k) => kv.counter(k).value({ consistency: 'all' }));
      if (r.errors > 0) o.log(`  ${r.errors} final counter reads failed 3 times (left out: not read)`);
      final.finalCounters = r.values;
    } else if (sc.workload === 'dt-set') {
      const kv = await cluster.client<string>({ valueEncoding: 'utf8', timeoutMs: 3000 });
      const r = await finalDataTypes(dtSetKeys(KEYS['dt-set']), (k) => kv.set(k).members({ consistency: 'all' }));
      if (r.errors > 0) o.log(`  ${r.errors} final set reads failed 3 times (left out: not read)`);
      final.finalMembers = r.values;
    }
    history = numbered(history);
    result.checks = runChecks(sc, history, final);
    if (sc.level === 'eventual' && (sc.workload === 'register' || sc.workload === 'counter')) {
      const keys = sc.workload === 'register' ? registerKeys(20) : counterKeys(KEYS.counter);
      result.checks.push({ result: await checkConvergence(cluster, keys), informational: false });
    }
    result.status = result.checks.every((c) => c.informational || c.result.valid) ? 'PASS' : 'FAIL';
  } catch (err) {
    // An interrupted run judged nothing: it is a skip, never a pass.
    result.status = err instanceof Aborted ? 'SKIP' : 'FAIL';
    result.reason = (err as Error)?.message ?? String(err);
    if (history.length === 0) history = numbered(pool.ops.slice());
  } finally {
    await pool.stopAll().catch(() => undefined);
    if (firewall) await firewall.heal().catch(() => undefined);
    if (cluster) {
      // The nodes' last log lines (level error and up), for reading a failure afterwards.
      fs.mkdirSync(o.resultsDir, { recursive: true });
      fs.writeFileSync(path.join(o.resultsDir, `${fileName(sc)}.nodes.log`), cluster.nodes.map((n) => cluster!.log(n.id).map((l) => `${n.id} | ${l}\n`).join('')).join(''));
      await cluster.stopAll().catch(() => undefined);
    }
    if (mounted) spawnSync('umount', ['-l', mounted]);
    fs.rmSync(dir, { recursive: true, force: true });
  }
  result.ops = history.length;
  for (const h of history) result.counts[h.outcome]++;
  result.durationMs = Date.now() - started;
  save(o.resultsDir, sc, history, result);
  return result;
}

class Aborted extends Error {
  constructor() {
    super('aborted (SIGINT/SIGTERM)');
  }
}

/** Ids in invocation order (workers report in completion order, from several processes). */
function numbered(ops: HistoryOp[]): HistoryOp[] {
  const sorted = ops.slice().sort((a, b) => a.invokeMs - b.invokeMs || a.completeMs - b.completeMs);
  return sorted.map((op, i) => ({ ...op, id: i }));
}

/** Undoes every fault whatever the schedule left: rules flushed, nodes resumed and restarted, clocks and disks back. */
async function healEverything(c: TestCluster, firewall: Firewall | undefined, x: Partial<NemesisContext>): Promise<void> {
  if (firewall) await firewall.heal();
  if (x.faketimeFile) fs.writeFileSync(x.faketimeFile, '+0\n');
  if (x.tmpfsDir) fs.rmSync(path.join(x.tmpfsDir, 'filler'), { force: true });
  for (const n of c.nodes) {
    if (c.running(n.id)) c.resume(n.id);
    else await c.restart(n.id);
  }
}

/** Waits (bounded) until every node sees every node up and no hints are pending. */
async function settle(c: TestCluster, log: (line: string) => void): Promise<void> {
  try {
    await c.waitForMembers(c.nodes.length, 'up', 30_000);
  } catch (err) {
    log(`  the cluster did not settle: ${(err as Error).message.slice(0, 300)}`);
    return;
  }
  const deadline = Date.now() + 20_000;
  let pending = -1;
  while (Date.now() < deadline) {
    pending = 0;
    for (const n of c.nodes) pending += (await c.call<{ hintsPending: number }>(n.id, Routes.status, undefined).catch(() => ({ hintsPending: 1 }))).hintsPending;
    if (pending === 0) return;
    await new Promise((r) => setTimeout(r, 250));
  }
  log(`  ${pending} hints still pending after 20 s`);
}

function save(dir: string, sc: Scenario, history: HistoryOp[], r: ScenarioResult): void {
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, `${fileName(sc)}.history.jsonl`), history.length > 0 ? formatHistory(history) : '');
  const summary = {
    scenario: sc,
    status: r.status,
    reason: r.reason,
    seed: r.seed,
    ops: r.ops,
    counts: r.counts,
    durationMs: r.durationMs,
    schedule: r.schedule,
    checks: r.checks.map((c) => ({ informational: c.informational, ...c.result })),
  };
  fs.writeFileSync(path.join(dir, `${fileName(sc)}.checks.json`), JSON.stringify(summary, null, 2) + '\n');
}
