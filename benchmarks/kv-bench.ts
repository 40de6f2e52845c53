// The end-to-end benchmark (issue 6): YCSB-style workloads through the real SDK against a
// real local ringkv cluster (or --seeds), and the same workload against Redis (single and
// replicated) and etcd in the same run, one system at a time on the same machine. Prints
// a table for people and, as the last line, one JSON object for machines; saves the
// figures, settings and machine under benchmarks/results/ with an SVG chart.
//
//   npm run bench -- --workload mix --consistency strong --duration 30
//   npm run bench -- --seeds 127.0.0.1:7001 --no-peers --rate 5000
//   npm run bench -- --workload counter --duration 10   (counters beside Redis INCRBY)
//
// Method and flags: benchmarks/README.md.

import { Command, InvalidArgumentError, Option } from 'commander';
import fs from 'node:fs';
import path from 'node:path';
import { readProfile, formatProfile, summarizeProfile } from './harness/cpu-profile.js';
import type { Distribution } from './harness/key-chooser.js';
import type { BenchParams, SystemResult } from './harness/measure.js';
import { makeData, measureSystem } from './harness/measure.js';
import { ProcessGroup, REPO_ROOT } from './harness/processes.js';
import type { CombinedResult } from './harness/report.js';
import { combineRuns, labelledSloRate, machineInfo, ratios, resultsTable, saveResults, stamp } from './harness/report.js';
import type { SystemName, SystemOptions, SystemSpec } from './harness/systems.js';
import { SYSTEM_NAMES, SYSTEMS } from './harness/systems.js';
import { systemsChart } from './harness/svg-chart.js';
import { parseWorkload, WORKLOADS } from './harness/workloads.js';
import type { RedisFsync } from './harness/peer-servers.js';

function positiveNumber(name: string) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isFinite(n) || n <= 0) throw new InvalidArgumentError(`${name} must be a positive number`);
    return n;
  };
}
function positiveInt(name: string) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isSafeInteger(n) || n <= 0) throw new InvalidArgumentError(`${name} must be a positive integer`);
    return n;
  };
}

const program = new Command()
  .name('kv-bench')
  .description('YCSB-style workloads: ringkv through its SDK against a local cluster, with Redis and etcd as peers in the same run')
  .addOption(new Option('--workload <name>', 'a | b | c | f | mix (2 reads : 1 write) | counter (increments: ringkv counters, Redis INCRBY)').choices(Object.keys(WORKLOADS)).default('mix'))
  .addOption(new Option('--consistency <level>', 'ringkv consistency (etcd runs at strong only)').choices(['strong', 'eventual']).default('strong'))
  .addOption(new Option('--distribution <d>', 'key choice').choices(['zipfian', 'uniform']).default('zipfian'))
  .option('--records <n>', 'records loaded before measuring', positiveInt('records'), 100_000)
  .option('--value-size <bytes>', 'value size (YCSB uses 1000: 10 fields of 100 B)', positiveInt('value-size'), 100)
  .option('--duration <s>', 'main measurement per system, seconds', positiveNumber('duration'), 30)
  .option('--warmup <s>', 'closed-loop warm-up per system, seconds (0: none)', Number, 5)
  .option('--concurrency <n>', 'most operations in flight (closed loop: number of loops)', positiveInt('concurrency'), 256)
  .addOption(new Option('--mode <m>', 'open: at a target rate, latency from the intended start; closed: as fast as it goes').choices(['open', 'closed']).default('open'))
  .option('--rate <ops>', 'open-loop target rate for every system (default: each system at the highest rate whose p99 meets --slo-ms)', positiveNumber('rate'))
  .option('--slo-ms <ms>', 'p99 bound of the rate search', positiveNumber('slo-ms'), 10)
  .option('--probe <s>', 'closed-loop probe of the maximum before the search, seconds', positiveNumber('probe'), 5)
  .option('--step <s>', 'length of each open-loop search step, seconds', positiveNumber('step'), 3)
  .option('--confirm <n>', 'measured phases tried, from the searched rate down by 20% each, until one meets the SLO', positiveInt('confirm'), 3)
  .option('--runs <n>', 'repeat every system this often; each system is reported by its median run (by measured rate), as a whole', positiveInt('runs'), 1)
  .option('--systems <list>', `systems to measure, of ${SYSTEM_NAMES.join(',')}`, SYSTEM_NAMES.join(','))
  .option('--no-peers', 'measure ringkv only')
  .option('--seeds <list>', 'use a running ringkv cluster (host:port,...) instead of starting one')
  .option('--nodes <n>', 'ringkv nodes to start', positiveInt('nodes'), 3)
  .option('--server-args <flags>', 'extra storage-server flags, space-separated (diagnostics, e.g. "--sync none")')
  .option('--etcd-members <n>', 'etcd cluster size (1 or 3)', positiveInt('etcd-members'), 3)
  .option('--redis-connections <n>', 'Redis connections (ioredis, auto-pipelined)', positiveInt('redis-connections'), 16)
  .addOption(new Option('--redis-fsync <policy>', 'Redis appendfsync (always matches ringkv sync=batch)').choices(['always', 'everysec', 'no']).default('always'))
  .option('--wait-timeout-ms <ms>', 'timeout of Redis WAIT after writes', positiveInt('wait-timeout-ms'), 1000)
  .option('--profile [dir]', 'CPU-profile the servers (node --cpu-prof) and the SDK; summary printed at the end')
  .option('--results-dir <dir>', 'where results and the chart are saved', path.join(REPO_ROOT, 'benchmarks/results'))
  .option('--no-save', 'do not save results')
  .option('--seed <n>', 'random seed', positiveInt('seed'), 42);

