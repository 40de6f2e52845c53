// The tail benchmark (issue 16, sections 2 and 3): on a local 3-node cluster,
//
//   --scenario hedge: one replica paused in bursts (SIGSTOP for --pause-ms every
//     --pause-every-ms, as a GC pause or a stalled disk would), the same open-loop workload
//     at the same rate through a client without hedged reads, then with them; read p99 of
//     each, hedges sent and won, and the extra requests as a share of reads (the budget).
//   --scenario near-cache: a zipfian (0.99) read-heavy workload (YCSB B) at eventual, closed
//     loop, without then with the near cache: throughput, read latency, the hit ratio, and
//     the staleness a probe observes — another client keeps rewriting a few hot keys (at
//     `all`) while the measured client reads them; a read that returns a version older than
//     one acknowledged before the read began was stale by the time since that acknowledgement.
//
// A table for people, then one JSON line; results saved under benchmarks/results/.
//
//   npm run bench:tail -- --scenario hedge --rate 1000 --duration 20
//   npm run bench:tail -- --scenario near-cache --duration 20

import { Command, InvalidArgumentError, Option } from 'commander';
import path from 'node:path';
import type { Distribution } from './harness/key-chooser.js';
import { makeChooser } from './harness/key-chooser.js';
import type { LatencySummary } from './harness/latency-recorder.js';
import { summarize } from './harness/latency-recorder.js';
import type { RunResult } from './harness/load-runner.js';
import { loadRecords, runLoad } from './harness/load-runner.js';
import { makeData } from './harness/measure.js';
import { ProcessGroup, REPO_ROOT, sleep } from './harness/processes.js';
import { formatTable, machineInfo, saveResults, stamp } from './harness/report.js';
import { RingkvCluster } from './harness/ringkv-cluster.js';
import { RingkvStore } from './harness/stores/ringkv-store.js';
import { parseWorkload, WORKLOADS } from './harness/workloads.js';
import { connect } from '../sdk/index.js';
import { num } from './harness/cli-options.js';

const program = new Command()
  .name('tail-bench')
  .description('hedged reads with one replica paused in bursts; the near cache on a zipfian read-heavy workload')
  .addOption(new Option('--scenario <s>', 'hedge | near-cache').choices(['hedge', 'near-cache']).makeOptionMandatory())
  .addOption(new Option('--workload <name>', 'default: mix (hedge), b (near-cache)').choices(Object.keys(WORKLOADS)))
  .addOption(new Option('--consistency <level>', 'default: strong (hedge), eventual (near-cache)').choices(['strong', 'eventual']))
  .addOption(new Option('--distribution <d>', 'key choice').choices(['zipfian', 'uniform']).default('zipfian'))
  .option('--records <n>', 'records loaded first', num('records', 1), 10_000)
  .option('--value-size <bytes>', 'value size', num('value-size', 1), 100)
  .option('--duration <s>', 'measured seconds per phase', num('duration', 0.5), 20)
  .option('--warmup <s>', 'unmeasured seconds per phase first', num('warmup', 0), 3)
  .option('--rate <ops>', 'hedge: open-loop rate, ops/s', num('rate', 1), 1000)
  .option('--concurrency <n>', 'most operations in flight (near-cache: closed loops)', num('concurrency', 1), 64)
  .option('--node <id>', 'hedge: the node paused in bursts', 'n3')
  .option('--pause-ms <ms>', 'hedge: length of each pause', num('pause-ms', 1), 50)
  .option('--pause-every-ms <ms>', 'hedge: one pause every this long', num('pause-every-ms', 1), 1000)
  .option('--budget-percent <p>', 'hedge: the hedge budget', num('budget-percent', 0), 5)
  .option('--cache-entries <n>', 'near-cache: maxEntries', num('cache-entries', 1), 10_000)
  .option('--cache-ttl-ms <ms>', 'near-cache: ttlMs', num('cache-ttl-ms', 1), 5000)
  .option('--watched <n>', 'near-cache: hot keys the staleness probe rewrites and reads', num('watched', 1), 10)
  .option('--write-every-ms <ms>', 'near-cache: one probe write every this long', num('write-every-ms', 1), 20)
  .option('--phases <list>', 'phases in order, of off,on', 'off,on')
  .option('--timeout-ms <ms>', 'SDK per-call timeout', num('timeout-ms', 1), 5000)
  .option('--results-dir <dir>', 'where results are saved', path.join(REPO_ROOT, 'benchmarks/results'))
  .option('--no-save', 'do not save results')
  .option('--seed <n>', 'random seed', num('seed', 1), 42);

