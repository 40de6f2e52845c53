// Keeps bench:wal from rotting: a tiny real run (two engines on real files, real fdatasync),
// asserting only that it completes, prints a well-formed JSON last line with a ratio per
// concurrency, and saves its results file, in which the recycling engine did reuse files.
// Not a performance test: no figure is compared with anything.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import t from 'tap';
import { runBench } from './run-bench.js';

t.test('bench:wal completes a tiny run and saves its results file', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'wal-bench-smoke-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const args = ['--seconds', '1', '--slice-seconds', '0.5', '--concurrency', '1,8', '--memtable-bytes', '65536', '--runs', '1', '--raw-syncs', '20', '--results-dir', dir];
  const r = await runBench('benchmarks/wal-bench.ts', args, 120_000);
  t.equal(r.code, 0, `exit code (stderr: ${r.stderr.slice(-2000)})`);
  const lines = r.stdout.trimEnd().split('\n');
  const last = JSON.parse(lines[lines.length - 1]!) as { bench: string; summary: { concurrency: number; throughputRatio: number }[]; resultsFile: string };
  t.equal(last.bench, 'wal');
  t.same(
    last.summary.map((s) => s.concurrency),
    [1, 8],
  );
  for (const s of last.summary) t.ok(s.throughputRatio > 0, `a ratio at ${s.concurrency} writers`);
  const files = fs.readdirSync(dir);
  t.equal(files.length, 1, `one results file (${files.join(', ')})`);
  t.equal(path.basename(last.resultsFile), files[0], 'the JSON line names the file');
  const saved = JSON.parse(fs.readFileSync(path.join(dir, files[0]!), 'utf8')) as {
    command: string;
    runs: { variant: string; segmentsRecycled: number }[];
    rawSyncs: unknown[];
  };
  t.match(saved.command, /^npm run bench:wal -- --seconds 1/);
  t.ok(saved.runs.some((m) => m.variant === 'recycled' && m.segmentsRecycled > 0), 'the recycling engine reused retired files while measured');
  t.notOk(saved.runs.some((m) => m.variant === 'new-files' && m.segmentsRecycled > 0), 'the other never did');
  t.equal(saved.rawSyncs.length, 1, 'the raw probe ran');
});
