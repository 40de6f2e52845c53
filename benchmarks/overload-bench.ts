// The overload run (overload-and-faults issue): how a 3-node cluster behaves when offered
// twice what it can do. It finds the closed-loop maximum M, then drives an open loop at M
// (the baseline) and at `--overload` x M, first with admission control (the default) and
// then on a fresh cluster with it turned off (the servers' loadShedding false and the SDK
// batcher's shedding false), the peer in the same run. For each phase: goodput (successful ops/s), p50/p99 of the operations that
// succeeded, the errors by code and how fast they failed. With shedding the accepted
// requests should keep a bounded p99 at about the sustainable rate and the rest fail fast
// with OVERLOADED; without it everything queues and times out. A table, then one JSON line;
// results saved under benchmarks/results/.
//
//   npm run bench:overload -- --duration 20 --overload 2

import { Command, Option } from 'commander';
import { execFileSync } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import { makeChooser } from './harness/key-chooser.js';
import { summarize } from './harness/latency-recorder.js';
import type { RunResult } from './harness/load-runner.js';
import { loadRecords, runLoad } from './harness/load-runner.js';
import { makeData } from './harness/measure.js';
import { ProcessGroup, REPO_ROOT } from './harness/processes.js';
import { formatTable, machineInfo, saveResults, stamp } from './harness/report.js';
import { CpuLimit } from './harness/cpu-limit.js';
import { RingkvCluster } from './harness/ringkv-cluster.js';
import { RingkvStore } from './harness/stores/ringkv-store.js';
import { parseWorkload, WORKLOADS } from './harness/workloads.js';
import { num } from './harness/cli-options.js';

const program = new Command()
  .name('overload-bench')
  .description('a 3-node cluster offered a multiple of its closed-loop maximum, with and without admission control')
  .addOption(new Option('--workload <name>', 'a | b | c | f | mix').choices(Object.keys(WORKLOADS)).default('mix'))
  .addOption(new Option('--consistency <level>', 'strong | eventual').choices(['strong', 'eventual']).default('strong'))
  .option('--overload <x>', 'offered load as a multiple of the measured maximum', num('overload', 1), 2)
  .option('--duration <s>', 'each open-loop phase, seconds', num('duration', 1), 20)
  .option('--probe <s>', 'closed-loop probe of the maximum, seconds', num('probe', 1), 8)
  .option('--records <n>', 'records loaded first', num('records', 1), 20_000)
  .option('--value-size <bytes>', 'value size', num('value-size', 1), 100)
  .option('--concurrency <n>', 'most operations in flight in the open loop (high, so the excess reaches the servers)', num('concurrency', 1), 8192)
  .option('--probe-concurrency <n>', 'loops of the closed-loop probe', num('probe-concurrency', 1), 256)
  .option('--timeout-ms <ms>', 'SDK per-call timeout', num('timeout-ms', 1), 2000)
  .option('--results-dir <dir>', 'where results are saved', path.join(REPO_ROOT, 'benchmarks/results'))
  .option('--no-pin', 'do not pin the servers and the load generator to separate CPUs')
  .option('--server-cores <n>', 'CPU time the three servers may use together, in cores (a cgroup quota; needs root); 0: no quota', num('server-cores', 0), 0.5)
  .option('--sdk-shedding', "with admission control on, the SDK's batcher sheds too (batch.shedding, off by default)")
  .option('--no-save', 'do not save results')
  .option('--seed <n>', 'random seed', num('seed', 1), 42);

interface Flags {
  sdkShedding?: boolean;
  workload: string;
  consistency: 'strong' | 'eventual';
  overload: number;
  duration: number;
  probe: number;
  records: number;
  valueSize: number;
  concurrency: number;
  probeConcurrency: number;
  timeoutMs: number;
  resultsDir: string;
  save: boolean;
  pin: boolean;
  serverCores: number;
  seed: number;
}

interface Phase {
  phase: string;
  shedding: boolean;
  offeredPerSec: number;
  goodputPerSec: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  errors: number;
  errorCodes: Record<string, number>;
  errorP50Ms: number;
  errorP99Ms: number;
  unissued: number;
  loadAverage: number;
}