interface Flags {
  scenario: 'hedge' | 'near-cache';
  workload?: string;
  consistency?: 'strong' | 'eventual';
  distribution: Distribution;
  records: number;
  valueSize: number;
  duration: number;
  warmup: number;
  rate: number;
  concurrency: number;
  node: string;
  pauseMs: number;
  pauseEveryMs: number;
  budgetPercent: number;
  cacheEntries: number;
  cacheTtlMs: number;
  watched: number;
  writeEveryMs: number;
  phases: string;
  timeoutMs: number;
  resultsDir: string;
  save: boolean;
  seed: number;
}

function log(line: string): void {
  process.stdout.write(`${line}\n`);
}

const ms = (x: number) => x.toFixed(2);

/** Pauses a process in bursts until stopped; counts the pauses. */
function pauser(pid: number, pauseMs: number, everyMs: number): { stop: () => Promise<number> } {
  let running = true;
  let pauses = 0;
  const loop = (async () => {
    while (running) {
      await sleep(Math.max(0, everyMs - pauseMs));
      if (!running) break;
      process.kill(pid, 'SIGSTOP');
      pauses++;
      await sleep(pauseMs);
      process.kill(pid, 'SIGCONT');
    }
  })();
  return {
    stop: async () => {
      running = false;
      await loop;
      process.kill(pid, 'SIGCONT');
      return pauses;
    },
  };
}

interface HedgePhase {
  phase: string;
  opsPerSec: number;
  errors: number;
  read: LatencySummary;
  overall: LatencySummary;
  reads: number;
  hedgesSent: number;
  hedgesWon: number;
  skippedBudget: number;
  skippedSlow: number;
  extraRequestsPercent: number;
  pauses: number;
}

interface CachePhase {
  phase: string;
  opsPerSec: number;
  errors: number;
  read: LatencySummary;
  overall: LatencySummary;
  hitRatio: number | null;
  hits: number;
  misses: number;
  invalidations: number;
  /** Misses that fetched and did not store: raced an invalidation, untracked (no live stream). */
  raced: number;
  untracked: number;
  /** Entries dropped past ttlMs (each a miss later). */
  expired: number;
  probeReads: number;
  staleReads: number;
  worstStalenessMs: number;
  p99StalenessMs: number;
}

