// The SWIM failure detector on its own: real Membership and FailureDetector objects on an
// in-memory network (mem-network.ts: a Transport that answers through the other nodes' real
// ping, ping-req and gossip handlers, or fails per address) and a ManualClock; the tests
// run the probe rounds. Misses -> suspect -> down after the suspicion timeout, indirect
// probes through k members, refutation by incarnation, a suspect that answers, paused nodes
// that resume, and probes that outlast a round.

import t from 'tap';
import { ManualClock } from '../../../sdk/clock.js';
import { Routes } from '../../../sdk/wire/protocol.js';
import type { FailureDetectorOptions } from '../../../storage-server/membership/failure-detector.js';
import type { SimNode } from './mem-network.js';
import { MemNetwork } from './mem-network.js';

/** Runs one probe round of `n` after moving the clock `stepMs` forward. */
async function round(n: SimNode, clock: ManualClock, stepMs = 1000): Promise<void> {
  clock.advance(stepMs);
  await n.detector.probeRound();
}

function cluster(ids: string[], o: { detector?: Partial<FailureDetectorOptions> } = {}) {
  const net = new MemNetwork();
  const clock = new ManualClock();
  const nodes = ids.map((id) => net.add(id, { clock, ...(o.detector ? { detector: o.detector } : {}) }));
  net.introduceAll();
  return { net, clock, nodes };
}

const stateIn = (viewer: SimNode, of: SimNode) => viewer.membership.get(of.id)?.state;
const pings = (net: MemNetwork, from: SimNode, to: SimNode) => net.callsTo(to, Routes.ping).filter((x) => x.from === from.address).length;

t.test('members that answer are probed every round and never suspected', async (t) => {
  const { net, clock, nodes } = cluster(['a', 'b', 'c']);
  const [a, b, c] = nodes as [SimNode, SimNode, SimNode];
  for (let i = 0; i < 5; i++) await round(a, clock);
  t.equal(a.detector.counters.probes, 10, 'two members, five rounds');
  t.equal(a.detector.counters.misses, 0);
  t.equal(net.callsTo(b, Routes.ping).length, 5);
  t.equal(net.callsTo(a, Routes.ping).length, 0, 'a does not probe itself');
  t.same([stateIn(a, b), stateIn(a, c)], ['up', 'up']);
  t.equal(a.membership.get('b')!.lastHeardMs, clock.nowMs(), 'an answer counts as hearing from the member');
});

t.test('a killed member: suspect after suspectAfterMisses misses, down once the suspicion timeout passed', async (t) => {
  const { net, clock, nodes } = cluster(['a', 'b', 'c']);
  const [a, b] = nodes as [SimNode, SimNode];
  net.set(b, 'dead');
  await round(a, clock);
  await round(a, clock);
  t.equal(stateIn(a, b), 'up', 'two misses: still up');
  t.equal(a.detector.counters.misses, 2);
  t.equal(a.detector.counters.indirectProbes, 2, 'each miss was first retried through the one other live member');
  await round(a, clock);
  t.equal(stateIn(a, b), 'suspect', 'the third miss makes it suspect');
  const suspectAt = clock.nowMs();
  t.equal(a.membership.get('b')!.incarnation, 1000, 'a suspicion keeps the member incarnation (so it can refute)');
  await round(a, clock, 1999);
  t.equal(stateIn(a, b), 'suspect', '1999 ms later: still suspect');
  await round(a, clock, 1);
  t.equal(stateIn(a, b), 'down', `down ${clock.nowMs() - suspectAt} ms after the suspicion`);
  t.equal(a.detector.counters.suspected, 1);
  t.equal(a.detector.counters.markedDown, 1);
  await round(a, clock);
  t.equal(a.detector.counters.markedDown, 1, 'marked down once');
});

