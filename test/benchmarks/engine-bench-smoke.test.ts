// Keeps bench:engine from rotting: a tiny real run of both stores (real files, real
// LevelDB), asserting only that it completes, prints a well-formed JSON last line with the
// async and on-thread read phases of both stores, and saves the same figures in its
// results file. Not a performance test: no figure is compared with anything.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import t from 'tap';
import { runBench } from './run-bench.js';

const PHASES = ['put', 'get_hit', 'get_miss', 'get_hit_sync', 'get_miss_sync'];

t.test('bench:engine completes a tiny run and saves its results file', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'engine-bench-smoke-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const r = await runBench('benchmarks/engine-bench.ts', ['--keys', '3000', '--reads', '1000', '--results-dir', dir], 120_000);
  t.equal(r.code, 0, `exit code (stderr: ${r.stderr.slice(-2000)})`);
  const lines = r.stdout.trimEnd().split('\n');
  const last = JSON.parse(lines[lines.length - 1]!) as {
    ringkv: Record<string, number>;
    leveldb: Record<string, number>;
    ratio: Record<string, number>;
    sync: { ringkv: Record<string, number>; leveldb: Record<string, number> };
    params: { stat: string };
    resultsFile: string;
  };
  for (const ph of PHASES) {
    for (const s of [last.ringkv, last.leveldb, last.sync.ringkv, last.sync.leveldb]) t.ok(s[ph]! > 0, `${ph} measured`);
    t.type(last.ratio[ph], 'number', `${ph} ratio`);
  }
  t.equal(last.params.stat, 'single', 'a single run says so');
  t.match(r.stdout, /single run; load average/);
  const files = fs.readdirSync(dir);
  t.equal(files.length, 1, `one results file (${files.join(', ')})`);
  t.match(files[0]!, /-engine-\d+cores\.json$/);
  t.equal(path.basename(last.resultsFile), files[0], 'the JSON line names the file');
  const saved = JSON.parse(fs.readFileSync(path.join(dir, files[0]!), 'utf8')) as { json: unknown; table: string[]; command: string };
  const { resultsFile: _named, ...figures } = last;
  t.same(saved.json, figures, 'the file holds the JSON line (without its own name)');
  t.match(saved.table[0]!, /^sync +keys +phase +store/);
  t.match(saved.command, /^npm run bench:engine -- --keys 3000/);
});
