// Membership's news rules on their own (in-memory network, ManualClock, no servers): which
// incarnations are valid news, refutation near large incarnations, and a restarted node
// whose previous life left newer news about it than its new incarnation.

import t from 'tap';
import { ManualClock } from '../../../sdk/clock.js';
import type { MemberInfo } from '../../../sdk/membership.js';
import { MAX_MEMBER_COUNTER, MAX_MEMBER_WEIGHT } from '../../../sdk/membership.js';
import { MAX_INCARNATION_STEP, MAX_RING_VERSION_STEP } from '../../../storage-server/membership/membership.js';
import type { SimNode } from './mem-network.js';
import { MemNetwork } from './mem-network.js';

const stateIn = (viewer: SimNode, id: string) => {
  const m = viewer.membership.get(id);
  return m && [m.state, m.incarnation, m.address];
};

function rec(n: SimNode, over: Partial<MemberInfo>): MemberInfo {
  return { id: n.id, address: n.address, weight: 1, state: 'up', incarnation: n.membership.self.incarnation, ringVersion: n.membership.self.ringVersion, ...over };
}

t.test('news whose incarnation is not a safe non-negative integer is ignored, so it cannot pin a member down', async (t) => {
  const net = new MemNetwork();
  const clock = new ManualClock();
  const a = net.add('a', { clock });
  const b = net.add('b', { clock });
  net.introduceAll();
  for (const incarnation of [Infinity, 2 ** 53, 1e300, NaN, 1.5, -1]) {
    a.membership.mergeList([rec(b, { state: 'down', incarnation })]);
    t.same(stateIn(a, 'b'), ['up', 1000, b.address], `a ignored 'b is down at ${incarnation}'`);
    b.membership.mergeList([rec(b, { state: 'suspect', incarnation })]);
    t.equal(b.membership.self.incarnation, 1000, `b ignored 'you are suspect at ${incarnation}'`);
  }
  t.equal(b.membership.counters.refutations, 0);
  // A new member announced with such an incarnation is not taken either.
  a.membership.mergeList([{ id: 'x', address: 'x:1', weight: 1, state: 'up', incarnation: Infinity }]);
  t.equal(a.membership.get('x'), undefined);
});

t.test('a suspicion at a large incarnation is refuted one above it and wins everywhere; news far ahead of a member is ignored', async (t) => {
  const net = new MemNetwork();
  const clock = new ManualClock();
  const a = net.add('a', { clock });
  const b = net.add('b', { clock });
  const c = net.add('c', { clock });
  net.introduceAll();
  const big = 1000 + MAX_INCARNATION_STEP - 5;
  a.membership.mergeList([rec(b, { state: 'suspect', incarnation: big })]);
  t.equal(stateIn(a, 'b')?.[0], 'suspect');
  await net.gossip(a, b);
  t.equal(b.membership.self.incarnation, big + 1, 'b refuted with exactly one more');
  await net.gossip(a, b);
  await net.gossip(c, a);
  t.same([stateIn(a, 'b'), stateIn(c, 'b')], [['up', big + 1, b.address], ['up', big + 1, b.address]]);
  // News further ahead than a member could have come in one step, or past the bound, is ignored:
  // no single record can leave a member without room to refute.
  const beyond = Math.max(big + 1, Math.floor(clock.nowMs() / 1000)) + MAX_INCARNATION_STEP + 1;
  for (const incarnation of [beyond, MAX_MEMBER_COUNTER, MAX_MEMBER_COUNTER + 1, 2 ** 52, Number.MAX_SAFE_INTEGER]) {
    b.membership.mergeList([rec(b, { state: 'down', incarnation })]);
    a.membership.mergeList([rec(b, { state: 'down', incarnation })]);
  }
  t.equal(b.membership.self.incarnation, big + 1, 'b ignored them');
  t.same(stateIn(a, 'b'), ['up', big + 1, b.address], 'and so did a');
  const rv = a.membership.get('b')?.ringVersion ?? 0;
  a.membership.mergeList([rec(b, { state: 'leaving', incarnation: big + 2, ringVersion: rv + MAX_RING_VERSION_STEP + 1 })]);
  t.same([stateIn(a, 'b')?.[0], a.membership.get('b')?.ringVersion], ['up', rv], 'a ring version more than a thousand ahead is ignored too');
});

