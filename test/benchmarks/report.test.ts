// Reporting: medians over runs, the ringkv ÷ peer ratios, the table, the SVG charts
// (well-formed, no NaN, one bar per figure) and the CPU-profile summary.

import t from 'tap';
import type { Test } from 'tap';
import { summarizeProfile } from '../../benchmarks/harness/cpu-profile.js';
import type { CpuProfile } from '../../benchmarks/harness/cpu-profile.js';
import type { SystemResult } from '../../benchmarks/harness/measure.js';
import { combineRuns, formatTable, median, ratios, resultsTable } from '../../benchmarks/harness/report.js';
import { systemsChart, timelineChart } from '../../benchmarks/harness/svg-chart.js';

function result(system: string, opsPerSec: number, p99Ms: number, extra: Partial<SystemResult> = {}): SystemResult {
  return {
    system,
    description: system,
    settings: {},
    loadRecordsPerSec: 1,
    maxOpsPerSec: opsPerSec * 2,
    sloRatePerSec: opsPerSec,
    search: [],
    mode: 'open',
    targetRate: opsPerSec,
    opsPerSec,
    p50Ms: p99Ms / 4,
    p90Ms: p99Ms / 2,
    p99Ms,
    p999Ms: p99Ms * 2,
    maxMs: p99Ms * 3,
    errors: 1,
    errorCodes: {},
    unissued: 0,
    abandoned: 0,
    byKind: {},
    loadAverage: [0, 0],
    ...extra,
  };
}

t.test('median', async (t) => {
  t.equal(median([3, 1, 2]), 2);
  t.equal(median([4, 1, 3, 2]), 2.5);
  t.ok(Number.isNaN(median([])));
});

t.test('combineRuns reports the median run (more in median-run.test.ts)', async (t) => {
  const c = combineRuns([result('ringkv', 100, 9), result('ringkv', 300, 5), result('ringkv', 200, 7, { maxOpsPerSec: undefined })], 10);
  t.equal(c.runs, 3);
  t.equal(c.medianRun, 2);
  t.equal(c.opsPerSec, 200);
  t.equal(c.p99Ms, 7);
  t.equal(c.maxOpsPerSec, undefined, "the median run's own (it had none)");
  t.equal(c.errors, 1);
  t.equal(c.errorsAllRuns, 3);
  t.equal(c.perRun.length, 3);
});

t.test('ratios are ringkv over peer', async (t) => {
  const rk = combineRuns([result('ringkv', 1000, 8)], 10);
  const peer = combineRuns([result('redis', 4000, 2)], 10);
  t.same(ratios(rk, peer), { throughputRatio: 0.25, p99Ratio: 4, maxThroughputRatio: 0.25, sloRateRatio: 0.25 });
  const table = resultsTable([rk, peer], 10);
  t.match(table, /redis .* 0\.25x +4\.00x/);
  t.match(table.split('\n')[0]!, /^system/);
});

t.test('formatTable aligns columns', async (t) => {
  const s = formatTable(['a', 'bb'], [['x', '1'], ['yyy', '22']]);
  t.equal(s, 'a    bb\n---  --\nx     1\nyyy  22');
});

function checkSvg(t: Test, svg: string): void {
  t.match(svg, /^<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg"/);
  t.match(svg.trimEnd(), /<\/svg>$/);
  t.notMatch(svg, /NaN|undefined|Infinity/);
  // Every element is closed: self-closing or with its end tag.
  const open = (svg.match(/<(text|svg|rect|title)\b(?:[^>]*[^/])?>/g) ?? []).length;
  const close = (svg.match(/<\/(text|svg|rect|title)>/g) ?? []).length;
  t.equal(open, close, 'tags balance');
}

t.test('systemsChart draws one bar per figure', async (t) => {
  const svg = systemsChart('T & <title>', 'sub', [
    { system: 'ringkv', throughput: { max: 5000, slo: 3000 }, latencyMs: { p50: 0.5, p99: 8, 'p99.9': 20 } },
    { system: 'redis', throughput: { max: 60000, slo: 50000 }, latencyMs: { p50: 0.2, p99: 1.5, 'p99.9': 4 } },
  ]);
  checkSvg(t, svg);
  t.match(svg, /T &amp; &lt;title&gt;/, 'text is escaped');
  t.equal((svg.match(/<rect x=[^>]*><title>/g) ?? []).length, 10, '2 systems x (2 throughput + 3 latency) bars');
});

t.test('timelineChart draws lines and event markers', async (t) => {
  const svg = timelineChart('failover', 'sub', [{ name: 'ops/s', values: [100, 100, 0, 50, 100] }], [{ name: 'p99', values: [1, 2, NaN, 40, 3] }], [{ atSec: 2, label: 'kill' }], '', ' ms');
  checkSvg(t, svg);
  t.equal((svg.match(/<polyline/g) ?? []).length, 2);
  t.match(svg, />kill</);
});

t.test('summarizeProfile: self time per file:function, busy share without idle', async (t) => {
  const p: CpuProfile = {
    startTime: 0,
    endTime: 10_000,
    nodes: [
      { id: 1, callFrame: { functionName: '(root)', url: '', lineNumber: -1 }, children: [2, 3, 4, 5] },
      { id: 2, callFrame: { functionName: '(idle)', url: '', lineNumber: -1 } },
      { id: 3, callFrame: { functionName: 'encode', url: 'file:///x/node_modules/msgpackr/pack.js', lineNumber: 1 } },
      { id: 4, callFrame: { functionName: 'submit', url: 'file:///nowhere/sdk/batcher.js', lineNumber: 1 } },
      { id: 5, callFrame: { functionName: '(garbage collector)', url: '', lineNumber: -1 } },
    ],
    // 10 samples of 1 ms: 4 idle, 3 encode, 2 submit, 1 GC (each delta is the next sample's).
    samples: [2, 2, 2, 2, 3, 3, 3, 4, 4, 5],
    timeDeltas: [0, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000],
  };
  const s = summarizeProfile(p, 5);
  t.equal(s.top[0]!.name, 'msgpackr/pack.js:encode');
  t.equal(s.top[0]!.busyPct, 60, '3 of the 5 busy samples that have a next delta');
  t.ok(s.idleMs >= 3);
  t.ok(s.byArea.some((a) => a.name === 'npm:msgpackr'));
  t.ok(s.byArea.some((a) => a.name === 'GC') || s.top.every((e) => e.name !== '(garbage collector)'));
});
