// The client's events against a real 3-node cluster: `nodeDown` when a node is killed (-9)
// and `nodeUp` when it comes back, with `membership` events naming the change; and the
// `operation` metrics of calls: replicas asked, and the repairs a read made of a replica
// that was left stale on purpose.

import t from 'tap';
import { TestCluster } from '../helpers/cluster.js';
import type { MembershipEvent, NodeEvent, OperationMetrics } from '../../sdk/client-events.js';
import { otelAttributes } from '../../sdk/client-events.js';
import type { BatchRequest, BatchResponse } from '../../sdk/wire/protocol.js';
import { OpType, PROTOCOL_VERSION, Routes } from '../../sdk/wire/protocol.js';
import type { StoredObject } from '../../sdk/versioning/index.js';

t.setTimeout(120_000);

async function until(what: string, cond: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

t.test('client events', async (t) => {
  const c = await TestCluster.start(t, { nodes: 3 });
  const kv = await c.client<string>({ valueEncoding: 'utf8', membershipRefreshMs: 500 });

  await t.test('operation metrics: replicas asked, repairs', async (t) => {
    const ops: OperationMetrics[] = [];
    kv.on('operation', (m) => ops.push(m));
    await kv.put('ev:k', 'v1', { consistency: 'all' });
    t.match(ops[0], { operation: 'put', ok: true, consistency: 'all', replicasAsked: 3, repairs: 0, retries: 0 }, 'a put at all asked the 3 replicas');
    t.ok(ops[0]!.durationMs >= 0);
    // Make n1 newer than the others behind the client's back: a read at `all` sees that
    // n2 and n3 are stale and repairs them.
    const get = await c.call<BatchResponse>('n1', Routes.batch, { v: PROTOCOL_VERSION, from: 't', ops: [{ t: OpType.Get, key: Buffer.from('ev:k') }] } satisfies BatchRequest);
    const cur = (get.results[0] as { obj: StoredObject }).obj;
    const sib = cur.siblings[0]!;
    const newer: StoredObject = { mode: 'lww', context: {}, siblings: [{ ...sib, value: Buffer.from('v2'), ts: sib.ts + 1000, writer: 'test' }] };
    await c.call<BatchResponse>('n1', Routes.batch, { v: PROTOCOL_VERSION, from: 't', ops: [{ t: OpType.Merge, key: Buffer.from('ev:k'), obj: newer }] } satisfies BatchRequest);
    ops.length = 0;
    const got = await kv.get('ev:k', { consistency: 'all' });
    t.equal(got?.value, 'v2');
    t.match(ops[0], { operation: 'get', ok: true, repairs: 2 }, 'the read repaired the two stale replicas');
    t.equal(ops[0]!.replicasAsked, 5, '3 reads and 2 repairs went to replicas');
    const ac = new AbortController();
    const pending = kv.get('ev:k', { consistency: { r: 1, w: 2 }, signal: ac.signal });
    ac.abort();
    t.ok((await pending.catch((e: unknown) => e)) instanceof Error);
    t.match(ops[1], { operation: 'get', ok: false, errorCode: 'ABORTED' }, 'a failed call is reported with its code');
    const otel = otelAttributes(ops[1]!);
    t.same(otel.attributes, { 'db.system.name': 'ringkv', 'db.operation.name': 'get', 'ringkv.consistency': 'r1w2', 'error.type': 'ABORTED' });
    t.equal(otel.instruments.duration, 'db.client.operation.duration');
  });

  await t.test('nodeDown and nodeUp as a node dies and comes back', async (t) => {
    const downs: NodeEvent[] = [];
    const ups: NodeEvent[] = [];
    const changes: MembershipEvent[] = [];
    kv.on('nodeDown', (e) => downs.push(e));
    kv.on('nodeUp', (e) => ups.push(e));
    kv.on('membership', (e) => changes.push(e));
    let thrown = 0;
    kv.on('listenerError', () => thrown++);
    kv.on('membership', () => {
      throw new Error('a listener that throws does not stop the others');
    });
    await c.kill('n3');
    await until('nodeDown n3', () => downs.some((e) => e.id === 'n3'), 30_000);
    t.equal(downs[0]!.address, c.node('n3').address);
    t.ok(changes.some((e) => e.changes.some((x) => x.id === 'n3' && x.to === 'down') && e.members.length === 3), 'a membership event named n3 down, with every member');
    t.ok(thrown > 0, 'the throwing listener was reported on listenerError');
    t.equal(ups.length, 0, 'no nodeUp yet');
    await c.restart('n3');
    await until('nodeUp n3', () => ups.some((e) => e.id === 'n3'), 30_000);
    t.ok(ups.some((e) => e.id === 'n3' && e.from !== 'up'), 'nodeUp names where n3 came from');
    t.ok(downs.every((e) => e.id === 'n3'), 'no other node was reported down');
  });
});
