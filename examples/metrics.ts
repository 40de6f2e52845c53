// metrics.ts — the client's events: per-operation metrics (latency, replicas asked,
// repairs, retries) with their OpenTelemetry names, and membership events. Here the metrics
// go into a small in-process summary; an application hands them to its OpenTelemetry meter
// the same way (histogram.record(durationSeconds, attributes)).
//
// Run against `npm start`'s cluster:  npm run build && node dist/examples/metrics.js

import assert from 'node:assert/strict';
import { connect, otelAttributes } from 'ringkv';

const seeds = (process.env.RINGKV_SEEDS ?? '127.0.0.1:7001').split(',');
const kv = await connect({ seeds, valueEncoding: 'utf8' });
try {
  // What an exporter would see, by instrument and attributes.
  const summary = new Map<string, { count: number; seconds: number; replicasAsked: number }>();
  kv.on('operation', (m) => {
    const { attributes, durationSeconds, instruments } = otelAttributes(m);
    const name = `${instruments.duration}{db.operation.name=${attributes['db.operation.name']},ringkv.consistency=${attributes['ringkv.consistency']}${attributes['error.type'] ? `,error.type=${attributes['error.type']}` : ''}}`;
    const s = summary.get(name) ?? { count: 0, seconds: 0, replicasAsked: 0 };
    s.count++;
    s.seconds += durationSeconds;
    s.replicasAsked += m.replicasAsked;
    summary.set(name, s);
  });
  kv.on('nodeDown', (e) => console.log(`event nodeDown ${e.id} (${e.address})`));
  kv.on('nodeUp', (e) => console.log(`event nodeUp ${e.id} (was ${e.from})`));
  kv.on('membership', (e) => console.log(`event membership: ${e.changes.map((c) => `${c.id} ${c.from ?? 'new'} -> ${c.to}`).join(', ')}`));

  for (let i = 0; i < 20; i++) await kv.put(`example:metrics:${i}`, `v${i}`);
  for (let i = 0; i < 20; i++) await kv.get(`example:metrics:${i}`, { consistency: i % 2 ? 'strong' : 'eventual' });
  await kv.get('example:metrics:0', { signal: AbortSignal.abort() }).catch(() => undefined);

  for (const [name, s] of summary) {
    console.log(`${name}: ${s.count} calls, mean ${((s.seconds / s.count) * 1000).toFixed(2)} ms, ${(s.replicasAsked / s.count).toFixed(1)} replicas asked per call`);
  }
  assert.equal(summary.get('db.client.operation.duration{db.operation.name=put,ringkv.consistency=strong}')?.count, 20);
  assert.equal(summary.get('db.client.operation.duration{db.operation.name=get,ringkv.consistency=eventual}')?.count, 10);
} finally {
  await kv.close();
}
