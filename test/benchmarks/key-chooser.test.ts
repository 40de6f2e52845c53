// The key choosers of the benchmark: the zipfian draw has the shape of its distribution
// (rank 0's share, the ratio of neighbouring ranks, the weight of the head), the uniform
// one spreads evenly, and both are deterministic for a seed. Seeded; prints nothing.

import t from 'tap';
import { recordKey, SeededRandom, UniformChooser, zeta, ZipfianChooser } from '../../benchmarks/harness/key-chooser.js';

function counts(next: () => number, n: number, draws: number): number[] {
  const c = new Array<number>(n).fill(0);
  for (let i = 0; i < draws; i++) {
    const r = next();
    if (!(Number.isInteger(r) && r >= 0 && r < n)) throw new Error(`draw ${r} out of [0, ${n})`);
    c[r]!++;
  }
  return c;
}

t.test('SeededRandom is deterministic and stays in [0, 1)', async (t) => {
  const a = new SeededRandom(7);
  const b = new SeededRandom(7);
  let mean = 0;
  const xs: number[] = [];
  const ys: number[] = [];
  for (let i = 0; i < 10_000; i++) {
    const x = a.next();
    xs.push(x);
    ys.push(b.next());
    if (!(x >= 0 && x < 1)) t.fail(`out of range: ${x}`);
    mean += x / 10_000;
  }
  t.same(xs, ys, 'same seed, same sequence');
  t.ok(Math.abs(mean - 0.5) < 0.02, `mean ${mean} is about 0.5`);
  t.not(new SeededRandom(8).next(), new SeededRandom(7).next(), 'another seed, another sequence');
});

t.test('zipfian (0.99) over 1000 records has the shape of its distribution', async (t) => {
  const n = 1000;
  const draws = 400_000;
  const z = new ZipfianChooser(n, new SeededRandom(42));
  const c = counts(() => z.next(), n, draws);
  const p0 = 1 / zeta(n, 0.99);
  t.ok(Math.abs(c[0]! / draws - p0) / p0 < 0.03, `rank 0 share ${c[0]! / draws} ~ ${p0}`);
  t.equal(z.probability(0), p0);
  const ratio01 = c[0]! / c[1]!;
  t.ok(Math.abs(ratio01 - Math.pow(2, 0.99)) < 0.1, `rank0/rank1 ${ratio01} ~ 2^0.99`);
  // The head: the 10% most popular ranks carry their share of the exact distribution.
  let want = 0;
  let got = 0;
  for (let r = 0; r < n / 10; r++) {
    want += z.probability(r);
    got += c[r]! / draws;
  }
  t.ok(Math.abs(got - want) < 0.02, `top 10% share ${got.toFixed(3)} ~ ${want.toFixed(3)}`);
  t.ok(want > 0.6, 'the head is heavy (skew 0.99)');
  // Counts fall with rank: the first decile outweighs every later one.
  const decile = (d: number) => c.slice(d * 100, d * 100 + 100).reduce((s, x) => s + x, 0);
  for (let d = 1; d < 10; d++) t.ok(decile(d) < decile(d - 1) * 1.05, `decile ${d} not above decile ${d - 1}`);
  t.ok(c[n - 1]! > 0 || c.slice(n - 50).some((x) => x > 0), 'the tail is reached');
});

t.test('zipfian is deterministic for a seed and handles tiny key spaces', async (t) => {
  const a = new ZipfianChooser(500, new SeededRandom(3));
  const b = new ZipfianChooser(500, new SeededRandom(3));
  t.same(Array.from({ length: 1000 }, () => a.next()), Array.from({ length: 1000 }, () => b.next()));
  const one = new ZipfianChooser(1, new SeededRandom(1));
  t.same(Array.from({ length: 100 }, () => one.next()), new Array(100).fill(0));
  const two = counts(() => new ZipfianChooser(2, new SeededRandom(1)).next(), 2, 10);
  t.equal(two.length, 2);
  t.throws(() => new ZipfianChooser(0, new SeededRandom(1)), RangeError);
  t.throws(() => new ZipfianChooser(10, new SeededRandom(1), 1), RangeError);
});

t.test('uniform spreads evenly', async (t) => {
  const n = 10;
  const draws = 200_000;
  const u = new UniformChooser(n, new SeededRandom(9));
  const c = counts(() => u.next(), n, draws);
  for (const x of c) t.ok(Math.abs(x / draws - 0.1) < 0.005, `share ${x / draws} ~ 0.1`);
});

t.test('record keys are distinct, stable and hashed', async (t) => {
  const seen = new Set<string>();
  for (let i = 0; i < 10_000; i++) seen.add(recordKey('p:', i).toString('latin1'));
  t.equal(seen.size, 10_000);
  t.same(recordKey('p:', 5), recordKey('p:', 5));
  t.match(recordKey('p:', 5).toString(), /^p:user[0-9a-f]{8}5$/);
  t.not(recordKey('p:', 1).subarray(0, 10).toString(), recordKey('p:', 2).subarray(0, 10).toString(), 'neighbours differ early');
});