t.test('indirect probes: a member only this node cannot reach is not suspected; k helpers asked per miss', async (t) => {
  const { net, clock, nodes } = cluster(['a', 'b', 'c', 'd', 'e']);
  const [a, b, c, d, e] = nodes as [SimNode, SimNode, SimNode, SimNode, SimNode];
  net.cutLink(a, b);
  for (let i = 0; i < 6; i++) await round(a, clock);
  t.equal(stateIn(a, b), 'up', 'b answered through the others');
  t.equal(a.detector.counters.misses, 0);
  t.equal(a.detector.counters.directFailures, 6);
  const reqs = [c, d, e].map((h) => net.callsTo(h, Routes.pingReq).length);
  t.equal(reqs.reduce((x, y) => x + y, 0), 12, `indirectProbes = 2 helpers per failed direct ping (${reqs.join(', ')})`);
  t.ok(
    net.calls.filter((x) => x.path === Routes.pingReq).every((x) => (x.body as { target: string }).target === 'b'),
    'only about b',
  );
  // A helper a thinks is down is not asked.
  e.membership.markState('a', 'up'); // (e's view does not matter)
  a.membership.markState('e', 'down');
  const before = net.callsTo(e, Routes.pingReq).length;
  for (let i = 0; i < 4; i++) await round(a, clock);
  t.equal(net.callsTo(e, Routes.pingReq).length, before, 'a down member is never a helper');
  // When nobody can reach b, the misses count.
  net.cutLink(c, b);
  net.cutLink(d, b);
  for (let i = 0; i < 3; i++) await round(a, clock);
  t.equal(stateIn(a, b), 'suspect', 'b missed direct and indirect probes three times');
});

t.test('refutation by incarnation: the probe tells the suspect, it refutes at once, and gossip undoes the suspicion', async (t) => {
  const { net, clock, nodes } = cluster(['a', 'b', 'c']);
  const [a, b, c] = nodes as [SimNode, SimNode, SimNode];
  net.set(b, 'dead');
  for (let i = 0; i < 3; i++) await round(a, clock);
  t.equal(stateIn(a, b), 'suspect');
  await net.gossip(a, c);
  t.equal(stateIn(c, b), 'suspect', 'gossip spread the suspicion to c');
  net.set(b, 'up');
  await round(a, clock);
  const ping = net.callsTo(b, Routes.ping).at(-1)!.body as { about?: { state: string; incarnation: number } };
  t.same(ping.about && [ping.about.state, ping.about.incarnation], ['suspect', 1000], 'the ping carried the suspicion');
  t.equal(b.membership.self.incarnation, 1001, 'b refuted by raising its incarnation');
  t.equal(b.membership.counters.refutations, 1);
  t.equal(stateIn(a, b), 'suspect', 'a still suspects b until the refutation reaches it');
  await round(a, clock, 5000);
  t.equal(stateIn(a, b), 'suspect', 'but b answers, so it is not taken down past the timeout');
  await net.gossip(c, b);
  t.same([stateIn(c, b), c.membership.get('b')!.incarnation], ['up', 1001], 'c took the refutation from b');
  await net.gossip(a, c);
  t.same([stateIn(a, b), a.membership.get('b')!.incarnation], ['up', 1001], 'and a from c');
  c.membership.mergeList([{ id: 'b', address: b.address, weight: 1, state: 'suspect', incarnation: 1000 }]);
  t.equal(stateIn(c, b), 'up', 'the old suspicion, gossiped late, loses to the refutation');
  t.equal(a.detector.counters.markedDown, 0);
});

t.test('a suspect that keeps answering is never marked down; a miss after the timeout does it', async (t) => {
  const { net, clock, nodes } = cluster(['a', 'b']);
  const [a, b] = nodes as [SimNode, SimNode];
  net.set(b, 'dead');
  for (let i = 0; i < 3; i++) await round(a, clock);
  t.equal(stateIn(a, b), 'suspect');
  net.set(b, 'up');
  for (let i = 0; i < 10; i++) await round(a, clock);
  t.equal(stateIn(a, b), 'suspect', 'no refutation has reached a (no gossip), but b answers every probe');
  t.equal(a.detector.counters.markedDown, 0);
  net.set(b, 'dead');
  await round(a, clock);
  t.equal(stateIn(a, b), 'down', 'it missed a probe long after the suspicion began');
});

