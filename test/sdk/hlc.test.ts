// Tests of the hybrid logical clock: strict monotonicity under clocks that stall, jump and
// run backwards; observe() keeps a lagging writer above what it has seen; timestamps stay
// safe integers. The randomized part prints its seed; rerun with RINGKV_SEED=<seed>.

import t from 'tap';
import { ManualClock, SkewedClock } from '../../sdk/clock.js';
import { ErrorCodes } from '../../sdk/errors.js';
import { HybridLogicalClock, hlcToWallMs } from '../../sdk/hlc.js';
import { SeededRandom, testSeed } from './seeded-random.js';

const seed = testSeed();
t.comment(`seed ${seed} (rerun with RINGKV_SEED=${seed})`);

const T0 = 1_700_000_000_000;

t.test('a timestamp is wall ms * 1000 while the clock moves forward', async (t) => {
  const clock = new ManualClock(T0);
  const hlc = new HybridLogicalClock(clock);
  t.equal(hlc.last, 0);
  t.equal(hlc.now(), T0 * 1000);
  clock.advance(5);
  t.equal(hlc.now(), (T0 + 5) * 1000);
  t.equal(hlc.last, (T0 + 5) * 1000);
  t.equal(hlcToWallMs(hlc.last), T0 + 5);
});

t.test('within one millisecond the logical part counts up and carries into the ms digits', async (t) => {
  const clock = new ManualClock(T0);
  const hlc = new HybridLogicalClock(clock);
  const stamps = Array.from({ length: 2500 }, () => hlc.now());
  t.equal(stamps[0], T0 * 1000);
  t.equal(stamps[999], T0 * 1000 + 999);
  t.equal(stamps[1000], (T0 + 1) * 1000, 'logical 1000 carries into the next ms value');
  t.equal(stamps[2499], T0 * 1000 + 2499);
  t.equal(hlcToWallMs(stamps[2499]!), T0 + 2);
  for (let i = 1; i < stamps.length; i++) if (stamps[i]! !== stamps[i - 1]! + 1) t.fail(`gap at ${i}`);
  // The wall clock catches up: the next stamp is wall-based again once it passes last.
  clock.set(T0 + 3);
  t.equal(hlc.now(), (T0 + 3) * 1000);
});

t.test('strictly increasing when the clock goes backwards', async (t) => {
  const clock = new ManualClock(T0);
  const hlc = new HybridLogicalClock(clock);
  const a = hlc.now();
  clock.advance(-60_000);
  const b = hlc.now();
  const c = hlc.now();
  t.equal(b, a + 1);
  t.equal(c, a + 2);
  clock.set(T0 + 1);
  t.equal(hlc.now(), (T0 + 1) * 1000);
});

t.test('random clock walks never break monotonicity and stay safe integers', async (t) => {
  const rnd = new SeededRandom(seed);
  const clock = new ManualClock(T0);
  const hlc = new HybridLogicalClock(clock);
  let prev = -1;
  let maxSeen = 0;
  for (let i = 0; i < 20_000; i++) {
    const r = rnd.next();
    if (r < 0.3) clock.advance(rnd.int(50));
    else if (r < 0.4) clock.advance(-rnd.int(5_000));
    else if (r < 0.45) {
      const remote = hlc.last + rnd.int(3_000_000) - 1_000_000;
      if (remote >= 0) {
        hlc.observe(remote);
        maxSeen = Math.max(maxSeen, remote);
      }
    }
    const ts = hlc.now();
    if (!(ts > prev) || !(ts > maxSeen) || !Number.isSafeInteger(ts) || ts < clock.nowMs() * 1000) {
      t.fail(`step ${i}: ts ${ts} after ${prev}, max seen ${maxSeen}, clock ${clock.nowMs()}`);
      return;
    }
    prev = ts;
  }
  t.pass('20000 steps');
});

t.test('a lagging clock writes above a timestamp it observed', async (t) => {
  const base = new ManualClock(T0);
  const fast = new HybridLogicalClock(new SkewedClock(base, 30_000));
  const slow = new HybridLogicalClock(new SkewedClock(base, -30_000));
  const fromFast = fast.now();
  t.equal(fromFast, (T0 + 30_000) * 1000);
  const before = slow.now();
  t.ok(before < fromFast, 'without observing, the lagging writer would lose to the earlier write');
  slow.observe(fromFast);
  t.equal(slow.last, fromFast);
  const after = slow.now();
  t.equal(after, fromFast + 1);
  t.ok(after > fromFast);
  // Observing something older changes nothing.
  slow.observe(before);
  t.equal(slow.last, after);
});