async function main(): Promise<number> {
  program.parse();
  const f = program.opts<Flags>();
  const hedge = f.scenario === 'hedge';
  const workload = parseWorkload(f.workload ?? (hedge ? 'mix' : 'b'));
  const consistency = f.consistency ?? (hedge ? 'strong' : 'eventual');
  const phases = f.phases.split(',').map((p) => p.trim());
  if (phases.length === 0 || !phases.every((p) => p === 'on' || p === 'off')) throw new InvalidArgumentError('--phases is a list of off and on');
  const when = new Date();
  const machine = machineInfo();
  const group = new ProcessGroup();
  const uninstall = group.installCleanup();
  log(
    `tail-bench ${f.scenario}: workload ${workload.name} at ${consistency}, ${f.distribution} keys, ${f.records} records x ${f.valueSize} B, ` +
      (hedge ? `open loop at ${f.rate} ops/s, ${f.node} paused ${f.pauseMs} ms every ${f.pauseEveryMs} ms` : `closed loop x ${f.concurrency}, cache ${f.cacheEntries} entries, ttl ${f.cacheTtlMs} ms`) +
      `; phases ${phases.join(', ')} of ${f.duration} s (+${f.warmup} s warm-up); ${machine.cores} cores, load average ${machine.loadAverage.join(' ')}`,
  );
  const cluster = await new RingkvCluster({ nodes: 3, group }).launch();
  const params = {
    workload,
    distribution: f.distribution,
    records: f.records,
    valueBytes: f.valueSize,
    durationMs: f.duration * 1000,
    warmupMs: f.warmup * 1000,
    concurrency: f.concurrency,
    mode: 'open' as const,
    rate: f.rate,
    sloMs: 10,
    probeMs: 0,
    stepMs: 0,
    seed: f.seed,
    keyPrefix: 'tail:',
  };
  const data = makeData(params);
  const loader = await RingkvStore.open(cluster.addresses, 'all', 30_000, { hedge: false });
  await loadRecords(loader, data.keys, data.values, 128);
  await loader.close();
  let seed = f.seed;
  const load = (store: RingkvStore, durationMs: number, perSecond = false): Promise<RunResult> =>
    runLoad(store, {
      mode: hedge ? 'open' : 'closed',
      ratePerSec: f.rate,
      concurrency: hedge ? 512 : f.concurrency,
      durationMs,
      workload,
      keys: data.keys,
      chooser: makeChooser(f.distribution, f.records, ++seed),
      values: data.values,
      seed: ++seed,
      perSecond,
      drainTimeoutMs: f.timeoutMs * 2,
    });

  const results: (HedgePhase | CachePhase)[] = [];
  try {
    for (const phase of phases) {
      const on = phase === 'on';
      if (hedge) {
        const store = await RingkvStore.open(cluster.addresses, consistency, f.timeoutMs, { hedge: on ? { budgetPercent: f.budgetPercent } : false });
        const pid = cluster.node(f.node).proc!.child.pid!;
        const p = pauser(pid, f.pauseMs, f.pauseEveryMs);
        try {
          if (f.warmup > 0) await load(store, f.warmup * 1000);
          const h0 = store.client.hedgeCounters;
          const run = await load(store, f.duration * 1000);
          const h1 = store.client.hedgeCounters;
          const pauses = await p.stop();
          const reads = run.recorder.byKind.read.totalCount;
          const sent = h1.sent - h0.sent;
          const r: HedgePhase = {
            phase: `hedging ${phase}`,
            opsPerSec: Math.round(run.opsPerSec),
            errors: run.recorder.errors + run.unissued + run.abandoned,
            read: summarize(run.recorder.byKind.read),
            overall: summarize(run.recorder.overall),
            reads,
            hedgesSent: sent,
            hedgesWon: h1.won - h0.won,
            skippedBudget: h1.skippedBudget - h0.skippedBudget,
            skippedSlow: h1.skippedSlow - h0.skippedSlow,
            extraRequestsPercent: reads > 0 ? Math.round((sent / reads) * 10000) / 100 : 0,
            pauses,
          };
          results.push(r);
          log(
            `   ${r.phase}: ${r.opsPerSec} ops/s, reads p50 ${r.read.p50Ms} p99 ${r.read.p99Ms} p99.9 ${r.read.p999Ms} max ${r.read.maxMs} ms, ${r.errors} errors; ` +
              `${r.hedgesSent} hedges (${r.extraRequestsPercent}% of ${reads} reads), ${r.hedgesWon} won; ${pauses} pauses`,
          );
        } finally {
          await p.stop().catch(() => 0);
          await store.close();
        }
      } else {
        const store = await RingkvStore.open(cluster.addresses, consistency, f.timeoutMs, on ? { cache: { maxEntries: f.cacheEntries, ttlMs: f.cacheTtlMs } } : {});
        const probe = await stalenessProbe(cluster.addresses, store, f.watched, f.writeEveryMs, consistency);
        try {
          if (f.warmup > 0) await load(store, f.warmup * 1000);
          const c0 = store.client.nearCacheStats;
          probe.start();
          const run = await load(store, f.duration * 1000);
          const st = await probe.stop();
          const c1 = store.client.nearCacheStats;
          const hits = c1 && c0 ? c1.hits - c0.hits : 0;
          const misses = c1 && c0 ? c1.misses - c0.misses : 0;
          const r: CachePhase = {
            phase: `near cache ${phase}`,
            opsPerSec: Math.round(run.opsPerSec),
            errors: run.recorder.errors + run.unissued + run.abandoned,
            read: summarize(run.recorder.byKind.read),
            overall: summarize(run.recorder.overall),
            hitRatio: c1 && hits + misses > 0 ? Math.round((hits / (hits + misses)) * 1000) / 1000 : null,
            hits,
            misses,
            invalidations: c1 && c0 ? c1.invalidations - c0.invalidations : 0,
            raced: c1 && c0 ? c1.raced - c0.raced : 0,
            untracked: c1 && c0 ? c1.untracked - c0.untracked : 0,
            expired: c1 && c0 ? c1.expired - c0.expired : 0,
            ...st,
          };
          results.push(r);
          log(
            `   ${r.phase}: ${r.opsPerSec} ops/s, reads p50 ${r.read.p50Ms} p99 ${r.read.p99Ms} ms, ${r.errors} errors; hit ratio ${r.hitRatio ?? '-'} ` +
              `(misses ${r.misses}: ${r.expired} expired, ${r.raced} raced, ${r.untracked} untracked; ${r.invalidations} invalidations); ` +
              `probe: ${r.staleReads} of ${r.probeReads} reads stale, worst ${r.worstStalenessMs} ms, p99 ${r.p99StalenessMs} ms`,
          );
        } finally {
          await probe.stop();
          await probe.close();
          await store.close();
        }
      }
    }
  } finally {
    await cluster.stopAll();
    await group.stopAll();
    uninstall();
  }

  log('');
  if (hedge) {
    const rows = (results as HedgePhase[]).map((r) => [
      r.phase,
      String(r.opsPerSec),
      ms(r.read.p50Ms),
      ms(r.read.p99Ms),
      ms(r.read.p999Ms),
      ms(r.read.maxMs),
      String(r.errors),
      String(r.hedgesSent),
      String(r.hedgesWon),
      `${r.extraRequestsPercent}%`,
    ]);
    log(formatTable(['phase', 'ops/s', 'read p50 ms', 'read p99 ms', 'read p99.9 ms', 'read max ms', 'errors', 'hedges', 'won', 'extra'], rows));
  } else {
    const rows = (results as CachePhase[]).map((r) => [
      r.phase,
      String(r.opsPerSec),
      ms(r.read.p50Ms),
      ms(r.read.p99Ms),
      r.hitRatio === null ? '-' : r.hitRatio.toFixed(3),
      `${r.staleReads}/${r.probeReads}`,
      ms(r.worstStalenessMs),
      String(r.errors),
    ]);
    log(formatTable(['phase', 'ops/s', 'read p50 ms', 'read p99 ms', 'hit ratio', 'stale probe reads', 'worst staleness ms', 'errors'], rows));
  }
  const line: Record<string, unknown> = {
    scenario: f.scenario,
    workload: workload.name,
    consistency,
    distribution: f.distribution,
    records: f.records,
    durationSec: f.duration,
    runs: 1,
    cores: machine.cores,
    loadAverage: machine.loadAverage,
    phases: results,
  };
  if (f.save) {
    const files = saveResults(
      f.resultsDir,
      `${stamp(when)}-tail-${f.scenario}-${workload.name}-${consistency}-${machine.cores}cores`,
      { date: when.toISOString(), command: `npm run bench:tail -- ${process.argv.slice(2).join(' ')}`.trim(), machine, params: f, json: line, pids: group.pids },
    );
    log(`\nsaved ${files.map((x) => path.relative(process.cwd(), x)).join(', ')}`);
    line.resultsFile = path.relative(REPO_ROOT, files[0]!);
  }
  log(JSON.stringify(line));
  return results.length === phases.length ? 0 : 1;
}

