// The hint store on its own (no servers): add / list / remove, ordering, the pending counts
// per target and how hints leave them (delivery, expiry, an operator's drop), the byte
// budget, and durability across close/reopen on real disk and after a torn last record.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import t from 'tap';
import type { Test } from 'tap';
import { ManualClock } from '../../../sdk/clock.js';
import { RingkvError } from '../../../sdk/errors.js';
import { SeededRandom, testSeed } from '../../sdk/seeded-random.js';
import type { StoredObject } from '../../../sdk/versioning/index.js';
import { EngineError } from '../../../storage-server/engine/engine-errors.js';
import type { Logger } from '../../../storage-server/logger.js';
import { MemoryFileSystem } from '../../../storage-server/engine/index.js';
import { HintStore } from '../../../storage-server/handoff/hint-store.js';
import type { HintStoreOptions } from '../../../storage-server/handoff/hint-store.js';

const quiet: Logger = { debug() {}, info() {}, warn() {}, error() {} };
const HOUR = 3600_000;

function tmpDir(t: Test): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ringkv-hints-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** An 'lww' object holding `value`, written at `ts`. */
function obj(value: string, ts = 1000): StoredObject {
  return {
    mode: 'lww',
    siblings: [{ value: Buffer.from(value), tombstone: false, expiresAtMs: 0, contentType: '', flags: 0, ts, writer: 'w' }],
    context: {},
  };
}

/** A 'dvv' object with one sibling made by `node`'s event `counter`. */
function dvvObj(value: string, node: string, counter: number): StoredObject {
  return {
    mode: 'dvv',
    siblings: [{ value: Buffer.from(value), tombstone: false, expiresAtMs: 0, contentType: 'text/plain', flags: 3, ts: 1000 + counter, writer: 'w', dot: [node, counter] }],
    context: { [node]: counter },
  };
}

/** An 'lww' deletion written at `ts`. */
function deletion(ts: number): StoredObject {
  return { mode: 'lww', siblings: [{ value: Buffer.alloc(0), tombstone: true, expiresAtMs: 0, contentType: '', flags: 0, ts, writer: 'w' }], context: {} };
}

const k = (s: string) => Buffer.from(s);
const values = (hs: { obj: StoredObject }[]) => hs.map((h) => h.obj.siblings.map((x) => (x.tombstone ? '<deleted>' : x.value.toString())).join('|'));
const keys = (hs: { key: Buffer }[]) => hs.map((h) => h.key.toString());

async function open(t: Test, dir: string, clock: ManualClock, o: Partial<HintStoreOptions> = {}): Promise<HintStore> {
  const s = await HintStore.open(dir, { maxHintBytes: 1 << 20, maxHintAgeMs: HOUR, sync: 'always', clock, log: quiet, ...o });
  t.teardown(() => s.close());
  return s;
}

const counts = (s: HintStore) => Object.fromEntries(s.pendingByTarget());

t.test('pending counts: expired hints leave the count', async (t) => {
  const clock = new ManualClock();
  const s = await open(t, tmpDir(t), clock);
  await s.add('n1', k('a'), obj('1'));
  await s.add('n1', k('b'), obj('2'));
  clock.advance(HOUR / 2);
  await s.add('n2', k('c'), obj('3'));
  t.same(counts(s), { n1: 2, n2: 1 });
  clock.advance(HOUR / 2 - 1);
  t.equal(s.totalPending, 3, 'nothing expired 1 ms before the age limit');
  clock.advance(1);
  t.same(counts(s), { n2: 1 }, 'the two hints for n1 expired at their age limit');
  t.equal(s.totalPending, 1);
  t.same(await s.list('n1', 10), [], 'and are gone from the store');
  clock.advance(HOUR / 2);
  t.same(counts(s), {}, 'the last one too');
  t.equal(s.totalPending, 0, 'a decommission waiting for totalPending == 0 is not held up');
});

