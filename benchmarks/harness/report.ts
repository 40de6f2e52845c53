// Reporting: the median run of repeated runs (one run as a whole, never figures of
// different runs in one row), the ratios ringkv ÷ peer, the table for people,
// the one-line JSON for machines, and the results file (figures + settings + machine)
// with its SVG chart under benchmarks/results/. Pure functions besides saveResults.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { SystemResult } from './measure.js';

export function median(xs: readonly number[]): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/**
 * One system over several runs, reported as its median run: the run whose measured rate
 * is the median, with that run's own figures (so a row never mixes one run's rate with
 * another's p99). The SLO rate is labelled only when that run's measured phase met the SLO.
 */
export interface CombinedResult {
  system: string;
  description: string;
  settings: Record<string, unknown>;
  runs: number;
  /** Index (from 0, in run order) of the run reported. */
  medianRun: number;
  maxOpsPerSec: number | undefined;
  /** The reported run's rate at p99 ≤ SLO (see labelledSloRate); 0: it had none; undefined: no search. */
  sloRatePerSec: number | undefined;
  opsPerSec: number;
  p50Ms: number;
  p99Ms: number;
  p999Ms: number;
  maxMs: number;
  /** Errors of the reported run. */
  errors: number;
  /** Errors over all runs. */
  errorsAllRuns: number;
  /** Every run's own figures, in order. */
  perRun: SystemResult[];
}

/**
 * The run whose measured rate (opsPerSec of its measured phase) is the median: with an
 * even count the lower of the two middle ones (a run that happened, not an average of two);
 * equal rates keep run order.
 */
export function medianRunIndex(runs: readonly Pick<SystemResult, 'opsPerSec'>[]): number {
  if (runs.length === 0) throw new RangeError('medianRunIndex of no runs');
  const order = runs.map((r, i) => ({ r: r.opsPerSec, i })).sort((a, b) => a.r - b.r || a.i - b.i);
  return order[(runs.length - 1) >> 1]!.i;
}

/**
 * The rate a run may call "p99 ≤ sloMs": its SLO rate only when its own measured phase ran
 * at that rate and had p99 ≤ sloMs; 0 when it searched but its measured phase did not meet
 * the SLO; undefined when it did not search (fixed --rate, closed loop).
 */
export function labelledSloRate(r: Pick<SystemResult, 'sloRatePerSec' | 'targetRate' | 'p99Ms'>, sloMs: number): number | undefined {
  if (r.sloRatePerSec === undefined) return undefined;
  return r.sloRatePerSec > 0 && r.targetRate === r.sloRatePerSec && r.p99Ms <= sloMs ? r.sloRatePerSec : 0;
}

export function combineRuns(runs: readonly SystemResult[], sloMs: number): CombinedResult {
  const i = medianRunIndex(runs);
  const m = runs[i]!;
  return {
    system: m.system,
    description: m.description,
    settings: m.settings,
    runs: runs.length,
    medianRun: i,
    maxOpsPerSec: m.maxOpsPerSec,
    sloRatePerSec: labelledSloRate(m, sloMs),
    opsPerSec: m.opsPerSec,
    p50Ms: m.p50Ms,
    p99Ms: m.p99Ms,
    p999Ms: m.p999Ms,
    maxMs: m.maxMs,
    errors: m.errors,
    errorsAllRuns: runs.reduce((s, r) => s + r.errors, 0),
    perRun: [...runs],
  };
}

const round = (x: number, digits: number) => Math.round(x * 10 ** digits) / 10 ** digits;

