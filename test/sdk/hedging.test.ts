// Hedged reads without servers and without real sleeps: the budget, the per-replica latency
// window and the policy's thresholds run on a fake clock; quorumCall's hedge runs on a manual
// scheduler with sends the test answers by hand, so every timing is exact.

import t from 'tap';
import { HedgeBudget, Hedging, callHedgeOptions, hedgeDefaults, resolveHedgeOptions } from '../../sdk/hedging.js';
import type { HedgeOptions } from '../../sdk/hedging.js';
import { ReplicaLatency } from '../../sdk/replica-latency.js';
import type { QuorumHedge, QuorumOutcome } from '../../sdk/quorum-call.js';
import { quorumCall } from '../../sdk/quorum-call.js';
import type { WireResult } from '../../sdk/wire/protocol.js';

/** A fake monotonic clock with timers that run when the test advances it. */
class FakeTime {
  now = 1000;
  private timers: { at: number; fn: () => void; id: number }[] = [];
  private nextId = 0;
  readonly nowMs = () => this.now;
  readonly schedule = (fn: () => void, ms: number): (() => void) => {
    const id = this.nextId++;
    this.timers.push({ at: this.now + ms, fn, id });
    return () => {
      this.timers = this.timers.filter((x) => x.id !== id);
    };
  };
  /** Moves time on by `ms`, running due timers in order (and letting promise callbacks run between them). */
  async advance(ms: number): Promise<void> {
    const end = this.now + ms;
    for (;;) {
      await flush();
      this.timers.sort((a, b) => a.at - b.at);
      const next = this.timers[0];
      if (!next || next.at > end) break;
      this.timers.shift();
      this.now = Math.max(this.now, next.at);
      next.fn();
    }
    this.now = end;
    await flush();
  }
  get pending(): number {
    return this.timers.length;
  }
}

async function flush(): Promise<void> {
  for (let i = 0; i < 5; i++) await Promise.resolve();
}

/** Sends that wait until the test answers them. */
class ManualSends {
  readonly asked: string[] = [];
  private readonly waiting = new Map<string, (r: WireResult) => void>();
  readonly send = (node: string): Promise<WireResult> => {
    this.asked.push(node);
    return new Promise((resolve) => this.waiting.set(node, resolve));
  };
  answer(node: string): void {
    const r = this.waiting.get(node);
    if (!r) throw new Error(`${node} was not asked`);
    this.waiting.delete(node);
    r({ ok: true, obj: null });
  }
}

function opts(o: Partial<HedgeOptions> = {}): HedgeOptions {
  return resolveHedgeOptions(o);
}

t.test('options: documented defaults, validation, per-call changes', async (t) => {
  t.same(resolveHedgeOptions(undefined), hedgeDefaults);
  t.same(hedgeDefaults, { enabled: true, percentile: 99, maxDelayMs: 50, budgetPercent: 5, budgetWindowMs: 10_000, latencyWindowMs: 10_000, minSamples: 20 });
  t.equal(resolveHedgeOptions(false).enabled, false);
  t.throws(() => resolveHedgeOptions({ percentile: 0 }), { code: 'INVALID_ARGUMENT' });
  t.throws(() => resolveHedgeOptions({ budgetPercent: 101 }), { code: 'INVALID_ARGUMENT' });
  t.throws(() => resolveHedgeOptions({ maxDelayMs: -1 }), { code: 'INVALID_ARGUMENT' });
  const c = opts();
  t.equal(callHedgeOptions(c, undefined), c, 'no call options: the client\'s');
  t.equal(callHedgeOptions(c, false).enabled, false);
  t.equal(callHedgeOptions(c, { maxDelayMs: 5 }).maxDelayMs, 5);
  t.equal(callHedgeOptions(c, { maxDelayMs: 5 }).budgetPercent, 5, 'the budget stays the client\'s');
  t.throws(() => callHedgeOptions(c, { percentile: 200 }), { code: 'INVALID_ARGUMENT' });
});

