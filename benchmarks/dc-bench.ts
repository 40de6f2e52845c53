// The data-centers run (issue 15): a local-quorum mix on two data centers of three nodes
// (east, west; 3 replicas in each), the link between them through a user-space proxy that
// delays every chunk by `--delay-ms` each way (harness/inter-dc-link.ts). The load
// generator is a client in east. Phases: localQuorum with no delay (the baseline), then with
// the delay localQuorum and eachQuorum — each as a closed loop (the most it does with
// `--concurrency` operations in flight, and their p99) and as an open loop at one common
// `--rate` (p99 at the same offered load). Meanwhile a prober writes a key in east at
// localQuorum every `--probe-interval-ms` and polls west (localOne) until it shows up: the
// replication lag a reader in west sees, from east's acknowledgment. The servers' own
// histogram of apply lag (ringkv_repl_applied_lag_seconds) is read from /metrics around each
// phase. A table, then one JSON line; results saved under benchmarks/results/. One process;
// nothing shared between phases but the cluster.
//
//   npm run bench:dc -- --delay-ms 50 --duration 20

import { Command, Option } from 'commander';
import path from 'node:path';
import { connect } from '../sdk/index.js';
import type { RingkvClient } from '../sdk/index.js';
import { dcLayout } from './harness/dc-layout.js';
import { InterDcLink } from './harness/inter-dc-link.js';
import { makeChooser } from './harness/key-chooser.js';
import { summarize } from './harness/latency-recorder.js';
import type { RunResult } from './harness/load-runner.js';
import { loadRecords, runLoad } from './harness/load-runner.js';
import { makeData } from './harness/measure.js';
import { ProcessGroup, REPO_ROOT, waitUntil } from './harness/processes.js';
import { formatTable, machineInfo, saveResults, stamp } from './harness/report.js';
import type { ClusterNode } from './harness/ringkv-cluster.js';
import { RingkvCluster } from './harness/ringkv-cluster.js';
import { RingkvStore } from './harness/stores/ringkv-store.js';
import { parseWorkload, WORKLOADS } from './harness/workloads.js';
import { num } from './harness/cli-options.js';

const program = new Command()
  .name('dc-bench')
  .description('two data centers of 3 nodes with a delayed link: localQuorum vs eachQuorum, and the replication lag')
  .addOption(new Option('--workload <name>', 'a | b | c | f | mix').choices(Object.keys(WORKLOADS)).default('mix'))
  .option('--delay-ms <ms>', 'one-way delay of the link between the data centers', num('delay-ms', 0), 50)
  .option('--duration <s>', 'each measured phase, seconds', num('duration', 1), 20)
  .option('--warmup <s>', 'closed-loop warm-up before each level, seconds (discarded)', num('warmup', 0), 3)
  .option('--records <n>', 'records loaded first', num('records', 1), 20_000)
  .option('--value-size <bytes>', 'value size', num('value-size', 1), 100)
  .option('--concurrency <n>', 'operations in flight in the closed loop (and the cap of the open loop)', num('concurrency', 1), 64)
  .option('--rate <ops>', 'offered rate of the open-loop phases, ops/s (every level)', num('rate', 1), 200)
  .option('--probe-interval-ms <ms>', 'a lag probe every so often', num('probe-interval-ms', 10), 100)
  .option('--timeout-ms <ms>', 'SDK per-call timeout', num('timeout-ms', 1), 5000)
  .option('--results-dir <dir>', 'where results are saved', path.join(REPO_ROOT, 'benchmarks/results'))
  .option('--no-save', 'do not save results')
  .option('--seed <n>', 'random seed', num('seed', 1), 42);

interface Flags {
  workload: string;
  delayMs: number;
  duration: number;
  warmup: number;
  records: number;
  valueSize: number;
  concurrency: number;
  rate: number;
  probeIntervalMs: number;
  timeoutMs: number;
  resultsDir: string;
  save: boolean;
  seed: number;
}

/** The levels compared. */
type Level = 'localQuorum' | 'eachQuorum';

interface Quantiles {
  samples: number;
  p50Ms: number;
  p90Ms: number;
  p99Ms: number;
  maxMs: number;
}

interface Phase {
  level: Level;
  delayMs: number;
  loop: 'closed' | 'open';
  offeredPerSec: number | null;
  opsPerSec: number;
  p50Ms: number;
  p99Ms: number;
  p999Ms: number;
  errors: number;
  errorCodes: Record<string, number>;
  loadAverage: number;
}

