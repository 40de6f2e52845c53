// The load generator's pacing and measurement against fake stores: the open loop issues
// at the target rate and measures from the intended start (so a stall shows up in every
// operation it delayed — no coordinated omission), the closed loop does not; the in-flight
// cap holds; failures are counted by code; loading uses bulk inserts when a store has them.

import t from 'tap';
import { makeChooser } from '../../benchmarks/harness/key-chooser.js';
import { summarize } from '../../benchmarks/harness/latency-recorder.js';
import type { KvStore, RunOptions } from '../../benchmarks/harness/load-runner.js';
import { loadRecords, Pacer, runLoad } from '../../benchmarks/harness/load-runner.js';
import { WORKLOADS } from '../../benchmarks/harness/workloads.js';

const keys = Array.from({ length: 100 }, (_, i) => Buffer.from(`k${i}`));
const values = [Buffer.from('v')];

/** A store that answers after `delay()` ms and counts what it was asked. */
class FakeStore implements KvStore {
  readonly name = 'fake';
  reads = 0;
  updates = 0;
  inFlight = 0;
  maxInFlight = 0;
  constructor(private readonly delay: () => number = () => 0) {}
  private async op(): Promise<void> {
    this.inFlight++;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    const d = this.delay();
    await new Promise((r) => (d > 0 ? setTimeout(r, d) : setImmediate(r)));
    this.inFlight--;
  }
  async read(): Promise<Buffer | undefined> {
    this.reads++;
    await this.op();
    return undefined;
  }
  async update(): Promise<void> {
    this.updates++;
    await this.op();
  }
  async close(): Promise<void> {}
}

function opts(o: Partial<RunOptions>): RunOptions {
  return {
    mode: 'open',
    ratePerSec: 1000,
    concurrency: 64,
    durationMs: 500,
    workload: WORKLOADS.mix,
    keys,
    chooser: makeChooser('uniform', keys.length, 1),
    values,
    ...o,
  };
}

t.test('Pacer: the schedule of the open loop', async (t) => {
  const p = new Pacer(2000, 100);
  t.equal(p.intendedMs(0), 100);
  t.equal(p.intendedMs(1), 100.5);
  t.equal(p.intendedMs(2000), 1100);
  t.equal(p.dueBy(99.9), 0, 'nothing before the start');
  t.equal(p.dueBy(100), 1, 'operation 0 is due at the start');
  t.equal(p.dueBy(100.49), 1);
  t.equal(p.dueBy(100.5), 2);
  t.equal(p.dueBy(1100), 2001);
  t.equal(p.countWithin(1000), 2000, 'a second at 2000/s holds 2000 starts');
  t.equal(new Pacer(3, 0).countWithin(1000), 3);
  t.equal(new Pacer(3, 0).countWithin(1100), 4, 'a start at 1000 ms is within 1100 ms');
  t.throws(() => new Pacer(0, 0), RangeError);
});

t.test('the open loop issues at the target rate, in the workload proportions', async (t) => {
  const store = new FakeStore(() => 1);
  const r = await runLoad(store, opts({ ratePerSec: 2000, durationMs: 600 }));
  t.equal(r.issued, 1200, 'every scheduled operation was issued');
  t.equal(r.unissued, 0);
  t.equal(r.abandoned, 0);
  t.equal(r.recorder.count, 1200, 'and completed');
  t.equal(store.reads + store.updates, 1200);
  t.ok(Math.abs(store.reads / 1200 - 2 / 3) < 0.05, `reads ${store.reads} are about 2/3`);
  t.ok(r.opsPerSec > 1800 && r.opsPerSec < 2200, `achieved ${r.opsPerSec} ~ 2000/s`);
  t.ok(r.elapsedMs >= 599 && r.elapsedMs < 1000, `elapsed ${r.elapsedMs} ms`);
  t.equal(r.targetRate, 2000);
});

t.test('open loop: a stall delays every operation due during it (no coordinated omission)', async (t) => {
  // Every operation that starts in [100, 300) ms waits until 300 ms.
  const started = performance.now();
  const stallFrom = started + 100;
  const stallTo = started + 300;
  const stalling: KvStore = {
    name: 'stall',
    async read() {
      const now = performance.now();
      if (now >= stallFrom && now < stallTo) await new Promise((r) => setTimeout(r, stallTo - now));
      return undefined;
    },
    async update() {
      await this.read(Buffer.alloc(0));
    },
    async close() {},
  };
  const open = await runLoad(stalling, opts({ ratePerSec: 1000, durationMs: 600, concurrency: 1000 }));
  const so = summarize(open.recorder.overall);
  // About 200 of 600 operations were due during the stall and waited 0..200 ms.
  t.ok(so.p90Ms >= 50, `open loop p90 ${so.p90Ms} ms shows the stall`);
  t.ok(so.maxMs >= 150, `open loop max ${so.maxMs} ms`);

  const started2 = performance.now();
  const s2From = started2 + 100;
  const s2To = started2 + 300;
  const stalling2: KvStore = {
    name: 'stall',
    async read() {
      const now = performance.now();
      if (now >= s2From && now < s2To) await new Promise((r) => setTimeout(r, s2To - now));
      else await new Promise((r) => setImmediate(r));
      return undefined;
    },
    async update() {
      await this.read(Buffer.alloc(0));
    },
    async close() {},
  };
  const closed = await runLoad(stalling2, opts({ mode: 'closed', concurrency: 1, durationMs: 600 }));
  const sc = summarize(closed.recorder.overall);
  t.ok(sc.p99Ms < 20, `closed loop p99 ${sc.p99Ms} ms hides it (one slow operation)`);
  t.ok(sc.maxMs >= 150, 'though its max saw it');
  t.equal(closed.mode, 'closed');
});

