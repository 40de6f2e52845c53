// The dashboard's reading of /metrics (storage-server/ui/metrics.js): the text parser,
// the per-poll summary, rates from counter deltas (and counter resets), and p99 from
// histogram bucket deltas, checked by hand-computed cases and against a real node's text.

import t from 'tap';
import { ServerMetrics } from '../../storage-server/metrics.js';

interface Bucket {
  le: number;
  count: number;
}
interface Summary {
  atMs: number;
  ops: number;
  reads: number;
  writes: number;
  failed: number;
  apiRequests: number;
  opLatency: Bucket[];
  batchLatency: Bucket[];
}
interface MetricsModule {
  parseMetrics(text: string): { name: string; labels: Record<string, string>; value: number }[];
  summarize(text: string, atMs: number): Summary;
  ratePerSec(a: Summary | undefined, b: Summary | undefined, field: keyof Summary): number | undefined;
  bucketDelta(before: Bucket[] | undefined, after: Bucket[]): Bucket[] | undefined;
  histogramQuantile(q: number, hist: Bucket[] | undefined): number | undefined;
  quantileBetween(q: number, a: Summary | undefined, b: Summary | undefined, field: keyof Summary): number | undefined;
}

const m = (await import(new URL('../../storage-server/ui/metrics.js', import.meta.url).href)) as MetricsModule;

t.test('parses samples, labels (escaped ones too), special values; skips comments', async (t) => {
  const text = [
    '# HELP x_total a counter',
    '# TYPE x_total counter',
    'x_total{route="kv",method="GET",status="200",node="n1"} 12',
    'x_total{route="a \\"quoted\\", comma",node="n1"} 3 1700000000000',
    'bare_gauge 4.5e3',
    'h_bucket{le="+Inf"} 7',
    'nan_gauge NaN',
    '',
  ].join('\n');
  const s = m.parseMetrics(text);
  t.equal(s.length, 5);
  t.same(s[0], { name: 'x_total', labels: { route: 'kv', method: 'GET', status: '200', node: 'n1' }, value: 12 });
  t.same(s[1]!.labels, { route: 'a "quoted", comma', node: 'n1' }, 'escaped quote and comma inside a label value');
  t.equal(s[1]!.value, 3, 'a timestamp after the value is ignored');
  t.equal(s[2]!.value, 4500);
  t.equal(s[3]!.labels.le, '+Inf');
  t.ok(Number.isNaN(s[4]!.value));
});

t.test('histogramQuantile interpolates inside the bucket like histogram_quantile()', async (t) => {
  const h = (pairs: [number, number][]): Bucket[] => pairs.map(([le, count]) => ({ le, count }));
  // 100 observations: 50 in (0, 1], 40 in (1, 2], 10 in (2, 4].
  const hist = h([[1, 50], [2, 90], [4, 100], [Infinity, 100]]);
  t.equal(m.histogramQuantile(0.5, hist), 1, 'p50 at the top of the first bucket');
  t.equal(m.histogramQuantile(0.7, hist), 1.5, 'p70 halfway through (1, 2]');
  t.equal(m.histogramQuantile(0.99, hist), 3.8, 'p99 90% of the way through (2, 4]');
  t.equal(m.histogramQuantile(0.25, hist), 0.5, 'the first bucket starts at 0');
  t.equal(m.histogramQuantile(0.99, h([[1, 10], [2, 10], [Infinity, 20]])), 2, 'in the +Inf bucket: the highest finite bound');
  t.equal(m.histogramQuantile(0.99, h([[1, 0], [Infinity, 0]])), undefined, 'no observations: undefined');
  t.equal(m.histogramQuantile(0.99, []), undefined);
});

