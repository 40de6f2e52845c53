// WAL benchmark: durable puts (sync 'batch', group commit) into the engine with WAL segments
// recycled and preallocated (walRecycleSegments > 0) against new, growing segments (0), in
// the same run. Each run: both engines open side by side in fresh directories, a warm-up
// that rolls a few segments (so the recycling engine has retired files to reuse), then a
// closed loop of --concurrency writers, the two engines taking turns in short slices. A
// table for people, one JSON line for machines (last), and the results file under
// benchmarks/results/. Single-threaded driver; the two engines never write at the same time.
//
//   npm run bench:wal -- --runs 3

import { Command } from 'commander';
import nodeFs from 'node:fs';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Engine } from '../storage-server/engine/index.js';
import { num } from './harness/cli-options.js';
import { fmix32 } from './harness/mix32.js';
import { formatTable, machineInfo, median, saveResults, stamp } from './harness/report.js';
import { REPO_ROOT } from './harness/processes.js';

const MiB = 1024 * 1024;

interface Params {
  seconds: number;
  concurrency: number[];
  valueBytes: number;
  memtableBytes: number;
  recycle: number;
  warmupSegments: number;
  runs: number;
  sliceSeconds: number;
  rawSyncs: number;
  rawBytes: number;
}

interface Measure {
  variant: 'recycled' | 'new-files';
  concurrency: number;
  run: number;
  opsPerSec: number;
  p50Ms: number;
  p99Ms: number;
  writesPerSync: number;
  syncsPerSec: number;
  segmentsRecycled: number;
  segmentsPreallocated: number;
}

function quantile(sorted: Float64Array, q: number): number {
  return sorted.length === 0 ? 0 : sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}

/** One engine of a session: its directory, its variant and what its slices measured. */
interface Side {
  variant: Measure['variant'];
  dir: string;
  engine: Engine;
  lat: number[];
  ops: number;
  seconds: number;
  syncs: number;
  recycled: number;
  preallocated: number;
}

/**
 * One run at one concurrency: both engines open side by side (fresh directories), each
 * warmed up, then measured in alternating slices of --slice-seconds (ABAB...), so that the
 * machine's load, which moves by the second on a shared machine, falls on both alike.
 */
async function session(p: Params, concurrency: number, run: number): Promise<Measure[]> {
  const sides: Side[] = [];
  try {
    for (const variant of ['new-files', 'recycled'] as const) {
      const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'ringkv-wal-bench-'));
      const engine = await Engine.open(dir, {
        sync: 'batch',
        memtableSizeBytes: p.memtableBytes,
        walRecycleSegments: variant === 'recycled' ? p.recycle : 0,
        // The WAL is measured: no merges competing for the disk and the CPU.
        autoCompaction: false,
      });
      sides.push({ variant, dir, engine, lat: [], ops: 0, seconds: 0, syncs: 0, recycled: 0, preallocated: 0 });
    }
    const value = Buffer.alloc(p.valueBytes, 0x76);
    let n = run * 1_000_003;
    const nextKey = (): Buffer => {
      const k = Buffer.allocUnsafe(16);
      for (let i = 0; i < 16; i += 4) k.writeUInt32BE(fmix32(n++), i);
      return k;
    };
    // Warm-up: roll segments so that retired files exist (and the page cache settles).
    const per = 16 + p.valueBytes + 16;
    for (const s of sides) {
      for (let written = 0; written < p.warmupSegments * p.memtableBytes; written += per * 64) {
        await Promise.all(Array.from({ length: 64 }, () => s.engine.put(nextKey(), value)));
      }
      await s.engine.flush();
    }
    const slices = Math.max(1, Math.round(p.seconds / p.sliceSeconds));
    for (let i = 0; i < slices; i++) {
      for (const s of i % 2 === 0 ? sides : [...sides].reverse()) {
        const e = s.engine;
        const before = e.stats();
        const t0 = performance.now();
        const deadline = t0 + p.sliceSeconds * 1000;
        await Promise.all(
          Array.from({ length: concurrency }, async () => {
            while (performance.now() < deadline) {
              const st = performance.now();
              await e.put(nextKey(), value);
              s.lat.push(performance.now() - st);
              s.ops++;
            }
          }),
        );
        s.seconds += (performance.now() - t0) / 1000;
        const after = e.stats();
        s.syncs += after.walSyncs - before.walSyncs;
        s.recycled += after.walSegmentsRecycled - before.walSegmentsRecycled;
        s.preallocated += after.walSegmentsPreallocated - before.walSegmentsPreallocated;
      }
    }
    return sides.map((s) => {
      const sorted = Float64Array.from(s.lat).sort();
      return {
        variant: s.variant,
        concurrency,
        run,
        opsPerSec: s.ops / s.seconds,
        p50Ms: quantile(sorted, 0.5),
        p99Ms: quantile(sorted, 0.99),
        writesPerSync: s.syncs > 0 ? s.ops / s.syncs : 0,
        syncsPerSec: s.syncs / s.seconds,
        segmentsRecycled: s.recycled,
        segmentsPreallocated: s.preallocated,
      };
    });
  } finally {
    for (const s of sides) {
      await s.engine.close().catch(() => undefined);
      await fs.rm(s.dir, { recursive: true, force: true });
    }
  }
}

