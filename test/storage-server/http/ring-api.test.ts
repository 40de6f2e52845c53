// The ring route's answer while members join and leave (storage-server/http/ring-api.ts),
// from a real ClusterView given a member list, as a node's own view is given its gossip:
// `moving` is set, the shares are those of the ring now (a joining member owns nothing yet,
// a leaving one still does) and `pendingShare` those of the ring once the moves are done,
// each as sdk/ring.ts computes them; members that left are not listed. (A cluster caught
// mid-join on real processes would make this timing-dependent; test/ui/ring-endpoint.test.ts
// checks the answer of a settled cluster on real nodes.)

import t from 'tap';
import { ClusterView } from '../../../sdk/cluster-view.js';
import type { MemberInfo, MembersView } from '../../../sdk/membership.js';
import { Ring } from '../../../sdk/ring.js';
import type { Transport } from '../../../sdk/transport.js';
import type { RingAnswer, RingKeyAnswer } from '../../../sdk/wire/protocol.js';
import { PROTOCOL_VERSION } from '../../../sdk/wire/protocol.js';
import { ringAnswer } from '../../../storage-server/http/ring-api.js';

/** The view is only given member lists here: nothing is ever sent. */
const noTransport: Transport = {
  call: () => Promise.reject(new Error('not used')),
  close: () => Promise.resolve(),
};

const member = (id: string, state: MemberInfo['state'], weight = 1): MemberInfo => ({ id, address: `127.0.0.1:${1000 + Number(id.slice(1))}`, weight, state, incarnation: 1, ringVersion: 1 });

t.test('while members join and leave: the shares now and after the moves', async (t) => {
  const view = new ClusterView({ seeds: [], transport: noTransport, requestTimeoutMs: 500, refreshIntervalMs: 60_000, watchWaitMs: 0 });
  const members = [member('n1', 'up'), member('n2', 'up', 1.5), member('n3', 'joining'), member('n4', 'leaving'), member('n5', 'left')];
  const mv: MembersView = { v: PROTOCOL_VERSION, self: 'n1', settings: { vnodesPerNode: 32, replicationFactor: 2 }, members, epoch: 1 };
  view.apply(mv);
  const a = ringAnswer(view, 'n1', new URLSearchParams()) as RingAnswer;
  const now = new Ring([{ id: 'n1' }, { id: 'n2', weight: 1.5 }, { id: 'n4' }], { vnodesPerNode: 32 });
  const after = new Ring([{ id: 'n1' }, { id: 'n2', weight: 1.5 }, { id: 'n3' }], { vnodesPerNode: 32 });
  t.equal(a.moving, true, 'moving');
  t.same(a.members.map((m) => `${m.id}:${m.state}:${m.vnodes}`), ['n1:up:32', 'n2:up:48', 'n3:joining:0', 'n4:leaving:32'], 'every member but the one that left; a joining one has no vnodes yet');
  for (const m of a.members) {
    t.ok(Math.abs(m.share - (now.ownership().get(m.id) ?? 0)) < 1e-12, `${m.id}: share now ${(m.share * 100).toFixed(1)}%`);
    t.ok(Math.abs(m.pendingShare! - (after.ownership().get(m.id) ?? 0)) < 1e-12, `${m.id}: share after the moves ${(m.pendingShare! * 100).toFixed(1)}%`);
  }
  t.same(a.arcs, now.arcs(), 'the arcs are those of the ring now');
  t.same(a.replication, { default: 2 }, 'replication of a cluster of one data center');

  const k = ringAnswer(view, 'n1', new URLSearchParams({ key: 'user:42' })) as RingKeyAnswer;
  t.same(k.replicas, [{ dc: 'default', nodes: now.preferenceList('user:42', 2) }], "a key's replicas: the ring now's preference list");

  view.apply({ ...mv, members: [member('n1', 'up'), member('n2', 'up', 1.5), { ...member('n3', 'up'), ringVersion: 2 }, { ...member('n4', 'left'), ringVersion: 2 }], epoch: 2 });
  const done = ringAnswer(view, 'n1', new URLSearchParams()) as RingAnswer;
  t.equal(done.moving, false, 'once the moves are done: not moving');
  t.same(done.members.map((m) => [m.id, m.pendingShare]), [['n1', undefined], ['n2', undefined], ['n3', undefined]], 'no pendingShare; the member that left is gone');
});