t.test('gossip records out of bounds are ignored: a weight that would build millions of vnodes, odd ids and addresses', async (t) => {
  const net = new MemNetwork();
  const clock = new ManualClock();
  const a = net.add('a', { clock });
  net.introduceAll();
  const bad: MemberInfo[] = [
    { id: 'huge', address: 'huge:1', weight: 1e6, state: 'up', incarnation: 1 },
    { id: 'nanw', address: 'nanw:1', weight: NaN, state: 'up', incarnation: 1 },
    { id: 'x'.repeat(65), address: 'long:1', weight: 1, state: 'up', incarnation: 1 },
    { id: 'sp ace', address: 'sp:1', weight: 1, state: 'up', incarnation: 1 },
    { id: 'noport', address: 'noport', weight: 1, state: 'up', incarnation: 1 },
    { id: 'bigport', address: 'h:99999', weight: 1, state: 'up', incarnation: 1 },
    { id: 'url', address: 'http://h:1', weight: 1, state: 'up', incarnation: 1 },
    { id: 'ringv', address: 'r:1', weight: 1, state: 'up', incarnation: 1, ringVersion: 2 ** 53 },
    // Data centers and racks key maps and enter the ring digest: bounded like configured names.
    { id: 'dclong', address: 'd:1', weight: 1, state: 'up', incarnation: 1, dc: 'd'.repeat(65) },
    { id: 'dcspace', address: 'd:2', weight: 1, state: 'up', incarnation: 1, dc: 'east coast' },
    { id: 'dcnum', address: 'd:3', weight: 1, state: 'up', incarnation: 1, dc: 7 as unknown as string },
    { id: 'rackempty', address: 'd:4', weight: 1, state: 'up', incarnation: 1, rack: '' },
    { id: 'racklong', address: 'd:5', weight: 1, state: 'up', incarnation: 1, rack: 'r'.repeat(100) },
    { id: 'remoteurl', address: 'd:6', weight: 1, state: 'up', incarnation: 1, remoteAddress: 'http://gw:1' },
    { id: 'remoteport', address: 'd:7', weight: 1, state: 'up', incarnation: 1, remoteAddress: 'gw:70000' },
  ];
  a.membership.mergeList(bad);
  t.same(
    a.membership.members().map((m) => m.id),
    ['a'],
    'none of them became a member',
  );
  a.membership.mergeList([{ id: 'ok.node-1', address: '10.0.0.1:7001', weight: MAX_MEMBER_WEIGHT, state: 'up', incarnation: 1 }]);
  t.ok(a.membership.get('ok.node-1'), 'a record within bounds is taken');
  a.membership.mergeList([{ id: 'ok.dc', address: '10.0.0.2:7001', remoteAddress: 'gw.example:9002', dc: 'eu-west_1', rack: 'r.2', weight: 1, state: 'up', incarnation: 1 }]);
  const dc = a.membership.get('ok.dc');
  t.same([dc?.dc, dc?.rack, dc?.remoteAddress], ['eu-west_1', 'r.2', 'gw.example:9002'], 'a data center, rack and remote address within bounds are taken');
});

t.test("a live node refutes 'left' that it did not cause, at any ring version; a removal during its outage it accepts", async (t) => {
  const net = new MemNetwork();
  const clock = new ManualClock(1_700_000_000_000);
  const a = net.add('a', { clock });
  const b = net.add('b', { clock });
  const c = net.add('c', { clock });
  net.introduceAll();
  // A forged record far ahead of what b could have reached is ignored outright.
  a.membership.mergeList([rec(b, { state: 'left', incarnation: MAX_MEMBER_COUNTER, ringVersion: MAX_MEMBER_COUNTER - 1 })]);
  t.equal(stateIn(a, 'b')?.[0], 'up', 'a ignored "b left" at counters b could not have reached');
  // The attack within those bounds: "b left" at a large incarnation and ring version, gossiped to a.
  a.membership.mergeList([rec(b, { state: 'left', incarnation: 1000 + 9_000_000, ringVersion: 999 })]);
  t.equal(stateIn(a, 'b')?.[0], 'left', 'a believed it');
  await net.gossip(a, b);
  t.equal(b.membership.self.state, 'up', 'b refutes it');
  await net.gossip(b, a);
  await net.gossip(a, c);
  t.same([stateIn(a, 'b')?.[0], stateIn(c, 'b')?.[0]], ['up', 'up'], 'and the refutation wins everywhere');
  // An operator's removal of b while b is running (a partition, or a forged admin call) is refuted too.
  a.membership.markState('b', 'left');
  await net.gossip(a, b);
  t.equal(b.membership.self.state, 'up', 'a removal made while b was running is refuted');

  // d was down from T+10 s to T+60 s; an operator removed it at T+30 s: d accepts it and stays out.
  const net2 = new MemNetwork();
  const clock2 = new ManualClock(1_700_000_000_000);
  const x = net2.add('x', { clock: clock2 });
  const dOld = net2.add('d', { clock: clock2 });
  net2.introduceAll();
  net2.set(dOld, 'dead');
  clock2.advance(30_000);
  x.membership.markState('d', 'down');
  x.membership.markState('d', 'left');
  clock2.advance(30_000);
  const d = net2.add('d', { clock: clock2, incarnation: 1060, outage: { fromMs: 1_700_000_010_000, toMs: clock2.nowMs() } });
  await net2.gossip(x, d);
  t.equal(d.membership.self.state, 'left', 'removed during its outage: d stays out of the ring');
  // A forged removal dated outside the outage is refused even after a restart.
  const net3 = new MemNetwork();
  const clock3 = new ManualClock(1_700_000_000_000);
  const y = net3.add('y', { clock: clock3 });
  const e = net3.add('e', { clock: clock3, outage: { fromMs: 1_699_999_990_000, toMs: 1_700_000_000_000 } });
  net3.introduceAll();
  y.membership.mergeList([rec(e, { state: 'left', incarnation: 5000, ringVersion: 50, removedAtMs: 1_600_000_000_000 })]);
  await net3.gossip(y, e);
  t.equal(e.membership.self.state, 'up', 'a removal dated long before its outage is refuted');
});

