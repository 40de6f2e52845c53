// The failover run (issue 4): steady open-loop load (the 2:1 mix at strong by default, at
// a fixed rate) through the SDK on a local 3-node cluster; one node is killed with SIGKILL
// mid-run and restarted later. Prints throughput and latency per second across the
// events, the failed operations, and the time until the hints written for the dead node
// are drained after its restart (polling each node's /internal/v1/status hintsPending).
// A table per second for people, then one JSON line; results and a chart are saved.
//
//   npm run bench:failover -- --rate 1000 --duration 40 --kill-at 10 --restart-at 25

import { Command, InvalidArgumentError, Option } from 'commander';
import path from 'node:path';
import type { Distribution } from './harness/key-chooser.js';
import { makeChooser } from './harness/key-chooser.js';
import { summarize } from './harness/latency-recorder.js';
import type { RunResult } from './harness/load-runner.js';
import { loadRecords, runLoad } from './harness/load-runner.js';
import { makeData } from './harness/measure.js';
import { ProcessGroup, REPO_ROOT, sleep } from './harness/processes.js';
import { formatTable, machineInfo, saveResults, stamp } from './harness/report.js';
import { RingkvCluster } from './harness/ringkv-cluster.js';
import { RingkvStore } from './harness/stores/ringkv-store.js';
import { timelineChart } from './harness/svg-chart.js';
import { parseWorkload, WORKLOADS } from './harness/workloads.js';
import { num } from './harness/cli-options.js';

const program = new Command()
  .name('failover-bench')
  .description('steady load on a 3-node cluster while one node is killed (-9) and restarted')
  .addOption(new Option('--workload <name>', 'a | b | c | f | mix').choices(Object.keys(WORKLOADS)).default('mix'))
  .addOption(new Option('--consistency <level>', 'strong | eventual').choices(['strong', 'eventual']).default('strong'))
  .addOption(new Option('--distribution <d>', 'key choice').choices(['zipfian', 'uniform']).default('zipfian'))
  .option('--rate <ops>', 'open-loop rate, ops/s', num('rate', 1), 1000)
  .option('--duration <s>', 'length of the loaded run, seconds', num('duration', 1), 40)
  .option('--kill-at <s>', 'SIGKILL the node this many seconds into the run', num('kill-at'), 10)
  .option('--restart-at <s>', 'restart it this many seconds into the run', num('restart-at'), 25)
  .option('--node <id>', 'the node to kill', 'n3')
  .option('--records <n>', 'records loaded first', num('records', 1), 10_000)
  .option('--value-size <bytes>', 'value size', num('value-size', 1), 100)
  .option('--concurrency <n>', 'most operations in flight', num('concurrency', 1), 512)
  .option('--timeout-ms <ms>', 'SDK per-call timeout', num('timeout-ms', 1), 2000)
  .option('--drain-timeout <s>', 'how long to wait for hints to drain after the run', num('drain-timeout', 1), 120)
  .option('--results-dir <dir>', 'where results and the chart are saved', path.join(REPO_ROOT, 'benchmarks/results'))
  .option('--no-save', 'do not save results')
  .option('--seed <n>', 'random seed', num('seed', 1), 42);

interface Flags {
  workload: string;
  consistency: 'strong' | 'eventual';
  distribution: Distribution;
  rate: number;
  duration: number;
  killAt: number;
  restartAt: number;
  node: string;
  records: number;
  valueSize: number;
  concurrency: number;
  timeoutMs: number;
  drainTimeout: number;
  resultsDir: string;
  save: boolean;
  seed: number;
}

function log(line: string): void {
  process.stdout.write(`${line}\n`);
}