t.test('rates and p99 come from the difference between two polls', async (t) => {
  const poll = (ops: { get: number; merge: number; failed: number }, buckets: [string, number][], atMs: number) =>
    m.summarize(
      [
        `ringkv_replica_operations_total{op="get",outcome="ok",node="n1"} ${ops.get}`,
        `ringkv_replica_operations_total{op="merge",outcome="ok",node="n1"} ${ops.merge}`,
        `ringkv_replica_operations_total{op="merge",outcome="CORRUPTION",node="n1"} ${ops.failed}`,
        `ringkv_http_requests_total{route="kv",method="GET",status="200",node="n1"} ${ops.get}`,
        `ringkv_http_requests_total{route="gossip",method="POST",status="200",node="n1"} 999`,
        // The same histogram split over two ops: the summary adds them per bucket.
        ...buckets.map(([le, c]) => `ringkv_replica_operation_duration_seconds_bucket{le="${le}",op="get",node="n1"} ${c}`),
        ...buckets.map(([le, c]) => `ringkv_replica_operation_duration_seconds_bucket{le="${le}",op="merge",node="n1"} ${c}`),
      ].join('\n'),
      atMs,
    );
  const a = poll({ get: 100, merge: 50, failed: 0 }, [['0.001', 100], ['0.01', 150], ['+Inf', 150]], 10_000);
  const b = poll({ get: 300, merge: 150, failed: 2 }, [['0.001', 100], ['0.01', 250], ['+Inf', 350]], 12_000);
  t.equal(a.ops, 150);
  t.equal(b.failed, 2);
  t.equal(m.ratePerSec(a, b, 'ops'), (452 - 150) / 2, 'all replica ops per second');
  t.equal(m.ratePerSec(a, b, 'reads'), 100);
  t.equal(m.ratePerSec(a, b, 'writes'), 51);
  t.equal(m.ratePerSec(a, b, 'failed'), 1);
  t.equal(m.ratePerSec(a, b, 'apiRequests'), 100, 'only route="kv" counts as API requests');
  // Between the polls: 0 new in (0, 1ms], 200 in (1ms, 10ms], 200 above 10ms (both ops).
  t.same(m.bucketDelta(a.opLatency, b.opLatency), [
    { le: 0.001, count: 0 },
    { le: 0.01, count: 200 },
    { le: Infinity, count: 400 },
  ]);
  t.equal(m.quantileBetween(0.99, a, b, 'opLatency'), 0.01, 'p99 of the interval lies in +Inf: the highest finite bound');
  const p25 = m.quantileBetween(0.25, a, b, 'opLatency')!;
  t.ok(Math.abs(p25 - 0.0055) < 1e-12, `p25 of the interval, interpolated halfway through (1 ms, 10 ms]: ${p25}`);
  t.equal(m.ratePerSec(b, a, 'ops'), undefined, 'a counter that went down (restart) gives no rate');
  t.equal(m.bucketDelta(b.opLatency, a.opLatency), undefined, 'nor a quantile');
  t.equal(m.ratePerSec(undefined, b, 'ops'), undefined, 'one poll is not enough');
});

t.test("summarizes a real node's /metrics text", async (t) => {
  const metrics = new ServerMetrics('n1', () => undefined);
  for (let i = 0; i < 1000; i++) {
    metrics.replicaOps.inc({ op: i % 4 === 0 ? 'get' : 'merge', outcome: 'ok' });
    metrics.replicaOpLatency.observe({ op: 'merge' }, i < 990 ? 0.0002 : 0.2);
  }
  metrics.httpRequests.inc({ route: 'kv', method: 'PUT', status: '201' }, 7);
  metrics.httpLatency.observe({ route: 'batch', method: 'POST' }, 0.003);
  const s = m.summarize(await metrics.text(), 1000);
  t.equal(s.ops, 1000);
  t.equal(s.reads, 250);
  t.equal(s.writes, 750);
  t.equal(s.failed, 0);
  t.equal(s.apiRequests, 7);
  t.equal(s.opLatency.at(-1)!.count, 1000, 'the +Inf bucket counts every observation');
  const p99 = m.histogramQuantile(0.99, s.opLatency)!;
  t.ok(p99 > 0.0001 && p99 <= 0.00025, `p99 ${p99} s in the bucket of the 99th percentile (0.1 ms, 0.25 ms]`);
  const p999 = m.histogramQuantile(0.999, s.opLatency)!;
  t.ok(p999 > 0.1 && p999 <= 0.25, `p99.9 ${p999} s among the slow ones`);
  t.equal(s.batchLatency.at(-1)!.count, 1);
});