interface SyncLatency {
  p50Ms: number;
  p99Ms: number;
  meanMs: number;
}

/**
 * The mechanism alone, without the engine: `n` rounds of write(--raw-bytes) + fdatasync,
 * alternating between a file that grows by each write (its size changes: the fdatasync
 * must commit it) and one filled with zeros beforehand and overwritten in place (no size
 * change). Synchronous calls, nothing else running.
 */
function rawSyncProbe(n: number, bytes: number): { growing: SyncLatency; preallocated: SyncLatency } {
  const dir = nodeFs.mkdtempSync(path.join(os.tmpdir(), 'ringkv-wal-bench-raw-'));
  try {
    const grow = nodeFs.openSync(path.join(dir, 'growing'), 'w+');
    const pre = nodeFs.openSync(path.join(dir, 'preallocated'), 'w+');
    const zeros = Buffer.alloc(MiB);
    for (let at = 0; at < n * bytes; at += zeros.length) nodeFs.writeSync(pre, zeros, 0, Math.min(zeros.length, n * bytes - at), at);
    nodeFs.fsyncSync(pre);
    const buf = Buffer.alloc(bytes, 0x61);
    const lat = { growing: [] as number[], preallocated: [] as number[] };
    for (let i = 0; i < n; i++) {
      for (const [name, fd] of (i % 2 === 0 ? [['growing', grow], ['preallocated', pre]] : [['preallocated', pre], ['growing', grow]]) as ['growing' | 'preallocated', number][]) {
        const t0 = performance.now();
        nodeFs.writeSync(fd, buf, 0, bytes, i * bytes);
        nodeFs.fdatasyncSync(fd);
        lat[name].push(performance.now() - t0);
      }
    }
    nodeFs.closeSync(grow);
    nodeFs.closeSync(pre);
    const sum = (xs: number[]): SyncLatency => {
      const sorted = Float64Array.from(xs).sort();
      return { p50Ms: quantile(sorted, 0.5), p99Ms: quantile(sorted, 0.99), meanMs: xs.reduce((a, b) => a + b, 0) / xs.length };
    };
    return { growing: sum(lat.growing), preallocated: sum(lat.preallocated) };
  } finally {
    nodeFs.rmSync(dir, { recursive: true, force: true });
  }
}

const fmt = (x: number, d = 0) => x.toLocaleString('en-US', { maximumFractionDigits: d, minimumFractionDigits: d });