/**
 * The staleness probe of the near-cache scenario: a writer client rewrites `watched` keys
 * in turn (at `all`, values = an 8-byte sequence number) and remembers when each version was
 * acknowledged; the measured client reads them in a loop. A read that returns sequence s
 * while a later one was acknowledged before the read began was stale by the time since the
 * first such acknowledgement.
 */
async function stalenessProbe(seeds: string[], measured: RingkvStore, watched: number, writeEveryMs: number, consistency: 'strong' | 'eventual') {
  const writer = await connect({ seeds, valueEncoding: 'bytes', timeoutMs: 5000, hedge: false });
  const keys = Array.from({ length: watched }, (_, i) => `tail:watched:${i}`);
  const acked = keys.map(() => [] as { seq: number; atMs: number }[]);
  const enc = (seq: number) => {
    const b = Buffer.alloc(8);
    b.writeBigUInt64BE(BigInt(seq));
    return b;
  };
  let seq = 0;
  for (let i = 0; i < keys.length; i++) {
    await writer.put(keys[i]!, enc(++seq), { consistency: 'all' });
    acked[i]!.push({ seq, atMs: performance.now() });
  }
  let running = false;
  let loops: Promise<void>[] = [];
  const stats = { probeReads: 0, staleReads: 0, staleness: [] as number[] };
  const start = () => {
    running = true;
    loops = [
      (async () => {
        for (let i = 0; running; i = (i + 1) % keys.length) {
          const s = ++seq;
          await writer.put(keys[i]!, enc(s), { consistency: 'all' }).then(
            () => acked[i]!.push({ seq: s, atMs: performance.now() }),
            () => undefined,
          );
          await sleep(writeEveryMs);
        }
      })(),
      (async () => {
        for (let i = 0; running; i = (i + 1) % keys.length) {
          const t0 = performance.now();
          const r = await measured.client.get(keys[i]!, { consistency }).catch(() => undefined);
          if (r && r.value.length === 8) {
            stats.probeReads++;
            const got = Number(r.value.readBigUInt64BE());
            // The first version newer than the one read that was acknowledged before the read began.
            const newer = acked[i]!.find((a) => a.seq > got && a.atMs < t0);
            if (newer) {
              stats.staleReads++;
              stats.staleness.push(t0 - newer.atMs);
            }
          }
          await sleep(2);
        }
      })(),
    ];
  };
  let stopped: ReturnType<typeof summarizeStaleness> | undefined;
  const summarizeStaleness = () => {
    const s = [...stats.staleness].sort((a, b) => a - b);
    return {
      probeReads: stats.probeReads,
      staleReads: stats.staleReads,
      worstStalenessMs: Math.round((s.at(-1) ?? 0) * 100) / 100,
      p99StalenessMs: Math.round((s[Math.floor(s.length * 0.99)] ?? s.at(-1) ?? 0) * 100) / 100,
    };
  };
  return {
    start,
    async stop() {
      if (!stopped) {
        running = false;
        await Promise.all(loops);
        stopped = summarizeStaleness();
      }
      return stopped;
    },
    close: () => writer.close(),
  };
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`tail-bench: ${(err as Error)?.stack ?? String(err)}\n`);
    process.exit(2);
  },
);
