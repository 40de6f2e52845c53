// The SDK's side of ring epochs, against a scripted transport: a write refused with
// RING_CHANGED is routed again on the view the refusal carried (to the new ring's replicas),
// within the call's timeout and at most maxRingRetries times; writes carry the stamp of the
// ring they were routed on; a recovering member is never read.

import t from 'tap';
import { connect } from '../../sdk/client.js';
import type { MemberInfo, MembersView } from '../../sdk/membership.js';
import type { RingStamp } from '../../sdk/ring-epoch.js';
import { ringStampOf } from '../../sdk/ring-epoch.js';
import type { CallOptions, Transport } from '../../sdk/transport.js';
import type { BatchRequest, BatchResponse, WireResult } from '../../sdk/wire/protocol.js';
import { OpType, PROTOCOL_VERSION, Routes } from '../../sdk/wire/protocol.js';

const member = (id: string, state: MemberInfo['state'], ringVersion: number): MemberInfo => ({
  id,
  address: `10.255.0.${id.slice(1)}:7000`,
  weight: 1,
  state,
  incarnation: 1,
  ringVersion,
});

function viewOf(members: MemberInfo[]): MembersView {
  const s = ringStampOf(members);
  return { v: PROTOCOL_VERSION, self: 'n1', settings: { vnodesPerNode: 16, replicationFactor: 3 }, members, epoch: 1, ringEpoch: s.epoch, ringDigest: s.digest, ringFloor: s.epoch };
}

/**
 * A cluster in memory: every node knows `serverView`; the client starts from `clientView`.
 * A node refuses writes routed below the server view's epoch (answering with it), like a
 * storage server whose floor is there.
 */
class ScriptedCluster implements Transport {
  readonly writes: { node: string; ring: RingStamp | undefined; key: string }[] = [];
  readonly reads: string[] = [];
  refuseAlways = false;
  /** When set, only these nodes know the new ring (a fence in progress); the others take any write. */
  fenced: Set<string> | undefined;
  readonly applied: { node: string; key: string }[] = [];
  constructor(
    private readonly clientView: MembersView,
    private readonly serverView: MembersView,
  ) {}

  async call<T>(address: string, path: string, body: unknown, _opts: CallOptions): Promise<T> {
    const node = this.serverView.members.find((m) => m.address === address)?.id ?? address;
    if (path.startsWith(Routes.members)) return this.clientView as T;
    if (path !== Routes.batch) throw new Error(`unexpected ${path}`);
    const b = body as BatchRequest;
    const floor = this.serverView.ringEpoch!;
    let refused = false;
    const results: WireResult[] = b.ops.map((op) => {
      if (op.t === OpType.Get) {
        this.reads.push(node);
        return { ok: true, obj: null };
      }
      this.writes.push({ node, ring: b.ring, key: op.key.toString() });
      const knows = !this.fenced || this.fenced.has(node);
      if (this.refuseAlways || (knows && (!b.ring || b.ring.epoch < floor))) {
        refused = true;
        return { ok: false, code: 'RING_CHANGED', msg: `${node} knows epoch ${floor}` };
      }
      this.applied.push({ node, key: op.key.toString() });
      return { ok: true, obj: null, ts: 1, won: true, created: true };
    });
    const res: BatchResponse = { v: PROTOCOL_VERSION, results, now: Date.now() };
    if (refused) res.view = this.serverView;
    return res as T;
  }

  async close(): Promise<void> {}
}

const before = viewOf([member('n1', 'up', 1), member('n2', 'up', 1), member('n3', 'up', 1)]);
const joining = viewOf([member('n1', 'up', 1), member('n2', 'up', 1), member('n3', 'up', 1), member('n4', 'joining', 1)]);