interface LevelLag {
  level: Level;
  delayMs: number;
  /** East acknowledged (localQuorum) → visible in west (localOne), as a reader there sees it. */
  visible: Quantiles;
  /** The servers' histogram: apply time − origin hybrid time (upper bounds of its buckets). */
  applied: { samples: number; p50Ms: number | null; p99Ms: number | null };
  dropped: number;
}

function log(line: string): void {
  process.stdout.write(`${line}\n`);
}

function quantiles(xs: number[]): Quantiles {
  const s = [...xs].sort((a, b) => a - b);
  const q = (p: number) => (s.length === 0 ? NaN : s[Math.min(s.length - 1, Math.floor(s.length * p))]!);
  const r = (x: number) => Math.round(x * 10) / 10;
  return { samples: s.length, p50Ms: r(q(0.5)), p90Ms: r(q(0.9)), p99Ms: r(q(0.99)), maxMs: r(s[s.length - 1] ?? NaN) };
}

/** Sums of a Prometheus histogram's cumulative buckets (le → count) and of a gauge, over nodes, for label dc="west". */
async function scrape(addresses: string[], dest: string): Promise<{ buckets: Map<number, number>; dropped: number }> {
  const buckets = new Map<number, number>();
  let dropped = 0;
  for (const a of addresses) {
    const text = await fetch(`http://${a}/metrics`, { signal: AbortSignal.timeout(5000) }).then((r) => r.text());
    for (const line of text.split('\n')) {
      if (!line.includes(`dc="${dest}"`)) continue;
      const value = Number(line.slice(line.lastIndexOf(' ') + 1));
      if (line.startsWith('ringkv_repl_applied_lag_seconds_bucket{')) {
        const le = /le="([^"]+)"/.exec(line)?.[1];
        if (le === undefined) continue;
        const bound = le === '+Inf' ? Infinity : Number(le);
        buckets.set(bound, (buckets.get(bound) ?? 0) + value);
      } else if (line.startsWith('ringkv_repl_dropped_total{')) dropped += value;
    }
  }
  return { buckets, dropped };
}

/** Quantile `q` of the difference of two cumulative histograms: the upper bound of its bucket, in ms. */
function bucketQuantile(before: Map<number, number>, after: Map<number, number>, q: number): { n: number; ms: number | null } {
  const bounds = [...after.keys()].sort((a, b) => a - b);
  const n = (after.get(Infinity) ?? 0) - (before.get(Infinity) ?? 0);
  if (n <= 0) return { n: 0, ms: null };
  for (const b of bounds) {
    if ((after.get(b) ?? 0) - (before.get(b) ?? 0) >= q * n) return { n, ms: b === Infinity ? null : b * 1000 };
  }
  return { n, ms: null };
}

/**
 * Writes a probe key in east every `intervalMs` (at localQuorum) and polls west at localOne
 * every 5 ms until it holds that value; collects the time from east's acknowledgment to
 * visibility in west. Stops (and waits for the probes in flight) on stop().
 */
function startProber(east: RingkvClient<string>, west: RingkvClient<string>, intervalMs: number): { stop(): Promise<number[]>; failed: () => number } {
  const lags: number[] = [];
  const inflight = new Set<Promise<void>>();
  let failed = 0;
  let i = 0;
  let stopped = false;
  const probe = async (n: number) => {
    const key = `dc-bench:probe:${n}`;
    const value = `${n}:${Date.now()}`;
    try {
      await east.put(key, value, { consistency: 'localQuorum' });
      const acked = performance.now();
      const deadline = acked + 30_000;
      for (;;) {
        const r = await west.get(key, { consistency: 'localOne' }).catch(() => undefined);
        if (r?.value === value) {
          lags.push(performance.now() - acked);
          return;
        }
        if (performance.now() > deadline) throw new Error('not visible in west within 30 s');
        await new Promise((r) => setTimeout(r, 5));
      }
    } catch {
      failed++;
    }
  };
  const timer = setInterval(() => {
    if (stopped) return;
    const p = probe(i++).finally(() => inflight.delete(p));
    inflight.add(p);
  }, intervalMs);
  return {
    async stop() {
      stopped = true;
      clearInterval(timer);
      await Promise.all([...inflight]);
      return lags;
    },
    failed: () => failed,
  };
}