/** ringkv ÷ peer: > 1 means ringkv does more (throughput) or waits longer (p99). */
export function ratios(ringkv: CombinedResult, peer: CombinedResult): { throughputRatio: number; p99Ratio: number; maxThroughputRatio?: number; sloRateRatio?: number } {
  const r: { throughputRatio: number; p99Ratio: number; maxThroughputRatio?: number; sloRateRatio?: number } = {
    throughputRatio: peer.opsPerSec > 0 ? round(ringkv.opsPerSec / peer.opsPerSec, 3) : NaN,
    p99Ratio: peer.p99Ms > 0 ? round(ringkv.p99Ms / peer.p99Ms, 3) : NaN,
  };
  if (ringkv.maxOpsPerSec !== undefined && peer.maxOpsPerSec) r.maxThroughputRatio = round(ringkv.maxOpsPerSec / peer.maxOpsPerSec, 3);
  if (ringkv.sloRatePerSec !== undefined && peer.sloRatePerSec) r.sloRateRatio = round(ringkv.sloRatePerSec / peer.sloRatePerSec, 3);
  return r;
}

function pad(s: string, n: number, right = false): string {
  return right ? s.padEnd(n) : s.padStart(n);
}

/** A fixed-width table: the first column left-aligned, the rest right-aligned. */
export function formatTable(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) => cells.map((c, i) => pad(c, widths[i]!, i === 0)).join('  ');
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}

const n0 = (x: number | undefined) => (x === undefined || !Number.isFinite(x) ? '-' : Math.round(x).toLocaleString('en-US'));
const ms = (x: number) => (Number.isFinite(x) ? x.toFixed(x >= 100 ? 0 : 2) : '-');
/** An SLO rate cell: '-' without a search, 'none' when the measured phase did not meet it. */
const sloCell = (x: number | undefined) => (x === undefined ? '-' : x === 0 ? 'none' : n0(x));
const ratio = (x: number | undefined) => (x === undefined || !Number.isFinite(x) ? '-' : `${x.toFixed(2)}x`);

export function resultsTable(results: CombinedResult[], sloMs: number): string {
  const ringkv = results.find((r) => r.system === 'ringkv');
  const several = results.some((r) => r.runs > 1);
  const header = [
    'system',
    ...(several ? ['run'] : []),
    'max ops/s',
    `p99<=${sloMs}ms ops/s`,
    'measured ops/s',
    'p50 ms',
    'p99 ms',
    'p99.9 ms',
    'max ms',
    'errors',
    'rk/peer ops',
    'rk/peer p99',
  ];
  const rows = results.map((r) => {
    const q = ringkv && r !== ringkv ? ratios(ringkv, r) : undefined;
    return [
      r.system,
      ...(several ? [`${r.medianRun + 1} of ${r.runs}`] : []),
      n0(r.maxOpsPerSec),
      sloCell(r.sloRatePerSec),
      n0(r.opsPerSec),
      ms(r.p50Ms),
      ms(r.p99Ms),
      ms(r.p999Ms),
      ms(r.maxMs),
      String(r.errors),
      ratio(q?.throughputRatio),
      ratio(q?.p99Ratio),
    ];
  });
  return formatTable(header, rows);
}

export interface MachineInfo {
  cores: number;
  cpu: string;
  memoryGiB: number;
  node: string;
  os: string;
  loadAverage: number[];
}

export function machineInfo(): MachineInfo {
  const cpus = os.cpus();
  return {
    cores: cpus.length,
    cpu: cpus[0]?.model ?? 'unknown',
    memoryGiB: Math.round(os.totalmem() / 2 ** 30),
    node: process.version,
    os: `${os.type()} ${os.release()}`,
    loadAverage: os.loadavg().map((x) => Math.round(x * 100) / 100),
  };
}

/** A file name stamp: 2026-01-31T1405. */
export function stamp(d = new Date()): string {
  return d.toISOString().slice(0, 16).replace(':', '');
}

/** Writes `<dir>/<base>.json` (pretty) and, when given, `<dir>/<base>.svg`; returns the paths. */
export function saveResults(dir: string, base: string, data: unknown, svg?: string): string[] {
  fs.mkdirSync(dir, { recursive: true });
  const files = [path.join(dir, `${base}.json`)];
  fs.writeFileSync(files[0]!, JSON.stringify(data, null, 2) + '\n');
  if (svg !== undefined) {
    files.push(path.join(dir, `${base}.svg`));
    fs.writeFileSync(files[1]!, svg);
  }
  return files;
}
