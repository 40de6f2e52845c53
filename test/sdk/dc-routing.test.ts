// The SDK's routing in a cluster of two data centers, against a scripted transport (every
// request recorded with the address it went to): connect needs localDc; local levels reach
// only the local data center's replicas, at their own addresses, and fail with a typed error
// naming it rather than fall over to the other; hints stay in the replica's data center;
// eachQuorum and quorum reach the other data center at its remote addresses and count per
// data center / over both; an eachQuorum read writes back to a majority of each.

import t from 'tap';
import { connect } from '../../sdk/client.js';
import type { RingkvError } from '../../sdk/errors.js';
import { NodeUnavailableError } from '../../sdk/errors.js';
import type { MemberInfo, MembersView } from '../../sdk/membership.js';
import { ringStampOf } from '../../sdk/ring-epoch.js';
import type { CallOptions, Transport } from '../../sdk/transport.js';
import type { StoredObject } from '../../sdk/versioning/index.js';
import { mergeObjects } from '../../sdk/versioning/index.js';
import type { BatchRequest, BatchResponse, WireResult } from '../../sdk/wire/protocol.js';
import { OpType, PROTOCOL_VERSION, Routes } from '../../sdk/wire/protocol.js';

function members(east: number, west: number): MemberInfo[] {
  const out: MemberInfo[] = [];
  for (let i = 1; i <= east; i++) out.push({ id: `e${i}`, address: `10.1.0.${i}:7000`, remoteAddress: `10.9.1.${i}:7000`, dc: 'east', weight: 1, state: 'up', incarnation: 1, ringVersion: 1 });
  for (let i = 1; i <= west; i++) out.push({ id: `w${i}`, address: `10.2.0.${i}:7000`, remoteAddress: `10.9.2.${i}:7000`, dc: 'west', weight: 1, state: 'up', incarnation: 1, ringVersion: 1 });
  return out;
}

function viewOf(ms: MemberInfo[], replication: Record<string, number>): MembersView {
  const s = ringStampOf(ms);
  const total = Object.values(replication).reduce((a, b) => a + b, 0);
  return { v: PROTOCOL_VERSION, self: ms[0]!.id, settings: { vnodesPerNode: 16, replicationFactor: total, replication }, members: ms, epoch: 1, ringEpoch: s.epoch, ringDigest: s.digest, ringFloor: s.epoch };
}

/** Nodes in memory: each stores what it is sent; `failing` nodes answer IO_ERROR, `unreachable` ones do not answer. */
class ScriptedDcs implements Transport {
  readonly requests: { address: string; node: string; op: number; hintFor?: string; key: string }[] = [];
  readonly data = new Map<string, Map<string, StoredObject>>();
  readonly failing = new Set<string>();
  /** Nodes that answer reads but fail writes. */
  readonly failingWrites = new Set<string>();
  readonly unreachable = new Set<string>();
  constructor(private readonly view: MembersView) {}

  nodeAt(address: string): string {
    const m = this.view.members.find((x) => x.address === address || x.remoteAddress === address);
    if (!m) throw new Error(`no node at ${address}`);
    return m.id;
  }

  async call<T>(address: string, path: string, body: unknown, _opts: CallOptions): Promise<T> {
    if (path.startsWith(Routes.members)) return this.view as T;
    if (path !== Routes.batch) throw new Error(`unexpected ${path}`);
    const node = this.nodeAt(address);
    const b = body as BatchRequest;
    for (const op of b.ops) this.requests.push({ address, node, op: op.t, key: op.key.toString(), ...('hintFor' in op && op.hintFor ? { hintFor: op.hintFor } : {}) });
    if (this.unreachable.has(node)) throw new NodeUnavailableError(node, 'scripted: unreachable');
    let store = this.data.get(node);
    if (!store) this.data.set(node, (store = new Map()));
    const results: WireResult[] = b.ops.map((op) => {
      if (this.failing.has(node)) return { ok: false, code: 'IO_ERROR', msg: `${node}: scripted failure` };
      const k = op.key.toString();
      if (op.t === OpType.Get) return { ok: true, obj: store!.get(k) ?? null };
      if (this.failingWrites.has(node)) return { ok: false, code: 'IO_ERROR', msg: `${node}: scripted write failure` };
      if (op.t === OpType.Put || op.t === OpType.Merge) {
        const cur = store!.get(k);
        const merged = cur ? mergeObjects(cur, op.obj) : op.obj;
        store!.set(k, merged);
        return { ok: true, obj: null, ts: merged.siblings[0]!.ts, won: true, created: !cur };
      }
      return { ok: false, code: 'INVALID_ARGUMENT', msg: 'unexpected op' };
    });
    const res: BatchResponse = { v: PROTOCOL_VERSION, results, now: Date.now() };
    return res as T;
  }