t.test('observe() rejects values that are not non-negative safe integers', async (t) => {
  const hlc = new HybridLogicalClock(new ManualClock(T0));
  for (const bad of [-1, 1.5, NaN, Infinity, 2 ** 53, '5' as unknown as number]) {
    t.throws(() => hlc.observe(bad), { code: ErrorCodes.INVALID_ARGUMENT }, String(bad));
  }
  t.equal(hlc.last, 0);
});

t.test('a clock that reads garbage or overflows is refused', async (t) => {
  t.throws(() => new HybridLogicalClock({ nowMs: () => NaN }).now(), { code: ErrorCodes.INVALID_ARGUMENT });
  t.throws(() => new HybridLogicalClock({ nowMs: () => 2 ** 50 }).now(), { code: ErrorCodes.INVALID_ARGUMENT });
  const hlc = new HybridLogicalClock(new ManualClock(T0));
  hlc.observe(Number.MAX_SAFE_INTEGER);
  t.throws(() => hlc.now(), { code: ErrorCodes.INVALID_ARGUMENT }, 'no timestamp above MAX_SAFE_INTEGER');
  t.equal(hlc.last, Number.MAX_SAFE_INTEGER);
});

t.test('the system clock is the default', async (t) => {
  const hlc = new HybridLogicalClock();
  const before = Date.now();
  const ts = hlc.now();
  const after = Date.now();
  t.ok(hlcToWallMs(ts) >= before && hlcToWallMs(ts) <= after, `${ts} within [${before}, ${after}]`);
});

t.test('hlcToWallMs', async (t) => {
  const cases: [number, number][] = [
    [0, 0],
    [999, 0],
    [1000, 1],
    [T0 * 1000 + 999, T0],
    [Number.MAX_SAFE_INTEGER, Math.floor(Number.MAX_SAFE_INTEGER / 1000)],
  ];
  for (const [ts, ms] of cases) t.equal(hlcToWallMs(ts), ms, `${ts}`);
});

t.test('with maxLeadMs, observe() ignores a timestamp far ahead of the clock, so one future version cannot poison it', async (t) => {
  const clock = new ManualClock(T0);
  const hlc = new HybridLogicalClock(clock, { maxLeadMs: 5000 });
  t.equal(hlc.observe((T0 + 4000) * 1000), true, 'within the bound: merged');
  t.equal(hlc.last, (T0 + 4000) * 1000);
  t.equal(hlc.observe((T0 + 60_000) * 1000), false, 'a minute ahead: ignored');
  t.equal(hlc.observe(Number.MAX_SAFE_INTEGER), false, 'MAX_SAFE_INTEGER: ignored');
  t.equal(hlc.ignoredAhead, 2);
  t.equal(hlc.last, (T0 + 4000) * 1000, 'the clock was not dragged');
  t.equal(hlc.now(), (T0 + 4000) * 1000 + 1, 'and it still issues timestamps');
  // As the wall clock moves on, the same timestamp comes within the bound.
  clock.advance(56_000);
  t.equal(hlc.observe((T0 + 60_000) * 1000), true);
});

t.test('nowAbove() stamps above a replica\'s version, or refuses when that version is too far ahead', async (t) => {
  const clock = new ManualClock(T0);
  const hlc = new HybridLogicalClock(clock, { maxLeadMs: 5000 });
  const floor = (T0 + 3000) * 1000 + 7;
  const ts = hlc.nowAbove(floor);
  t.ok(ts > floor, `${ts} > ${floor}`);
  t.ok(hlc.now() > ts, 'later stamps stay above it');
  const lowFloor = (T0 - 1000) * 1000;
  t.ok(hlc.nowAbove(lowFloor) > ts, 'a floor below what was issued changes nothing but stays monotonic');
  t.throws(() => hlc.nowAbove((T0 + 60_000) * 1000), { code: ErrorCodes.CLOCK_SKEW }, 'a floor a minute ahead is refused');
  t.throws(() => hlc.nowAbove(Number.MAX_SAFE_INTEGER), { code: ErrorCodes.CLOCK_SKEW });
  t.throws(() => hlc.nowAbove(-1), { code: ErrorCodes.INVALID_ARGUMENT });
  const unbounded = new HybridLogicalClock(clock);
  t.ok(unbounded.nowAbove((T0 + 60_000) * 1000) > (T0 + 60_000) * 1000, 'without a bound it follows any floor');
});