t.test('pending counts: an expired hint written again counts once', async (t) => {
  const clock = new ManualClock();
  const s = await open(t, tmpDir(t), clock);
  await s.add('n1', k('a'), obj('old', 1000));
  clock.advance(HOUR + 1);
  await s.add('n1', k('a'), obj('new', 2000));
  t.same(counts(s), { n1: 1 });
  const [h] = await s.list('n1', 10);
  t.equal(h?.obj.siblings[0]?.value.toString(), 'new');
  await s.remove('n1', k('a'), h!.obj);
  t.same(counts(s), {}, 'delivering it leaves nothing pending');
  t.equal(s.totalPending, 0);
});

t.test('pending counts: a rewrite restarts the age limit of that hint', async (t) => {
  const clock = new ManualClock();
  const s = await open(t, tmpDir(t), clock);
  await s.add('n1', k('a'), obj('1', 1000));
  await s.add('n1', k('b'), obj('1', 1000));
  clock.advance(HOUR - 10);
  await s.add('n1', k('a'), obj('2', 2000));
  t.same(counts(s), { n1: 2 }, 'a rewrite is not a new hint');
  clock.advance(10);
  t.same(counts(s), { n1: 1 }, 'b expired; a was written again 10 ms ago');
  clock.advance(HOUR - 10);
  t.same(counts(s), {}, 'a expires an age limit after its last write');
});

t.test('pending counts: removing an expired hint does not count it twice', async (t) => {
  const clock = new ManualClock();
  const s = await open(t, tmpDir(t), clock);
  await s.add('n1', k('a'), obj('1'));
  await s.add('n1', k('b'), obj('1'));
  const sent = (await s.list('n1', 10))[0]!.obj;
  clock.advance(HOUR);
  // The target acknowledged it just after it expired here.
  await s.remove('n1', k('a'), sent);
  t.same(counts(s), {});
  t.equal(s.totalPending, 0);
});

t.test('pending counts: delivery removes exactly the acknowledged version', async (t) => {
  const clock = new ManualClock();
  const s = await open(t, tmpDir(t), clock);
  await s.add('n1', k('a'), obj('1', 1000));
  await s.add('n1', k('b'), obj('1', 1000));
  const sent = (await s.list('n1', 10))[0]!;
  t.equal(sent.key.toString(), 'a');
  // A newer write for a arrives while the old version is in flight to n1.
  await s.add('n1', k('a'), obj('2', 2000));
  await s.remove('n1', k('a'), sent.obj);
  t.same(counts(s), { n1: 2 }, 'the acknowledged version was superseded: the hint stays');
  t.equal(s.counters.superseded, 1);
  const again = (await s.list('n1', 10))[0]!;
  await s.remove('n1', k('a'), again.obj);
  await s.remove('n1', k('a'), again.obj);
  await s.remove('n2', k('a'), again.obj);
  t.same(counts(s), { n1: 1 }, 'removed once; removing again or for another target changes nothing');
  t.equal(s.counters.delivered, 1);
});

t.test('pending counts: an operator drop, for one target or all, counts what it dropped', async (t) => {
  const clock = new ManualClock();
  const s = await open(t, tmpDir(t), clock);
  for (const tg of ['n1', 'n2', 'n3']) for (const key of ['a', 'b', 'c']) await s.add(tg, k(key), obj(tg));
  clock.advance(HOUR / 2);
  await s.add('n1', k('d'), obj('d'));
  await s.add('n3', k('d'), obj('d'));
  clock.advance(HOUR / 2);
  t.same(counts(s), { n1: 1, n3: 1 }, 'the first nine expired');
  t.equal(await s.drop('n2'), 0, 'nothing live to drop for n2');
  t.equal(await s.drop('n1'), 1);
  t.same(counts(s), { n3: 1 });
  await s.add('n2', k('e'), obj('e'));
  t.equal(await s.drop(), 2, 'drop() takes every target');
  t.same(counts(s), {});
  t.equal(s.totalPending, 0);
  t.same(await s.list('n3', 10), []);
});