  async close(): Promise<void> {}

  reset(): void {
    this.requests.length = 0;
  }
}

const REPLICATION = { east: 3, west: 3 };
/** Lets the requests a call still sends after it returned (beyond its quorum) go out. */
const settle = () => new Promise((r) => setTimeout(r, 50));
const opts = { membershipWatchMs: 0, membershipRefreshMs: 3_600_000, timeoutMs: 1500, valueEncoding: 'utf8' as const };

t.test('connect: localDc is required once the cluster has several data centers, never guessed', async (t) => {
  const net = new ScriptedDcs(viewOf(members(3, 3), REPLICATION));
  const err = await connect({ seeds: ['10.1.0.1:7000'], transport: net, ...opts }).then(
    () => undefined,
    (e: RingkvError) => e,
  );
  t.equal(err?.code, 'LOCAL_DC_REQUIRED');
  t.match(err?.message, /east, west/, 'the message names the data centers');
  const err2 = await connect({ seeds: ['10.1.0.1:7000'], transport: net, localDc: 'north', ...opts }).then(
    () => undefined,
    (e: RingkvError) => e,
  );
  t.equal(err2?.code, 'LOCAL_DC_REQUIRED', 'an unknown data center is refused');
  const kv = await connect({ seeds: ['10.1.0.1:7000'], transport: net, localDc: 'east', ...opts });
  t.equal(kv.localDc, 'east');
  await kv.close();
  // One data center: no localDc needed (and the single one is fine too).
  const single = new ScriptedDcs(viewOf(members(3, 0), { east: 3 }));
  const kv1 = await connect({ seeds: ['10.1.0.1:7000'], transport: single, ...opts });
  await kv1.put('k', 'v');
  t.equal((await kv1.get('k'))?.value, 'v', 'a one-data-center cluster needs no localDc');
  await kv1.close();
});

t.test('local levels reach only the local data center, at its own addresses', async (t) => {
  const net = new ScriptedDcs(viewOf(members(3, 3), REPLICATION));
  const kv = await connect({ seeds: ['10.1.0.1:7000'], transport: net, localDc: 'east', ...opts });
  t.teardown(() => kv.close());
  for (const level of ['strong', 'localQuorum', 'eventual', 'localOne', { r: 2, w: 3 }] as const) {
    net.reset();
    await kv.put('k1', 'v', { consistency: level });
    await kv.get('k1', { consistency: level });
    t.ok(net.requests.length > 0);
    t.ok(net.requests.every((r) => r.node.startsWith('e') && r.address.startsWith('10.1.')), `${JSON.stringify(level)}: only east replicas, at their addresses`);
  }
  net.reset();
  await kv.put('k2', 'v', { consistency: 'localOne' });
  await settle();
  t.equal(new Set(net.requests.map((r) => r.node)).size, 3, 'a localOne write is still sent to all three east replicas');
  // Two east replicas fail: a local level fails naming east, and asks nobody in west.
  net.failing.add('e1').add('e2');
  net.reset();
  const err = await kv.put('k3', 'v', { consistency: 'localQuorum' }).then(
    () => undefined,
    (e: RingkvError) => e,
  );
  t.equal(err?.code, 'QUORUM_NOT_MET');
  t.ok(net.requests.every((r) => r.node.startsWith('e')), 'it never fell over to west');
  const rerr = await kv.get('k1', { consistency: 'localQuorum' }).then(
    () => undefined,
    (e: RingkvError) => e,
  );
  t.equal(rerr?.code, 'QUORUM_NOT_MET', 'a localQuorum read too');
  t.ok(net.requests.every((r) => r.node.startsWith('e')), 'reads never fell over to west either');
});

