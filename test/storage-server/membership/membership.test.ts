// Membership's news rules on their own (in-memory network, ManualClock, no servers): which
// incarnations are valid news, refutation near large incarnations, and a restarted node
// whose previous life left newer news about it than its new incarnation.

import t from 'tap';
import { ManualClock } from '../../../sdk/clock.js';
import type { MemberInfo } from '../../../sdk/membership.js';
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

t.test('near the largest incarnations: a suspicion is refuted one above it and the refutation wins everywhere', async (t) => {
  const net = new MemNetwork();
  const clock = new ManualClock();
  const top = Number.MAX_SAFE_INTEGER;
  const a = net.add('a', { clock, incarnation: top - 5 });
  const b = net.add('b', { clock, incarnation: top - 3 });
  const c = net.add('c', { clock });
  net.introduceAll();
  a.membership.markState('b', 'suspect');
  await net.gossip(a, b);
  t.equal(b.membership.self.incarnation, top - 2, 'b refuted with exactly one more');
  await net.gossip(a, b);
  await net.gossip(c, a);
  t.same([stateIn(a, 'b'), stateIn(c, 'b')], [['up', top - 2, b.address], ['up', top - 2, b.address]]);
  // At the very top there is no safe integer left to refute with: b keeps a valid one.
  b.membership.mergeList([rec(b, { state: 'suspect', incarnation: top })]);
  t.ok(Number.isSafeInteger(b.membership.self.incarnation), `b's incarnation stays exact (${b.membership.self.incarnation})`);
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

t.test("a restarted node refutes its previous life's 'leaving' at the same incarnation, but never 'left'", async (t) => {
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
  a.membership.markState('b', 'left');
  await net.gossip(a, b);
  // The removal raised b's ring version: b takes it (it stays out of the ring in its own
  // view too, until it is wiped and joins again) and does not refute it.
  t.same(b.membership.self.state, 'left', 'b learns that it was removed');
  t.equal(b.membership.self.incarnation, 1004, "an operator's removal is not refuted");
  t.same(stateIn(a, 'b'), ['left', 1004, b.address], 'and b stays out of the ring');
});