t.test('a write refused for its ring is routed again on the view the refusal carried', async (t) => {
  const cluster = new ScriptedCluster(before, joining);
  const kv = await connect({ seeds: [before.members[0]!.address], transport: cluster, membershipWatchMs: 0, membershipRefreshMs: 3_600_000 });
  t.teardown(() => kv.close());
  t.equal(kv.cluster.ringStamp.epoch, 3, 'the client starts on the ring without n4');
  let n4Writes = 0;
  for (let i = 0; i < 20; i++) {
    const before = cluster.writes.length;
    await kv.put(`k${i}`, Buffer.from('v'), { consistency: 'strong' });
    n4Writes += cluster.writes.slice(before).filter((w) => w.node === 'n4').length;
  }
  t.equal(kv.counters.ringRetries, 1, 'one refusal, one new routing: the view came with the refusal');
  t.equal(kv.cluster.member('n4')?.state, 'joining', 'the client took the view of the refusal');
  t.same(kv.cluster.ringStamp, { epoch: joining.ringEpoch, digest: joining.ringDigest }, 'its stamp is the replica\'s');
  t.ok(n4Writes > 0, `writes for keys n4 is taking over went to n4 too (${n4Writes})`);
  t.ok(cluster.writes.every((w) => w.ring !== undefined), 'every write carried a ring stamp');
  const old = cluster.writes.filter((w) => w.ring!.epoch < joining.ringEpoch!).length;
  t.equal(old, 3, `only the first attempt (3 replicas) was routed on the old epoch, of ${cluster.writes.length} writes`);
  const k0 = cluster.writes.filter((w) => w.key === 'k0' && w.ring!.epoch === joining.ringEpoch).map((w) => w.node).sort();
  t.same(k0, [...new Set([...kv.replicasOf('k0'), ...k0])].sort(), `the retry of k0 reached every replica of the new ring (${k0.join(', ')})`);
});

t.test('retries are bounded: a ring that keeps changing fails the call with RING_CHANGED, not applied', async (t) => {
  const cluster = new ScriptedCluster(before, joining);
  cluster.refuseAlways = true;
  const kv = await connect({ seeds: [before.members[0]!.address], transport: cluster, membershipWatchMs: 0, membershipRefreshMs: 3_600_000, maxRingRetries: 2 });
  t.teardown(() => kv.close());
  const err = await kv.put('k', Buffer.from('v'), { consistency: 'strong' }).catch((e: unknown) => e);
  t.match(err, { code: 'RING_CHANGED', notApplied: true }, 'the call fails with RING_CHANGED, known not applied');
  t.equal(kv.counters.ringRetries, 2, 'after maxRingRetries routings again');
  const started = Date.now();
  const slow = await kv.put('k', Buffer.from('v'), { consistency: 'strong', timeoutMs: 300 }).catch((e: unknown) => e);
  t.ok((slow as { code?: string }).code === 'RING_CHANGED' || (slow as { code?: string }).code === 'TIMEOUT', `within the call's timeout (${(slow as Error).message})`);
  t.ok(Date.now() - started < 2000, 'and never past it by much');
});

t.test('a recovering member is not read', async (t) => {
  const recovering = viewOf([member('n1', 'up', 1), member('n2', 'recovering', 1), member('n3', 'up', 1)]);
  const cluster = new ScriptedCluster(recovering, recovering);
  const kv = await connect({ seeds: [recovering.members[0]!.address], transport: cluster, membershipWatchMs: 0, membershipRefreshMs: 3_600_000 });
  t.teardown(() => kv.close());
  for (let i = 0; i < 30; i++) await kv.get(`k${i}`, { consistency: i % 2 ? 'eventual' : 'strong' });
  t.ok(cluster.reads.length >= 30, `${cluster.reads.length} reads`);
  t.notOk(cluster.reads.includes('n2'), 'none of them went to n2');
});

t.test('a write acknowledged while a fence is in progress is sent again to the replica that refused it', async (t) => {
  const cluster = new ScriptedCluster(before, joining);
  const kv = await connect({ seeds: [before.members[0]!.address], transport: cluster, membershipWatchMs: 0, membershipRefreshMs: 3_600_000 });
  t.teardown(() => kv.close());
  // Only n1 knows n4 joins yet: a write routed without n4 is refused there and taken by n2, n3.
  cluster.fenced = new Set(['n1']);
  let key = '';
  for (let i = 0; !key; i++) if (kv.replicasOf(`f${i}`).includes('n1')) key = `f${i}`;
  await kv.put(key, Buffer.from('v'), { consistency: 'strong' });
  await kv.drain();
  t.equal(kv.counters.ringRetries, 0, 'acknowledged by n2 and n3 without routing again');
  t.ok(cluster.applied.some((a) => a.node === 'n1' && a.key === key), `n1, which refused it, got it again on the new ring (${cluster.applied.filter((a) => a.key === key).map((a) => a.node).join(', ')})`);
});
