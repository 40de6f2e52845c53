// Direct tests of the client's passive failure detector on a ManualClock: consecutive
// reachability failures before a node is avoided, the back-off doubling per relapse up to
// its maximum, the reset on success, and failures that say nothing about reachability.

import t from 'tap';
import { ManualClock } from '../../sdk/clock.js';
import {
  ClosedError,
  ErrorCodes,
  InternalError,
  NodeUnavailableError,
  NotFoundError,
  QuorumNotMetError,
  RingkvError,
  TimeoutError,
  UnavailableError,
} from '../../sdk/errors.js';
import { isReachabilityFailure, NodeHealth, nodeHealthDefaults } from '../../sdk/node-health.js';

const down = () => new NodeUnavailableError('a', 'connection refused');

t.test('a node is avoided after failuresToAvoid consecutive reachability failures, for backoffMs', async (t) => {
  const clock = new ManualClock();
  const h = new NodeHealth(clock, { failuresToAvoid: 3, backoffMs: 1000, maxBackoffMs: 30_000 });
  h.onFailure('a', down());
  h.onFailure('a', new TimeoutError('request', 100));
  t.notOk(h.isAvoided('a'), 'two failures: not yet');
  t.same(h.avoided(), []);
  h.onFailure('a', down());
  t.ok(h.isAvoided('a'), 'the third in a row: avoided');
  t.same(h.avoided(), ['a']);
  t.notOk(h.isAvoided('b'), 'other nodes are not');
  clock.advance(999);
  t.ok(h.isAvoided('a'), 'still avoided 1 ms before the end of the back-off');
  clock.advance(1);
  t.notOk(h.isAvoided('a'), 'tried again once the back-off is over');
  t.same(h.avoided(), []);
});

t.test('failures while avoided do not extend the back-off; each relapse after it doubles it, up to maxBackoffMs', async (t) => {
  const clock = new ManualClock();
  const h = new NodeHealth(clock, { failuresToAvoid: 2, backoffMs: 1000, maxBackoffMs: 5000 });
  h.onFailure('a', down());
  h.onFailure('a', down());
  t.ok(h.isAvoided('a'));
  clock.advance(500);
  h.onFailure('a', down()); // a request already in flight when the node was avoided
  clock.advance(500);
  t.notOk(h.isAvoided('a'), 'the back-off still ended 1000 ms after it began');
  const periods: number[] = [];
  for (let relapse = 0; relapse < 5; relapse++) {
    // One more failure after the back-off (no success in between) is a relapse.
    h.onFailure('a', down());
    t.ok(h.isAvoided('a'), `relapse ${relapse + 1}: avoided again after a single failure`);
    let ms = 0;
    while (h.isAvoided('a')) {
      clock.advance(100);
      ms += 100;
    }
    periods.push(ms);
  }
  t.same(periods, [2000, 4000, 5000, 5000, 5000], 'doubling, capped at maxBackoffMs');
});

t.test('a success resets the count, ends the back-off and restores the first back-off period', async (t) => {
  const clock = new ManualClock();
  const h = new NodeHealth(clock, { failuresToAvoid: 3, backoffMs: 1000, maxBackoffMs: 30_000 });
  h.onFailure('a', down());
  h.onFailure('a', down());
  h.onSuccess('a');
  h.onFailure('a', down());
  h.onFailure('a', down());
  t.notOk(h.isAvoided('a'), 'the count restarted at the success');
  h.onFailure('a', down());
  t.ok(h.isAvoided('a'));
  // A relapse doubles the back-off to 2000 ms ...
  clock.advance(1000);
  h.onFailure('a', down());
  t.ok(h.isAvoided('a'));
  // ... and a success (a request that was still in flight) ends it at once and resets it.
  h.onSuccess('a');
  t.notOk(h.isAvoided('a'), 'a success ends the back-off');
  t.same(h.avoided(), []);
  for (let i = 0; i < 2; i++) h.onFailure('a', down());
  t.notOk(h.isAvoided('a'), 'after a success, one failure is no relapse: the full count is needed again');
  h.onFailure('a', down());
  t.ok(h.isAvoided('a'));
  clock.advance(999);
  t.ok(h.isAvoided('a'));
  clock.advance(1);
  t.notOk(h.isAvoided('a'), 'the first back-off period again (1000 ms), not the doubled one');
  h.onSuccess('never-failed');
  t.same(h.avoided(), [], 'a success of an unknown node changes nothing');
});

