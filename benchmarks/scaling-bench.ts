// The scaling run (issue 5): load a 3-node cluster with data, keep a steady open-loop load
// on it, add a node with --join mid-run, and report the bytes and keys the new node
// streamed (and their fraction of all stored copies, ideally 1/(nodes after the join)),
// the time the join took, and throughput and latency before, during and after the join.
// A table per second for people, then one JSON line; results and a chart are saved.
//
//   npm run bench:scaling -- --records 50000 --rate 2000 --duration 40 --join-at 10

import { Command, InvalidArgumentError, Option } from 'commander';
import path from 'node:path';
import type { Distribution } from './harness/key-chooser.js';
import { makeChooser } from './harness/key-chooser.js';
import { summarize } from './harness/latency-recorder.js';
import { loadRecords, runLoad } from './harness/load-runner.js';
import { makeData } from './harness/measure.js';
import { ProcessGroup, REPO_ROOT, sleep } from './harness/processes.js';
import { formatTable, machineInfo, saveResults, stamp } from './harness/report.js';
import { fetchJson, RingkvCluster } from './harness/ringkv-cluster.js';
import { RingkvStore } from './harness/stores/ringkv-store.js';
import { timelineChart } from './harness/svg-chart.js';
import { parseWorkload, WORKLOADS } from './harness/workloads.js';
import { num } from './harness/cli-options.js';

const program = new Command()
  .name('scaling-bench')
  .description('steady load on a 3-node cluster while a 4th node joins')
  .addOption(new Option('--workload <name>', 'a | b | c | f | mix').choices(Object.keys(WORKLOADS)).default('mix'))
  .addOption(new Option('--consistency <level>', 'strong | eventual').choices(['strong', 'eventual']).default('strong'))
  .addOption(new Option('--distribution <d>', 'key choice').choices(['zipfian', 'uniform']).default('uniform'))
  .option('--nodes <n>', 'nodes before the join', num('nodes', 3), 3)
  .option('--records <n>', 'records loaded first', num('records', 1), 50_000)
  .option('--value-size <bytes>', 'value size', num('value-size', 1), 100)
  .option('--rate <ops>', 'open-loop rate, ops/s', num('rate', 1), 2000)
  .option('--duration <s>', 'length of the loaded run, seconds', num('duration', 1), 40)
  .option('--join-at <s>', 'start the new node this many seconds into the run', num('join-at'), 10)
  .option('--concurrency <n>', 'most operations in flight', num('concurrency', 1), 512)
  .option('--timeout-ms <ms>', 'SDK per-call timeout', num('timeout-ms', 1), 2000)
  .option('--stream-rate <bytes>', 'the new node streams at most this many bytes/s', num('stream-rate', 1), 32 * 1024 * 1024)
  .option('--results-dir <dir>', 'where results and the chart are saved', path.join(REPO_ROOT, 'benchmarks/results'))
  .option('--no-save', 'do not save results')
  .option('--seed <n>', 'random seed', num('seed', 1), 7);

interface Flags {
  workload: string;
  consistency: 'strong' | 'eventual';
  distribution: Distribution;
  nodes: number;
  records: number;
  valueSize: number;
  rate: number;
  duration: number;
  joinAt: number;
  concurrency: number;
  timeoutMs: number;
  streamRate: number;
  resultsDir: string;
  save: boolean;
  seed: number;
}

interface Status {
  state: string;
  keys: number;
  lastBootstrap: { ranges: number; keys: number; bytes: number; durationMs: number; repairedKeys: number } | null;
}

const log = (line: string) => process.stdout.write(`${line}\n`);