interface Flags {
  workload: string;
  consistency: 'strong' | 'eventual';
  distribution: Distribution;
  records: number;
  valueSize: number;
  duration: number;
  warmup: number;
  concurrency: number;
  mode: 'open' | 'closed';
  rate?: number;
  sloMs: number;
  probe: number;
  step: number;
  confirm: number;
  runs: number;
  systems: string;
  peers: boolean;
  seeds?: string;
  nodes: number;
  serverArgs?: string;
  etcdMembers: number;
  redisConnections: number;
  redisFsync: RedisFsync;
  waitTimeoutMs: number;
  profile?: string | boolean;
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
  if (!(f.warmup >= 0)) throw new InvalidArgumentError('warmup must be >= 0');
  const when = new Date();
  const profileDir = f.profile ? path.resolve(typeof f.profile === 'string' ? f.profile : path.join(REPO_ROOT, 'benchmarks/.work', `profiles-${stamp(when)}`)) : undefined;
  if (profileDir) fs.mkdirSync(profileDir, { recursive: true });
  const params: BenchParams = {
    workload: parseWorkload(f.workload),
    distribution: f.distribution,
    records: f.records,
    valueBytes: f.valueSize,
    durationMs: f.duration * 1000,
    warmupMs: f.warmup * 1000,
    concurrency: f.concurrency,
    mode: f.mode,
    rate: f.rate,
    sloMs: f.sloMs,
    probeMs: f.probe * 1000,
    stepMs: f.step * 1000,
    confirmAttempts: f.confirm,
    seed: f.seed,
    // Counters live apart from the YCSB records (a key holds one type).
    keyPrefix: f.workload === 'counter' ? 'counter:' : 'ycsb:',
    ...(profileDir ? { sdkProfileFile: path.join(profileDir, `sdk-${stamp(when)}.cpuprofile`) } : {}),
  };
  const group = new ProcessGroup();
  const uninstall = group.installCleanup();
  const so: SystemOptions = {
    consistency: f.consistency,
    counters: params.workload.counters === true,
    group,
    ...(f.seeds ? { seeds: f.seeds.split(',').map((s) => s.trim()).filter(Boolean) } : {}),
    nodes: f.nodes,
    ...(f.serverArgs ? { serverArgs: f.serverArgs.split(/\s+/).filter(Boolean) } : {}),
    ...(profileDir ? { profileDir } : {}),
    etcdMembers: f.etcdMembers,
    redisConnections: f.redisConnections,
    redisFsync: f.redisFsync,
    waitTimeoutMs: f.waitTimeoutMs,
  };

  const wanted = f.peers ? f.systems.split(',').map((s) => s.trim()) : ['ringkv'];
  for (const w of wanted) if (!(SYSTEM_NAMES as readonly string[]).includes(w)) throw new InvalidArgumentError(`unknown system ${w}`);
  const skipped: Record<string, string> = {};
  const specs: SystemSpec[] = [];
  for (const name of SYSTEM_NAMES) {
    if (!wanted.includes(name)) continue;
    const why = SYSTEMS[name].skipReason(so);
    if (why) {
      skipped[name] = why;
      log(`skipping ${name}: ${why}`);
    } else specs.push(SYSTEMS[name]);
  }
  const machine = machineInfo();
  log(
    `kv-bench: workload ${params.workload.name} (${params.workload.description}), consistency ${f.consistency}, ${f.distribution} keys, ` +
      `${f.records} records x ${f.valueSize} B, ${f.mode} loop, ${f.rate ? `rate ${f.rate} ops/s` : `p99 <= ${f.sloMs} ms rate search`}, ` +
      `${f.duration} s per system, ${f.concurrency} in flight, ${f.runs} run(s); ${machine.cores} cores (${machine.cpu}), node ${machine.node}`,
  );

  const data = makeData(params);
  const perSystem = new Map<SystemName, SystemResult[]>();
  const failures: Record<string, string> = {};
  for (let run = 0; run < f.runs; run++) {
    // Rotate the order between runs so no system always goes first (or last).
    const order = specs.map((_, i) => specs[(i + run) % specs.length]!);
    if (f.runs > 1) log(`\n#### run ${run + 1} of ${f.runs}: ${order.map((s) => s.name).join(', ')}`);
    for (const spec of order) {
      try {
        const r = await measureSystem(spec, so, params, data, log);
        perSystem.set(spec.name, [...(perSystem.get(spec.name) ?? []), r]);
      } catch (err) {
        const msg = (err as Error)?.message ?? String(err);
        failures[spec.name] = msg.split('\n')[0]!;
        log(`   ${spec.name} failed: ${msg}`);
      }
    }
  }

