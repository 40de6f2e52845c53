// Tests of the client's estimate of the cluster's time: a client far off the servers'
// clocks follows their median, one server far off does not move it, small offsets and
// queueing noise leave the local clock alone, and old samples are forgotten.

import t from 'tap';
import { ManualClock } from '../../sdk/clock.js';
import { ClusterClock } from '../../sdk/cluster-clock.js';

const T0 = 1_700_000_000_000;

t.test('a client 30 s behind the servers follows their clock', async (t) => {
  const local = new ManualClock(T0 - 30_000);
  const c = new ClusterClock(local);
  t.equal(c.nowMs(), T0 - 30_000, 'no samples: the local clock');
  for (const [i, server] of ['a', 'b', 'c'].entries()) c.sample(server, T0 + i, local.nowMs() - 2, local.nowMs());
  t.equal(c.correctionMs, 30_000 + 1 + 1, 'the median offset (midpoint of the request)');
  t.equal(c.nowMs(), T0 + 2);
  t.equal(c.localNowMs(), T0 - 30_000);
});

t.test('a client ahead is corrected backwards', async (t) => {
  const local = new ManualClock(T0 + 20_000);
  const c = new ClusterClock(local);
  c.sample('a', T0, local.nowMs(), local.nowMs());
  t.equal(c.correctionMs, -20_000);
  t.equal(c.nowMs(), T0);
});

t.test('one server far off does not move the median', async (t) => {
  const local = new ManualClock(T0);
  const c = new ClusterClock(local);
  c.sample('a', T0 + 3, T0, T0);
  c.sample('b', T0 + 60_000, T0, T0);
  c.sample('c', T0 - 2, T0, T0);
  t.equal(c.correctionMs, 0, 'median 3 ms: below the threshold');
  t.equal(c.nowMs(), T0);
});

t.test('offsets below the threshold are left alone; the threshold is an option', async (t) => {
  const local = new ManualClock(T0);
  const c = new ClusterClock(local);
  c.sample('a', T0 + 900, T0, T0);
  t.equal(c.correctionMs, 0);
  const strict = new ClusterClock(local, { correctionThresholdMs: 100 });
  strict.sample('a', T0 + 900, T0, T0);
  t.equal(strict.correctionMs, 900);
});

t.test('a server\'s newer sample replaces its older one; stale samples are forgotten', async (t) => {
  const local = new ManualClock(T0);
  const c = new ClusterClock(local, { sampleMaxAgeMs: 10_000 });
  c.sample('a', T0 + 5000, T0, T0);
  t.equal(c.correctionMs, 5000);
  c.sample('a', T0 + 10, T0, T0);
  t.equal(c.correctionMs, 0, 'the server\'s clock was fixed');
  c.sample('a', T0 + 5000, T0, T0);
  local.advance(20_000);
  c.sample('b', local.nowMs() + 2, local.nowMs(), local.nowMs());
  t.equal(c.correctionMs, 0, 'a\'s sample is 20 s old: forgotten, only b counts');
});

t.test('garbage readings are ignored', async (t) => {
  const c = new ClusterClock(new ManualClock(T0));
  for (const bad of [undefined, null, 'x', NaN, Infinity, -5, 0]) c.sample('a', bad, T0, T0);
  t.equal(c.correctionMs, 0);
  t.equal(c.nowMs(), T0);
});
