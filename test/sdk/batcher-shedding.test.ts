// Admission control in the SDK's batcher (sdk/batcher.ts, sdk/batch-shedder.ts), without
// servers: a fake monotonic clock and a transport whose answers the test releases one by
// one, so every estimate is exact. An operation its node's queue would make too late is
// refused at once with OVERLOADED (never sent, no request outcome for the failure
// detector), one with time enough waits, an empty queue never sheds, a stalled node's
// in-flight age counts, queued operations are judged again, and the queue is bounded.

import t from 'tap';
import type { Test } from 'tap';
import { Batcher } from '../../sdk/batcher.js';
import { BatchShedder } from '../../sdk/batch-shedder.js';
import { ErrorCodes, RingkvError } from '../../sdk/errors.js';
import type { CallOptions, Transport } from '../../sdk/transport.js';
import type { BatchRequest, BatchResponse, WireOp, WireResult } from '../../sdk/wire/protocol.js';
import { OpType } from '../../sdk/wire/protocol.js';

/** A transport that answers a request only when the test releases it. */
class HeldTransport implements Transport {
  readonly held: { body: BatchRequest; release: () => void }[] = [];
  sent = 0;
  call<T>(_address: string, _path: string, body: unknown, _opts: CallOptions): Promise<T> {
    const b = body as BatchRequest;
    this.sent++;
    return new Promise<T>((resolve) => {
      const res: BatchResponse = { v: 2, results: b.ops.map(() => ({ ok: true, obj: null })) };
      this.held.push({ body: b, release: () => resolve(res as T) });
    });
  }
  /** Answers the oldest held request. */
  releaseOne(): void {
    this.held.shift()!.release();
  }
  async close(): Promise<void> {}
}

class FakeMono {
  ms = 1000;
  readonly nowMs = () => this.ms;
}

const get = (n: number): WireOp => ({ t: OpType.Get, key: Buffer.from(`k${n}`) }) as WireOp;
const tick = () => new Promise((r) => setImmediate(r));
/** Lets queued drains, sends and answers run. */
async function settle(): Promise<void> {
  for (let i = 0; i < 5; i++) await tick();
}

/**
 * A batcher (4 batches of up to 10 operations in flight) whose node has answered one batch
 * in 100 ms (the round-trip EWMA is 100) and now has 4 batches in flight sent at `clock.ms`.
 */
async function busyBatcher(t: Test, opts: { shedding?: boolean; maxQueuedOps?: number } = {}) {
  const clock = new FakeMono();
  const tr = new HeldTransport();
  const outcomes: unknown[] = [];
  const b = new Batcher(tr, { maxBatchOps: 10, maxInflightBatches: 4, nowMs: clock.nowMs, onRequestOutcome: (_a, err) => outcomes.push(err), shedding: true, ...opts });
  const first = b.submit('a:1', get(0), { deadline: clock.ms + 10_000 });
  await settle();
  clock.ms += 100;
  tr.releaseOne();
  await first;
  // One operation goes at once (nothing in flight); 30 more make 3 whole batches beside it.
  const fill: Promise<WireResult>[] = [];
  fill.push(b.submit('a:1', get(1), { deadline: clock.ms + 60_000 }));
  await settle();
  for (let i = 0; i < 30; i++) fill.push(b.submit('a:1', get(2 + i), { deadline: clock.ms + 60_000 }));
  await settle();
  t.equal(tr.held.length, 4, 'four batches in flight');
  return { clock, tr, b, fill, outcomes };
}

t.test('the estimate: EWMA round trip x batches ahead / in-flight slots, plus its own round trip', async (t) => {
  const s = new BatchShedder(0.5, 10, 4);
  t.equal(s.judge(0, 0, 1000, 1), undefined, 'nothing in flight: goes at once, never refused');
  s.onSent(0);
  s.onDone(0, 100, true);
  t.equal(s.rttEwmaMs, 100, 'the first sample is the estimate');
  s.onSent(100);
  s.onDone(100, 300, true);
  t.equal(s.rttEwmaMs, 150, 'then weighted (0.5)');
  s.onSent(300);
  s.onDone(300, 301, false);
  t.equal(s.rttEwmaMs, 150, 'an end that says nothing of the speed is no sample');
  // 4 in flight (sent at 1000), 20 queued (2 whole batches): ahead = 6; 150 x 6 / 4 + 150 = 375.
  for (let i = 0; i < 4; i++) s.onSent(1000);
  t.same(s.judge(1000, 4, 20, 374), { expectedMs: 375, drainMs: 225 }, '375 ms expected, 374 left: refused');
  t.equal(s.judge(1000, 4, 20, 375), undefined, '375 left: it may wait');
  // A stalled node: the oldest batch has been out 2000 ms, longer than the EWMA.
  t.same(s.judge(3000, 4, 0, 2100), { expectedMs: 2150, drainMs: 2000 }, 'the in-flight age raises the wait, not its own trip');
});

