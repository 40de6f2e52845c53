// Direct tests of the admission-control decision (no servers, a manual clock): a burst does
// not make the node shed, a standing queue longer than a request's budget does, too many
// operations in flight do, the delay clears once requests are quick again, and a request
// that finds nothing in flight is never refused for what earlier requests took.

import t from 'tap';
import { ManualClock } from '../../../sdk/clock.js';
import { LoadShedder } from '../../../storage-server/http/load-shedder.js';

t.test('quick requests are admitted', async (t) => {
  const clock = new ManualClock(0);
  const s = new LoadShedder(clock, { maxInflightOps: 1000 });
  for (let i = 0; i < 100; i++) {
    s.record(2);
    clock.advance(10);
  }
  t.equal(s.admit(10, 2000).shed, false);
  t.ok(s.standingDelayMs <= 2);
});

t.test('a burst (one slow request among quick ones) is not a standing queue', async (t) => {
  const clock = new ManualClock(0);
  const s = new LoadShedder(clock, { maxInflightOps: 1000 });
  for (let i = 0; i < 50; i++) {
    s.record(i % 10 === 0 ? 3000 : 3);
    clock.advance(20);
  }
  t.equal(s.admit(1, 2000).shed, false, 'the quickest request of each interval was quick');
});

t.test('a standing delay longer than the budget sheds, with Retry-After; shorter budgets shed first', async (t) => {
  const clock = new ManualClock(0);
  const s = new LoadShedder(clock, { maxInflightOps: 100_000 });
  s.enter(1); // the queue: requests in flight throughout
  for (let i = 0; i < 50; i++) {
    s.record(1500 + (i % 7));
    clock.advance(20);
  }
  const d = s.admit(1, 1000);
  t.equal(d.shed, true, d.reason ?? '');
  t.ok((d.retryAfterSec ?? 0) >= 1);
  t.equal(s.admit(1, 5000).shed, false, 'a request that waits 5 s can still be served');
  t.equal(s.shedCount, 1);
  t.equal(s.admit(1, undefined).shed, false, 'a request without a budget is not judged by it');
});

t.test('the delay clears when requests are quick again', async (t) => {
  const clock = new ManualClock(0);
  const s = new LoadShedder(clock, { maxInflightOps: 1000 });
  s.enter(1);
  for (let i = 0; i < 20; i++) {
    s.record(4000);
    clock.advance(50);
  }
  t.equal(s.admit(1, 2000).shed, true);
  for (let i = 0; i < 20; i++) {
    s.record(5);
    clock.advance(50);
  }
  t.equal(s.admit(1, 2000).shed, false);
});

t.test('too many operations in flight sheds whatever the delay', async (t) => {
  const clock = new ManualClock(0);
  const s = new LoadShedder(clock, { maxInflightOps: 100 });
  t.equal(s.admit(500, 2000).shed, false, 'an idle node takes even an oversized batch');
  s.enter(90);
  t.equal(s.admit(20, 2000).shed, true);
  t.equal(s.admit(10, 2000).shed, false);
  s.leave(90);
  t.equal(s.inflight, 0);
  t.equal(s.admit(20, 2000).shed, false);
});

t.test('a request that finds nothing in flight is admitted, and the delay is measured afresh', async (t) => {
  const clock = new ManualClock(0);
  const s = new LoadShedder(clock, { maxInflightOps: 100_000 });
  // One batch of many durable writes on a slow host: 320 ms from arrival to answer, alone.
  t.equal(s.admit(256, 200).shed, false);
  s.enter(256);
  clock.advance(320);
  s.leave(256);
  s.record(320);
  clock.advance(400);
  t.equal(s.standingDelayMs, 320, 'the last interval saw 320 ms');
  const first = s.admit(300, 40);
  t.equal(first.shed, false, `nothing in flight: nothing to wait behind (${first.reason ?? 'admitted'})`);
  t.equal(s.standingDelayMs, 0, 'measuring starts over');
  s.enter(300);
  t.equal(s.admit(1, 40).shed, false, 'a request beside it is admitted: no interval has shown a queue since');
  // Requests in flight throughout and every one slow: a standing queue again, and it sheds.
  s.enter(1);
  for (let i = 0; i < 20; i++) {
    s.record(500);
    clock.advance(20);
  }
  t.equal(s.admit(1, 40).shed, true, 'a queue that stands while requests are in flight sheds');
  s.leave(1);
  s.leave(300);
  t.equal(s.admit(1, 40).shed, false, 'and once it drained, the next request is admitted');
  t.equal(s.shedCount, 1);
});