t.test('budget: at most budgetPercent % of the reads in the sliding window', async (t) => {
  const time = new FakeTime();
  const b = new HedgeBudget(time.nowMs, 5, 10_000);
  for (let i = 0; i < 19; i++) b.onRead();
  t.notOk(b.tryTake(), '19 reads: 5% is 0.95 hedges, none allowed');
  b.onRead();
  t.ok(b.tryTake(), '20 reads: one hedge');
  t.notOk(b.tryTake(), 'and only one');
  for (let i = 0; i < 80; i++) b.onRead();
  let taken = 0;
  while (b.tryTake()) taken++;
  t.equal(taken, 4, '100 reads: five hedges in all');
  t.same(b.window, { reads: 100, hedges: 5 });

  // 5 s later another 100 reads: the window holds 200 reads and 5 hedges.
  await time.advance(5000);
  for (let i = 0; i < 100; i++) b.onRead();
  taken = 0;
  while (b.tryTake()) taken++;
  t.equal(taken, 5, 'ten in the window of 200 reads');
  // Once the first batch of reads and hedges leaves the window, only the second remains.
  await time.advance(5000);
  t.same(b.window, { reads: 100, hedges: 5 }, 'the first half left the window');
  t.notOk(b.tryTake(), 'the second half\'s hedges still count');
  await time.advance(60_000);
  t.same(b.window, { reads: 0, hedges: 0 }, 'after a long pause the window is empty');
  t.notOk(b.tryTake(), 'no reads, no budget');
});

t.test('budget 0 never hedges; 100 hedges every read', async (t) => {
  const time = new FakeTime();
  const none = new HedgeBudget(time.nowMs, 0, 1000);
  const all = new HedgeBudget(time.nowMs, 100, 1000);
  for (let i = 0; i < 10; i++) {
    none.onRead();
    all.onRead();
    t.notOk(none.tryTake());
    t.ok(all.tryTake());
  }
  t.notOk(all.tryTake(), 'one hedge per read');
});

t.test('replica latency: percentiles over the window, none with too few samples', async (t) => {
  const time = new FakeTime();
  const l = new ReplicaLatency(time.nowMs, { windowMs: 10_000, minSamples: 20, refreshMs: 0 });
  for (let i = 0; i < 19; i++) l.record('a', 2);
  t.equal(l.percentileMs('a', 99), undefined, 'below minSamples');
  t.equal(l.percentileMs('b', 99), undefined, 'never seen');
  for (let i = 0; i < 80; i++) l.record('a', 2);
  l.record('a', 40);
  t.equal(l.samples('a'), 100);
  t.ok(Math.abs(l.percentileMs('a', 50)! - 2) < 0.05, `p50 ${l.percentileMs('a', 50)}`);
  t.ok(Math.abs(l.percentileMs('a', 99)! - 2) < 0.05, 'p99 of 99 x 2 ms and 1 x 40 ms is 2 ms');
  t.ok(Math.abs(l.percentileMs('a', 100)! - 40) < 0.5, 'the max is 40 ms');
  // 6 s on: the samples are in the previous half-window, still in the window.
  await time.advance(6000);
  t.equal(l.samples('a'), 100, 'still in the window');
  for (let i = 0; i < 30; i++) l.record('a', 100);
  t.ok(l.percentileMs('a', 99)! > 90, 'new slow samples raise the p99');
  // Another 5 s: the first samples left; only the 100 ms ones remain.
  await time.advance(5000);
  t.equal(l.samples('a'), 30, 'the old half-window was subtracted');
  t.ok(Math.abs(l.percentileMs('a', 50)! - 100) < 1, 'the median is now 100 ms');
  await time.advance(20_000);
  t.equal(l.samples('a'), 0, 'a quiet node forgets everything');
});

t.test('replica latency: a percentile is cached for refreshMs', async (t) => {
  const time = new FakeTime();
  const l = new ReplicaLatency(time.nowMs, { windowMs: 10_000, minSamples: 1, refreshMs: 100 });
  for (let i = 0; i < 10; i++) l.record('a', 1);
  t.ok(l.percentileMs('a', 99)! < 1.1);
  for (let i = 0; i < 100; i++) l.record('a', 50);
  t.ok(l.percentileMs('a', 99)! < 1.1, 'within refreshMs: the cached value');
  await time.advance(100);
  t.ok(l.percentileMs('a', 99)! > 45, 'after refreshMs: recomputed');
});

