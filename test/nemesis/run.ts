// The nemesis runner (`npm run test:nemesis -- [--only p1,p2] [--duration s] [--seed n]
// [--list]`): as root it re-executes itself in a private network namespace, then runs the
// selected scenarios one after the other, prints one line per scenario and exits non-zero
// when any stated guarantee was violated. Histories and checker results go to
// test/nemesis/results/<timestamp>/. SIGINT/SIGTERM stop the current scenario cleanly.

import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { currentNamespace, namespaceUnavailableReason, reexecInNamespace } from './net-namespace.js';
import type { ScenarioResult } from './run-scenario.js';
import { runScenario, scenarioSeed, skipReason } from './run-scenario.js';
import { selectScenarios } from './scenarios.js';

const here = path.dirname(fileURLToPath(import.meta.url));

function usage(): string {
  return [
    'usage: npm run test:nemesis -- [--only <pattern>[,<pattern>...]] [--duration <s>] [--seed <n>] [--list] [--results <dir>]',
    '  --only      scenarios whose name ("<nemesis>/<level>/<workload>") contains a pattern (or matches a * glob)',
    '  --duration  seconds of workload under faults per scenario (default 20)',
    '  --seed      the run\'s seed (default random; printed)',
    '  --list      print the scenarios and exit',
    '  --results   results directory (default test/nemesis/results/<timestamp>)',
  ].join('\n');
}

/** One line of the summary table. */
export function formatLine(r: ScenarioResult): string {
  const sc = r.scenario;
  const counted = r.checks.filter((c) => !c.informational);
  const anomalies = counted.reduce((s, c) => s + c.result.anomalies.length, 0);
  const info = r.checks.filter((c) => c.informational).map((c) => `; info: ${c.result.checker} ${c.result.anomalies.length} anomalies`);
  // Keys a checker gave up on (its search budget) are neither passed nor failed: say so.
  for (const c of r.checks) if (c.result.undecided?.length) info.push(`; ${c.result.checker}: ${c.result.undecided.length} keys undecided`);
  const status = r.status === 'SKIP' ? `SKIP (${r.reason})` : r.status;
  return [
    sc.nemesis.padEnd(18),
    sc.level.padEnd(13),
    sc.workload.padEnd(9),
    String(r.ops).padStart(6),
    `${r.counts.ok}/${r.counts.fail}/${r.counts.unknown}`.padStart(16),
    String(r.status === 'SKIP' ? '-' : anomalies).padStart(5),
    `  ${status}${info.join('')}`,
  ].join('  ');
}

async function main(): Promise<number> {
  let args;
  try {
    args = parseArgs({
      options: {
        only: { type: 'string' },
        duration: { type: 'string' },
        seed: { type: 'string' },
        list: { type: 'boolean' },
        results: { type: 'string' },
        help: { type: 'boolean' },
      },
    }).values;
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n${usage()}\n`);
    return 2;
  }
  if (args.help) {
    process.stdout.write(`${usage()}\n`);
    return 0;
  }
  const selected = selectScenarios(args.only);
  if (args.list) {
    for (const s of selected) process.stdout.write(`${s.name}\n`);
    return 0;
  }
  if (selected.length === 0) {
    process.stderr.write(`no scenario matches ${args.only}; --list shows them\n`);
    return 2;
  }
  const durationS = args.duration !== undefined ? Number(args.duration) : 20;
  if (!(durationS > 0 && durationS <= 600)) {
    process.stderr.write('--duration must be 1..600 seconds\n');
    return 2;
  }
  const seed = args.seed !== undefined ? Number(args.seed) >>> 0 : (Math.random() * 2 ** 32) >>> 0;

  // As root, run inside a namespace of our own (partitions need its firewall).
  const inNamespace = currentNamespace() !== undefined;
  if (!inNamespace) {
    const why = namespaceUnavailableReason();
    if (!why) return reexecInNamespace();
    process.stdout.write(`not in a private network namespace (${why}): partition scenarios will be skipped\n`);
  }

  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  const resultsDir = path.resolve(args.results ?? path.join(here, 'results', stamp));
  let aborted = false;
  const onSignal = () => {
    if (!aborted) process.stdout.write('\nstopping after the current scenario cleans up...\n');
    aborted = true;
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  process.stdout.write(`nemesis run: seed ${seed}, ${durationS} s per scenario, ${selected.length} scenarios${inNamespace ? `, in network namespace ${process.env.RINGKV_NEMESIS_NETNS}` : ''}\n`);
  process.stdout.write(`replay: npm run test:nemesis -- --seed ${seed} --duration ${durationS}${args.only ? ` --only '${args.only}'` : ''}\n`);
  process.stdout.write(`${'nemesis'.padEnd(18)}  ${'level'.padEnd(13)}  ${'workload'.padEnd(9)}  ${'ops'.padStart(6)}  ${'ok/fail/unknown'.padStart(16)}  ${'anom.'.padStart(5)}    verdict\n`);
  const results: ScenarioResult[] = [];
  for (const sc of selected) {
    if (aborted) break;
    const log = (line: string) => process.stdout.write(`${line}\n`);
    if (!skipReason(sc, inNamespace)) log(`# ${sc.name} (seed ${scenarioSeed(seed, sc.name)})`);
    const r = await runScenario(sc, { durationMs: durationS * 1000, seed, resultsDir, inNamespace, aborted: () => aborted, log });
    results.push(r);
    process.stdout.write(`${formatLine(r)}\n`);
    if (r.status === 'FAIL') {
      if (r.reason) process.stdout.write(`    error: ${r.reason.split('\n')[0]}\n`);
      for (const c of r.checks) {
        if (c.informational || c.result.valid) continue;
        process.stdout.write(`    ${c.result.checker}: ${c.result.anomalies.length} anomalies, e.g.\n`);
        for (const a of c.result.anomalies.slice(0, 5)) process.stdout.write(`      [${a.kind}] ${a.message}\n`);
      }
    }
  }
  const failed = results.filter((r) => r.status === 'FAIL').length;
  const passed = results.filter((r) => r.status === 'PASS').length;
  const skipped = results.filter((r) => r.status === 'SKIP').length;
  fs.mkdirSync(resultsDir, { recursive: true });
  fs.writeFileSync(path.join(resultsDir, 'summary.txt'), results.map(formatLine).join('\n') + '\n');
  const summary = results.map((r) => ({
    name: r.scenario.name,
    status: r.status,
    reason: r.reason,
    seed: r.seed,
    ops: r.ops,
    counts: r.counts,
    checks: r.checks.map((c) => ({
      checker: c.result.checker,
      informational: c.informational,
      valid: c.result.valid,
      anomalies: c.result.anomalies.length,
      undecided: c.result.undecided ?? [],
      first: c.result.anomalies.slice(0, 3),
    })),
  }));
  fs.writeFileSync(path.join(resultsDir, 'summary.json'), JSON.stringify({ seed, durationS, inNamespace, results: summary }, null, 2) + '\n');
  process.stdout.write(`results: ${resultsDir}\n`);
  process.stdout.write(`nemesis: ${passed} passed, ${failed} failed, ${skipped} skipped${aborted ? ' (aborted)' : ''}\n`);
  if (aborted) return 130;
  return failed > 0 ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`nemesis runner failed: ${(err as Error)?.stack ?? String(err)}\n`);
    process.exit(3);
  },
);