t.test('open loop: the in-flight cap holds and a backlog is reported', async (t) => {
  const store = new FakeStore(() => 50);
  const r = await runLoad(store, opts({ ratePerSec: 1000, durationMs: 300, concurrency: 5, drainTimeoutMs: 100 }));
  t.ok(store.maxInFlight <= 5, `at most 5 in flight (saw ${store.maxInFlight})`);
  t.ok(r.maxBacklog > 50, `backlog ${r.maxBacklog} grew`);
  t.ok(r.unissued > 0, `${r.unissued} due operations were never issued`);
  t.ok(r.opsPerSec < 200, `throughput ${r.opsPerSec} is capped near 5 / 50 ms`);
  // Latency of what ran includes the wait for a slot: far above the 50 ms service time.
  t.ok(summarize(r.recorder.overall).p99Ms > 100, 'queueing shows in latency');
});

t.test('closed loop keeps `concurrency` operations going and counts errors by code', async (t) => {
  let n = 0;
  const failing: KvStore = {
    name: 'failing',
    async read() {
      await new Promise((r) => setImmediate(r));
      if (++n % 10 === 0) throw Object.assign(new Error('no quorum'), { code: 'QUORUM_NOT_MET' });
      if (n % 10 === 5) throw new TypeError('boom');
      return undefined;
    },
    async update() {
      await this.read(Buffer.alloc(0));
    },
    async close() {},
  };
  const r = await runLoad(failing, opts({ mode: 'closed', concurrency: 8, durationMs: 200, perSecond: true }));
  t.ok(r.issued > 100);
  t.equal(r.recorder.count + r.recorder.errors, r.issued, 'every issued operation is counted once');
  t.ok(r.recorder.errorCodes.get('QUORUM_NOT_MET')! > 0);
  t.ok(r.recorder.errorCodes.get('TypeError')! > 0, 'errors without a code are named by class');
  t.equal(r.recorder.seconds.length, 1, 'one per-second slot for a 200 ms run');
  t.equal(r.recorder.seconds[0]!.ok + r.recorder.seconds[0]!.errors, r.issued);
});

t.test('read-modify-write reads then writes, and is one operation', async (t) => {
  const store = new FakeStore();
  const r = await runLoad(store, opts({ workload: WORKLOADS.f, ratePerSec: 1000, durationMs: 300 }));
  t.equal(r.recorder.count, 300);
  const rmw = r.recorder.byKind.rmw.totalCount;
  t.ok(rmw > 100 && rmw < 200, `about half are rmw (${rmw})`);
  t.equal(store.updates, rmw, 'each rmw writes once');
  t.equal(store.reads, 300, 'and every operation read once');
});

t.test('bad options are refused', async (t) => {
  const store = new FakeStore();
  t.throws(() => runLoad(store, opts({ concurrency: 0 })), RangeError);
  t.throws(() => runLoad(store, opts({ durationMs: 0 })), RangeError);
  t.throws(() => runLoad(store, opts({ keys: keys.slice(0, 5) })), RangeError);
  t.throws(() => runLoad(store, opts({ ratePerSec: undefined })), RangeError);
});

t.test('loadRecords writes every record, in bulk when the store can', async (t) => {
  const plain = new FakeStore();
  await loadRecords(plain, keys, values, 8);
  t.equal(plain.updates, keys.length);
  const bulk: { got: number; calls: number } = { got: 0, calls: 0 };
  const bulkStore: KvStore = {
    name: 'bulk',
    read: async () => undefined,
    update: async () => {
      t.fail('bulk stores load through insertMany');
    },
    insertMany: async (recs) => {
      bulk.calls++;
      bulk.got += recs.length;
    },
    close: async () => {},
  };
  const many = Array.from({ length: 2500 }, (_, i) => Buffer.from(`k${i}`));
  await loadRecords(bulkStore, many, values, 8);
  t.equal(bulk.got, 2500);
  t.equal(bulk.calls, 3);
});
