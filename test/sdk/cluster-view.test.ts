// Direct tests of the SDK's cluster view (no servers): an in-memory Transport answers
// /internal/v1/members per address as a storage server does — at once, or as a long-poll
// that answers when the server's epoch passes `since` or after `waitMs` — so the tests see
// the first view merged from the seeds, refresh and watch moving off failed servers, the
// precedence of news per member, the rings, the server-clock readings, and stop().

import t from 'tap';
import { ManualClock } from '../../sdk/clock.js';
import type { ServerClockSink } from '../../sdk/cluster-clock.js';
import { ClusterView } from '../../sdk/cluster-view.js';
import type { ClusterViewOptions } from '../../sdk/cluster-view.js';
import { ErrorCodes, NodeUnavailableError, RingkvError } from '../../sdk/errors.js';
import type { ClusterSettings, MemberInfo, MemberState, MembersView } from '../../sdk/membership.js';
import type { CallOptions, Transport } from '../../sdk/transport.js';
import { Routes } from '../../sdk/wire/protocol.js';

const SETTINGS: ClusterSettings = { vnodesPerNode: 16, replicationFactor: 3 };

/** A member record; its address is `<id>:1` unless given. */
function m(id: string, state: MemberState = 'up', incarnation = 1, extra: Partial<MemberInfo> = {}): MemberInfo {
  return { id, address: `${id}:1`, weight: 1, state, incarnation, ...extra };
}

interface FakeServer {
  members: MemberInfo[];
  settings: ClusterSettings;
  epoch: number;
  /** The server clock reading put in answers (none when undefined: protocol 1). */
  now: number | undefined;
  /** When set, every request fails with it. */
  failWith: Error | undefined;
}

interface Poll {
  address: string;
  since: number;
  resolve: () => void;
  reject: (e: Error) => void;
}

/** The members endpoint of several servers, in memory. */
class MembersTransport implements Transport {
  readonly servers = new Map<string, FakeServer>();
  readonly calls: { address: string; since: number | undefined; waitMs: number | undefined; timeoutMs: number }[] = [];
  private polls = new Set<Poll>();
  /** The local clock the sink reads; each call takes `rttMs` of it. */
  readonly clock = new ManualClock(1_000_000);
  rttMs = 7;
  /** Fail the next request made, whatever its address (then clear). */
  failNext: Error | undefined;

  serve(address: string, members: MemberInfo[], o: Partial<FakeServer> = {}): FakeServer {
    const s: FakeServer = { members, settings: SETTINGS, epoch: 1, now: 5_000_000, failWith: undefined, ...o };
    this.servers.set(address, s);
    return s;
  }

  /** The server's view changes: its epoch rises and its long-polls answer. */
  update(address: string, members: MemberInfo[]): void {
    const s = this.servers.get(address)!;
    s.members = members;
    s.epoch++;
    for (const p of [...this.polls]) if (p.address === address && s.epoch > p.since) p.resolve();
  }

  /** The server dies: its pending long-polls and every later request fail. */
  kill(address: string): void {
    const err = new NodeUnavailableError(address, 'connection reset');
    this.servers.get(address)!.failWith = err;
    for (const p of [...this.polls]) if (p.address === address) p.reject(err);
  }

  get pendingPolls(): { address: string; since: number }[] {
    return [...this.polls].map((p) => ({ address: p.address, since: p.since }));
  }

  /** The long-polls made, in order. */
  get pollCalls() {
    return this.calls.filter((c) => c.since !== undefined);
  }

  private answer(address: string): MembersView {
    const s = this.servers.get(address)!;
    const v: MembersView = { v: 2, self: address, settings: { ...s.settings }, members: s.members.map((x) => ({ ...x })), epoch: s.epoch };
    if (s.now !== undefined) v.now = s.now;
    return v;
  }