async function main(): Promise<number> {
  program.parse();
  const f = program.opts<Flags>();
  if (!(f.killAt < f.restartAt && f.restartAt < f.duration)) throw new InvalidArgumentError('need kill-at < restart-at < duration');
  const when = new Date();
  const workload = parseWorkload(f.workload);
  const group = new ProcessGroup();
  const uninstall = group.installCleanup();
  const machine = machineInfo();
  log(
    `failover-bench: workload ${workload.name} at ${f.consistency}, ${f.rate} ops/s open loop for ${f.duration} s; ` +
      `kill -9 ${f.node} at ${f.killAt} s, restart at ${f.restartAt} s; ${machine.cores} cores, node ${machine.node}`,
  );
  const cluster = await new RingkvCluster({ nodes: 3, group }).launch();
  if (!cluster.nodes.some((n) => n.id === f.node)) throw new InvalidArgumentError(`no node ${f.node} (n1..n3)`);
  const store = await RingkvStore.open(cluster.addresses, f.consistency, f.timeoutMs);
  const params = {
    workload,
    distribution: f.distribution,
    records: f.records,
    valueBytes: f.valueSize,
    durationMs: f.duration * 1000,
    warmupMs: 0,
    concurrency: f.concurrency,
    mode: 'open' as const,
    rate: f.rate,
    sloMs: 10,
    probeMs: 0,
    stepMs: 0,
    seed: f.seed,
    keyPrefix: 'failover:',
  };
  const data = makeData(params);
  await loadRecords(store, data.keys, data.values, 128);
  // A short warm-up at the same rate, not measured.
  await runLoad(store, { mode: 'open', ratePerSec: f.rate, concurrency: f.concurrency, durationMs: 2000, workload, keys: data.keys, chooser: makeChooser(f.distribution, f.records, f.seed), values: data.values });

  // Hints pending over time (sum over the running nodes), sampled every 250 ms.
  const hints: { atMs: number; pending: number }[] = [];
  let polling = true;
  const t0 = performance.now();
  const pollHints = async () => {
    while (polling) {
      const live = cluster.nodes.filter((n) => cluster.running(n.id));
      const st = await Promise.all(live.map((n) => cluster.status(n.id, 1000).then((s) => s.hintsPending, () => 0)));
      hints.push({ atMs: performance.now() - t0, pending: st.reduce((a, b) => a + b, 0) });
      await sleep(250);
    }
  };
  const poller = pollHints();

  const events: { atSec: number; label: string }[] = [];
  let restartReadyMs = NaN;
  let chaosError: unknown;
  const chaos = (async () => {
    await sleep(f.killAt * 1000 - (performance.now() - t0));
    await cluster.kill(f.node);
    events.push({ atSec: (performance.now() - t0) / 1000, label: `kill -9 ${f.node}` });
    log(`   ${((performance.now() - t0) / 1000).toFixed(1)} s: killed ${f.node}`);
    await sleep(f.restartAt * 1000 - (performance.now() - t0));
    const r0 = performance.now();
    events.push({ atSec: (r0 - t0) / 1000, label: `restart ${f.node}` });
    await cluster.restart(f.node);
    restartReadyMs = performance.now() - t0;
    events.push({ atSec: restartReadyMs / 1000, label: 'ready' });
    log(`   ${(restartReadyMs / 1000).toFixed(1)} s: ${f.node} listening again (${Math.round(performance.now() - r0)} ms to start)`);
  })().catch((err: unknown) => {
    chaosError = err;
  });
  const run: RunResult = await runLoad(store, {
    mode: 'open',
    ratePerSec: f.rate,
    concurrency: f.concurrency,
    durationMs: f.duration * 1000,
    workload,
    keys: data.keys,
    chooser: makeChooser(f.distribution, f.records, f.seed + 1),
    values: data.values,
    seed: f.seed + 2,
    perSecond: true,
    drainTimeoutMs: f.timeoutMs * 3,
    now: () => performance.now(),
  });
  await chaos;
  if (chaosError) {
    polling = false;
    await poller;
    await store.close();
    await cluster.stopAll();
    throw chaosError;
  }
  // Wait for the hints to drain (the poller keeps sampling).
  const drainDeadline = performance.now() + f.drainTimeout * 1000;
  let drainedAtMs = NaN;
  let peak = 0;
  while (performance.now() < drainDeadline) {
    const lastSample = hints[hints.length - 1];
    peak = Math.max(peak, ...hints.map((h) => h.pending));
    if (lastSample && lastSample.atMs > restartReadyMs && lastSample.pending === 0) {
      // The first sample after the restart from which the count stayed at zero.
      const after = hints.filter((h) => h.atMs >= restartReadyMs);
      let i = after.length - 1;
      while (i > 0 && after[i - 1]!.pending === 0) i--;
      drainedAtMs = after[i]!.atMs;
      break;
    }
    await sleep(250);
  }
  polling = false;
  await poller;
  await store.close();

  // Per-second table: slots are by completion time from the start of the run.
  const perSec = run.recorder.seconds.map((s, i) => {
    const sum = summarize(s.hist);
    const inSec = hints.filter((h) => h.atMs >= i * 1000 && h.atMs < (i + 1) * 1000).map((h) => h.pending);
    const ev = events.filter((e) => Math.floor(e.atSec) === i).map((e) => e.label);
    return { sec: i, ok: s.ok, errors: s.errors, p50Ms: sum.p50Ms, p99Ms: sum.p99Ms, maxMs: sum.maxMs, hintsPending: inSec.length ? Math.max(...inSec) : null, events: ev };
  });
  log('');
  log(
    formatTable(
      ['sec', 'ok ops', 'errors', 'p50 ms', 'p99 ms', 'max ms', 'hints', 'event'],
      perSec.map((r) => [String(r.sec), String(r.ok), String(r.errors), r.p50Ms.toFixed(2), r.p99Ms.toFixed(2), r.maxMs.toFixed(1), r.hintsPending === null ? '-' : String(r.hintsPending), r.events.join(', ')]),
    ),
  );
  const overall = summarize(run.recorder.overall);
  const measuredSecs = perSec.filter((r) => r.sec < f.duration);
  const line: Record<string, unknown> = {
    scenario: 'failover',
    workload: workload.name,
    consistency: f.consistency,
    rate: f.rate,
    killedNode: f.node,
    killAtSec: f.killAt,
    restartAtSec: f.restartAt,
    opsPerSec: Math.round(run.opsPerSec),
    p50Ms: overall.p50Ms,
    p99Ms: overall.p99Ms,
    p999Ms: overall.p999Ms,
    maxMs: overall.maxMs,
    failedOps: run.recorder.errors + run.unissued + run.abandoned,
    errorCodes: Object.fromEntries(run.recorder.errorCodes),
    secondsBelow90PctRate: measuredSecs.filter((r) => r.ok < 0.9 * f.rate).length,
    worstSecondP99Ms: Math.max(0, ...measuredSecs.map((r) => r.p99Ms)),
    hintsPeak: peak,
    restartReadySec: Number.isFinite(restartReadyMs) ? Math.round(restartReadyMs) / 1000 : null,
    hintsDrainedMs: Number.isFinite(drainedAtMs) ? Math.round(drainedAtMs - restartReadyMs) : null,
    cores: machine.cores,
  };
  if (f.save) {
    const full = perSec.filter((r) => r.sec < f.duration); // the last partial second would read as a drop
    const svg = timelineChart(
      `Failover: kill -9 ${f.node} at ${f.killAt} s, restart at ${f.restartAt} s (${workload.name} at ${f.consistency}, ${f.rate} ops/s)`,
      `${machine.cores} cores, ${f.records} records x ${f.valueSize} B, open loop; per second by completion; hints drained ${line.hintsDrainedMs ?? '?'} ms after restart; ${when.toISOString().slice(0, 10)}`,
      [
        { name: 'ok ops/s', values: full.map((r) => r.ok) },
        { name: 'errors/s', values: full.map((r) => r.errors) },
      ],
      [{ name: 'p99 ms', values: full.map((r) => (r.ok > 0 ? r.p99Ms : NaN)) }],
      events,
      '',
      ' ms',
    );
    const files = saveResults(f.resultsDir, `${stamp(when)}-failover-${workload.name}-${f.consistency}-${machine.cores}cores`, { date: when.toISOString(), command: `npm run bench:failover -- ${process.argv.slice(2).join(' ')}`.trim(), machine, params: f, perSecond: perSec, hints, events, json: line, pids: group.pids }, svg);
    log(`\nsaved ${files.map((x) => path.relative(process.cwd(), x)).join(', ')}`);
    line.resultsFile = path.relative(REPO_ROOT, files[0]!);
  }
  await cluster.stopAll();
  await group.stopAll();
  uninstall();
  log(JSON.stringify(line));
  return 0;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`failover-bench: ${(err as Error)?.stack ?? String(err)}\n`);
    process.exit(2);
  },
);
