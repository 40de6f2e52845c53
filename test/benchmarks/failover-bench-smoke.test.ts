// Keeps the failover benchmark from rotting: a short run (kill -9 one node after 2 s,
// restart it at 4 s) on its own cluster, asserting only that it completes, reports
// per-second rows and a well-formed JSON last line, and leaves no process behind.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import t from 'tap';
import { alive, runBench } from './run-bench.js';

t.test('failover-bench completes a short run and reports well-formed results', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'failover-bench-smoke-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const args = ['--rate', '200', '--duration', '6', '--kill-at', '2', '--restart-at', '4', '--records', '300', '--drain-timeout', '15', '--results-dir', dir];
  const r = await runBench('benchmarks/failover-bench.ts', args, 90_000);
  t.equal(r.code, 0, `exit code (stderr: ${r.stderr.slice(-2000)})`);
  const lines = r.stdout.trimEnd().split('\n');
  const last = JSON.parse(lines[lines.length - 1]!) as Record<string, unknown>;
  t.equal(last.scenario, 'failover');
  for (const k of ['opsPerSec', 'p50Ms', 'p99Ms', 'failedOps', 'hintsPeak']) t.type(last[k], 'number', `${k} is a number`);
  t.ok(last.hintsDrainedMs === null || typeof last.hintsDrainedMs === 'number');
  t.match(r.stdout, /kill -9 n3/);
  t.match(r.stdout, /sec\s+ok ops\s+errors/);
  const json = fs.readdirSync(dir).find((f) => f.endsWith('.json'));
  t.ok(json, 'results saved');
  const saved = JSON.parse(fs.readFileSync(path.join(dir, json!), 'utf8')) as { pids: number[]; perSecond: unknown[] };
  t.ok(saved.perSecond.length >= 6, 'a row per second');
  t.ok(saved.pids.length >= 4, 'three servers and the restarted one');
  t.same(saved.pids.filter(alive), [], 'all stopped');
});