t.test('pending counts: rebuilt on reopen, without the hints that expired while closed', async (t) => {
  const dir = tmpDir(t);
  const clock = new ManualClock();
  const s1 = await HintStore.open(dir, { maxHintBytes: 1 << 20, maxHintAgeMs: HOUR, sync: 'always', clock, log: quiet });
  await s1.add('n1', k('a'), obj('1'));
  await s1.add('n2', k('a'), obj('1'));
  clock.advance(HOUR / 2);
  await s1.add('n1', k('b'), obj('1'));
  await s1.close();
  clock.advance(HOUR / 2);
  const s2 = await open(t, dir, clock);
  t.same(counts(s2), { n1: 1 }, 'only the hint written half an hour later is left');
  clock.advance(HOUR / 2);
  t.same(counts(s2), {}, 'and it expires on time after the reopen too');
});

t.test('pending counts follow a model through random adds, deliveries, drops, expiry and reopens', async (t) => {
  const seed = testSeed();
  t.comment(`seed ${seed} (rerun with RINGKV_SEED=${seed})`);
  const rnd = new SeededRandom(seed);
  const fsys = new MemoryFileSystem();
  const clock = new ManualClock();
  const age = 10_000;
  const openStore = () => HintStore.open('/hints', { maxHintBytes: 1 << 30, maxHintAgeMs: age, sync: 'none', clock, log: quiet, fs: fsys });
  let s = await openStore();
  t.teardown(() => s.close());
  // target -> key -> { expiry, ts } of the live hint
  const model = new Map<string, Map<string, { expiresAtMs: number; ts: number }>>();
  const live = (tg: string) => [...(model.get(tg) ?? new Map()).entries()].filter(([, h]) => h.expiresAtMs > clock.nowMs());
  const expected = () => {
    const out: Record<string, number> = {};
    for (const tg of model.keys()) if (live(tg).length > 0) out[tg] = live(tg).length;
    return out;
  };
  const targets = ['n1', 'n2', 'n3'];
  let ts = 1;
  let mismatches = 0;
  for (let step = 0; step < 400; step++) {
    const tg = rnd.pick(targets);
    const key = `k${rnd.int(8)}`;
    const r = rnd.int(100);
    let what: string;
    if (r < 45) {
      what = `add ${tg}/${key}`;
      await s.add(tg, k(key), obj(`v${ts}`, ++ts));
      if (!model.has(tg)) model.set(tg, new Map());
      model.get(tg)!.set(key, { expiresAtMs: clock.nowMs() + age, ts });
    } else if (r < 65) {
      what = `deliver ${tg}`;
      const batch = await s.list(tg, 1 + rnd.int(3));
      for (const h of batch) {
        await s.remove(tg, h.key, h.obj);
        model.get(tg)!.delete(h.key.toString());
      }
    } else if (r < 85) {
      const ms = rnd.int(age / 2);
      what = `advance ${ms} ms`;
      clock.advance(ms);
    } else if (r < 90) {
      const all = rnd.int(2) === 0;
      what = all ? 'drop all' : `drop ${tg}`;
      const expectDropped = all ? targets.reduce((n, x) => n + live(x).length, 0) : live(tg).length;
      const n = await s.drop(all ? undefined : tg);
      if (n !== expectDropped) t.equal(n, expectDropped, `step ${step}: ${what} dropped`);
      if (all) model.clear();
      else model.delete(tg);
    } else {
      what = 'reopen';
      await s.close();
      s = await openStore();
    }
    const got = counts(s);
    const sorted = (o: Record<string, number>) => JSON.stringify(Object.entries(o).sort());
    if (sorted(got) !== sorted(expected()) && mismatches++ < 3) t.same(got, expected(), `step ${step} after ${what}`);
    if (s.totalPending !== Object.values(expected()).reduce((a, b) => a + b, 0) && mismatches++ < 3) t.fail(`step ${step}: totalPending ${s.totalPending}`);
  }
  t.equal(mismatches, 0, 'the counts matched the model after every step');
});

