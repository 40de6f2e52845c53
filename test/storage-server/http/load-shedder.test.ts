// Direct tests of the admission-control decision (no servers, a manual clock): a burst does
// not make the node shed, a standing queue longer than a request's budget does, too many
// operations in flight do, and the delay clears once requests are quick again.

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
