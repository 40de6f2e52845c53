// Latency bookkeeping: percentiles of known values, recorders that merge exactly (what
// two loops recorded apart equals what one would have recorded), per-second slots merged
// by index, and the encoded form round-trips.

import t from 'tap';
import { LatencyRecorder, mergeHistograms, newHistogram, summarize } from '../../benchmarks/harness/latency-recorder.js';
import { SeededRandom } from '../../benchmarks/harness/key-chooser.js';

t.test('percentiles of known values (microseconds in, milliseconds out)', async (t) => {
  const h = newHistogram();
  for (let i = 1; i <= 1000; i++) h.recordValue(i * 1000); // 1..1000 ms
  const s = summarize(h);
  t.equal(s.count, 1000);
  t.ok(Math.abs(s.p50Ms - 500) <= 0.5, `p50 ${s.p50Ms}`);
  t.ok(Math.abs(s.p99Ms - 990) <= 1, `p99 ${s.p99Ms}`);
  t.ok(Math.abs(s.p999Ms - 999) <= 1, `p99.9 ${s.p999Ms}`);
  t.ok(Math.abs(s.maxMs - 1000) <= 1, `max ${s.maxMs}`);
  t.ok(Math.abs(s.meanMs - 500.5) <= 0.5, `mean ${s.meanMs}`);
  t.same(summarize(newHistogram()), { count: 0, meanMs: 0, p50Ms: 0, p90Ms: 0, p99Ms: 0, p999Ms: 0, maxMs: 0 });
});

t.test('merged histograms equal one histogram of all values', async (t) => {
  const rng = new SeededRandom(11);
  const all = newHistogram();
  const parts = [newHistogram(), newHistogram(), newHistogram()];
  for (let i = 0; i < 30_000; i++) {
    // A long-tailed mix: mostly ~1 ms, sometimes ~100 ms.
    const v = Math.round(rng.next() < 0.98 ? 500 + rng.next() * 1000 : 50_000 + rng.next() * 100_000);
    all.recordValue(v);
    parts[i % 3]!.recordValue(v);
  }
  const merged = mergeHistograms(parts);
  t.same(summarize(merged), summarize(all));
  for (const p of [50, 90, 99, 99.9, 99.99]) t.equal(merged.getValueAtPercentile(p), all.getValueAtPercentile(p), `p${p}`);
  t.equal(parts[0]!.totalCount, 10_000, 'sources are left as they were');
});

t.test('recorders merge by kind, error code and second', async (t) => {
  const a = new LatencyRecorder(true);
  const b = new LatencyRecorder(true);
  a.record('read', 1000, 100);
  a.record('update', 3000, 1500);
  a.recordError('TIMEOUT', 1600);
  b.record('read', 2000, 200);
  b.record('rmw', 4000, 2500);
  b.recordError('TIMEOUT', 2600);
  b.recordError('QUORUM_NOT_MET', 2700);
  a.merge(b);
  t.equal(a.count, 4);
  t.equal(a.byKind.read.totalCount, 2);
  t.equal(a.byKind.update.totalCount, 1);
  t.equal(a.byKind.rmw.totalCount, 1);
  t.equal(a.errors, 3);
  t.same(Object.fromEntries(a.errorCodes), { TIMEOUT: 2, QUORUM_NOT_MET: 1 });
  t.same(
    a.seconds.map((s) => [s.ok, s.errors, s.hist.totalCount]),
    [
      [2, 0, 2],
      [1, 1, 1],
      [1, 2, 1],
    ],
  );
  t.equal(b.count, 2, 'the merged-in recorder is unchanged');
});

t.test('a recorder without per-second slots keeps none; sub-microsecond values count as 1', async (t) => {
  const r = new LatencyRecorder();
  r.record('read', 0.2, 10);
  r.recordError('X', 10);
  t.equal(r.seconds.length, 0);
  t.equal(r.overall.minNonZeroValue, 1);
});

t.test('the encoded form round-trips', async (t) => {
  const r = new LatencyRecorder(true);
  for (let i = 0; i < 500; i++) r.record(i % 2 ? 'read' : 'update', 100 + i * 37, i * 7);
  r.recordError('TIMEOUT', 3000);
  const back = LatencyRecorder.fromJSON(JSON.parse(JSON.stringify(r.toJSON())));
  // Encoding keeps counts per bucket: percentiles survive exactly, the max to its bucket.
  const pick = ({ maxMs: _m, ...rest }: ReturnType<typeof summarize>) => rest;
  t.same(pick(summarize(back.overall)), pick(summarize(r.overall)));
  t.same(pick(summarize(back.byKind.read)), pick(summarize(r.byKind.read)));
  t.ok(Math.abs(summarize(back.overall).maxMs - summarize(r.overall).maxMs) <= summarize(r.overall).maxMs * 0.001);
  t.equal(back.errors, 1);
  t.same(back.seconds.map((s) => s.ok), r.seconds.map((s) => s.ok));
  t.same(back.seconds.map((s) => summarize(s.hist).p99Ms), r.seconds.map((s) => summarize(s.hist).p99Ms));
});
