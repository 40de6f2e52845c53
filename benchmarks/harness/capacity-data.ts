// The capacity benchmark's data and report: distinct keys and values derived from their
// index and a seed (so a value read back is checked byte for byte without keeping what was
// written), how many keys make `--data-multiple` times the memory limit, and the table and
// JSON line of a run, and its command line. Pure.

import path from 'node:path';
import { Command, Option } from 'commander';
import { num } from './cli-options.js';
import { fmix32 } from './mix32.js';
import { REPO_ROOT } from './processes.js';
import { formatTable } from './report.js';

const MiB = 1024 * 1024;

/** Key `i`: fixed width, so every key has the same size. */
export function capacityKey(i: number): string {
  return `cap:${i.toString().padStart(10, '0')}`;
}

/** The index of a key made by capacityKey, or undefined for any other key. */
export function capacityIndex(key: string): number | undefined {
  const m = /^cap:(\d{10})$/.exec(key);
  return m ? Number(m[1]) : undefined;
}

/**
 * Value `i` of `bytes` bytes for `seed`: a xorshift stream seeded from (seed, i), so each
 * value is distinct and incompressible, and any wrong, stale or swapped byte is caught.
 */
export function capacityValue(i: number, bytes: number, seed: number, out: Buffer = Buffer.allocUnsafe(bytes)): Buffer {
  let x = fmix32((Math.imul(i, 0x9e3779b1) ^ fmix32(seed)) >>> 0) || 1;
  let p = 0;
  for (; p + 4 <= bytes; p += 4) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out.writeUInt32LE(x >>> 0, p);
  }
  for (; p < bytes; p++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[p] = x & 0xff;
  }
  return out;
}

/** What a value read back is, against what was written. */
export type Check = 'ok' | 'missing' | 'mismatch';

export function checkValue(i: number, got: Uint8Array | undefined, bytes: number, seed: number): Check {
  if (got === undefined) return 'missing';
  return got.length === bytes && Buffer.from(got.buffer, got.byteOffset, got.byteLength).equals(capacityValue(i, bytes, seed)) ? 'ok' : 'mismatch';
}

export interface CapacityFlags {
  memoryMib: number;
  dataMultiple: number;
  valueSize: number;
  nodes: number;
  concurrency: number;
  readSample: number;
  missSample: number;
  ranges: number;
  rangeKeys: number;
  consistency: 'strong' | 'eventual';
  timeoutMs: number;
  mallocArenaMax: number;
  seed: number;
  /** The comparison set: a second server, same limit, holding this multiple of its block cache (0: none). */
  fitsMultiple: number;
  resultsDir: string;
  save: boolean;
  requireLimit: boolean;
}

/** The command line of bench:capacity (options become CapacityFlags). */
export function capacityProgram(): Command {
  return new Command()
    .name('capacity-bench')
    .description('storage servers under a memory limit holding many times it: write, read back and check every value')
    .option('--memory-mib <n>', 'memory limit of each server (a cgroup), MiB', num('memory-mib', 16), 128)
    .option('--data-multiple <x>', 'distinct key + value bytes written, as a multiple of the limit', num('data-multiple', 0.01), 10)
    .option('--value-size <bytes>', 'bytes per value', num('value-size', 1), 1024)
    .option('--nodes <n>', 'servers (each holds every key while nodes <= 3: replication min(3, nodes))', num('nodes', 1), 1)
    .option('--concurrency <n>', 'operations in flight', num('concurrency', 1), 64)
    .option('--read-sample <n>', 'random written keys read back', num('read-sample', 0), 20_000)
    .option('--miss-sample <n>', 'never-written keys read', num('miss-sample', 0), 5_000)
    .option('--ranges <n>', 'token ranges listed in full', num('ranges', 0), 8)
    .option('--range-keys <n>', 'keys listed per range', num('range-keys', 1), 1000)
    .addOption(new Option('--consistency <level>', 'strong | eventual').choices(['strong', 'eventual']).default('strong'))
    .option('--timeout-ms <ms>', 'SDK per-call timeout', num('timeout-ms', 1), 30_000)
    .option('--malloc-arena-max <n>', "glibc's MALLOC_ARENA_MAX for the servers (fewer malloc arenas, less memory kept by threads); 0: as this process's environment says", num('malloc-arena-max', 0), 0)
    .option('--seed <n>', 'seed of the values and samples', num('seed', 0), 42)
    .option('--fits-multiple <x>', 'then, in the same run, a second server under the same limit holding this multiple of its block cache (a set that fits), read the same way; 0: none', num('fits-multiple', 0), 0.25)
    .option('--results-dir <dir>', 'where results are saved', path.join(REPO_ROOT, 'benchmarks/results'))
    .option('--no-save', 'do not save results')
    .option('--no-require-limit', 'run without the memory limit when no cgroup can be made (figures then show no limit)');
}

/** How many keys the run writes: enough distinct key + value bytes for dataMultiple x the limit. */
export function keysFor(f: Pick<CapacityFlags, 'memoryMib' | 'dataMultiple' | 'valueSize'>): number {
  const perKey = capacityKey(0).length + f.valueSize;
  return Math.ceil((f.memoryMib * MiB * f.dataMultiple) / perKey);
}

/** Keys for the comparison set: `multiple` x a server's block cache of `blockCacheBytes`. */
export function fitsKeysFor(multiple: number, valueSize: number, blockCacheBytes: number): number {
  const perKey = capacityKey(0).length + valueSize;
  return multiple > 0 ? Math.max(1, Math.ceil((blockCacheBytes * multiple) / perKey)) : 0;
}

