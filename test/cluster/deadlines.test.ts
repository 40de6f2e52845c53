// Deadlines end to end, on three real server processes: a call's own timeout reaches its
// batches (a timeout above the client default works), a timed-out batch counts once in the
// client's failure detector, an AbortSignal cancels a call, and a replica drops operations
// whose sender stopped waiting instead of doing them.

import t from 'tap';
import { ErrorCodes, RingkvError } from '../../sdk/errors.js';
import type { StoredObject } from '../../sdk/versioning/index.js';
import type { BatchResponse } from '../../sdk/wire/protocol.js';
import { OpType, PROTOCOL_VERSION, Routes } from '../../sdk/wire/protocol.js';
import { FaultyTransport, HttpTransport } from '../../sdk/transport.js';
import { metricSum, TestCluster } from '../helpers/cluster.js';

t.setTimeout(180_000);

t.test('deadlines', async (t) => {
  const c = await TestCluster.start(t, { nodes: 3 });

  await t.test('a call\'s timeout above the client default reaches its batches', async (t) => {
    const faulty = new FaultyTransport(new HttpTransport());
    const kv = await c.client<string>({ valueEncoding: 'utf8', transport: faulty, timeoutMs: 500 });
    // Set-up, not under test: its own generous timeout (the client default is the subject here).
    await kv.put('slow', 'v', { consistency: 'all', timeoutMs: 10_000 });
    for (const n of c.nodes) faulty.set(n.address, { delayMs: 900 });
    const r = await kv.get('slow', { consistency: 'strong', timeoutMs: 3000 });
    t.equal(r?.value, 'v', 'answered after 900 ms although the client default is 500 ms');
    const err = await kv.get('slow', { consistency: 'strong' }).catch((e: unknown) => e);
    t.equal((err as RingkvError).code, ErrorCodes.TIMEOUT, 'the default still applies to calls without their own');
  });

  await t.test('a timed-out batch of many operations is one failure for the failure detector', async (t) => {
    const faulty = new FaultyTransport(new HttpTransport());
    const kv = await c.client<string>({ valueEncoding: 'utf8', transport: faulty, timeoutMs: 400, health: { failuresToAvoid: 3 } });
    await kv.get('warm-up', { timeoutMs: 10_000 });
    const slow = c.nodes[2]!;
    faulty.set(slow.address, { blackhole: true });
    const keys = Array.from({ length: 300 }, (_, i) => `many-${i}`).filter((k) => kv.replicasOf(k).includes(slow.id));
    await Promise.allSettled(keys.map((k) => kv.put(k, 'x', { consistency: 'all' })));
    t.ok(keys.length > 100, `${keys.length} writes to ${slow.id} timed out together`);
    t.notOk(kv.avoidedNodes.includes(slow.id), `${slow.id} is not avoided after one timed-out request (avoided: ${kv.avoidedNodes.join(',') || 'none'})`);
  });

  await t.test('an AbortSignal cancels a call', async (t) => {
    const faulty = new FaultyTransport(new HttpTransport());
    const kv = await c.client<string>({ valueEncoding: 'utf8', transport: faulty });
    for (const n of c.nodes) faulty.set(n.address, { delayMs: 1000 });
    const ac = new AbortController();
    const started = performance.now();
    setTimeout(() => ac.abort(new Error('user left')), 100);
    const err = await kv.put('abort-me', 'v', { signal: ac.signal }).catch((e: unknown) => e);
    t.equal((err as RingkvError).code, ErrorCodes.ABORTED);
    t.ok(performance.now() - started < 700, 'rejected when aborted');
    const pre = new AbortController();
    pre.abort();
    const err2 = await kv.put('abort-me', 'v', { signal: pre.signal }).catch((e: unknown) => e);
    t.equal((err2 as RingkvError).code, ErrorCodes.ABORTED);
    t.equal((err2 as RingkvError).notApplied, true, 'aborted before it started: not applied');
  });

  await t.test('a replica answers DEADLINE_EXCEEDED for work whose sender stopped waiting, and does not do it', async (t) => {
    const key = Buffer.from('hot-key');
    const obj = (i: number): StoredObject => ({
      mode: 'lww',
      siblings: [{ value: Buffer.from(`v${i}`), tombstone: false, expiresAtMs: 0, contentType: '', flags: 0, ts: (Date.now() - 10_000) * 1000 + i, writer: 'w' }],
      context: {},
    });
    const before = await c.metrics('n1');
    // 300 writes of one key queue on its lock, each waiting for the one before it to be
    // durable; with a 50 ms budget the later ones start too late.
    const ops = Array.from({ length: 300 }, (_, i) => ({ t: OpType.Put, key, obj: obj(i) }));
    const res = await c.call<BatchResponse>('n1', Routes.batch, { v: PROTOCOL_VERSION, ops, timeoutMs: 50 });
    const dropped = res.results.filter((r) => !r.ok && r.code === ErrorCodes.DEADLINE_EXCEEDED).length;
    t.ok(dropped > 0, `${dropped} of 300 operations were dropped`);
    t.ok(res.results.every((r) => r.ok || r.code === ErrorCodes.DEADLINE_EXCEEDED), 'the others were done');
    const after = await c.metrics('n1');
    const applied = metricSum(after, 'ringkv_replica_operations_total', { op: 'put', outcome: 'ok' }) - metricSum(before, 'ringkv_replica_operations_total', { op: 'put', outcome: 'ok' });
    t.equal(applied, 300 - dropped, 'dropped operations were not applied');
    const ok = await c.call<BatchResponse>('n1', Routes.batch, { v: PROTOCOL_VERSION, ops: ops.slice(0, 50), timeoutMs: 10_000 });
    t.ok(ok.results.every((r) => r.ok), 'with a budget, every operation is done');
  });
});