t.test('a hint for a local replica stays in its data center', async (t) => {
  // Four nodes in east (three replicas per key): a hint holder exists beyond the replicas.
  const net = new ScriptedDcs(viewOf(members(4, 3), REPLICATION));
  const kv = await connect({ seeds: ['10.1.0.1:7000'], transport: net, localDc: 'east', ...opts });
  t.teardown(() => kv.close());
  const replicas = kv.replicasOf('hinted').filter((x) => x.startsWith('e'));
  net.unreachable.add(replicas[0]!);
  net.reset();
  await kv.put('hinted', 'v', { consistency: 'localOne' });
  await settle();
  const hinted = net.requests.filter((r) => r.hintFor !== undefined);
  t.ok(hinted.length >= 1, 'the write for the unreachable replica was handed to a hint holder');
  for (const h of hinted) t.ok(h.node.startsWith('e') && h.hintFor === replicas[0], `the hint holder ${h.node} is in east`);
  // Sloppy quorum (sdk/sloppy-quorum.ts hintHolders): the node beyond the preference list, not another replica.
  for (const h of hinted) t.notOk(replicas.includes(h.node), `the hint holder ${h.node} is beyond the key's replicas (${replicas.join(', ')})`);
});

t.test('eachQuorum and quorum reach the other data center at its remote addresses', async (t) => {
  const net = new ScriptedDcs(viewOf(members(3, 3), REPLICATION));
  const kv = await connect({ seeds: ['10.1.0.1:7000'], transport: net, localDc: 'east', ...opts });
  t.teardown(() => kv.close());
  net.reset();
  await kv.put('x', 'v', { consistency: 'eachQuorum' });
  await settle();
  const west = net.requests.filter((r) => r.node.startsWith('w'));
  t.equal(new Set(west.map((r) => r.node)).size, 3, 'every west replica was written');
  t.ok(west.every((r) => r.address.startsWith('10.9.2.')), 'west was reached at its remote addresses');
  // Two west replicas fail: eachQuorum cannot have 2 of 3 there, whatever east does.
  net.failing.add('w1').add('w2');
  const err = await kv.put('x', 'v2', { consistency: 'eachQuorum' }).then(
    () => undefined,
    (e: RingkvError) => e,
  );
  t.equal(err?.code, 'QUORUM_NOT_MET');
  t.equal(err?.details?.dc, 'west', 'the error names the data center that fell short');
  // quorum: 4 of the 6 replicas, from anywhere — east's three and one in west will do.
  await kv.put('x', 'v3', { consistency: 'quorum' });
  t.pass('quorum met with 3 east + 1 west');
  net.failing.add('w3');
  const qerr = await kv.put('x', 'v4', { consistency: 'quorum' }).then(
    () => undefined,
    (e: RingkvError) => e,
  );
  t.equal(qerr?.code, 'QUORUM_NOT_MET', 'quorum fails with 3 of 6');
  t.equal(qerr?.details?.dc, undefined, 'quorum counts over both data centers');
  t.equal((await kv.get('x', { consistency: 'localQuorum' }))?.value, 'v4', 'east holds the newest write (a failed write may have been applied)');
});

t.test('an eachQuorum read writes back to a majority of each data center', async (t) => {
  const net = new ScriptedDcs(viewOf(members(3, 3), REPLICATION));
  const kv = await connect({ seeds: ['10.1.0.1:7000'], transport: net, localDc: 'east', ...opts });
  t.teardown(() => kv.close());
  await kv.put('wb', 'v', { consistency: 'localOne' });
  // The value is in east only (as if not replicated yet): an eachQuorum read returns it only
  // once two west replicas hold it as well.
  t.equal(net.data.get('w1')?.get('wb') ?? net.data.get('w2')?.get('wb') ?? net.data.get('w3')?.get('wb'), undefined);
  const got = await kv.get('wb', { consistency: 'eachQuorum' });
  t.equal(got?.value, 'v');
  const westHolding = ['w1', 'w2', 'w3'].filter((w) => net.data.get(w)?.get('wb') !== undefined).length;
  t.ok(westHolding >= 2, `${westHolding} west replicas hold it after the read`);
  // A west replica that answers the read but fails the write-back is made up for by another
  // west replica, not by a third east one (the majority is per data center).
  net.failingWrites.add('w1');
  for (let i = 0; i < 10; i++) {
    const k = `wb${i}`;
    await kv.put(k, 'v', { consistency: 'localQuorum' });
    await settle();
    t.equal((await kv.get(k, { consistency: 'eachQuorum' }))?.value, 'v');
    t.same(
      ['w2', 'w3'].filter((w) => net.data.get(w)?.get(k) !== undefined),
      ['w2', 'w3'],
      `${k}: both west replicas that take writes hold it after the read`,
    );
  }
});
