// Ring-balance simulation for large clusters (issue 5): for clusters of many nodes with
// 128 vnodes each, how evenly the token space spreads (per node: primary share, and the
// share of stored data with N = 3 replicas, as max/mean, min/mean and coefficient of
// variation), and what fraction of the data moves when one node joins (measured exactly
// over the token space, not by sampling keys). Pure computation: no servers.
//
//   npm run bench:ring -- [--sizes 10,100,1000] [--vnodes 128] [--joins 5]
//
// Prints a table and a JSON line and saves both under benchmarks/results/.

import { Command } from 'commander';
import os from 'node:os';
import path from 'node:path';
import { machineInfo, saveResults, stamp } from './harness/report.js';
import { REPO_ROOT } from './harness/processes.js';
import { Ring } from '../sdk/ring.js';
import { ringRanges } from '../storage-server/anti-entropy/token-ranges.js';
import type { TokenRange } from '../storage-server/anti-entropy/token-ranges.js';

const TOKENS = 2 ** 32;

function widthOf(r: TokenRange): number {
  return r.spans.reduce((s, x) => s + (x[1] - x[0] + 1), 0);
}

function spread(shares: number[]): { maxOverMean: number; minOverMean: number; cv: number } {
  const mean = shares.reduce((a, b) => a + b, 0) / shares.length;
  const cv = Math.sqrt(shares.reduce((s, x) => s + (x / mean - 1) ** 2, 0) / shares.length);
  return { maxOverMean: Math.max(...shares) / mean, minOverMean: Math.min(...shares) / mean, cv };
}

/** Per node: fraction of the token space it is the primary of, and it stores (any of N replicas). */
function shares(ring: Ring, n: number): { primary: Map<string, number>; stored: Map<string, number> } {
  const primary = new Map<string, number>();
  const stored = new Map<string, number>();
  for (const r of ringRanges(ring, n)) {
    const w = widthOf(r) / TOKENS;
    primary.set(r.replicas[0]!, (primary.get(r.replicas[0]!) ?? 0) + w);
    for (const x of r.replicas) stored.set(x, (stored.get(x) ?? 0) + w);
  }
  return { primary, stored };
}

/**
 * Fraction of stored copies that move when `after` replaces `before`: for every piece of
 * the token space, the replicas in `after` that were not replicas in `before` must receive
 * its data. Divided by N (each token has N copies).
 */
function movedFraction(before: Ring, after: Ring, n: number): number {
  // Cut the circle at every token of both rings; each piece has one replica set per ring.
  const cuts = [...new Set([...before.tokens().map((t) => t.token), ...after.tokens().map((t) => t.token)])].sort((a, b) => a - b);
  let moved = 0;
  for (let i = 0; i < cuts.length; i++) {
    const end = cuts[i]!;
    const start = i === 0 ? cuts[cuts.length - 1]! - TOKENS : cuts[i - 1]!;
    const w = (end - start) / TOKENS;
    const b = new Set(before.preferenceListForToken(end, n));
    const gained = after.preferenceListForToken(end, n).filter((x) => !b.has(x)).length;
    moved += w * gained;
  }
  return moved / n;
}

function main(): void {
  const program = new Command()
    .option('--sizes <list>', 'cluster sizes', '10,100,1000')
    .option('--vnodes <n>', 'vnodes per node', '128')
    .option('--replicas <n>', 'N', '3')
    .option('--joins <n>', 'joins measured per size', '5')
    .option('--results-dir <dir>', 'where the results file is saved', path.join(REPO_ROOT, 'benchmarks/results'))
    .option('--no-save', 'do not save the results file')
    .parse();
  const o = program.opts<{ sizes: string; vnodes: string; replicas: string; joins: string; resultsDir: string; save: boolean }>();
  const when = new Date();
  const sizes = o.sizes.split(',').map(Number);
  const vnodes = Number(o.vnodes);
  const n = Number(o.replicas);
  const joins = Number(o.joins);
  const rows: Record<string, number>[] = [];
  for (const size of sizes) {
    const started = performance.now();
    const members = Array.from({ length: size }, (_, i) => ({ id: `node-${i + 1}` }));
    const ring = new Ring(members, { vnodesPerNode: vnodes });
    const s = shares(ring, n);
    const p = spread([...s.primary.values()]);
    const st = spread([...s.stored.values()]);
    const moves: number[] = [];
    for (let j = 0; j < joins; j++) {
      const after = ring.withMember({ id: `joiner-${j}` });
      moves.push(movedFraction(ring, after, n));
    }
    const meanMove = moves.reduce((a, b) => a + b, 0) / moves.length;
    rows.push({
      nodes: size,
      primaryMaxOverMean: p.maxOverMean,
      primaryMinOverMean: p.minOverMean,
      primaryCv: p.cv,
      storedMaxOverMean: st.maxOverMean,
      storedMinOverMean: st.minOverMean,
      storedCv: st.cv,
      movedPerJoin: meanMove,
      idealMovedPerJoin: 1 / (size + 1),
      ms: Math.round(performance.now() - started),
    });
  }
  const f = (x: number) => x.toFixed(3);
  const header = ['nodes', 'primary max/mean', 'min/mean', 'cv', 'stored max/mean', 'min/mean', 'cv', 'moved per join', 'ideal 1/(n+1)'];
  const table = [header, ...rows.map((r) => [String(r.nodes), f(r.primaryMaxOverMean!), f(r.primaryMinOverMean!), f(r.primaryCv!), f(r.storedMaxOverMean!), f(r.storedMinOverMean!), f(r.storedCv!), f(r.movedPerJoin!), f(r.idealMovedPerJoin!)])];
  const widths = header.map((_, i) => Math.max(...table.map((row) => row[i]!.length)));
  const lines = table.map((row) => row.map((c, i) => c.padStart(widths[i]!)).join('  '));
  process.stdout.write(`ring balance: ${vnodes} vnodes per node, N = ${n}, ${joins} joins per size; ${os.cpus().length} cores\n\n`);
  for (const l of lines) process.stdout.write(`${l}\n`);
  const line: Record<string, unknown> = { vnodes, replicas: n, rows, date: when.toISOString() };
  if (o.save) {
    const [file] = saveResults(o.resultsDir, `${stamp(when)}-ring-balance`, {
      date: when.toISOString(),
      command: `npm run bench:ring -- ${process.argv.slice(2).join(' ')}`.trim(),
      machine: machineInfo(),
      params: { sizes, vnodes, replicas: n, joins },
      table: lines,
      json: line,
    });
    process.stdout.write(`saved ${path.relative(process.cwd(), file!)}\n`);
    line.resultsFile = path.relative(REPO_ROOT, file!);
  }
  process.stdout.write(`${JSON.stringify(line)}\n`);
}

main();
