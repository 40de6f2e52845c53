// Membership's news rules on their own (in-memory network, ManualClock, no servers): which
// incarnations are valid news, and refutation near large incarnations.

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
  return { id: n.id, address: n.address, weight: 1, state: 'up', incarnation: n.membership.self.incarnation, ...over };
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