t.test('policy: a request is late after MIN(percentile, maxDelayMs)', async (t) => {
  const time = new FakeTime();
  const h = new Hedging(opts({ minSamples: 10 }), time.nowMs);
  t.equal(h.delayFor('a'), 50, 'unknown replica: the cap');
  for (let i = 0; i < 100; i++) h.record('a', i < 98 ? 3 : 8);
  t.ok(h.delayFor('a') > 7 && h.delayFor('a') < 9, `p99 below the cap: ${h.delayFor('a')} ms`);
  t.ok(h.delayFor('a', { ...h.options, percentile: 50 }) < 3.1, 'a call may choose another percentile');
  for (let i = 0; i < 100; i++) h.record('b', 200);
  t.equal(h.delayFor('b'), 50, 'a slow replica: the cap');
  t.equal(h.delayFor('b', { ...h.options, maxDelayMs: 20 }), 20, 'a call may lower the cap');
});

t.test('policy: no hedge to a replica as slow as the wait so far; none past the budget', async (t) => {
  const time = new FakeTime();
  const h = new Hedging(opts({ minSamples: 10, budgetPercent: 100 }), time.nowMs);
  for (let i = 0; i < 100; i++) {
    h.record('fast', 2);
    h.record('slow', 120);
  }
  h.onRead();
  t.equal(h.decide('slow', 50), 'slow', 'the candidate\'s median (120 ms) is above the 50 ms waited: every replica is slow');
  h.onRead();
  t.equal(h.decide('fast', 50), 'hedge', 'a fast candidate is asked');
  h.onRead();
  t.equal(h.decide('unknown', 50), 'hedge', 'a candidate without samples is given the benefit of the doubt');
  t.same(h.counters, { sent: 2, won: 0, skippedBudget: 0, skippedSlow: 1 });
  t.equal(h.budget.window.hedges, 2, 'a skipped hedge takes nothing from the budget');

  const tight = new Hedging(opts({ budgetPercent: 5 }), time.nowMs);
  for (let i = 0; i < 10; i++) tight.onRead();
  t.equal(tight.decide('x', 50), 'budget', '10 reads leave no budget at 5%');
  t.equal(tight.counters.skippedBudget, 1);
});

/** A quorum call of `nodes` needing `required`, hedged through `policy` on fake time. */
function hedgedCall(time: FakeTime, sends: ManualSends, nodes: string[], required: number, policy: Hedging): Promise<QuorumOutcome> {
  policy.onRead();
  const hedge: QuorumHedge = {
    delayFor: (n) => policy.delayFor(n),
    allow: (c, waited) => policy.decide(c, waited) === 'hedge',
    nowMs: time.nowMs,
    schedule: time.schedule,
  };
  return quorumCall('get', nodes, required, 60_000, sends.send, required, undefined, undefined, hedge);
}

/** A policy that has seen `fast` replicas at 2 ms and `slow` ones at 300 ms. */
function trained(time: FakeTime, fast: string[], slow: string[], o: Partial<HedgeOptions> = {}): Hedging {
  const h = new Hedging(opts({ minSamples: 10, budgetPercent: 100, ...o }), time.nowMs);
  for (let i = 0; i < 50; i++) {
    for (const n of fast) h.record(n, 2 + (i % 3) * 0.1);
    for (const n of slow) h.record(n, 300);
  }
  return h;
}

t.test('quorumCall: a late request brings in the next replica; its answer counts toward R', async (t) => {
  const time = new FakeTime();
  const sends = new ManualSends();
  const policy = trained(time, ['a', 'c'], ['b']);
  const call = hedgedCall(time, sends, ['a', 'b', 'c'], 2, policy);
  await flush();
  t.same(sends.asked, ['a', 'b'], 'R = 2 asked first');
  sends.answer('a');
  await time.advance(49);
  t.same(sends.asked, ['a', 'b'], 'b is not late before 50 ms (its p99 is 300 ms, the cap 50 ms)');
  await time.advance(1);
  t.same(sends.asked, ['a', 'b', 'c'], 'at 50 ms the hedge goes to c');
  sends.answer('c');
  const out = await call;
  t.same(out.answers.map((a) => a.node).sort(), ['a', 'c'], 'the read completes with a and the hedge');
  t.same(out.hedged, ['c']);
  t.ok(out.hedgeWon, 'the hedge won');
  t.equal(policy.counters.sent, 1);
  t.equal(time.pending, 0, 'no timer left behind');
  sends.answer('b');
  const settled = await out.settled;
  t.equal(settled.answers.length, 3, 'the late answer is still collected for read repair');
});