/** The comparison server's run: a data set that fits in its block cache, read like the big one. */
export interface FitsResult {
  keys: number;
  bytesWritten: number;
  blockCacheBytes: number;
  readHit: PhaseFigures;
  readMiss: PhaseFigures;
  verifyErrors: number;
  oomKills: number;
  serverExit: string | null;
  serverMetrics: Record<string, number>;
}

/** One phase's figures. */
export interface PhaseFigures {
  ops: number;
  seconds: number;
  opsPerSec: number;
  mibPerSec: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  errors: number;
  errorCodes: Record<string, number>;
}

/** Memory of the server(s), bytes (per node, the largest). */
export interface MemoryFigures {
  limitBytes: number | null;
  /** Highest RSS seen (VmHWM): the process's own peak. */
  peakRssBytes: number;
  /** Highest anonymous memory charged to the group, sampled. */
  peakAnonBytes: number | null;
  /** The kernel's peak of everything charged (page cache included; reclaimable part too). */
  peakChargedBytes: number | null;
  oomKills: number;
  /** A server that died during the run (signal or code), or null. */
  serverExit: string | null;
}

export interface CapacityResult {
  nodes: number;
  replication: number;
  /** Keys the run meant to write. */
  keys: number;
  valueBytes: number;
  /** Key + value bytes of the writes acknowledged. */
  bytesWritten: number;
  /** Sum over the nodes of their data directories after the run. */
  diskBytes: number;
  dataMultipleOfLimit: number | null;
  write: PhaseFigures;
  readHit: PhaseFigures;
  readMiss: PhaseFigures;
  ranges: { ranges: number; keys: number; errors: number; seconds: number };
  /** Values read back wrong or missing (sample and ranges): must be 0. */
  verifyErrors: number;
  memory: MemoryFigures;
  /** What the server's /metrics said at the end (first node): heap, pinned filter/index bytes, tables. */
  serverMetrics: Record<string, number>;
  /** The set that fits, same run (absent with --fits-multiple 0). */
  fits?: FitsResult;
}

const mib = (b: number | null) => (b === null ? '-' : (b / MiB).toFixed(1));

/** The table of a run. */
export function capacityTable(r: CapacityResult): string {
  const row = (name: string, p: PhaseFigures) => [name, String(p.ops), p.opsPerSec.toFixed(0), p.mibPerSec.toFixed(2), p.p50Ms.toFixed(2), p.p99Ms.toFixed(2), p.maxMs.toFixed(1), String(p.errors)];
  const phases = formatTable(['phase', 'ops', 'ops/s', 'MiB/s', 'p50 ms', 'p99 ms', 'max ms', 'errors'], [row('write', r.write), row('get hit', r.readHit), row('get miss', r.readMiss)]);
  const m = r.memory;
  const mem = formatTable(
    ['written MiB', 'disk MiB', 'limit MiB', 'x limit', 'peak RSS MiB', 'peak anon MiB', 'peak charged MiB', 'OOM kills', 'verify errors'],
    [[mib(r.bytesWritten), mib(r.diskBytes), mib(m.limitBytes), r.dataMultipleOfLimit === null ? '-' : r.dataMultipleOfLimit.toFixed(1), mib(m.peakRssBytes), mib(m.peakAnonBytes), mib(m.peakChargedBytes), String(m.oomKills), String(r.verifyErrors)]],
  );
  let out = `${phases}\n\n${mem}`;
  const fits = r.fits;
  if (fits) {
    const big = `${r.dataMultipleOfLimit === null ? '' : `${r.dataMultipleOfLimit.toFixed(1)}x memory, `}${mib(r.bytesWritten)} MiB`;
    const small = `fits: ${mib(fits.bytesWritten)} MiB, ${(fits.bytesWritten / fits.blockCacheBytes).toFixed(2)}x cache`;
    const cmp = (name: string, a: PhaseFigures, b: PhaseFigures) => [
      name,
      b.opsPerSec.toFixed(0),
      a.opsPerSec.toFixed(0),
      (a.opsPerSec / b.opsPerSec).toFixed(2),
      b.p99Ms.toFixed(2),
      a.p99Ms.toFixed(2),
      (a.p99Ms / b.p99Ms).toFixed(2),
      `${b.errors} / ${a.errors}`,
    ];
    out += `\n\nsame run, ${small} vs ${big}:\n`;
    out += formatTable(
      ['phase', 'fits ops/s', 'big ops/s', 'ratio', 'fits p99 ms', 'big p99 ms', 'ratio', 'errors fits / big'],
      [cmp('get hit', r.readHit, fits.readHit), cmp('get miss', r.readMiss, fits.readMiss)],
    );
    const pinned = r.serverMetrics.ringkv_engine_pinned_bytes;
    if (pinned !== undefined && r.bytesWritten > 0) {
      const tables = r.serverMetrics.ringkv_engine_tables;
      out += `\npinned filters + indexes: ${mib(pinned)} MiB for ${mib(r.bytesWritten)} MiB written (${(pinned / MiB / (r.bytesWritten / (1024 * MiB))).toFixed(1)} MiB per GiB), ${tables ?? '-'} tables; fits: ${mib(fits.serverMetrics.ringkv_engine_pinned_bytes ?? null)} MiB`;
    }
  }
  return out;
}

/** True when the run shows what it must: nothing lost or wrong, no OOM, the server alive. */
export function capacityPassed(r: CapacityResult): boolean {
  const fitsOk = !r.fits || (r.fits.verifyErrors === 0 && r.fits.readHit.errors === 0 && r.fits.readMiss.errors === 0 && r.fits.oomKills === 0 && r.fits.serverExit === null);
  return fitsOk && r.verifyErrors === 0 && r.write.errors === 0 && r.readHit.errors === 0 && r.readMiss.errors === 0 && r.ranges.errors === 0 && r.memory.oomKills === 0 && r.memory.serverExit === null;
}
