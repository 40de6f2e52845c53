// Keeps the tail benchmark from rotting: a few seconds of each scenario (its own 3-node
// cluster from dist/, tiny data), asserting only that it completes, reports both phases in a
// well-formed JSON last line, saves its results, and leaves no process behind (the paused
// node included). Needs `npm run build` (npm test's pretest does it). No figure is asserted.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import t from 'tap';
import { alive, runBench } from './run-bench.js';

t.setTimeout(240_000);

for (const scenario of ['hedge', 'near-cache'] as const) {
  t.test(`tail-bench --scenario ${scenario} completes a short run`, async (t) => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tail-bench-smoke-'));
    t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
    const args = ['--scenario', scenario, '--records', '300', '--duration', '1.5', '--warmup', '0.5', '--rate', '200', '--concurrency', '16', '--results-dir', dir];
    const r = await runBench('benchmarks/tail-bench.ts', args, 120_000);
    t.equal(r.code, 0, `exit code (stderr: ${r.stderr.slice(-2000)})`);
    const lines = r.stdout.trimEnd().split('\n');
    const last = JSON.parse(lines[lines.length - 1]!) as { scenario: string; phases: Record<string, unknown>[]; resultsFile: string };
    t.equal(last.scenario, scenario);
    t.same(last.phases.map((p) => p.phase), scenario === 'hedge' ? ['hedging off', 'hedging on'] : ['near cache off', 'near cache on']);
    for (const p of last.phases) t.type((p.read as { p99Ms: unknown }).p99Ms, 'number');
    if (scenario === 'hedge') {
      t.equal(last.phases[0]!.hedgesSent, 0, 'no hedge with hedging off');
      t.ok((last.phases[1]!.pauses as number) >= 1, 'the node was paused');
    } else {
      t.equal(last.phases[0]!.hitRatio, null, 'no cache, no hit ratio');
      t.ok((last.phases[1]!.hitRatio as number) > 0, `hit ratio ${String(last.phases[1]!.hitRatio)}`);
      t.type(last.phases[1]!.worstStalenessMs, 'number');
    }
    const files = fs.readdirSync(dir);
    t.equal(files.filter((f) => f.endsWith('.json')).length, 1, 'results saved');
    const saved = JSON.parse(fs.readFileSync(path.join(dir, files.find((f) => f.endsWith('.json'))!), 'utf8')) as { pids: number[] };
    t.equal(saved.pids.length, 3, 'it started three servers');
    t.same(saved.pids.filter(alive), [], 'and stopped them all');
  });
}