async function main(): Promise<void> {
  program.parse();
  const f = program.opts<Flags>();
  if (!(f.joinAt < f.duration)) throw new InvalidArgumentError('need join-at < duration');
  const when = new Date();
  const machine = machineInfo();
  const workload = parseWorkload(f.workload);
  const group = new ProcessGroup();
  const uninstall = group.installCleanup();
  log(
    `scaling-bench: ${f.nodes} nodes + 1 joining at ${f.joinAt} s; ${f.records} records x ${f.valueSize} B; ` +
      `${workload.name} at ${f.consistency}, ${f.rate} ops/s open loop for ${f.duration} s; ${machine.cores} cores`,
  );
  const cluster = await new RingkvCluster({ nodes: f.nodes, group }).launch();
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
    keyPrefix: 'scaling:',
  };
  const data = makeData(params);
  const loadStarted = performance.now();
  await loadRecords(store, data.keys, data.values, 256);
  log(`   loaded ${f.records} records in ${Math.round(performance.now() - loadStarted)} ms`);

  const t0 = performance.now();
  const events: { atSec: number; label: string }[] = [];
  let joinStartSec = NaN;
  let joinDoneSec = NaN;
  let joined: Status | undefined;
  let newId = '';
  const chaos = (async () => {
    await sleep(f.joinAt * 1000 - (performance.now() - t0));
    joinStartSec = (performance.now() - t0) / 1000;
    events.push({ atSec: joinStartSec, label: 'join starts' });
    const node = await cluster.addNode(['--join']);
    newId = node.id;
    log(`   ${joinStartSec.toFixed(1)} s: started ${node.id} with --join`);
    for (;;) {
      const st = await fetchJson<Status>(`http://${node.address}/internal/v1/status`, 2000).catch(() => undefined);
      if (st?.state === 'up' && st.lastBootstrap) {
        joined = st;
        break;
      }
      await sleep(100);
    }
    joinDoneSec = (performance.now() - t0) / 1000;
    events.push({ atSec: joinDoneSec, label: `${newId} up` });
    log(`   ${joinDoneSec.toFixed(1)} s: ${newId} is up`);
  })();
  const run = await runLoad(store, {
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
  await store.close();

  const perSec = run.recorder.seconds.map((s, i) => {
    const sum = summarize(s.hist);
    const phase = i < joinStartSec ? 'before' : i < joinDoneSec ? 'during' : 'after';
    return { sec: i, ok: s.ok, errors: s.errors, p50Ms: sum.p50Ms, p99Ms: sum.p99Ms, phase, hist: s.hist };
  });
  const phases = ['before', 'during', 'after'].map((phase) => {
    const secs = perSec.filter((r) => r.phase === phase && r.sec < f.duration);
    const ok = secs.reduce((a, r) => a + r.ok, 0);
    const p99 = secs.length ? Math.max(...secs.map((r) => r.p99Ms)) : NaN;
    const p99s = secs.map((r) => r.p99Ms).sort((a, b) => a - b);
    return { phase, seconds: secs.length, opsPerSec: secs.length ? Math.round(ok / secs.length) : 0, medianSecondP99Ms: p99s[Math.floor(p99s.length / 2)] ?? NaN, worstSecondP99Ms: p99, errors: secs.reduce((a, r) => a + r.errors, 0) };
  });
  log('');
  log(formatTable(['sec', 'ok ops', 'errors', 'p50 ms', 'p99 ms', 'phase'], perSec.map((r) => [String(r.sec), String(r.ok), String(r.errors), r.p50Ms.toFixed(2), r.p99Ms.toFixed(2), r.phase])));
  log('');
  log(formatTable(['phase', 'seconds', 'ops/s', 'median p99 ms', 'worst p99 ms', 'errors'], phases.map((p) => [p.phase, String(p.seconds), String(p.opsPerSec), p.medianSecondP99Ms.toFixed(2), p.worstSecondP99Ms.toFixed(2), String(p.errors)])));
  const b = joined?.lastBootstrap;
  const storedCopies = f.records * 3;
  const fraction = b ? b.keys / storedCopies : NaN;
  log('');
  log(
    `join: ${newId} streamed ${b?.keys} keys, ${((b?.bytes ?? 0) / 1048576).toFixed(2)} MiB over ${b?.ranges} ranges in ${b?.durationMs} ms ` +
      `(${(fraction * 100).toFixed(1)}% of ${storedCopies} stored copies; ideal 1/${f.nodes + 1} = ${(100 / (f.nodes + 1)).toFixed(1)}%); ` +
      `${b?.repairedKeys} keys fixed by the final Merkle pass; ${(joinDoneSec - joinStartSec).toFixed(1)} s from start to up`,
  );
  const overall = summarize(run.recorder.overall);
  const line: Record<string, unknown> = {
    scenario: 'scaling',
    workload: workload.name,
    consistency: f.consistency,
    rate: f.rate,
    nodesBefore: f.nodes,
    records: f.records,
    valueBytes: f.valueSize,
    movedKeys: b?.keys ?? null,
    movedBytes: b?.bytes ?? null,
    movedFraction: Number.isFinite(fraction) ? Number(fraction.toFixed(4)) : null,
    idealFraction: Number((1 / (f.nodes + 1)).toFixed(4)),
    streamMs: b?.durationMs ?? null,
    joinSec: Number((joinDoneSec - joinStartSec).toFixed(2)),
    phases,
    opsPerSec: Math.round(run.opsPerSec),
    p50Ms: overall.p50Ms,
    p99Ms: overall.p99Ms,
    p999Ms: overall.p999Ms,
    errors: run.recorder.errors + run.unissued + run.abandoned,
    cores: machine.cores,
  };
  if (f.save) {
    const svg = timelineChart(
      `Scaling: ${f.nodes} -> ${f.nodes + 1} nodes (${workload.name} at ${f.consistency}, ${f.rate} ops/s)`,
      `${machine.cores} cores, ${f.records} records x ${f.valueSize} B; moved ${(fraction * 100).toFixed(1)}% of stored copies; ${when.toISOString().slice(0, 10)}`,
      [
        { name: 'ok ops/s', values: perSec.map((r) => r.ok) },
        { name: 'errors/s', values: perSec.map((r) => r.errors) },
      ],
      [{ name: 'p99 ms', values: perSec.map((r) => (r.ok > 0 ? r.p99Ms : NaN)) }],
      events,
      '',
      ' ms',
    );
    const files = saveResults(
      f.resultsDir,
      `${stamp(when)}-scaling-${workload.name}-${f.consistency}-${machine.cores}cores`,
      { date: when.toISOString(), command: `npm run bench:scaling -- ${process.argv.slice(2).join(' ')}`.trim(), machine, params: f, perSecond: perSec.map(({ hist: _h, ...r }) => r), events, json: line },
      svg,
    );
    log(`\nsaved ${files.map((x) => path.relative(process.cwd(), x)).join(', ')}`);
    line.resultsFile = path.relative(REPO_ROOT, files[0]!);
  }
  await cluster.stopAll();
  await group.stopAll();
  uninstall();
  log(JSON.stringify(line));
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`scaling-bench: ${(err as Error)?.stack ?? String(err)}\n`);
    process.exit(2);
  },
);