t.test('a restarted node refutes newer news from its previous life: new address and state win', async (t) => {
  const net = new MemNetwork();
  const clock = new ManualClock();
  const a = net.add('a', { clock });
  // b's previous life raised its incarnation to 1003 (address change, join, refutations),
  // then b restarted at a wall-clock second that gives it only 1001, on a new port.
  const old = net.add('b', { clock, incarnation: 1003, address: 'b:7000' });
  net.introduceAll();
  net.set(old, 'dead');
  const b = net.add('b', { clock, incarnation: 1001, address: 'b:7001' });
  await net.gossip(b, a);
  t.same(stateIn(a, 'b'), ['up', 1003, 'b:7000'], "a keeps the previous life's record: 1001 is older news");
  t.ok(b.membership.self.incarnation > 1003, `b heard of its previous life and went above it (${b.membership.self.incarnation})`);
  t.equal(b.membership.self.address, 'b:7001');
  await net.gossip(b, a);
  t.same(stateIn(a, 'b'), ['up', 1004, 'b:7001'], 'a now has the new address');
});

t.test("a restarted node refutes its previous life's 'leaving' at the same incarnation; its own 'left' it keeps", async (t) => {
  const net = new MemNetwork();
  const clock = new ManualClock();
  const a = net.add('a', { clock });
  const b = net.add('b', { clock, incarnation: 1003 });
  net.introduceAll();
  a.membership.mergeList([rec(b, { state: 'leaving', incarnation: 1003 })]);
  t.same(stateIn(a, 'b'), ['leaving', 1003, b.address], 'a holds the previous life as leaving');
  await net.gossip(a, b);
  await net.gossip(a, b);
  t.same(stateIn(a, 'b'), ['up', 1004, b.address], 'b is up again in a');
  // b decommissioned itself in its previous life (its NODE-STATE says so): after a restart
  // it takes its own 'left' back from a and stays out.
  a.membership.mergeList([rec(b, { state: 'left', incarnation: 1005, ringVersion: (b.membership.self.ringVersion ?? 0) + 1 })]);
  net.set(b, 'dead');
  const b2 = net.add('b', { clock, incarnation: 1004, selfLeft: true });
  await net.gossip(a, b2);
  t.same(b2.membership.self.state, 'left', 'b keeps its own decommission');
  t.same(stateIn(a, 'b')?.[0], 'left', 'and stays out of the ring');
});

t.test('gossip between nodes with other cluster settings is refused both ways; the same settings, or none (protocol 4 or earlier), are taken', async (t) => {
  const net = new MemNetwork();
  const clock = new ManualClock();
  const a = net.add('a', { clock, settings: { vnodesPerNode: 8, replicationFactor: 6, replication: { east: 3, west: 3 } } });
  const b = net.add('b', { clock, settings: { vnodesPerNode: 8, replicationFactor: 5, replication: { east: 3, west: 2 } } });
  const c = net.add('c', { clock, settings: { vnodesPerNode: 8, replicationFactor: 6, replication: { west: 3, east: 3 } } });
  const d = net.add('d', { clock, settings: { vnodesPerNode: 16, replicationFactor: 6, replication: { east: 3, west: 3 } } });
  for (const [x, y] of [
    [a, b],
    [b, a],
    [a, d],
  ] as const) {
    await t.rejects(net.gossip(x, y), { code: 'SETTINGS_MISMATCH' }, `${x.id} -> ${y.id}: refused`);
    t.equal(x.membership.get(y.id), undefined, `${x.id} did not take ${y.id}'s table`);
    t.equal(y.membership.get(x.id), undefined, `${y.id} did not take ${x.id}'s table`);
  }
  t.equal(b.membership.counters.settingsMismatches, 1, 'b counted the gossip it refused');
  t.equal(a.membership.counters.settingsMismatches, 1, 'a counted the gossip it refused');
  // An answer with other settings (a peer that does not check, say) is refused too.
  t.throws(() => a.membership.takeGossipReply(d.membership.gossipMessage()), { code: 'SETTINGS_MISMATCH' });
  t.equal(a.membership.get('d'), undefined, "a did not take d's answer");
  t.equal(a.membership.counters.settingsMismatches, 2);
  // The same settings (in another key order) are taken.
  await net.gossip(a, c);
  t.ok(a.membership.get('c') && c.membership.get('a'), 'a and c took each other');
  // A node of protocol 4 or earlier sends no settings: not checked.
  a.membership.handleGossip({ v: 3, from: 'e', members: [{ id: 'e', address: 'e:7000', weight: 1, state: 'up', incarnation: 1 }] });
  t.ok(a.membership.get('e'), 'gossip without settings is taken');
});