/** 100 three-byte characters: 100 UTF-16 units, 300 UTF-8 bytes. */
const ID_300_BYTES = '\u20ac'.repeat(100);
/** 85 three-byte characters: 255 UTF-8 bytes, the longest id a hint key holds. */
const ID_255_BYTES = '\u20ac'.repeat(85);

async function rejects(t: Test, p: Promise<unknown>, code: string, what: string): Promise<void> {
  try {
    await p;
    t.fail(`${what}: expected ${code}, but it succeeded`);
  } catch (err) {
    // The hint store's own checks throw SDK errors; what its engine refuses comes as the
    // engine's error with the same code (mapped to the SDK's at the server's boundary).
    t.ok((err instanceof RingkvError || err instanceof EngineError) && err.code === code, `${what}: ${code} (got ${(err as Error).message})`);
  }
}

t.test('target ids are checked in UTF-8 bytes: a 300-byte id is refused, nothing stored', async (t) => {
  t.equal(ID_300_BYTES.length, 100);
  t.equal(Buffer.byteLength(ID_300_BYTES), 300);
  const dir = tmpDir(t);
  const clock = new ManualClock();
  const s = await open(t, dir, clock);
  await rejects(t, s.add(ID_300_BYTES, k('a'), obj('1')), 'INVALID_ARGUMENT', '300-byte target');
  await rejects(t, s.add('', k('a'), obj('1')), 'INVALID_ARGUMENT', 'empty target');
  await rejects(t, s.add('n\ud800', k('a'), obj('1')), 'INVALID_ARGUMENT', 'a lone surrogate (it would read back as U+FFFD)');
  t.same(counts(s), {}, 'nothing counted');
  let n = 0;
  for await (const _ of s.engine.iterate()) n++;
  t.equal(n, 0, 'the engine holds no record at all');
});

t.test('list, remove and drop check the target id too: an empty id is not "every target"', async (t) => {
  const clock = new ManualClock();
  const s = await open(t, tmpDir(t), clock);
  await s.add('n1', k('a'), obj('1'));
  const [h] = await s.list('n1', 1);
  await rejects(t, s.drop(''), 'INVALID_ARGUMENT', "drop('')");
  await rejects(t, s.drop(ID_300_BYTES), 'INVALID_ARGUMENT', 'drop(300-byte id)');
  await rejects(t, s.list(ID_300_BYTES, 10), 'INVALID_ARGUMENT', 'list(300-byte id)');
  await rejects(t, s.remove(ID_300_BYTES, k('a'), h!.obj), 'INVALID_ARGUMENT', 'remove(300-byte id)');
  t.same(counts(s), { n1: 1 }, 'the hint for n1 is still there');
});

t.test('a 255-byte target id and a 256-byte key round-trip through a reopen intact', async (t) => {
  const dir = tmpDir(t);
  const clock = new ManualClock();
  const longKey = Buffer.alloc(256, 0xfe);
  const s1 = await HintStore.open(dir, { maxHintBytes: 1 << 20, maxHintAgeMs: HOUR, sync: 'always', clock, log: quiet });
  await s1.add(ID_255_BYTES, longKey, obj('long'));
  await s1.add(ID_255_BYTES, k('a'), obj('short'));
  await s1.add('n1', k('a'), obj('other'));
  await s1.close();
  const s2 = await open(t, dir, clock);
  t.same(counts(s2), { [ID_255_BYTES]: 2, n1: 1 }, 'the id read back from disk is the id written');
  const hints = await s2.list(ID_255_BYTES, 10);
  t.same(
    hints.map((h) => [h.target, h.key, h.obj.siblings[0]!.value.toString()]),
    [
      [ID_255_BYTES, k('a'), 'short'],
      [ID_255_BYTES, longKey, 'long'],
    ],
  );
  for (const h of hints) await s2.remove(h.target, h.key, h.obj);
  t.same(counts(s2), { n1: 1 }, 'both delivered');
});