t.test('failures that say nothing about reachability are ignored: they neither count nor reset', async (t) => {
  const clock = new ManualClock();
  const h = new NodeHealth(clock, { failuresToAvoid: 3, backoffMs: 1000, maxBackoffMs: 30_000 });
  const others: unknown[] = [
    new NotFoundError(),
    new QuorumNotMetError('get', 2, 1, 2),
    new InternalError('bug'),
    new RingkvError(ErrorCodes.IO_ERROR, 'disk'),
    new RingkvError(ErrorCodes.CORRUPTION, 'bad block'),
    new RingkvError(ErrorCodes.DEADLINE_EXCEEDED, 'late'),
    new Error('plain'),
    undefined,
    'a string',
  ];
  for (let i = 0; i < 5; i++) for (const e of others) h.onFailure('b', e);
  t.notOk(h.isAvoided('b'), 'many non-reachability failures: never avoided');
  h.onFailure('a', down());
  h.onFailure('a', down());
  for (const e of others) h.onFailure('a', e);
  h.onFailure('a', down());
  t.ok(h.isAvoided('a'), 'they did not reset the count either');
  t.same(h.avoided(), ['a']);
});

t.test('the reachability failures are NODE_UNAVAILABLE, TIMEOUT, CLOSED and UNAVAILABLE', async (t) => {
  const yes = [new NodeUnavailableError('a', 'x'), new TimeoutError('op', 1), new ClosedError('transport'), new UnavailableError('starting')];
  for (const e of yes) t.ok(isReachabilityFailure(e), e.code);
  // Errors rebuilt from the wire carry the same codes.
  t.ok(isReachabilityFailure(new RingkvError(ErrorCodes.TIMEOUT, 'remote')));
  for (const code of Object.values(ErrorCodes)) {
    const expected = ['NODE_UNAVAILABLE', 'TIMEOUT', 'CLOSED', 'UNAVAILABLE'].includes(code);
    if (isReachabilityFailure(new RingkvError(code, 'x')) !== expected) t.fail(`${code}: expected ${expected}`);
  }
  t.notOk(isReachabilityFailure(null));
  t.notOk(isReachabilityFailure({ code: 'ECONNREFUSED' }), 'a raw socket error code is not one (transports map them)');
  t.notOk(isReachabilityFailure(new RingkvError(ErrorCodes.DEADLINE_EXCEEDED, 'x')), "a replica that refused a late operation is reachable");
});

t.test('avoided() lists every node in its back-off, and only while it lasts', async (t) => {
  const clock = new ManualClock();
  const h = new NodeHealth(clock, { failuresToAvoid: 1, backoffMs: 1000, maxBackoffMs: 30_000 });
  h.onFailure('a', down());
  clock.advance(400);
  h.onFailure('b', down());
  h.onFailure('c', new NotFoundError());
  t.same(h.avoided().sort(), ['a', 'b']);
  clock.advance(600);
  t.same(h.avoided(), ['b'], 'a back to use, b not yet');
  clock.advance(400);
  t.same(h.avoided(), []);
});

t.test('the defaults: 3 failures, 1 s first back-off, 30 s longest', async (t) => {
  t.same(nodeHealthDefaults, { failuresToAvoid: 3, backoffMs: 1000, maxBackoffMs: 30_000 });
  const clock = new ManualClock();
  const h = new NodeHealth(clock);
  for (let i = 0; i < 3; i++) h.onFailure('a', down());
  const periods: number[] = [];
  for (let relapse = 0; relapse < 8; relapse++) {
    const from = clock.nowMs();
    // Binary search of the end of the back-off, in ms.
    let lo = 0;
    let hi = 60_000;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      clock.set(from + mid);
      if (h.isAvoided('a')) lo = mid + 1;
      else hi = mid;
    }
    periods.push(lo);
    clock.set(from + lo);
    h.onFailure('a', down());
  }
  t.same(periods, [1000, 2000, 4000, 8000, 16_000, 30_000, 30_000, 30_000]);
});

t.test('a refusal for load is no failure: avoided for its retry-after, the failure count untouched', async (t) => {
  const clock = new ManualClock();
  const h = new NodeHealth(clock, { failuresToAvoid: 2, backoffMs: 1000, maxBackoffMs: 30_000 });
  h.onFailure('a', down());
  h.onOverloaded('a', 500);
  t.ok(h.isAvoided('a'), 'avoided while it asked');
  t.equal(h.overloadedForMs('a'), 500, 'because it sheds load, for 500 ms');
  clock.advance(501);
  t.notOk(h.isAvoided('a'), 'then used again');
  t.equal(h.overloadedForMs('a'), 0);
  h.onOverloaded('a', 100);
  clock.advance(101);
  t.notOk(h.isAvoided('a'), 'two refusals after one failure: the count stayed at one (failuresToAvoid 2)');
  h.onFailure('a', down());
  t.ok(h.isAvoided('a'), 'the second real failure avoids it');
  t.equal(h.overloadedForMs('a'), 0, 'for failing, not for load');
});