t.test('quorumCall: a replica answering within its p99 is not hedged', async (t) => {
  const time = new FakeTime();
  const sends = new ManualSends();
  const policy = trained(time, ['a', 'b', 'c'], []);
  const delay = policy.delayFor('b');
  t.ok(delay > 2 && delay < 3, `b's p99 is ${delay} ms`);
  const call = hedgedCall(time, sends, ['a', 'b', 'c'], 2, policy);
  await flush();
  sends.answer('a');
  await time.advance(2);
  sends.answer('b');
  const out = await call;
  t.same(sends.asked, ['a', 'b'], 'no hedge');
  t.same(out.hedged, []);
  t.notOk(out.hedgeWon);
  t.equal(time.pending, 0);
});

t.test('quorumCall: a hedge that loses the race is not counted as won', async (t) => {
  const time = new FakeTime();
  const sends = new ManualSends();
  const policy = trained(time, ['a', 'c'], ['b']);
  const call = hedgedCall(time, sends, ['a', 'b', 'c'], 2, policy);
  await flush();
  sends.answer('a');
  await time.advance(50);
  t.same(sends.asked, ['a', 'b', 'c']);
  sends.answer('b');
  const out = await call;
  t.same(out.hedged, ['c']);
  t.notOk(out.hedgeWon, 'b answered first');
  sends.answer('c');
});

t.test('quorumCall: the tail of a fast replica is hedged at its own p99, below the cap', async (t) => {
  const time = new FakeTime();
  const sends = new ManualSends();
  const policy = trained(time, ['a', 'b', 'c'], []);
  const call = hedgedCall(time, sends, ['a', 'b', 'c'], 2, policy);
  await flush();
  sends.answer('a');
  await time.advance(3);
  t.same(sends.asked, ['a', 'b', 'c'], 'b late after its p99 (~2.2 ms), long before 50 ms');
  sends.answer('c');
  t.ok((await call).hedgeWon);
  sends.answer('b');
});

t.test('quorumCall: no amplification when every replica is slow', async (t) => {
  const time = new FakeTime();
  const sends = new ManualSends();
  const policy = trained(time, [], ['a', 'b', 'c']);
  const call = hedgedCall(time, sends, ['a', 'b', 'c'], 2, policy);
  await flush();
  await time.advance(100);
  t.same(sends.asked, ['a', 'b'], 'no hedge: c is as slow as the wait');
  t.equal(policy.counters.skippedSlow, 1, 'decided once, as slow');
  await time.advance(1000);
  t.same(sends.asked, ['a', 'b'], 'and never later');
  t.equal(policy.counters.skippedSlow, 1);
  sends.answer('a');
  sends.answer('b');
  const out = await call;
  t.same(out.hedged, []);
});

t.test('quorumCall: no hedge past the budget', async (t) => {
  const time = new FakeTime();
  const sends = new ManualSends();
  const policy = trained(time, ['a', 'c'], ['b'], { budgetPercent: 5 });
  const call = hedgedCall(time, sends, ['a', 'b', 'c'], 2, policy);
  await flush();
  sends.answer('a');
  await time.advance(60);
  t.same(sends.asked, ['a', 'b'], 'one read in the window: 5% of it is no hedge');
  t.equal(policy.counters.skippedBudget, 1);
  sends.answer('b');
  await call;
});

t.test('quorumCall: at R = 1 the first answer wins, hedge or not', async (t) => {
  const time = new FakeTime();
  const sends = new ManualSends();
  const policy = trained(time, ['b'], ['a']);
  const call = hedgedCall(time, sends, ['a', 'b', 'c'], 1, policy);
  await flush();
  await time.advance(50);
  t.same(sends.asked, ['a', 'b']);
  sends.answer('b');
  const out = await call;
  t.same(out.answers.map((a) => a.node), ['b']);
  t.ok(out.hedgeWon);
  sends.answer('a');
});

t.test('quorumCall: nothing to hedge to when every replica was asked', async (t) => {
  const time = new FakeTime();
  const sends = new ManualSends();
  const policy = trained(time, ['a', 'c'], ['b']);
  policy.onRead();
  const call = quorumCall('get', ['a', 'b', 'c'], 2, 60_000, sends.send, 3, undefined, undefined, {
    delayFor: (n) => policy.delayFor(n),
    allow: (c, w) => policy.decide(c, w) === 'hedge',
    nowMs: time.nowMs,
    schedule: time.schedule,
  });
  await flush();
  t.equal(time.pending, 0, 'no hedge timer when every replica is asked');
  sends.answer('a');
  sends.answer('c');
  await call;
  sends.answer('b');
});