/** Adds 100-byte hints for `target` until the store refuses one; returns how many it took. */
async function fill(t: Test, s: HintStore, target: string, from = 0): Promise<number> {
  for (let i = from; i < from + 10_000; i++) {
    try {
      await s.add(target, k(`key-${String(i).padStart(5, '0')}`), obj('x'.repeat(100)));
    } catch (err) {
      t.equal((err as RingkvError).code, 'UNAVAILABLE', `refused with UNAVAILABLE after ${i - from} hints`);
      return i - from;
    }
  }
  throw new Error('the store never filled up');
}

t.test('byte budget: a full store refuses hints, and takes them again once its hints expire', async (t) => {
  const clock = new ManualClock();
  const s = await open(t, tmpDir(t), clock, { maxHintBytes: 16 * 1024 });
  const taken = await fill(t, s, 'n1');
  t.ok(taken > 10, `${taken} hints fit`);
  t.equal(s.counters.refused, 1);
  clock.advance(HOUR);
  t.equal(s.totalPending, 0, 'all expired');
  t.equal(await fill(t, s, 'n1', taken), taken, 'expired hints no longer take up the budget');
});

t.test('byte budget: delivered hints free their bytes', async (t) => {
  const clock = new ManualClock();
  const s = await open(t, tmpDir(t), clock, { maxHintBytes: 16 * 1024 });
  const taken = await fill(t, s, 'n1');
  for (const h of await s.list('n1', 10_000)) await s.remove('n1', h.key, h.obj);
  t.equal(s.totalPending, 0);
  t.equal(await fill(t, s, 'n2'), taken, 'the delivered hints left room for as many');
});

t.test('byte budget: it bounds the bytes of the live hints; a rewrite of a held hint is taken when full', async (t) => {
  const clock = new ManualClock();
  const max = 16 * 1024;
  const s = await open(t, tmpDir(t), clock, { maxHintBytes: max });
  const taken = await fill(t, s, 'n1');
  const per = s.pendingBytes / taken;
  t.ok(s.pendingBytes <= max, `${s.pendingBytes} bytes held, within ${max}`);
  t.ok(s.pendingBytes + per > max, 'and one more hint would not fit');
  await s.add('n1', k('key-00000'), obj('y'.repeat(100), 2000));
  t.equal(s.totalPending, taken, 'a newer version of a held hint replaces it even when full');
  await rejects(t, s.add('n1', k('key-00001'), obj('y'.repeat(4000), 2000)), 'UNAVAILABLE', 'but not one that grows past the budget');
});

t.test('byte budget: concurrent adds cannot overshoot it together', async (t) => {
  const clock = new ManualClock();
  const max = 16 * 1024;
  const s = await open(t, tmpDir(t), clock, { maxHintBytes: max });
  const results = await Promise.allSettled(Array.from({ length: 400 }, (_, i) => s.add('n1', k(`c${i}`), obj('z'.repeat(100)))));
  const ok = results.filter((r) => r.status === 'fulfilled').length;
  t.ok(ok > 10 && ok < 400, `${ok} of 400 concurrent adds taken`);
  t.equal(s.totalPending, ok);
  t.ok(s.pendingBytes <= max, `${s.pendingBytes} bytes held, within ${max}`);
});

t.test('limits: an age limit of 0 (or beyond 10 years) is refused when the store opens', async (t) => {
  const clock = new ManualClock();
  for (const maxHintAgeMs of [0, -1, Number.NaN, 1e300]) {
    await rejects(t, HintStore.open(tmpDir(t), { maxHintBytes: 1 << 20, maxHintAgeMs, sync: 'always', clock, log: quiet }), 'INVALID_ARGUMENT', `maxHintAgeMs ${maxHintAgeMs}`);
  }
  await rejects(t, HintStore.open(tmpDir(t), { maxHintBytes: -1, maxHintAgeMs: HOUR, sync: 'always', clock, log: quiet }), 'INVALID_ARGUMENT', 'maxHintBytes -1');
});