  async call<T>(address: string, path: string, _body: unknown, opts: CallOptions): Promise<T> {
    const url = new URL(path, 'http://x');
    if (url.pathname !== Routes.members) throw new Error(`unexpected route ${path}`);
    const since = url.searchParams.has('since') ? Number(url.searchParams.get('since')) : undefined;
    const waitMs = url.searchParams.has('waitMs') ? Number(url.searchParams.get('waitMs')) : undefined;
    this.calls.push({ address, since, waitMs, timeoutMs: opts.timeoutMs });
    await new Promise((r) => setImmediate(r));
    this.clock.advance(this.rttMs);
    if (this.failNext) {
      const e = this.failNext;
      this.failNext = undefined;
      throw e;
    }
    const s = this.servers.get(address);
    if (!s) throw new NodeUnavailableError(address, 'connection refused');
    if (s.failWith) throw s.failWith;
    if (since !== undefined && waitMs && s.epoch <= since) {
      // Long-poll: answer when the epoch passes `since`, or after waitMs with the view as it is.
      await new Promise<void>((resolve, reject) => {
        const p: Poll = {
          address,
          since,
          resolve: () => {
            clearTimeout(timer);
            this.polls.delete(p);
            resolve();
          },
          reject: (e) => {
            clearTimeout(timer);
            this.polls.delete(p);
            reject(e);
          },
        };
        const timer = setTimeout(p.resolve, waitMs);
        this.polls.add(p);
      });
    }
    return this.answer(address) as T;
  }

  async close(): Promise<void> {}
}

/** Records the clock readings handed to the server-clock sink. */
class RecordingSink implements ServerClockSink {
  readonly readings: { server: string; serverNowMs: unknown; sentAtMs: number; receivedAtMs: number }[] = [];
  constructor(private readonly clock: ManualClock) {}
  localNowMs(): number {
    return this.clock.nowMs();
  }
  onServerClock(server: string, serverNowMs: unknown, sentAtMs: number, receivedAtMs: number): void {
    this.readings.push({ server, serverNowMs, sentAtMs, receivedAtMs });
  }
}

function newView(tr: Transport, seeds: string[], o: Partial<ClusterViewOptions> = {}) {
  const changes: number[] = [];
  const errors: unknown[] = [];
  let n = 0;
  const view = new ClusterView({
    seeds,
    transport: tr,
    requestTimeoutMs: 500,
    refreshIntervalMs: 60_000,
    watchWaitMs: 0,
    onChange: () => changes.push(++n),
    onError: (e) => errors.push(e),
    ...o,
  });
  return { view, changes, errors };
}

const ids = (ms: readonly { id: string }[]) => ms.map((x) => x.id).sort();

