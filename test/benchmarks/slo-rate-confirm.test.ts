// The rate kv-bench calls "p99 <= SLO" is one whose own full-length measured phase met the
// SLO: measureAtSloRate steps down from the searched rate while the measured phase misses it.
// The measured phases here are synthetic (a system that holds the SLO up to a given rate).

import t from 'tap';
import { measureAtSloRate } from '../../benchmarks/harness/measure.js';

/** A system whose full-length phase meets the SLO up to `holdsUpTo` ops/s. */
function system(holdsUpTo: number) {
  const rates: number[] = [];
  const measure = async (rate: number) => {
    rates.push(rate);
    const pass = rate <= holdsUpTo;
    return { result: { rate, p99Ms: pass ? 8 : 14 }, pass, attempt: { rate, pass } };
  };
  return { rates, measure };
}

t.test('a searched rate whose measured phase holds the SLO is kept', async (t) => {
  const s = system(6000);
  const r = await measureAtSloRate(5000, 250, 3, s.measure);
  t.equal(r.sloRatePerSec, 5000);
  t.same(s.rates, [5000]);
  t.same(r.final, { rate: 5000, p99Ms: 8 });
});

t.test('a searched rate whose measured phase misses the SLO is not reported as the SLO rate', async (t) => {
  // The short search steps passed at 5,000 but 30 s at 5,000 had p99 over the bound.
  const s = system(4200);
  const r = await measureAtSloRate(5000, 250, 3, s.measure);
  t.same(s.rates, [5000, 4000], 'stepped down by 20%');
  t.equal(r.sloRatePerSec, 4000);
  t.same(r.final, { rate: 4000, p99Ms: 8 }, 'the figures reported are those of the phase at the labelled rate');
  t.same(
    r.attempts.map((a) => a.pass),
    [false, true],
  );
});

t.test('no attempt holds the SLO: no SLO rate, the last phase reported', async (t) => {
  const s = system(1000);
  const r = await measureAtSloRate(5000, 250, 3, s.measure);
  t.same(s.rates, [5000, 4000, 3200], 'at most 3 attempts');
  t.equal(r.sloRatePerSec, 0);
  t.same(r.final, { rate: 3200, p99Ms: 14 });
});

t.test('no search step passed: one phase at the fallback rate, never labelled', async (t) => {
  const s = system(1_000_000);
  const r = await measureAtSloRate(0, 250, 3, s.measure);
  t.same(s.rates, [250]);
  t.equal(r.sloRatePerSec, 0, 'a fallback rate is not an SLO rate even when it happens to hold it');
});
