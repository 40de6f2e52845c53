// Keeps the end-to-end benchmark from rotting: a few seconds of the real thing (its own
// 3-node cluster from dist/, tiny data, peers skipped), asserting only that it completes,
// prints a well-formed JSON last line, saves its results and chart, and leaves no process
// behind. Needs `npm run build` (npm test's pretest does it).

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import t from 'tap';
import { alive, runBench } from './run-bench.js';

t.test('kv-bench completes a short run and reports well-formed results', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kv-bench-smoke-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const args = ['--no-peers', '--records', '300', '--duration', '2', '--warmup', '0.5', '--rate', '200', '--concurrency', '32', '--results-dir', dir];
  const r = await runBench('benchmarks/kv-bench.ts', args, 60_000);
  t.equal(r.code, 0, `exit code (stderr: ${r.stderr.slice(-2000)})`);
  const lines = r.stdout.trimEnd().split('\n');
  const last = JSON.parse(lines[lines.length - 1]!) as Record<string, unknown>;
  t.equal(last.workload, 'mix');
  t.equal(last.consistency, 'strong');
  for (const k of ['opsPerSec', 'p50Ms', 'p99Ms', 'p999Ms', 'errors']) t.type(last[k], 'number', `${k} is a number`);
  t.ok((last.opsPerSec as number) > 100, `throughput ${String(last.opsPerSec)} near the 200/s target`);
  t.ok((last.p50Ms as number) > 0 && (last.p50Ms as number) <= (last.p99Ms as number));
  t.type(last.peers, 'object');
  t.match(r.stdout, /system\s+max ops\/s/, 'the table for people');
  const files = fs.readdirSync(dir);
  const json = files.find((f) => f.endsWith('.json'));
  t.ok(json && files.includes(json.replace(/\.json$/, '.svg')), `results and chart saved (${files.join(', ')})`);
  const saved = JSON.parse(fs.readFileSync(path.join(dir, json!), 'utf8')) as { machine: { cores: number }; date: string; pids: number[]; systems: unknown[] };
  t.equal(saved.machine.cores, os.cpus().length);
  t.ok(Date.parse(saved.date) > 0);
  t.equal(saved.systems.length, 1);
  t.equal(saved.pids.length, 3, 'it started three servers');
  t.same(saved.pids.filter(alive), [], 'and stopped them all');
});

t.test('kv-bench runs the counter workload (increments of ringkv counters) without errors', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kv-bench-smoke-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const args = ['--workload', 'counter', '--no-peers', '--records', '50', '--duration', '2', '--warmup', '0.5', '--rate', '100', '--concurrency', '16', '--results-dir', dir];
  const r = await runBench('benchmarks/kv-bench.ts', args, 60_000);
  t.equal(r.code, 0, `exit code (stderr: ${r.stderr.slice(-2000)})`);
  const lines = r.stdout.trimEnd().split('\n');
  const last = JSON.parse(lines[lines.length - 1]!) as Record<string, unknown>;
  t.equal(last.workload, 'counter');
  t.equal(last.errors, 0, 'no increment failed (a counter key never holds a plain value)');
  t.ok((last.opsPerSec as number) > 50, `throughput ${String(last.opsPerSec)} near the 100/s target`);
  t.match(r.stdout, /50 counters, each created by its first increment/);
});
