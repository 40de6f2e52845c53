// Reports a saved kv-bench results file by the current rule: each system as its median run
// as a whole (the run whose measured rate is the median, with that run's own figures), its
// SLO rate only when that run's measured phase met the SLO, ratios ringkv ÷ peer from those
// runs. For results files written before the rule, whose table took each column's median.
// Reads the file only; prints the table and, last, one JSON line.
//
//   npm run bench:rereport -- benchmarks/results/2026-11-26T0159-mix-strong-2cores.json

import fs from 'node:fs';
import path from 'node:path';
import type { SystemResult } from './harness/measure.js';
import { combineRuns, labelledSloRate, ratios, resultsTable } from './harness/report.js';
import { REPO_ROOT } from './harness/processes.js';

interface SavedRun {
  params: { sloMs: number; runs: number; workload: { name: string }; consistency: string };
  systems: { system: string; perRun: SystemResult[] }[];
}

function main(): number {
  const files = process.argv.slice(2);
  if (files.length === 0) {
    process.stderr.write('usage: rereport <kv-bench results .json> ...\n');
    return 2;
  }
  for (const file of files) {
    const saved = JSON.parse(fs.readFileSync(file, 'utf8')) as SavedRun;
    const sloMs = saved.params.sloMs;
    const combined = saved.systems.map((s) => combineRuns(s.perRun, sloMs));
    const ringkv = combined.find((c) => c.system === 'ringkv');
    process.stdout.write(
      `${path.relative(REPO_ROOT, path.resolve(file))}: workload ${saved.params.workload.name}, ${saved.params.consistency}; ` +
        `each system's median run of ${saved.params.runs} (by measured rate), each row one run as a whole:\n`,
    );
    process.stdout.write(`${resultsTable(combined, sloMs)}\n`);
    const systems: Record<string, unknown> = {};
    for (const c of combined) {
      systems[c.system] = {
        medianRun: c.medianRun + 1,
        opsPerSec: c.opsPerSec,
        maxOpsPerSec: c.maxOpsPerSec,
        sloRatePerSec: c.sloRatePerSec,
        p50Ms: c.p50Ms,
        p99Ms: c.p99Ms,
        maxMs: c.maxMs,
        perRun: c.perRun.map((r) => ({ opsPerSec: r.opsPerSec, maxOpsPerSec: r.maxOpsPerSec, sloRatePerSec: labelledSloRate(r, sloMs), p99Ms: r.p99Ms })),
        ...(ringkv && c !== ringkv ? ratios(ringkv, c) : {}),
      };
    }
    process.stdout.write(`${JSON.stringify({ file: path.relative(REPO_ROOT, path.resolve(file)), sloMs, systems })}\n`);
  }
  return 0;
}

process.exit(main());