/**
 * Pins this process (the load generator) to the last CPU and returns the CPUs left for the
 * servers, or undefined when pinning is off or impossible. One client process driving an
 * open loop costs about as much CPU as the servers it drives: unpinned, on 2 cores the
 * generator falls behind its schedule before the servers are overloaded, and the run
 * measures the generator's queue (every late operation counted unissued), not admission
 * control. Pinned, the servers share what is left and 2x their maximum is reachable.
 */
function pinCpus(pin: boolean): { servers: string; generator: string } | undefined {
  const cpus = os.availableParallelism();
  if (!pin || cpus < 2 || process.platform !== 'linux') return undefined;
  const generator = String(cpus - 1);
  const servers = cpus === 2 ? '0' : `0-${cpus - 2}`;
  try {
    execFileSync('taskset', ['-a', '-cp', generator, String(process.pid)], { stdio: 'ignore' });
  } catch {
    log('   (taskset is not available: servers and generator share every CPU)');
    return undefined;
  }
  return { servers, generator };
}

function log(line: string): void {
  process.stdout.write(`${line}\n`);
}

async function main(): Promise<number> {
  program.parse();
  const f = program.opts<Flags>();
  const when = new Date();
  const workload = parseWorkload(f.workload);
  const machine = machineInfo();
  const group = new ProcessGroup();
  const uninstall = group.installCleanup();
  const params = {
    workload,
    distribution: 'zipfian' as const,
    records: f.records,
    valueBytes: f.valueSize,
    durationMs: f.duration * 1000,
    warmupMs: 0,
    concurrency: f.concurrency,
    mode: 'open' as const,
    rate: 1,
    sloMs: 10,
    probeMs: f.probe * 1000,
    stepMs: 0,
    seed: f.seed,
    keyPrefix: 'overload:',
  };
  const data = makeData(params);
  log(
    `overload-bench: workload ${workload.name} at ${f.consistency}, ${f.records} records x ${f.valueSize} B, open loop at 1x and ${f.overload}x ` +
      `the closed-loop maximum for ${f.duration} s each, with and without admission control; ${machine.cores} cores, node ${machine.node}`,
  );

  const pinned = pinCpus(f.pin);
  if (pinned) log(`   servers pinned to CPU ${pinned.servers}, this load generator to CPU ${pinned.generator}`);
  // One generator process costs about as much CPU per operation as the servers: even with a
  // core of its own it cannot offer twice what three servers on the other core can do. A
  // quota on the servers' CPU time makes 2x reachable (the unissued count says when not).
  const limit = f.serverCores > 0 ? CpuLimit.open(f.serverCores) : undefined;
  if (f.serverCores > 0 && !limit) log(`   (no cgroup quota possible: needs root and a writable /sys/fs/cgroup; the servers run unlimited)`);
  if (limit) process.once('exit', () => limit.release());
  if (limit) log(`   servers limited to ${f.serverCores} core(s) of CPU time together (cgroup ${limit.dir})`);
  const phases: Phase[] = [];
  let maxPerSec = 0;
  for (const shedding of [true, false]) {
    // Admission control on the servers is their setting: the comparison cluster is started with it off.
    const c = await new RingkvCluster({ nodes: 3, group, ...(pinned ? { cpus: pinned.servers } : {}), ...(shedding ? {} : { env: { RINGKV_LOAD_SHEDDING: 'false' } }) }).launch();
    if (limit) for (const n of c.nodes) if (n.proc?.child.pid) limit.add(n.proc.child.pid);
    // The SDK's batcher sheds too (the queue the servers cannot see) only with --sdk-shedding.
    const store = await RingkvStore.open(c.addresses, f.consistency, f.timeoutMs, { batch: { shedding: shedding && f.sdkShedding === true } });
    await loadRecords(store, data.keys, data.values, 128);
    const chooser = (salt: number) => makeChooser('zipfian', f.records, f.seed + salt);
    if (shedding) {
      const probe = await runLoad(store, { mode: 'closed', concurrency: f.probeConcurrency, durationMs: f.probe * 1000, workload, keys: data.keys, chooser: chooser(1), values: data.values, seed: f.seed });
      maxPerSec = Math.round(probe.opsPerSec);
      log(`   closed-loop maximum: ${maxPerSec} ops/s (${f.probeConcurrency} loops, ${f.probe} s)`);
    }
    const runs: [string, number][] = shedding ? [['1x', 1], [`${f.overload}x`, f.overload]] : [[`${f.overload}x`, f.overload]];
    for (const [label, mult] of runs) {
      const rate = Math.max(1, Math.round(maxPerSec * mult));
      const r: RunResult = await runLoad(store, {
        mode: 'open',
        ratePerSec: rate,
        concurrency: f.concurrency,
        durationMs: f.duration * 1000,
        workload,
        keys: data.keys,
        chooser: chooser(2 + phases.length),
        values: data.values,
        seed: f.seed + phases.length,
        drainTimeoutMs: f.timeoutMs * 3,
      });
      const ok = summarize(r.recorder.overall);
      const bad = summarize(r.recorder.errorLatency);
      const p: Phase = {
        phase: label,
        shedding,
        offeredPerSec: rate,
        goodputPerSec: Math.round(r.opsPerSec),
        p50Ms: ok.p50Ms,
        p99Ms: ok.p99Ms,
        maxMs: ok.maxMs,
        errors: r.recorder.errors + r.unissued + r.abandoned,
        errorCodes: Object.fromEntries(r.recorder.errorCodes),
        errorP50Ms: bad.p50Ms,
        errorP99Ms: bad.p99Ms,
        unissued: r.unissued + r.abandoned,
        loadAverage: machineInfo().loadAverage[0] ?? 0,
      };
      phases.push(p);
      log(`   ${shedding ? 'shedding on ' : 'shedding off'} ${label}: offered ${rate}/s, goodput ${p.goodputPerSec}/s, p99 ${p.p99Ms} ms, ${p.errors} failed ${JSON.stringify(p.errorCodes)}`);
    }
    await store.close();
    await c.stopAll();
  }
  log('');
  log(
    formatTable(
      ['admission control', 'offered', 'ops/s offered', 'goodput ops/s', 'p50 ms', 'p99 ms', 'max ms', 'failed', 'fail p50 ms', 'fail p99 ms', 'codes'],
      phases.map((p) => [
        p.shedding ? 'on' : 'off',
        p.phase,
        String(p.offeredPerSec),
        String(p.goodputPerSec),
        p.p50Ms.toFixed(2),
        p.p99Ms.toFixed(2),
        p.maxMs.toFixed(1),
        String(p.errors),
        p.errorP50Ms.toFixed(1),
        p.errorP99Ms.toFixed(1),
        Object.entries(p.errorCodes)
          .map(([k, n]) => `${k} ${n}`)
          .join(', '),
      ]),
    ),
  );
  const on = phases.find((p) => p.shedding && p.phase !== '1x');
  const base = phases.find((p) => p.shedding && p.phase === '1x');
  const off = phases.find((p) => !p.shedding);
  const line: Record<string, unknown> = {
    scenario: 'overload',
    workload: workload.name,
    consistency: f.consistency,
    maxOpsPerSec: maxPerSec,
    overload: f.overload,
    phases,
    goodputShareOfMaxWithShedding: on && maxPerSec ? Math.round((on.goodputPerSec / maxPerSec) * 100) / 100 : null,
    goodputRatioSheddingOnOff: on && off && off.goodputPerSec > 0 ? Math.round((on.goodputPerSec / off.goodputPerSec) * 100) / 100 : null,
    p99RatioSheddingOnOff: on && off && off.p99Ms > 0 ? Math.round((on.p99Ms / off.p99Ms) * 100) / 100 : null,
    p99RatioOverloadedToBaseline: on && base && base.p99Ms > 0 ? Math.round((on.p99Ms / base.p99Ms) * 100) / 100 : null,
    pinned: pinned ?? null,
    serverCores: limit ? f.serverCores : null,
    sdkShedding: f.sdkShedding === true,
    singleRun: true,
    cores: machine.cores,
  };
  if (f.save) {
    const files = saveResults(f.resultsDir, `${stamp(when)}-overload-${workload.name}-${f.consistency}-${machine.cores}cores`, {
      date: when.toISOString(),
      command: `npm run bench:overload -- ${process.argv.slice(2).join(' ')}`.trim(),
      machine,
      params: f,
      json: line,
    });
    log(`\nsaved ${files.map((x) => path.relative(process.cwd(), x)).join(', ')}`);
    line.resultsFile = path.relative(REPO_ROOT, files[0]!);
  }
  await group.stopAll();
  limit?.release();
  uninstall();
  log(JSON.stringify(line));
  return 0;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`overload-bench: ${(err as Error)?.stack ?? String(err)}\n`);
    process.exit(2);
  },
);
