// The nemesis smoke run of the default suite (1-2 minutes): the runner (run.ts, as
// `npm run test:nemesis` starts it, in its own network namespace when root) runs a client
// clock skew at `strong` and at `linearizable`, kill -9 at `linearizable`, and a
// majority/minority partition at `strong`; every one must pass its checkers. The partition
// is skipped, with the runner's reason, when it cannot make a namespace (not root).

import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';

t.setTimeout(360_000);

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const SCENARIOS = ['client-skew/strong/register', 'client-skew/linearizable/register', 'kill/linearizable/register', 'partition-halves/strong/register'];

interface Summary {
  seed: number;
  results: {
    name: string;
    status: 'PASS' | 'FAIL' | 'SKIP';
    reason?: string;
    ops: number;
    checks: { checker: string; informational: boolean; valid: boolean; anomalies: number; first: { kind: string; message: string }[] }[];
  }[];
}

t.test('nemesis smoke run', async (t) => {
  const results = fs.mkdtempSync(path.join(os.tmpdir(), 'ringkv-nemesis-smoke-'));
  // A failed scenario's histories are kept (their directory is printed) for the next engineer.
  t.teardown(() => {
    if (t.passing()) fs.rmSync(results, { recursive: true, force: true });
    else t.comment(`histories kept in ${results}`);
  });
  const args = ['--import=tsx', 'test/nemesis/run.ts', '--only', SCENARIOS.join(','), '--duration', '12', '--results', results];
  if (process.env.RINGKV_SEED) args.push('--seed', process.env.RINGKV_SEED);
  const child = spawn(process.execPath, args, { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const killer = setTimeout(() => child.kill('SIGTERM'), 330_000);
  const code = await new Promise<number | null>((r) => child.once('exit', (c) => r(c)));
  clearTimeout(killer);
  t.comment(out.trimEnd());
  const file = path.join(results, 'summary.json');
  if (!fs.existsSync(file)) {
    t.fail(`the runner exited ${code} without a summary`);
    return;
  }
  const summary = JSON.parse(fs.readFileSync(file, 'utf8')) as Summary;
  for (const name of SCENARIOS) {
    const r = summary.results.find((x) => x.name === name);
    if (!r) {
      t.fail(`${name} did not run`);
      continue;
    }
    if (r.status === 'SKIP') {
      t.pass(name, { skip: `${name}: ${r.reason}` });
      continue;
    }
    const bad = r.checks.filter((c) => !c.informational && !c.valid);
    const detail = r.reason ?? bad.map((c) => `${c.checker}: ${c.anomalies} anomalies, e.g. ${c.first.map((a) => a.message).join(' | ')}`).join('; ');
    t.equal(r.status, 'PASS', `${name} (seed ${summary.seed}, ${r.ops} ops)${r.status === 'PASS' ? '' : `: ${detail}`}`);
    if (r.status === 'PASS') t.ok(r.ops > 50, `${name} ran a real workload (${r.ops} ops)`);
  }
  t.equal(code, summary.results.some((r) => r.status === 'FAIL') ? 1 : 0, 'the runner\'s exit code says whether a guarantee was violated');
});