  const combined: CombinedResult[] = specs.filter((s) => perSystem.has(s.name)).map((s) => combineRuns(perSystem.get(s.name)!, f.sloMs));
  const ringkv = combined.find((r) => r.system === 'ringkv');
  log(
    `\n${f.runs > 1 ? `Each system's median run of ${f.runs} (by measured rate), each row one run as a whole. ` : 'Single run. '}` +
      `Workload ${params.workload.name}, ${f.consistency}, ${machine.cores} cores:`,
  );
  log(resultsTable(combined, f.sloMs));

  /** Each run's own rate, SLO rate (as labelled) and p99, in run order. */
  const perRunLine = (r: CombinedResult) =>
    r.perRun.map((x) => ({ opsPerSec: x.opsPerSec, maxOpsPerSec: x.maxOpsPerSec ?? null, sloRatePerSec: labelledSloRate(x, f.sloMs) ?? null, p99Ms: x.p99Ms }));
  const peers: Record<string, unknown> = {};
  for (const r of combined) {
    if (r.system === 'ringkv') continue;
    peers[r.system] = {
      opsPerSec: r.opsPerSec,
      p50Ms: r.p50Ms,
      p99Ms: r.p99Ms,
      p999Ms: r.p999Ms,
      maxMs: r.maxMs,
      errors: r.errors,
      maxOpsPerSec: r.maxOpsPerSec,
      sloRatePerSec: r.sloRatePerSec,
      medianRun: r.medianRun + 1,
      perRun: perRunLine(r),
      ...(ringkv ? ratios(ringkv, r) : {}),
    };
  }
  for (const [name, why] of Object.entries(skipped)) if (name !== 'ringkv') peers[name] = { skipped: why };
  for (const [name, why] of Object.entries(failures)) if (name !== 'ringkv') peers[name] = { failed: why };

  const base = `${stamp(when)}-${params.workload.name}-${f.consistency}-${machine.cores}cores`;
  const line: Record<string, unknown> = {
    workload: params.workload.name,
    consistency: f.consistency,
    opsPerSec: ringkv?.opsPerSec ?? 0,
    p50Ms: ringkv?.p50Ms ?? null,
    p99Ms: ringkv?.p99Ms ?? null,
    p999Ms: ringkv?.p999Ms ?? null,
    maxMs: ringkv?.maxMs ?? null,
    errors: ringkv?.errors ?? null,
    maxOpsPerSec: ringkv?.maxOpsPerSec ?? null,
    sloRatePerSec: ringkv?.sloRatePerSec ?? null,
    medianRun: ringkv ? ringkv.medianRun + 1 : null,
    perRun: ringkv ? perRunLine(ringkv) : null,
    sloMs: f.sloMs,
    mode: f.mode,
    distribution: f.distribution,
    records: f.records,
    valueBytes: f.valueSize,
    durationSec: f.duration,
    runs: f.runs,
    cores: machine.cores,
    ...(failures.ringkv ? { failed: failures.ringkv } : {}),
    peers,
  };

  if (f.save) {
    const svg = systemsChart(
      `Workload ${params.workload.name} (${params.workload.description}) at ${f.consistency}`,
      `${machine.cores} cores, ${f.records} records x ${f.valueSize} B, ${f.distribution}, ${f.duration} s per system, ${f.runs > 1 ? `median run of ${f.runs}` : 'single run'}, ${when.toISOString().slice(0, 10)}`,
      combined.map((r) => ({
        system: r.system,
        throughput: {
          ...(r.maxOpsPerSec !== undefined ? { 'max (closed loop)': r.maxOpsPerSec } : {}),
          ...(r.sloRatePerSec !== undefined ? { [`p99 <= ${f.sloMs} ms`]: r.sloRatePerSec } : {}),
          measured: r.opsPerSec,
        },
        latencyMs: { p50: r.p50Ms, p99: r.p99Ms, 'p99.9': r.p999Ms },
      })),
    );
    const files = saveResults(
      f.resultsDir,
      base,
      { date: when.toISOString(), command: `npm run bench -- ${process.argv.slice(2).join(' ')}`.trim(), machine, params: { ...f, workload: params.workload }, systems: combined, skipped, failures, json: line, pids: group.pids },
      svg,
    );
    log(`\nsaved ${files.map((x) => path.relative(process.cwd(), x)).join(', ')}`);
    line.resultsFile = path.relative(REPO_ROOT, files[0]!);
  }

  await group.stopAll();
  if (profileDir) {
    log(`\nCPU profiles in ${profileDir}:`);
    for (const file of fs.readdirSync(profileDir).filter((x) => x.endsWith('.cpuprofile')).sort()) {
      log(formatProfile(file, summarizeProfile(readProfile(path.join(profileDir, file)), 15)));
    }
  }
  uninstall();
  log(JSON.stringify(line));
  return failures.ringkv ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`kv-bench: ${(err as Error)?.stack ?? String(err)}\n`);
    process.exit(2);
  },
);