t.test('add / list / remove: hints per target in key order, never mixed with another target', async (t) => {
  const clock = new ManualClock();
  const s = await open(t, tmpDir(t), clock);
  // 'n1' is a prefix of 'n10' and 'n1x': the length byte keeps their ranges apart.
  for (const key of ['m', 'b', 'z', 'a\u00ff', 'a']) await s.add('n1', k(key), obj(`n1:${key}`));
  await s.add('n10', k('a'), obj('n10:a'));
  await s.add('n1x', k('a'), obj('n1x:a'));
  await s.add('n', k('zz'), obj('n:zz'));
  t.same(keys(await s.list('n1', 100)), ['a', 'a\u00ff', 'b', 'm', 'z'], 'bytewise key order, only n1');
  t.same(values(await s.list('n10', 100)), ['n10:a']);
  t.same(values(await s.list('n', 100)), ['n:zz']);
  t.same(await s.list('n2', 100), [], 'a target with no hints');
  t.same(keys(await s.list('n1', 2)), ['a', 'a\u00ff'], 'limit');
  for (const h of await s.list('n1', 2)) await s.remove('n1', h.key, h.obj);
  t.same(keys(await s.list('n1', 2)), ['b', 'm'], 'the next batch starts after what was acknowledged');
  t.same(counts(s), { n1: 3, n10: 1, n1x: 1, n: 1 });
  t.same((await s.list('n1', 1))[0]?.target, 'n1');
});

t.test('add merges hints for the same key: newest wins (lww), concurrent siblings are kept (dvv), deletes too', async (t) => {
  const clock = new ManualClock();
  const s = await open(t, tmpDir(t), clock);
  await s.add('n1', k('lww'), obj('newer', 2000));
  await s.add('n1', k('lww'), obj('older', 1000));
  await s.add('n1', k('dvv'), dvvObj('from-a', 'a', 1));
  await s.add('n1', k('dvv'), dvvObj('from-b', 'b', 1));
  await s.add('n1', k('del'), obj('value', 1000));
  await s.add('n1', k('del'), deletion(3000));
  const hs = await s.list('n1', 10);
  t.same(keys(hs), ['del', 'dvv', 'lww']);
  t.same(values(hs), ['<deleted>', 'from-a|from-b', 'newer']);
  t.same(hs[1]!.obj.context, { a: 1, b: 1 }, 'the contexts joined');
  t.same([hs[1]!.obj.siblings[0]!.contentType, hs[1]!.obj.siblings[0]!.flags], ['text/plain', 3], 'metadata kept');
  t.same(counts(s), { n1: 3 }, 'one hint per key');
  t.equal(s.counters.stored, 6);
});

t.test('durable: hints, deletions and siblings come back after close and reopen on disk', async (t) => {
  const dir = tmpDir(t);
  const clock = new ManualClock();
  const opts = { maxHintBytes: 1 << 20, maxHintAgeMs: HOUR, sync: 'always' as const, clock, log: quiet };
  const s1 = await HintStore.open(dir, opts);
  for (let i = 0; i < 50; i++) await s1.add(`n${i % 3}`, k(`key-${String(i).padStart(2, '0')}`), obj(`v${i}`));
  await s1.add('n0', k('dvv'), dvvObj('from-a', 'a', 1));
  await s1.add('n0', k('dvv'), dvvObj('from-b', 'b', 1));
  await s1.add('n1', k('del'), deletion(5000));
  const before = await Promise.all(['n0', 'n1', 'n2'].map((tg) => s1.list(tg, 100)));
  await s1.close();
  t.ok(fs.readdirSync(dir).some((f) => f.endsWith('.sst')), 'closing flushed the hints to a table');
  const s2 = await open(t, dir, clock);
  t.same(counts(s2), { n0: 18, n1: 18, n2: 16 });
  const after = await Promise.all(['n0', 'n1', 'n2'].map((tg) => s2.list(tg, 100)));
  t.same(after.map(values), before.map(values), 'same values');
  t.same(after.map(keys), before.map(keys), 'same keys');
  t.same(values(await s2.list('n1', 100)).filter((v) => v === '<deleted>').length, 1, 'the deletion is still a deletion');
  const h = (await s2.list('n2', 1))[0]!;
  await s2.remove('n2', h.key, h.obj);
  t.same(counts(s2), { n0: 18, n1: 18, n2: 15 }, 'a hint read back from disk is acknowledged by its version');
});