t.test('an operation the queue would make miss its deadline is refused at once with OVERLOADED, never sent', async (t) => {
  const { clock, tr, b, fill, outcomes } = await busyBatcher(t);
  // Expected: 100 x (4 in flight + 0 whole batches queued) / 4 + 100 = 200 ms.
  const sentBefore = tr.sent;
  const outcomesBefore = outcomes.length;
  const err = await b.submit('a:1', get(100), { deadline: clock.ms + 150 }).catch((e: unknown) => e);
  t.equal((err as RingkvError).code, ErrorCodes.OVERLOADED, 'refused');
  t.equal((err as RingkvError).details?.sent, false, 'it says it was never sent');
  t.equal((err as RingkvError).details?.expectedMs, 200, 'with the estimate');
  t.equal((err as RingkvError).details?.retryAfterSec, 0.1, 'and a retry-after: the queue ahead drains in 100 ms');
  t.equal(b.counters.shed, 1);
  // One with time enough waits in the queue (a partial batch leaves once those in flight
  // are answered) and is answered.
  const ok = b.submit('a:1', get(101), { deadline: clock.ms + 250 });
  await settle();
  clock.ms += 50;
  for (let i = 0; i < 4; i++) tr.releaseOne(), await settle();
  await Promise.all(fill);
  t.equal(tr.held.length, 1, 'then it went out');
  tr.releaseOne();
  t.equal((await ok).ok, true, 'an operation with 250 ms left waited and was answered');
  t.equal(tr.sent - sentBefore, 1, 'only the admitted operation went out (in one batch)');
  t.equal(outcomes.slice(outcomesBefore).filter((e) => e !== undefined).length, 0, 'the refusal is no request outcome: the failure detector never hears of it');
});

t.test('with shedding off the same operation waits and times out in the queue', async (t) => {
  const { clock, tr, b, fill } = await busyBatcher(t, { shedding: false });
  const p = b.submit('a:1', get(100), { deadline: clock.ms + 150 });
  await settle();
  clock.ms += 200;
  tr.releaseOne();
  const err = await p.catch((e: unknown) => e);
  t.equal((err as RingkvError).code, ErrorCodes.TIMEOUT, 'it waited out its deadline');
  for (let i = 0; i < 3; i++) tr.releaseOne();
  await Promise.all(fill);
});

t.test('a stalled node: the in-flight age counts, and queued operations are judged again', async (t) => {
  const { clock, tr, b, fill } = await busyBatcher(t);
  const queued = b.submit('a:1', get(200), { deadline: clock.ms + 1000 }).catch((e: unknown) => e);
  await settle();
  // Nothing answers for 800 ms: the EWMA (100) knows nothing of it, the age does.
  clock.ms += 800;
  const fresh = await b.submit('a:1', get(201), { deadline: clock.ms + 700 }).catch((e: unknown) => e);
  t.equal((fresh as RingkvError).code, ErrorCodes.OVERLOADED, 'a new operation with 700 ms left is refused (800 ms stalled)');
  await settle();
  const err = await queued;
  t.equal((err as RingkvError).code, ErrorCodes.OVERLOADED, 'the one queued before with 200 ms left is refused too, not left to time out');
  for (let i = 0; i < 4; i++) tr.releaseOne();
  await Promise.all(fill);
});

t.test('an empty node queue never sheds, whatever the last round trips were', async (t) => {
  const clock = new FakeMono();
  const tr = new HeldTransport();
  const b = new Batcher(tr, { nowMs: clock.nowMs, shedding: true });
  const p = b.submit('a:1', get(0), { deadline: clock.ms + 10_000 });
  await settle();
  clock.ms += 5000;
  tr.releaseOne();
  await p;
  const q = b.submit('a:1', get(1), { deadline: clock.ms + 10 });
  await settle();
  t.equal(tr.held.length, 1, 'an operation with 10 ms left still went out (a 5000 ms round trip before)');
  tr.releaseOne();
  t.equal((await q).ok, true);
});

t.test('the queue is bounded: beyond maxQueuedOps operations are refused with OVERLOADED', async (t) => {
  const clock = new FakeMono();
  const tr = new HeldTransport();
  const b = new Batcher(tr, { nowMs: clock.nowMs, shedding: false, maxQueuedOps: 5 });
  const first = b.submit('a:1', get(0), { deadline: clock.ms + 60_000 });
  await settle();
  const queued = Array.from({ length: 8 }, (_, i) => b.submit('a:1', get(1 + i), { deadline: clock.ms + 60_000 }).catch((e: unknown) => e));
  const refused = await Promise.all(queued.slice(5));
  t.same(refused.map((e) => (e as RingkvError).code), [ErrorCodes.OVERLOADED, ErrorCodes.OVERLOADED, ErrorCodes.OVERLOADED], 'the 6th to 8th at once (shedding off: the bound holds anyway)');
  t.equal(tr.held.length, 1, 'while the first request is still out');
  tr.releaseOne();
  await first;
  await settle();
  t.equal(tr.held[0]?.body.ops.length, 5, 'the five queued left in one batch');
  tr.releaseOne();
  t.ok((await Promise.all(queued.slice(0, 5))).every((r) => (r as WireResult).ok === true), 'and were answered');
});

t.test('options are validated', async (t) => {
  const tr = new HeldTransport();
  for (const bad of [{ maxQueuedOps: 0 }, { rttEwmaWeight: 0 }, { rttEwmaWeight: 1.5 }, { maxBatchOps: 0 }, { maxInflightBatches: 1.5 }]) {
    t.throws(() => new Batcher(tr, bad), { code: 'INVALID_ARGUMENT' }, JSON.stringify(bad));
  }
});
