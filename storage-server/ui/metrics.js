// Reading a node's Prometheus /metrics text in the browser: a parser, a per-poll summary of
// the series the dashboard shows, and rates and quantiles computed from the difference
// between two summaries (counter deltas, histogram bucket deltas — as PromQL's rate() and
// histogram_quantile() do). Pure functions; test/ui/metrics.test.ts covers them.

const SAMPLE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+\d+)?$/;
const LABEL = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;

/**
 * The samples of a Prometheus text exposition (comments and blank lines skipped).
 * @returns {{name: string, labels: Record<string, string>, value: number}[]}
 */
export function parseMetrics(text) {
  const out = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = SAMPLE.exec(line.trim());
    if (!m) continue;
    const labels = {};
    if (m[2]) {
      for (const l of m[2].matchAll(LABEL)) labels[l[1]] = l[2].replace(/\\(.)/g, (_, c) => (c === 'n' ? '\n' : c));
    }
    out.push({ name: m[1], labels, value: parseValue(m[3]) });
  }
  return out;
}

function parseValue(s) {
  if (s === '+Inf') return Infinity;
  if (s === '-Inf') return -Infinity;
  return Number(s);
}

/** Sum of the samples named `name` whose labels pass `keep`. */
function sum(samples, name, keep = () => true) {
  let total = 0;
  for (const s of samples) if (s.name === name && keep(s.labels)) total += s.value;
  return total;
}

/**
 * A cumulative histogram summed over every label set of `name`_bucket that passes `keep`:
 * [{le, count}] sorted by le, the last one le = Infinity.
 */
function buckets(samples, name, keep = () => true) {
  const byLe = new Map();
  for (const s of samples) {
    if (s.name !== `${name}_bucket` || !keep(s.labels)) continue;
    const le = parseValue(s.labels.le);
    byLe.set(le, (byLe.get(le) ?? 0) + s.value);
  }
  return [...byLe].map(([le, count]) => ({ le, count })).sort((a, b) => a.le - b.le);
}

const READ_OPS = new Set(['get']);

/**
 * What the dashboard keeps of one poll of a node's /metrics:
 * replica operations (all, reads, writes, failed), their latency histogram, the public
 * API's requests, and the latency histogram of the batch requests clients send.
 */
export function summarize(text, atMs) {
  const samples = parseMetrics(text);
  const ops = 'ringkv_replica_operations_total';
  return {
    atMs,
    ops: sum(samples, ops),
    reads: sum(samples, ops, (l) => READ_OPS.has(l.op)),
    writes: sum(samples, ops, (l) => !READ_OPS.has(l.op)),
    failed: sum(samples, ops, (l) => l.outcome !== undefined && l.outcome !== 'ok'),
    opLatency: buckets(samples, 'ringkv_replica_operation_duration_seconds'),
    apiRequests: sum(samples, 'ringkv_http_requests_total', (l) => l.route === 'kv'),
    batchLatency: buckets(samples, 'ringkv_http_request_duration_seconds', (l) => l.route === 'batch'),
  };
}

/**
 * Per-second rate of counter `field` from summary `a` to the later `b`; undefined when
 * there is no interval, or the counter went down (the node restarted: counters reset).
 */
export function ratePerSec(a, b, field) {
  if (!a || !b) return undefined;
  const dt = (b.atMs - a.atMs) / 1000;
  const d = b[field] - a[field];
  if (!(dt > 0) || d < 0) return undefined;
  return d / dt;
}

/** Bucket-wise difference of two cumulative histograms; undefined after a reset. */
export function bucketDelta(before, after) {
  const prev = new Map((before ?? []).map((b) => [b.le, b.count]));
  const out = [];
  for (const b of after) {
    const d = b.count - (prev.get(b.le) ?? 0);
    if (d < 0) return undefined;
    out.push({ le: b.le, count: d });
  }
  return out;
}

/**
 * The q-quantile (0 < q < 1) of a cumulative histogram, interpolated linearly inside the
 * bucket it falls in, as histogram_quantile() does: undefined with no observations; the
 * highest finite bound when it falls in the +Inf bucket.
 */
export function histogramQuantile(q, hist) {
  if (!hist || hist.length === 0) return undefined;
  const total = hist[hist.length - 1].count;
  if (!(total > 0)) return undefined;
  const rank = q * total;
  for (let i = 0; i < hist.length; i++) {
    if (hist[i].count < rank) continue;
    const lowerLe = i > 0 ? hist[i - 1].le : 0;
    const lowerCount = i > 0 ? hist[i - 1].count : 0;
    if (hist[i].le === Infinity) return lowerLe;
    const inBucket = hist[i].count - lowerCount;
    if (inBucket <= 0) return hist[i].le;
    return lowerLe + ((hist[i].le - lowerLe) * (rank - lowerCount)) / inBucket;
  }
  return undefined;
}

/** The q-quantile of the observations of histogram `field` made between summaries a and b. */
export function quantileBetween(q, a, b, field) {
  if (!a || !b) return undefined;
  return histogramQuantile(q, bucketDelta(a[field], b[field]));
}
