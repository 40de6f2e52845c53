// The hot-key sketch against exact counts: Space-Saving's guarantees (every held count within
// its error of the truth), top-k recall >= 0.9 on seeded zipfian streams (YCSB's 0.99) also
// after a prefix of cold keys fills every counter, the sliding window on a fake clock, and
// how keys are shown. Seeds are printed; RINGKV_SEED=<n> replays one.

import t from 'tap';
import { displayKey, HotKeys } from '../../storage-server/hot-keys.js';
import { SpaceSaving } from '../../storage-server/space-saving.js';
import { SeededRandom as YcsbRandom, ZipfianChooser } from '../../benchmarks/harness/key-chooser.js';
import { testSeed } from '../sdk/seeded-random.js';

/** A zipfian stream over `universe` keys (rank r is key `k<r>`), seeded. */
function zipfStream(seed: number, universe: number, length: number): string[] {
  const z = new ZipfianChooser(universe, new YcsbRandom(seed));
  const out: string[] = [];
  for (let i = 0; i < length; i++) out.push(`k${z.next()}`);
  return out;
}

function exactTop(stream: string[], k: number): { top: string[]; counts: Map<string, number> } {
  const counts = new Map<string, number>();
  for (const x of stream) counts.set(x, (counts.get(x) ?? 0) + 1);
  const top = [...counts].sort((a, b) => b[1] - a[1]).slice(0, k).map(([x]) => x);
  return { top, counts };
}

const decode = (b64: string) => Buffer.from(b64, 'base64').toString('latin1');

t.test('Space-Saving: held counts bound the truth; frequent items are held', async (t) => {
  const seed = testSeed();
  t.comment(`seed ${seed}`);
  const stream = zipfStream(seed, 50_000, 100_000);
  const ss = new SpaceSaving(200);
  for (const x of stream) ss.offer(x);
  const { counts } = exactTop(stream, 1);
  t.equal(ss.total, stream.length);
  t.equal(ss.size, 200);
  for (const e of ss.entries()) {
    const truth = counts.get(e.item) ?? 0;
    if (!(truth <= e.count && e.count - e.error <= truth)) t.fail(`${e.item}: true ${truth} outside [${e.count - e.error}, ${e.count}]`);
  }
  // Every item occurring more than total / capacity times is held.
  for (const [x, n] of counts) if (n > stream.length / 200 && !ss.has(x)) t.fail(`${x} occurs ${n} times and is not held`);
  t.ok(ss.minCount > 0 && ss.minCount <= stream.length / 200, `min count ${ss.minCount}`);
  const sorted = ss.entries();
  t.ok(sorted.every((e, i) => i === 0 || sorted[i - 1]!.count >= e.count), 'entries are most frequent first');
});

t.test('top-k recall >= 0.9 on zipfian streams against exact counts', async (t) => {
  const seed = testSeed();
  t.comment(`seed ${seed}`);
  const clock = { now: 0 };
  for (const [universe, length, k] of [
    [100_000, 200_000, 10],
    [100_000, 200_000, 20],
    [1_000_000, 300_000, 20],
  ] as const) {
    const stream = zipfStream(seed + universe + k, universe, length);
    const hk = new HotKeys(() => clock.now, { capacity: 256 });
    for (const x of stream) hk.record(Buffer.from(x, 'latin1'), false);
    const { top, counts } = exactTop(stream, k);
    const report = hk.top(k);
    const got = report.keys.map((h) => decode(h.key));
    const recall = got.filter((x) => top.includes(x)).length / k;
    t.ok(recall >= 0.9, `${universe} keys, ${length} ops, top ${k}: recall ${recall}`);
    t.equal(report.total, length);
    for (const h of report.keys) {
      const truth = counts.get(decode(h.key))!;
      if (Math.abs(truth - h.count) > h.error) t.fail(`${h.display}: true ${truth}, reported ${h.count} ± ${h.error}`);
    }
  }
});

t.test('top-k recall after cold keys filled every counter first', async (t) => {
  // 20,000 distinct keys seen once, then the zipfian stream: the hot keys must take over
  // counters held by cold ones (a sketch that kept its first items would find none).
  const seed = testSeed();
  t.comment(`seed ${seed}`);
  const stream = [...Array.from({ length: 20_000 }, (_, i) => `cold${i}`), ...zipfStream(seed, 100_000, 100_000)];
  const hk = new HotKeys(() => 0, { capacity: 256 });
  for (const x of stream) hk.record(Buffer.from(x, 'latin1'), false);
  const { top } = exactTop(stream, 20);
  const got = hk.top(20).keys.map((h) => decode(h.key));
  const recall = got.filter((x) => top.includes(x)).length / 20;
  t.ok(recall >= 0.9, `recall ${recall}`);
});

t.test('the window slides: old sub-windows leave, reads and writes are told apart', async (t) => {
  const clock = { now: 1_000_000 };
  const hk = new HotKeys(() => clock.now, { subWindowMs: 10_000, subWindows: 6, capacity: 16 });
  const k = (s: string) => Buffer.from(s);
  for (let i = 0; i < 100; i++) hk.record(k('old-hot'), false);
  clock.now += 30_000;
  for (let i = 0; i < 50; i++) hk.record(k('new-hot'), i % 5 === 0);
  let r = hk.top(5);
  t.same(r.keys.map((h) => h.display), ['old-hot', 'new-hot'], 'both in the window');
  t.same([r.keys[1]!.reads, r.keys[1]!.writes], [40, 10], 'reads and writes');
  t.equal(r.total, 150);
  t.equal(r.windowMs, 30_000, 'the counts cover 30 s so far');
  clock.now += 30_000;
  r = hk.top(5);
  t.same(r.keys.map((h) => h.display), ['new-hot'], 'old-hot left the window 60 s later');
  t.equal(r.windowMs, 30_000);
  clock.now += 60_000;
  t.same(hk.top(5).keys, [], 'a quiet window is empty');
});

t.test('a key split across sub-windows adds up, within its error', async (t) => {
  const clock = { now: 0 };
  const hk = new HotKeys(() => clock.now, { subWindowMs: 1000, subWindows: 4, capacity: 4 });
  for (let w = 0; w < 4; w++) {
    for (let i = 0; i < 10; i++) hk.record(Buffer.from('steady'), false);
    // Fill the rest of the sketch with churn so counters are taken over.
    for (let i = 0; i < 20; i++) hk.record(Buffer.from(`churn${w}-${i}`), false);
    clock.now += 1000;
  }
  clock.now -= 1;
  const top = hk.top(1).keys[0]!;
  t.equal(top.display, 'steady');
  t.ok(Math.abs(top.count - 40) <= top.error, `40 within ${top.count} ± ${top.error}`);
});

t.test('keys are shown printable, escaped and cut', async (t) => {
  t.equal(displayKey(Buffer.from('user:42')), 'user:42');
  t.equal(displayKey(Buffer.from([0x61, 0x00, 0xff, 0x0a, 0x5c, 0x22])), 'a\\x00\\xff\\x0a\\\\"');
  const long = displayKey(Buffer.from('x'.repeat(100)), 48);
  t.equal(long, `${'x'.repeat(48)}…`);
  t.equal(displayKey(Buffer.from([0x01, 0x02]), 5), '\\x01…', 'an escape is never cut in half');
});