async function main(): Promise<number> {
  program.parse();
  const f = program.opts<Flags>();
  const when = new Date();
  const workload = parseWorkload(f.workload);
  const machine = machineInfo();
  const group = new ProcessGroup();
  const uninstall = group.installCleanup();
  const link = new InterDcLink();
  const params = {
    workload,
    distribution: 'zipfian' as const,
    records: f.records,
    valueBytes: f.valueSize,
    durationMs: f.duration * 1000,
    warmupMs: f.warmup * 1000,
    concurrency: f.concurrency,
    mode: 'closed' as const,
    rate: f.rate,
    sloMs: 10,
    probeMs: 0,
    stepMs: 0,
    seed: f.seed,
    keyPrefix: 'dc:',
  };
  const data = makeData(params);
  log(
    `dc-bench: workload ${workload.name}, 2 data centers x 3 nodes (east:3,west:3), link delay ${f.delayMs} ms each way, client in east; ` +
      `${f.records} records x ${f.valueSize} B; per level a closed loop of ${f.concurrency} and an open loop at ${f.rate} ops/s, ${f.duration} s each; ` +
      `${machine.cores} cores, node ${machine.node}, load average ${machine.loadAverage.join(' ')}`,
  );

  // east n1..n3, west n4..n6; each node's remote address is its listener on the link.
  const layout = dcLayout(link, [
    { name: 'east', nodes: 3 },
    { name: 'west', nodes: 3 },
  ]);
  const dcOf = (n: ClusterNode) => layout.dcOf.get(n.id)!;
  const c = await new RingkvCluster({ ...layout.options, group }).launch();
  const eastSeeds = c.nodes.filter((n) => dcOf(n) === 'east').map((n) => n.address);
  const westSeeds = c.nodes.filter((n) => dcOf(n) === 'west').map((n) => n.address);
  const eastProbe = await connect({ seeds: eastSeeds, localDc: 'east', valueEncoding: 'utf8', timeoutMs: f.timeoutMs });
  const westProbe = await connect({ seeds: westSeeds, localDc: 'west', valueEncoding: 'utf8', timeoutMs: f.timeoutMs });
  const pendingSum = async () => {
    let sum = 0;
    for (const a of eastSeeds) {
      const text = await fetch(`http://${a}/metrics`, { signal: AbortSignal.timeout(5000) }).then((r) => r.text());
      for (const line of text.split('\n')) if (line.startsWith('ringkv_repl_pending{')) sum += Number(line.slice(line.lastIndexOf(' ') + 1));
    }
    return sum;
  };

  const loader = await RingkvStore.open(eastSeeds, 'localQuorum', f.timeoutMs, { localDc: 'east' });
  const t0 = performance.now();
  await loadRecords(loader, data.keys, data.values, 128);
  await loader.close();
  await waitUntil("east's queues to west drained", async () => (await pendingSum()) === 0, 120_000, 250);
  log(`   loaded ${f.records} records in ${((performance.now() - t0) / 1000).toFixed(1)} s; east's queues to west drained`);

  const phases: Phase[] = [];
  const lags: LevelLag[] = [];
  const plan: [Level, number][] = [
    ['localQuorum', 0],
    ['localQuorum', f.delayMs],
    ['eachQuorum', f.delayMs],
  ];
  for (const [level, delayMs] of plan) {
    link.delay(delayMs);
    const store = await RingkvStore.open(eastSeeds, level, f.timeoutMs, { localDc: 'east' });
    const chooser = (salt: number) => makeChooser('zipfian', f.records, f.seed + salt);
    if (f.warmup > 0) {
      await runLoad(store, { mode: 'closed', concurrency: f.concurrency, durationMs: f.warmup * 1000, workload, keys: data.keys, chooser: chooser(0), values: data.values, seed: f.seed });
    }
    await waitUntil("east's queues to west drained", async () => (await pendingSum()) === 0, 120_000, 250);
    const before = await scrape(eastSeeds, 'west');
    const prober = startProber(eastProbe, westProbe, f.probeIntervalMs);
    for (const loop of ['closed', 'open'] as const) {
      const r: RunResult = await runLoad(store, {
        mode: loop,
        ...(loop === 'open' ? { ratePerSec: f.rate } : {}),
        concurrency: f.concurrency,
        durationMs: f.duration * 1000,
        workload,
        keys: data.keys,
        chooser: chooser(1 + phases.length),
        values: data.values,
        seed: f.seed + phases.length,
        drainTimeoutMs: f.timeoutMs * 2,
      });
      const s = summarize(r.recorder.overall);
      const p: Phase = {
        level,
        delayMs,
        loop,
        offeredPerSec: loop === 'open' ? f.rate : null,
        opsPerSec: Math.round(r.opsPerSec),
        p50Ms: s.p50Ms,
        p99Ms: s.p99Ms,
        p999Ms: s.p999Ms,
        errors: r.recorder.errors + r.unissued + r.abandoned,
        errorCodes: Object.fromEntries(r.recorder.errorCodes),
        loadAverage: machineInfo().loadAverage[0] ?? 0,
      };
      phases.push(p);
      log(`   ${level} delay ${delayMs} ms, ${loop} loop: ${p.opsPerSec} ops/s, p50 ${p.p50Ms} ms, p99 ${p.p99Ms} ms, ${p.errors} failed`);
    }
    const visible = quantiles(await prober.stop());
    await waitUntil("east's queues to west drained", async () => (await pendingSum()) === 0, 120_000, 250);
    const after = await scrape(eastSeeds, 'west');
    const a50 = bucketQuantile(before.buckets, after.buckets, 0.5);
    const a99 = bucketQuantile(before.buckets, after.buckets, 0.99);
    lags.push({ level, delayMs, visible, applied: { samples: a50.n, p50Ms: a50.ms, p99Ms: a99.ms }, dropped: after.dropped - before.dropped });
    log(`   lag east -> west: visible p50 ${visible.p50Ms} ms, p99 ${visible.p99Ms} ms (${visible.samples} probes, ${prober.failed()} failed); applied (buckets) p50 <= ${a50.ms} ms, p99 <= ${a99.ms} ms`);
    await store.close();
  }
  await eastProbe.close();
  await westProbe.close();

  log('');
  log(
    formatTable(
      ['level', 'link delay', 'loop', 'ops/s', 'p50 ms', 'p99 ms', 'p99.9 ms', 'failed'],
      phases.map((p) => [p.level, `${p.delayMs} ms`, p.loop === 'open' ? `open ${p.offeredPerSec}/s` : `closed ${f.concurrency}`, String(p.opsPerSec), p.p50Ms.toFixed(2), p.p99Ms.toFixed(2), p.p999Ms.toFixed(2), String(p.errors)]),
    ),
  );
  log('');
  log(
    formatTable(
      ['lag east -> west during', 'link delay', 'probes', 'visible p50 ms', 'p90 ms', 'p99 ms', 'max ms', 'applied p50 <= ms', 'applied p99 <= ms', 'dropped'],
      lags.map((l) => [
        l.level,
        `${l.delayMs} ms`,
        String(l.visible.samples),
        String(l.visible.p50Ms),
        String(l.visible.p90Ms),
        String(l.visible.p99Ms),
        String(l.visible.maxMs),
        String(l.applied.p50Ms ?? '-'),
        String(l.applied.p99Ms ?? '-'),
        String(l.dropped),
      ]),
    ),
  );
  const pick = (level: Level, delayMs: number, loop: 'closed' | 'open') => phases.find((p) => p.level === level && p.delayMs === delayMs && p.loop === loop);
  const lq = pick('localQuorum', f.delayMs, 'closed');
  const eq = pick('eachQuorum', f.delayMs, 'closed');
  const lqOpen = pick('localQuorum', f.delayMs, 'open');
  const eqOpen = pick('eachQuorum', f.delayMs, 'open');
  const base = pick('localQuorum', 0, 'open');
  const r2 = (x: number) => Math.round(x * 100) / 100;
  const line: Record<string, unknown> = {
    scenario: 'dc',
    workload: workload.name,
    delayMs: f.delayMs,
    localQuorumOpsPerSec: lq?.opsPerSec ?? null,
    eachQuorumOpsPerSec: eq?.opsPerSec ?? null,
    throughputRatioLocalToEach: lq && eq && eq.opsPerSec > 0 ? r2(lq.opsPerSec / eq.opsPerSec) : null,
    localQuorumP99Ms: lqOpen?.p99Ms ?? null,
    eachQuorumP99Ms: eqOpen?.p99Ms ?? null,
    localQuorumP99MsNoDelay: base?.p99Ms ?? null,
    lagVisibleMs: lags.find((l) => l.level === 'localQuorum' && l.delayMs === f.delayMs)?.visible ?? null,
    phases,
    lags,
    singleRun: true,
    loadAverage: machineInfo().loadAverage,
    cores: machine.cores,
  };
  if (f.save) {
    const files = saveResults(f.resultsDir, `${stamp(when)}-dc-${workload.name}-delay${f.delayMs}ms-${machine.cores}cores`, {
      date: when.toISOString(),
      command: `npm run bench:dc -- ${process.argv.slice(2).join(' ')}`.trim(),
      machine,
      params: f,
      json: line,
    });
    log(`\nsaved ${files.map((x) => path.relative(process.cwd(), x)).join(', ')}`);
    line.resultsFile = path.relative(REPO_ROOT, files[0]!);
  }
  await c.stopAll();
  await link.close();
  await group.stopAll();
  uninstall();
  log(JSON.stringify(line));
  return 0;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`dc-bench: ${(err as Error)?.stack ?? String(err)}\n`);
    process.exit(2);
  },
);