async function until(what: string, fn: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!fn()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

t.test('start() asks every seed and merges their views; it rejects only when none answers', async (t) => {
  const tr = new MembersTransport();
  // A cluster still forming: each seed knows part of it.
  tr.serve('s1:1', [m('n1'), m('n2', 'up', 1)]);
  tr.serve('s2:1', [m('n2', 'suspect', 1), m('n3')]);
  tr.serve('s3:1', [m('n4', 'joining')]);
  // s4 does not answer.
  const { view, changes } = newView(tr, ['s1:1', 's2:1', 's3:1', 's4:1']);
  await view.start();
  t.same(tr.calls.map((c) => c.address).sort(), ['s1:1', 's2:1', 's3:1', 's4:1'], 'each seed asked once');
  t.ok(tr.calls.every((c) => c.since === undefined && c.timeoutMs === 500), 'plain requests with requestTimeoutMs');
  t.same(ids(view.members()), ['n1', 'n2', 'n3', 'n4'], 'the union of what the seeds know');
  t.equal(view.member('n2')?.state, 'suspect', 'the newer news about n2 (suspect beats up at the same incarnation)');
  t.same(ids(view.ring.members), ['n1', 'n2', 'n3'], 'the joining member is not in the ring yet');
  t.same(view.settings, SETTINGS);
  t.ok(changes.length >= 1);
  view.stop();

  const dead = new MembersTransport();
  const v2 = newView(dead, ['x:1', 'y:1']).view;
  const err = await v2.start().catch((e: unknown) => e);
  t.equal((err as RingkvError).code, ErrorCodes.NODE_UNAVAILABLE, 'no seed answers: start rejects');
  t.equal(dead.calls.length, 4, 'each seed asked at start, then again by a refresh');
  t.throws(() => v2.ring, { code: ErrorCodes.UNAVAILABLE }, 'no ring');
  t.throws(() => v2.settings, { code: ErrorCodes.UNAVAILABLE }, 'no settings');
  v2.stop();
});

t.test('the first view does not depend on which seed answers first', async (t) => {
  const views = [[m('n1', 'up', 1), m('n2', 'up', 3)], [m('n1', 'down', 1), m('n2', 'down', 2)], [m('n1', 'suspect', 1), m('n2', 'left', 2)]];
  for (const order of [
    [0, 1, 2],
    [2, 1, 0],
    [1, 2, 0],
  ]) {
    const tr = new MembersTransport();
    order.forEach((i, k) => tr.serve(`s${k}:1`, views[i]!));
    const { view } = newView(tr, ['s0:1', 's1:1', 's2:1']);
    await view.start();
    t.same(
      view.members().map((x) => `${x.id}:${x.state}:${x.incarnation}`).sort(),
      ['n1:down:1', 'n2:up:3'],
      `order ${order.join(',')}: down beats suspect and up at incarnation 1; incarnation 3 beats left at 2`,
    );
    view.stop();
  }
});

t.test('apply keeps the newer news per member: ring version, then incarnation, then the more severe state', async (t) => {
  const tr = new MembersTransport();
  const { view, changes } = newView(tr, ['s:1']);
  const apply = (members: MemberInfo[], settings = SETTINGS) => view.apply({ v: 2, self: 's:1', settings, members, epoch: 1 });
  apply([m('a', 'up', 5), m('b', 'up', 1), m('c', 'up', 1)]);
  const base = changes.length;
  apply([m('a', 'down', 4)]);
  t.equal(view.member('a')?.state, 'up', 'older incarnation: ignored, however severe');
  apply([m('a', 'suspect', 5)]);
  t.equal(view.member('a')?.state, 'suspect', 'same incarnation, more severe: taken');
  apply([m('a', 'up', 5)]);
  t.equal(view.member('a')?.state, 'suspect', 'same incarnation, less severe: ignored');
  apply([m('a', 'up', 6)]);
  t.same(view.member('a'), m('a', 'up', 6), 'a higher incarnation (a refutation) wins over suspect');
  t.equal(changes.length - base, 2, 'onChange only for the two pieces of news taken');
  const order: MemberState[] = ['up', 'recovering', 'joining', 'leaving', 'suspect', 'down', 'left'];
  for (let i = 1; i < order.length; i++) {
    apply([m('b', order[i]!, 1)]);
    apply([m('b', order[i - 1]!, 1)]);
    t.equal(view.member('b')?.state, order[i], `${order[i]} beats ${order[i - 1]} at the same incarnation`);
  }

  // The ring version comes before the incarnation (whoever changes a member's place in the ring raises it).
  apply([m('r', 'up', 9, { ringVersion: 1 })]);
  apply([m('r', 'leaving', 2, { ringVersion: 2 })]);
  t.match(view.member('r'), { state: 'leaving', incarnation: 2, ringVersion: 2 }, 'a higher ring version wins over a higher incarnation');
  apply([m('r', 'down', 10, { ringVersion: 1, address: 'r:2' })]);
  t.match(view.member('r'), { state: 'leaving', address: 'r:1', ringVersion: 2 }, 'a lower ring version is ignored, new address and all');
  apply([m('r', 'up', 3, { ringVersion: 2 })]);
  t.equal(view.member('r')?.incarnation, 3, 'at the same ring version, the higher incarnation wins');

  // A server that has not heard of a restart still reports the old address at an older incarnation.
  apply([m('c', 'up', 2, { address: 'c:2' })]);
  t.equal(view.member('c')?.address, 'c:2', 'a new address with a higher incarnation is taken');
  t.equal(view.nodeAt('c:2'), 'c');
  t.equal(view.nodeAt('c:1'), undefined, 'the old address maps to nobody');
  const before = changes.length;
  apply([m('c', 'up', 1, { address: 'c:1' })]);
  t.equal(view.member('c')?.address, 'c:2', 'the old address at an older incarnation is ignored');
  t.equal(view.member('c')?.incarnation, 2);
  t.equal(view.nodeAt('c:2'), 'c');
  apply([m('c', 'up', 1, { weight: 4 })]);
  t.equal(view.member('c')?.weight, 1, 'a weight reported at an older incarnation is ignored');
  t.equal(changes.length, before, 'no change');
  apply([m('c', 'up', 1, { address: 'c:2', tls: 'required' })]);
  t.equal(view.member('c')?.tls, undefined, 'a TLS mode reported at an older incarnation is ignored');
  t.equal(view.tlsModeAt('c:2'), 'off');
  apply([m('c', 'up', 2, { address: 'c:2', tls: 'required' })]);
  t.equal(view.tlsModeAt('c:2'), 'required', 'a new TLS mode at the same incarnation is taken');
  apply([m('c', 'up', 2, { address: 'c:2', weight: 2, tls: 'required' })]);
  t.equal(view.member('c')?.weight, 2, 'a new weight at the same incarnation is taken');
  t.same(
    view.ring.members.find((x) => x.id === 'c'),
    { id: 'c', weight: 2 },
    'and the ring has it',
  );
});

t.test('rings are rebuilt only when the members in them or their weights change', async (t) => {
  const tr = new MembersTransport();
  const { view, changes } = newView(tr, ['s:1']);
  const apply = (members: MemberInfo[], settings = SETTINGS) => view.apply({ v: 2, self: 's:1', settings, members, epoch: 1 });
  t.throws(() => view.ring, { code: ErrorCodes.UNAVAILABLE }, 'no ring before the first view');
  apply([m('a'), m('b'), m('c')]);
  const r1 = view.ring;
  t.equal(view.pendingRing, r1, 'nobody joining or leaving: the pending ring is the ring');
  const n = changes.length;
  apply([m('a'), m('b'), m('c')]);
  t.equal(changes.length, n, 'the same view again: no change');
  t.equal(view.ring, r1);
  apply([m('c', 'suspect')]);
  apply([m('c', 'down')]);
  t.equal(changes.length, n + 2, 'state changes are changes');
  t.equal(view.ring, r1, '... but a suspect or down member keeps its place: same ring object');
  t.equal(view.pendingRing, r1);
  apply([m('c', 'up', 2, { weight: 2 })]);
  const r2 = view.ring;
  t.not(r2, r1, 'a weight change builds a new ring');
  apply([m('c', 'left', 3)]);
  t.same(ids(view.ring.members), ['a', 'b'], 'a member that left is out of the ring');
  apply([m('d')]);
  t.same(ids(view.ring.members), ['a', 'b', 'd']);
  apply([m('d')], { vnodesPerNode: 32, replicationFactor: 3 });
  t.equal(view.ring.vnodesPerNode, 32, 'a settings change rebuilds the ring');
  t.equal(view.settings.vnodesPerNode, 32);
  apply([m('d')], { vnodesPerNode: 32, replicationFactor: 2 });
  t.equal(view.settings.replicationFactor, 2, 'and replicationFactor is followed');
});

t.test('pendingRing: the ring to come while members join or leave; no ring while every member is joining', async (t) => {
  const tr = new MembersTransport();
  const { view } = newView(tr, ['s:1']);
  const apply = (members: MemberInfo[]) => view.apply({ v: 2, self: 's:1', settings: SETTINGS, members, epoch: 1 });
  apply([m('a', 'joining'), m('b', 'joining')]);
  t.throws(() => view.ring, { code: ErrorCodes.UNAVAILABLE }, 'every member joining: no ring');
  t.same(ids(view.pendingRing.members), ['a', 'b'], 'the pending ring is the joining members');
  t.same(view.settings, SETTINGS, 'settings are known');
  apply([m('a', 'up', 2)]);
  t.same(ids(view.ring.members), ['a'], 'one member up: a ring of it');
  t.same(ids(view.pendingRing.members), ['a', 'b'], 'b is still to come');
  t.not(view.pendingRing, view.ring);
  apply([m('b', 'up', 2), m('c', 'up')]);
  t.equal(view.pendingRing, view.ring, 'joins done: one ring');
  apply([m('c', 'leaving', 2)]);
  t.same(ids(view.ring.members), ['a', 'b', 'c'], 'a leaving member still holds its ranges');
  t.same(ids(view.pendingRing.members), ['a', 'b'], 'the ring to come is without it');
  apply([m('c', 'left', 3)]);
  t.same(ids(view.ring.members), ['a', 'b']);
  t.equal(view.pendingRing, view.ring, 'leave done: one ring');
  apply([m('d', 'joining'), m('b', 'leaving', 3)]);
  t.same(ids(view.ring.members), ['a', 'b'], 'a join and a leave at once');
  t.same(ids(view.pendingRing.members), ['a', 'd']);
});

t.test('nodeAt, addressOf, isReachable follow the members', async (t) => {
  const tr = new MembersTransport();
  const { view } = newView(tr, ['s:1']);
  const apply = (members: MemberInfo[]) => view.apply({ v: 2, self: 's:1', settings: SETTINGS, members, epoch: 1 });
  apply([m('a'), m('b', 'down'), m('c', 'left'), m('d', 'suspect'), m('e', 'joining')]);
  t.equal(view.nodeAt('a:1'), 'a');
  t.equal(view.nodeAt('b:1'), 'b', 'known down members have an address too');
  t.equal(view.nodeAt('zz:1'), undefined);
  t.equal(view.addressOf('a'), 'a:1');
  t.throws(() => view.addressOf('zz'), { code: ErrorCodes.NODE_UNAVAILABLE });
  t.same(
    ['a', 'b', 'c', 'd', 'e', 'zz'].map((x) => view.isReachable(x)),
    [true, false, false, true, true, false],
  );
  apply([m('f', 'up', 1, { address: 'a:1' })]);
  t.ok(['a', 'f'].includes(view.nodeAt('a:1')!), 'the address map is rebuilt after a change');
  apply([m('a', 'up', 2, { address: 'a:9' })]);
  t.equal(view.nodeAt('a:1'), 'f');
  t.equal(view.nodeAt('a:9'), 'a');
});

t.test('refresh asks one live member, moving to another when one fails; concurrent refreshes share one round', async (t) => {
  const tr = new MembersTransport();
  const members = [m('n1'), m('n2'), m('n3'), m('n4', 'down')];
  for (const x of members) tr.serve(x.address, members);
  const { view } = newView(tr, ['n1:1']);
  await view.start();
  let extra = 0;
  for (let round = 0; round < 20; round++) {
    // Every server learns of a new member; the first one asked fails.
    extra++;
    const next = [...members, ...Array.from({ length: extra }, (_, i) => m(`x${i}`))];
    tr.serve(`x${extra - 1}:1`, next);
    for (const x of next) if (x.id !== `x${extra - 1}`) tr.update(x.address, next);
    tr.failNext = new NodeUnavailableError('?', 'reset');
    const from = tr.calls.length;
    await view.refresh();
    const asked = tr.calls.slice(from).map((c) => c.address);
    t.equal(asked.length, 2, `round ${round}: one failure, then one answer`);
    t.not(asked[1], asked[0], 'the second request went to another server');
    t.notOk(asked.includes('n4:1'), 'never to a member known down');
    t.ok(view.member(`x${extra - 1}`), 'the answer was applied');
    if (asked.length !== 2) break;
  }
  // Two refreshes at once: one round of requests.
  const from = tr.calls.length;
  const [p1, p2] = [view.refresh(), view.refresh()];
  t.equal(p1, p2, 'the same promise');
  await p1;
  t.equal(tr.calls.length - from, 1);

  // Every member and seed down: the refresh rejects with the last failure; members known down are not asked.
  for (const address of tr.servers.keys()) tr.kill(address);
  const before = tr.calls.length;
  const err = await view.refresh().catch((e: unknown) => e);
  t.equal((err as RingkvError).code, ErrorCodes.NODE_UNAVAILABLE);
  const asked = tr.calls.slice(before).map((c) => c.address);
  t.same([...new Set(asked)].sort(), ['n1:1', 'n2:1', 'n3:1', ...Array.from({ length: extra }, (_, i) => `x${i}:1`)].sort(), 'every reachable member, once');
  t.equal(asked.length, new Set(asked).size, 'the seed that is also a member asked once');
  view.stop();
});

t.test('the periodic refresh runs every refreshIntervalMs, and stop() ends it', async (t) => {
  const tr = new MembersTransport();
  tr.serve('s:1', [m('n1', 'up', 1, { address: 's:1' })]);
  const { view } = newView(tr, ['s:1'], { refreshIntervalMs: 20 });
  await view.start();
  await until('three periodic refreshes', () => tr.calls.length >= 4);
  view.stop();
  await new Promise((r) => setTimeout(r, 10));
  const n = tr.calls.length;
  await new Promise((r) => setTimeout(r, 150));
  t.equal(tr.calls.length, n, 'no request after stop()');
});

t.test('the watch long-polls one server with the epoch it last saw, and applies each newer view', async (t) => {
  const tr = new MembersTransport();
  const members = [m('n1'), m('n2')];
  for (const x of members) tr.serve(x.address, members, { epoch: 7 });
  const { view, changes } = newView(tr, ['n1:1'], { watchWaitMs: 300 });
  await view.start();
  await until('a long-poll waiting', () => tr.pendingPolls.length === 1);
  const polled = tr.pendingPolls[0]!.address;
  t.same(
    tr.pollCalls.map((c) => [c.address, c.since]),
    [
      [polled, 0],
      [polled, 7],
    ],
    'since=0 first (answered at once), then the epoch of that answer',
  );
  t.ok(tr.pollCalls.every((c) => c.waitMs === 300 && c.timeoutMs === 3300), 'waitMs, and a timeout 3 s above it');
  const n = changes.length;
  tr.update(polled, [...members, m('n3')]);
  await until('n3 seen', () => view.member('n3') !== undefined);
  t.equal(changes.length, n + 1, 'applied as it came, no refresh needed');
  await until('the next long-poll', () => tr.pendingPolls.length === 1);
  t.same(tr.pollCalls.at(-1), { address: polled, since: 8, waitMs: 300, timeoutMs: 3300 }, 'then waits past epoch 8');
  // No news within waitMs: the server answers the same view, and the watch asks again with the same epoch.
  await until('a long-poll that ran out', () => tr.pollCalls.length >= 4);
  t.equal(tr.pollCalls[3]!.since, 8);
  t.equal(tr.pollCalls[3]!.address, polled, 'the same server while it answers');
  view.stop();
});

t.test('when the watched server fails, the watch moves to another member and starts again from epoch 0', async (t) => {
  // The next server is picked at random: several runs, so that going back to the dead one would show.
  for (let run = 0; run < 5; run++) {
    const tr = new MembersTransport();
    const members = [m('n1'), m('n2'), m('n3')];
    for (const x of members) tr.serve(x.address, members, { epoch: 3 });
    const { view, errors } = newView(tr, ['n1:1'], { watchWaitMs: 5000 });
    await view.start();
    const dead = new Set<string>();
    for (let i = 0; i < 2; i++) {
      await until('a long-poll waiting', () => tr.pendingPolls.length === 1);
      const polled = tr.pendingPolls[0]!.address;
      const where = `run ${run} round ${i}`;
      if (dead.has(polled)) t.fail(`${where}: polling a dead server`);
      if (view.member(polled.split(':')[0]!)?.state !== 'up') t.fail(`${where}: the view should say the server is up`);
      const from = tr.pollCalls.length;
      // It dies; the client's view still says it is up. The live servers will report it down
      // (as their failure detectors would), but the watch must not wait for that news.
      tr.kill(polled);
      dead.add(polled);
      const now = members.map((x) => (dead.has(x.address) ? { ...x, state: 'down' as const } : x));
      for (const x of members) if (!dead.has(x.address)) tr.servers.get(x.address)!.members = now;
      await until('a long-poll elsewhere', () => tr.pendingPolls.length === 1 && tr.pendingPolls[0]!.address !== polled, 8000);
      const after = tr.pollCalls.slice(from);
      t.same(
        after.map((c) => c.address),
        after.map(() => tr.pendingPolls[0]!.address),
        `${where}: the next requests went to a live member, not back to ${polled}`,
      );
      t.equal(after[0]!.since, 0, `${where}: from epoch 0 (epochs are per server)`);
      t.ok(errors.length > i, `${where}: the failure was reported to onError`);
    }
    view.stop();
  }
});

t.test('membership answers report their clock reading to the serverClock sink; long-polls do not', async (t) => {
  const tr = new MembersTransport();
  const sink = new RecordingSink(tr.clock);
  const members = [m('n1'), m('n2')];
  tr.serve('n1:1', members, { now: 9_000_000 });
  tr.serve('n2:1', members, { now: undefined }); // an older server: no clock in its answers
  const { view } = newView(tr, ['n1:1', 'n2:1'], { serverClock: sink, watchWaitMs: 200 });
  await view.start();
  t.same(sink.readings.map((r) => [r.server, r.serverNowMs]), [['n1:1', 9_000_000]], 'the seed with a clock, at connect');
  const r0 = sink.readings[0]!;
  t.ok(r0.receivedAtMs - r0.sentAtMs >= tr.rttMs, 'sent and received times from the local clock, around the request');
  tr.servers.get('n2:1')!.now = 9_000_100;
  tr.servers.get('n1:1')!.now = 9_000_200;
  await view.refresh();
  t.equal(sink.readings.length, 2, 'a refresh reports its answer');
  t.ok(['n1:1', 'n2:1'].includes(sink.readings[1]!.server));
  // Let the watch run a few long-polls: none of them is reported.
  await until('two long-polls answered', () => tr.pollCalls.length >= 3, 5000);
  t.equal(sink.readings.length, 2, 'long-poll answers are not clock samples');
  view.stop();
});

t.test('stop() ends the watch loop: a long-poll answered or failed after it leads to nothing', async (t) => {
  for (const ending of ['answered', 'failed'] as const) {
    const tr = new MembersTransport();
    const members = [m('n1'), m('n2')];
    for (const x of members) tr.serve(x.address, members);
    const { view, changes } = newView(tr, ['n1:1'], { watchWaitMs: 5000, refreshIntervalMs: 20 });
    await view.start();
    await until('a long-poll waiting', () => tr.pendingPolls.length === 1);
    const polled = tr.pendingPolls[0]!.address;
    view.stop();
    const n = changes.length;
    const calls = tr.calls.length;
    if (ending === 'answered') tr.update(polled, [...members, m('n3')]);
    else tr.kill(polled);
    // Longer than the watch's first back-off after a failure (200 ms) and many refresh periods.
    await new Promise((r) => setTimeout(r, 400));
    t.equal(tr.calls.length, calls, `${ending}: no request after stop()`);
    t.equal(changes.length, n, `${ending}: nothing applied after stop()`);
    t.equal(view.member('n3'), undefined);
    t.same(tr.pendingPolls, []);
    view.apply({ v: 2, self: 'x', settings: SETTINGS, members: [m('n9')], epoch: 1 });
    t.equal(view.member('n9'), undefined, 'apply() after stop() is ignored');
  }
});
