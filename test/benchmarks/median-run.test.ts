// kv-bench --runs N: each system is reported by its median run as a whole (the run whose
// measured rate is the median, with that run's own p50/p99/max), a rate is labelled
// "p99 <= SLO" only when its own measured phase met the SLO, and the ratios ringkv ÷ peer
// come from those runs. Synthetic run results; no servers.

import t from 'tap';
import type { SystemResult } from '../../benchmarks/harness/measure.js';
import { combineRuns, labelledSloRate, medianRunIndex, ratios, resultsTable } from '../../benchmarks/harness/report.js';

/** A run measured at `rate` (its SLO rate as the search left it) with the given p99 and max. */
function run(system: string, rate: number, p99Ms: number, extra: Partial<SystemResult> = {}): SystemResult {
  return {
    system,
    description: system,
    settings: {},
    loadRecordsPerSec: 1,
    maxOpsPerSec: rate * 5,
    sloRatePerSec: rate,
    search: [],
    mode: 'open',
    targetRate: rate,
    opsPerSec: rate,
    p50Ms: p99Ms / 8,
    p90Ms: p99Ms / 2,
    p99Ms,
    p999Ms: p99Ms * 2,
    maxMs: p99Ms * 4,
    errors: 0,
    errorCodes: {},
    unissued: 0,
    abandoned: 0,
    byKind: {},
    loadAverage: [0, 0],
    ...extra,
  };
}

t.test('medianRunIndex: the run whose measured rate is the median', async (t) => {
  t.equal(medianRunIndex([{ opsPerSec: 8528 }, { opsPerSec: 5088 }, { opsPerSec: 4422 }]), 1);
  t.equal(medianRunIndex([{ opsPerSec: 3 }, { opsPerSec: 1 }, { opsPerSec: 2 }]), 2);
  t.equal(medianRunIndex([{ opsPerSec: 7 }]), 0);
  t.equal(medianRunIndex([{ opsPerSec: 40 }, { opsPerSec: 10 }, { opsPerSec: 30 }, { opsPerSec: 20 }]), 3, 'even count: the lower middle run, not an average');
  t.equal(medianRunIndex([{ opsPerSec: 5 }, { opsPerSec: 5 }, { opsPerSec: 5 }]), 1, 'equal rates keep run order');
  t.throws(() => medianRunIndex([]), RangeError);
});

t.test('combineRuns reports the median run as a whole, not the median of each column', async (t) => {
  // Rates 8,528 / 5,088 / 4,422 with p99 9.0 / 11.5 / 7.0 ms: the median-rate run is the
  // second, whose p99 is 11.5 ms. Column by column it would read "5,088 ops/s at p99 9.0 ms",
  // a pair no run measured.
  const runs = [
    run('ringkv', 8528, 9.0, { maxOpsPerSec: 28427, p50Ms: 1.0 }),
    run('ringkv', 5088, 11.5, { maxOpsPerSec: 27132, p50Ms: 1.4, errors: 2 }),
    run('ringkv', 4422, 7.0, { maxOpsPerSec: 29479, p50Ms: 0.9, errors: 1 }),
  ];
  const c = combineRuns(runs, 10);
  t.equal(c.runs, 3);
  t.equal(c.medianRun, 1);
  t.equal(c.opsPerSec, 5088);
  t.equal(c.p99Ms, 11.5, "the median run's own p99");
  t.equal(c.p50Ms, 1.4, "the median run's own p50");
  t.equal(c.p999Ms, 23);
  t.equal(c.maxMs, 46, "the median run's own max");
  t.equal(c.maxOpsPerSec, 27132, "the median run's own closed-loop maximum, not the median maximum (28,427)");
  t.equal(c.errors, 2, "the median run's errors");
  t.equal(c.errorsAllRuns, 3);
  t.equal(c.perRun.length, 3);
});

t.test('a rate is labelled p99 <= SLO only when its own measured phase met the SLO', async (t) => {
  t.equal(labelledSloRate(run('x', 5088, 9.9), 10), 5088);
  t.equal(labelledSloRate(run('x', 5088, 10), 10), 5088, 'the bound is inclusive');
  t.equal(labelledSloRate(run('x', 5088, 11.5), 10), 0, 'the measured phase at the rate had p99 over 10 ms');
  t.equal(labelledSloRate(run('x', 5088, 8, { targetRate: 6000 }), 10), 0, 'measured at another rate than the one labelled');
  t.equal(labelledSloRate(run('x', 0, 8, { sloRatePerSec: 0, targetRate: 500 }), 10), 0, 'no rate passed');
  t.equal(labelledSloRate(run('x', 5000, 30, { sloRatePerSec: undefined }), 10), undefined, 'no search (fixed --rate): no label');

  const c = combineRuns([run('ringkv', 8528, 9.0), run('ringkv', 5088, 11.5), run('ringkv', 4422, 7.0)], 10);
  t.equal(c.sloRatePerSec, 0, 'the median run did not hold the SLO at its rate: no SLO rate');
  const table = resultsTable([c], 10);
  t.match(table, /^system +run +max ops\/s +p99<=10ms ops\/s/);
  t.match(table, /ringkv +2 of 3 +25,440 +none +5,088 /, 'the table says none, and which run it shows');
});

t.test('ratios ringkv ÷ peer come from the median runs as wholes', async (t) => {
  const rk = combineRuns([run('ringkv', 5000, 9, { maxOpsPerSec: 28000 }), run('ringkv', 4000, 8, { maxOpsPerSec: 30000 }), run('ringkv', 6000, 9.5, { maxOpsPerSec: 26000 })], 10);
  const peer = combineRuns(
    [run('redis-replicated', 6000, 9, { maxOpsPerSec: 40000 }), run('redis-replicated', 8000, 12, { maxOpsPerSec: 35000 }), run('redis-replicated', 7000, 8, { maxOpsPerSec: 47000 })],
    10,
  );
  t.equal(rk.medianRun, 0);
  t.equal(peer.medianRun, 2);
  t.same(ratios(rk, peer), {
    throughputRatio: Math.round((5000 / 7000) * 1000) / 1000,
    p99Ratio: Math.round((9 / 8) * 1000) / 1000,
    maxThroughputRatio: Math.round((28000 / 47000) * 1000) / 1000,
    sloRateRatio: Math.round((5000 / 7000) * 1000) / 1000,
  });
});