t.test('a paused member (calls time out) goes suspect then down, and comes back up by itself when resumed', async (t) => {
  const { net, clock, nodes } = cluster(['a', 'b', 'c']);
  const [a, b, c] = nodes as [SimNode, SimNode, SimNode];
  net.set(b, 'paused');
  for (let i = 0; i < 3; i++) await round(a, clock);
  t.equal(stateIn(a, b), 'suspect');
  await round(a, clock, 2000);
  t.equal(stateIn(a, b), 'down');
  await net.gossip(a, c);
  t.equal(stateIn(c, b), 'down', 'c heard it');
  net.set(b, 'up'); // SIGCONT
  await round(a, clock);
  t.equal(b.membership.self.incarnation, 1001, 'the first ping after the resume told b, and b refuted');
  t.equal(b.membership.self.state, 'up');
  await net.gossip(b, a);
  await net.gossip(b, c);
  t.same([stateIn(a, b), stateIn(c, b)], ['up', 'up'], 'up again everywhere, without an operator');
  for (let i = 0; i < 5; i++) await round(a, clock);
  t.equal(stateIn(a, b), 'up', 'and it stays up');
});

t.test('a prober that was paused does not take a suspect down before probing it again', async (t) => {
  const { net, clock, nodes } = cluster(['a', 'b', 'c']);
  const [a, b] = nodes as [SimNode, SimNode];
  net.set(b, 'dead');
  for (let i = 0; i < 3; i++) await round(a, clock);
  t.equal(stateIn(a, b), 'suspect');
  net.set(b, 'up');
  // a is stopped (SIGSTOP, a long GC) for 10 s: no rounds, no gossip in. b is fine meanwhile.
  clock.advance(10_000);
  await round(a, clock, 0);
  t.not(stateIn(a, b), 'down', 'b answers the first probe after the pause: the suspicion may not turn into down');
  t.equal(a.detector.counters.markedDown, 0);
});

t.test('a probe that outlasts a round is not started again; the round does not wait for it', async (t) => {
  const { net, clock, nodes } = cluster(['a', 'b', 'c']);
  const [a, b, c] = nodes as [SimNode, SimNode, SimNode];
  net.set(b, 'hung');
  clock.advance(1000);
  const first = a.detector.probeRound();
  await new Promise((r) => setImmediate(r)); // c answers its probe; b's hangs
  await round(a, clock);
  await round(a, clock);
  t.equal(pings(net, a, b), 1, 'one ping to b in flight, not three');
  t.equal(pings(net, a, c), 3, 'c was probed every round meanwhile');
  net.set(b, 'paused'); // the hung call times out
  await first;
  t.equal(a.detector.counters.misses, 1, 'the long probe counted one miss');
  await round(a, clock);
  t.equal(pings(net, a, b), 2, 'and b is probed again after it');
});

t.test('left members and this node are not probed; at most probesPerRound members per round', async (t) => {
  const ids = Array.from({ length: 21 }, (_, i) => `n${i}`);
  const { net, clock, nodes } = cluster(ids, { detector: { probesPerRound: 16 } });
  const a = nodes[0]!;
  await round(a, clock);
  t.equal(net.calls.filter((x) => x.path === Routes.ping).length, 16, '16 of 20');
  a.membership.markState('n1', 'left');
  net.calls.length = 0;
  for (let i = 0; i < 10; i++) await round(a, clock);
  t.equal(net.callsTo(nodes[1]!, Routes.ping).length, 0, 'a left member is never probed');
  t.equal(net.calls.filter((x) => x.path === Routes.ping).length, 160);
});

t.test('the ping handlers refuse malformed messages with MALFORMED_REQUEST', async (t) => {
  const { nodes } = cluster(['a']);
  const a = nodes[0]!;
  t.throws(() => a.detector.handlePing({} as never), { code: 'MALFORMED_REQUEST' });
  await t.rejects(a.detector.handlePingReq({ target: 'b' } as never), { code: 'MALFORMED_REQUEST' });
});

t.test('start() runs the rounds on its timer until stop()', async (t) => {
  const net = new MemNetwork();
  const clock = new ManualClock();
  const opts = { probeIntervalMs: 10, suspicionTimeoutMs: 0 };
  const a = net.add('a', { clock, detector: opts });
  const b = net.add('b', { clock, detector: opts });
  net.introduceAll();
  net.set(b, 'dead');
  a.detector.start();
  t.teardown(() => a.detector.stop());
  const deadline = Date.now() + 10_000;
  while (stateIn(a, b) !== 'down' && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  t.equal(stateIn(a, b), 'down', `down after ${a.detector.counters.misses} misses, by the timer alone`);
  a.detector.stop();
});