async function main(): Promise<void> {
  const o = new Command()
    .name('wal-bench')
    .description('durable puts with WAL segments recycled and preallocated vs new files, in the same run')
    .option('--seconds <n>', 'measured seconds per variant, concurrency and run', num('--seconds', 1), 10)
    .option('--slice-seconds <n>', 'the variants take turns in slices of this many seconds', num('--slice-seconds', 0.1), 1)
    .option('--concurrency <list>', 'writers in flight, comma-separated', (v: string) => v.split(',').map(Number), [1, 32])
    .option('--value-bytes <n>', 'value size (keys are 16 bytes)', num('--value-bytes', 1), 100)
    .option('--memtable-bytes <n>', 'memtableSizeBytes (also the preallocated segment size)', num('--memtable-bytes', 4096), 4 * MiB)
    .option('--recycle <n>', 'walRecycleSegments of the recycling variant', num('--recycle', 1), 4)
    .option('--warmup-segments <n>', 'memtables written before each measurement', num('--warmup-segments', 0), 3)
    .option('--raw-syncs <n>', 'rounds of the raw write + fdatasync probe per run (0: none)', num('--raw-syncs', 0), 2000)
    .option('--raw-bytes <n>', 'bytes per write of the raw probe', num('--raw-bytes', 1), 4096)
    .option('--runs <n>', 'runs; each reports the median run per variant and concurrency', num('--runs', 1), 3)
    .option('--results-dir <dir>', 'where the results file is saved', path.join(REPO_ROOT, 'benchmarks/results'))
    .option('--no-save', 'do not save the results file')
    .parse()
    .opts<Params & { resultsDir: string; save: boolean }>();
  const machine = machineInfo();
  const out: string[] = [];
  const say = (line: string): void => {
    out.push(line);
    console.log(line);
  };
  say(`WAL benchmark ${new Date().toISOString()} — ${machine.cores} cores, ${machine.cpu}, node ${process.version}, tmp ${os.tmpdir()}, load average ${machine.loadAverage.join(' ')}`);
  say(
    `sync 'batch' (group commit, one fdatasync per group), ${o.valueBytes} B values, memtable ${fmt(o.memtableBytes / MiB, 1)} MiB, no compaction; ` +
      `recycled: walRecycleSegments ${o.recycle}; new-files: 0; both open side by side, ${o.warmupSegments} memtables of warm-up each, then ${o.seconds} s each ` +
      `measured in alternating ${o.sliceSeconds} s slices; ${o.runs} run(s), the median run of each shown`,
  );
  const all: Measure[] = [];
  const raw: { run: number; growing: SyncLatency; preallocated: SyncLatency }[] = [];
  for (let run = 0; run < o.runs; run++) {
    if (o.rawSyncs > 0) {
      const r = rawSyncProbe(o.rawSyncs, o.rawBytes);
      raw.push({ run, ...r });
      say(
        `  run ${run + 1} raw write(${o.rawBytes} B) + fdatasync × ${o.rawSyncs}: growing file p50 ${fmt(r.growing.p50Ms, 3)} ms p99 ${fmt(r.growing.p99Ms, 3)} mean ${fmt(r.growing.meanMs, 3)}; ` +
          `preallocated p50 ${fmt(r.preallocated.p50Ms, 3)} ms p99 ${fmt(r.preallocated.p99Ms, 3)} mean ${fmt(r.preallocated.meanMs, 3)}`,
      );
    }
    for (const c of o.concurrency) {
      for (const m of await session(o, c, run)) {
        all.push(m);
        say(
          `  run ${run + 1} c=${c} ${m.variant}: ${fmt(m.opsPerSec)} puts/s, p50 ${fmt(m.p50Ms, 2)} ms, p99 ${fmt(m.p99Ms, 2)} ms, ` +
            `${fmt(m.writesPerSync, 1)} writes/sync, ${fmt(m.syncsPerSec)} syncs/s, segments recycled ${m.segmentsRecycled}, preallocated ${m.segmentsPreallocated}`,
        );
      }
    }
  }
  const rows: string[][] = [];
  const pairedLines: string[] = [];
  const summary: Record<string, unknown>[] = [];
  for (const c of o.concurrency) {
    const pick = (v: Measure['variant']): Measure => {
      const ms = all.filter((m) => m.variant === v && m.concurrency === c);
      const med = median(ms.map((m) => m.opsPerSec));
      return ms.find((m) => m.opsPerSec === med) ?? ms.sort((a, b) => a.opsPerSec - b.opsPerSec)[Math.floor(ms.length / 2)]!;
    };
    const on = pick('recycled');
    const off = pick('new-files');
    const ratio = on.opsPerSec / off.opsPerSec;
    for (const m of [off, on]) {
      rows.push([String(c), m.variant, fmt(m.opsPerSec), fmt(m.p50Ms, 2), fmt(m.p99Ms, 2), fmt(m.writesPerSync, 1), fmt(m.syncsPerSec), m === on ? `${fmt(ratio, 2)}×` : '']);
    }
    // Each run measured both side by side: the ratio within each run, and their median.
    const paired = [...new Set(all.map((m) => m.run))].map((r) => {
      const x = all.find((m) => m.run === r && m.concurrency === c && m.variant === 'recycled')!;
      const y = all.find((m) => m.run === r && m.concurrency === c && m.variant === 'new-files')!;
      return x.opsPerSec / y.opsPerSec;
    });
    summary.push({ concurrency: c, recycled: on, newFiles: off, throughputRatio: ratio, p99Ratio: on.p99Ms / off.p99Ms, pairedRatios: paired, medianPairedRatio: median(paired) });
    pairedLines.push(`writers ${c}: ratio within each run ${paired.map((x) => `${fmt(x, 2)}×`).join(', ')} (median ${fmt(median(paired), 2)}×)`);
  }
  say('');
  say(formatTable(['writers', 'segments', 'puts/s', 'p50 ms', 'p99 ms', 'writes/sync', 'syncs/s', 'ratio'], rows));
  for (const l of pairedLines) say(l);
  if (raw.length > 0) {
    const medRaw = (k: 'growing' | 'preallocated', f: keyof SyncLatency) => median(raw.map((r) => r[k][f]));
    say(
      `raw fdatasync, median of runs: growing file p50 ${fmt(medRaw('growing', 'p50Ms'), 3)} ms (mean ${fmt(medRaw('growing', 'meanMs'), 3)}), ` +
        `preallocated p50 ${fmt(medRaw('preallocated', 'p50Ms'), 3)} ms (mean ${fmt(medRaw('preallocated', 'meanMs'), 3)})`,
    );
  }
  const loadAfter = os.loadavg().map((x) => Math.round(x * 100) / 100);
  say(`load average after: ${loadAfter.join(' ')}`);
  const command = `npm run bench:wal -- ${process.argv.slice(2).join(' ')}`.trimEnd();
  const json = { bench: 'wal', summary: summary.map((x) => ({ concurrency: x.concurrency, throughputRatio: x.throughputRatio, p99Ratio: x.p99Ratio, medianPairedRatio: x.medianPairedRatio })) };
  const result = { ...json, date: new Date().toISOString(), command, machine, loadAverageAfter: loadAfter, params: o, summary, runs: all, rawSyncs: raw, printed: out };
  let resultsFile: string | undefined;
  if (o.save) {
    resultsFile = saveResults(o.resultsDir, `${stamp()}-wal-${machine.cores}cores`, result)[0]!;
    say(`saved ${path.relative(REPO_ROOT, resultsFile)}`);
  }
  console.log(JSON.stringify({ ...json, ...(resultsFile ? { resultsFile: path.relative(REPO_ROOT, resultsFile) } : {}) }));
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