t.test('a torn last record after a crash: the hints before it are intact and counted, the store takes new ones', async (t) => {
  const fsys = new MemoryFileSystem();
  const clock = new ManualClock();
  const opts = { maxHintBytes: 1 << 20, maxHintAgeMs: HOUR, sync: 'always' as const, clock, log: quiet };
  const s1 = await HintStore.open('/hints', { ...opts, fs: fsys });
  for (let i = 0; i < 5; i++) await s1.add(i % 2 ? 'n1' : 'n2', k(`key-${i}`), obj(`v${i}`));
  // The sixth hint's WAL frame is written but its sync fails: it was never acknowledged, and
  // power is lost with part of the frame on disk.
  let crashed: MemoryFileSystem | undefined;
  fsys.faultHook = (op, file) => {
    if (op === 'sync' && file.endsWith('.log')) {
      // What the disk holds when the power goes during that fsync: the first 9 bytes of the frame.
      crashed ??= fsys.powerCut({ files: (f) => (f.endsWith('.log') ? { ops: 0, tornBytes: 9 } : { ops: 0 }) });
      throw new Error('injected: power lost during fsync');
    }
  };
  await rejects(t, s1.add('n1', k('key-5'), obj('v5')), 'WRITE_FAILED', 'the unsynced hint');
  fsys.faultHook = undefined;
  if (!crashed) throw new Error('the WAL sync never ran');
  await s1.close().catch(() => undefined);
  const s2 = await HintStore.open('/hints', { ...opts, fs: crashed });
  t.teardown(() => s2.close());
  t.ok(s2.engine.stats().recoveredTornTailBytes > 0, 'the engine found and cut a torn tail');
  t.same(counts(s2), { n1: 2, n2: 3 }, 'the five acknowledged hints, counted');
  t.same(keys(await s2.list('n1', 10)), ['key-1', 'key-3'], 'the torn one is gone');
  t.same(values(await s2.list('n2', 10)), ['v0', 'v2', 'v4']);
  await s2.add('n1', k('key-5'), obj('v5 again'));
  t.same(counts(s2), { n1: 3, n2: 3 }, 'and it takes hints again');
});

t.test('concurrent adds and a remove of one key are serialized: no version is lost, counted once', async (t) => {
  const clock = new ManualClock();
  const s = await open(t, tmpDir(t), clock);
  const order = Array.from({ length: 40 }, (_, i) => i).sort((a, b) => ((a * 7919) % 41) - ((b * 7919) % 41));
  await Promise.all(order.map((i) => s.add('n1', k('hot'), dvvObj(`v${i}`, `w${i}`, 1))));
  const [h] = await s.list('n1', 10);
  t.equal(h?.obj.siblings.length, 40, 'all forty concurrent siblings merged into the hint');
  t.same(counts(s), { n1: 1 });
  await Promise.all([s.remove('n1', k('hot'), h!.obj), s.add('n1', k('hot'), dvvObj('late', 'w99', 1))]);
  const left = await s.list('n1', 10);
  t.ok(left.length === 1 && left[0]!.obj.siblings.some((x) => x.value.toString() === 'late'), 'the late sibling survives the acknowledgement of the older version');
  t.same(counts(s), { n1: 1 });
});
