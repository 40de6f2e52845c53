// Engine behaviour beyond the model test: bad input rejected with typed errors and nothing
// written, a failed fsync recovered from, TTL and metadata, range-iterator bounds and snapshots,
// tombstone grace in compaction, and bounded block reads when data far exceeds the cache.

import t from 'tap';
import type { Test } from 'tap';
import { ManualClock } from '../../../sdk/clock.js';
import { EngineError } from '../../../storage-server/engine/engine-errors.js';
import { Engine, MemoryFileSystem } from '../../../storage-server/engine/index.js';
import type { EngineOptions } from '../../../storage-server/engine/index.js';

async function memEngine(extra: EngineOptions = {}): Promise<{ e: Engine; fs: MemoryFileSystem }> {
  const fs = new MemoryFileSystem();
  await fs.mkdirp('/db');
  const e = await Engine.open('/db', { fs, ...extra });
  return { e, fs };
}

async function expectCode(t: Test, p: Promise<unknown>, code: string): Promise<void> {
  try {
    await p;
    t.fail(`expected ${code}`);
  } catch (err) {
    t.equal((err as EngineError).code, code, `rejected with ${code}: ${(err as Error).message}`);
  }
}

const b = (s: string) => Buffer.from(s);

t.test('bad input is rejected with a typed error and nothing is written', async (t) => {
  const { e } = await memEngine();
  await expectCode(t, e.put(Buffer.alloc(0), b('v')), 'KEY_EMPTY');
  await expectCode(t, e.put(Buffer.alloc(257, 1), b('v')), 'KEY_TOO_LARGE');
  await e.put(Buffer.alloc(256, 1), b('v')); // exactly the limit is fine
  await expectCode(t, e.put(b('k'), Buffer.alloc(1024 * 1024 + 1)), 'VALUE_TOO_LARGE');
  await e.put(b('max'), Buffer.alloc(1024 * 1024, 7));
  t.equal((await e.get(b('max')))?.value.length, 1024 * 1024);
  await expectCode(t, e.put(b('k'), b('v'), { contentType: 'x'.repeat(300) }), 'INVALID_METADATA');
  await expectCode(t, e.put(b('k'), b('v'), { ttlMs: -1 }), 'INVALID_ARGUMENT');
  await expectCode(t, e.put(b('k'), b('v'), { flags: -3 }), 'INVALID_ARGUMENT');
  await expectCode(t, e.write([]), 'INVALID_ARGUMENT');
  await expectCode(t, e.write([{ type: 'nope' } as never]), 'INVALID_ARGUMENT');
  await expectCode(t, e.put(42 as never, b('v')), 'INVALID_ARGUMENT');
  const seqBefore = e.stats().lastSeq;
  // One bad operation rejects the whole batch: the good one is not written either.
  await expectCode(
    t,
    e.write([
      { type: 'put', key: b('good'), value: b('1') },
      { type: 'put', key: Buffer.alloc(300), value: b('2') },
    ]),
    'KEY_TOO_LARGE',
  );
  t.equal(await e.get(b('good')), undefined, 'nothing of the batch was written');
  t.equal(e.stats().lastSeq, seqBefore, 'no sequence numbers were used');
  await expectCode(t, e.get(Buffer.alloc(0)), 'KEY_EMPTY');
  await e.close();
  await expectCode(t, e.put(b('k'), b('v')), 'CLOSED');
});

t.test('bad options are rejected by name', async (t) => {
  const fs = new MemoryFileSystem();
  await fs.mkdirp('/db');
  await t.rejects(Engine.open('/db', { fs, sync: 'sometimes' as never }), { code: 'INVALID_ARGUMENT', message: /sync/ });
  await t.rejects(Engine.open('/db', { fs, memtableSizeBytes: 10 }), { code: 'INVALID_ARGUMENT', message: /memtableSizeBytes/ });
  await t.rejects(Engine.open('/db', { fs, blockCacheSizeBytes: -1 }), { code: 'INVALID_ARGUMENT', message: /blockCacheSizeBytes/ });
  await t.rejects(Engine.open('/nope', { fs, createIfMissing: false }), { code: 'INVALID_ARGUMENT' });
});

t.test('a failed fsync fails its write (outcome unknown); the engine reopens its write path by itself', async (t) => {
  const { e, fs } = await memEngine({ errorRetryInitialMs: 5 });
  await e.put(b('before'), b('1'));
  fs.faultHook = (op) => {
    if (op === 'sync') throw new Error('EIO: simulated fsync failure');
  };
  await expectCode(t, e.put(b('during'), b('2')), 'WRITE_FAILED');
  // While every sync fails, the recovery cannot make its table durable: writes are refused.
  await expectCode(t, e.put(b('refused'), b('x')), 'WRITE_REFUSED');
  t.notOk(e.failed, 'the engine has not given up');
  t.same((await e.get(b('before')))?.value, b('1'), 'reads still work');
  fs.faultHook = undefined;
  const deadline = Date.now() + 10_000;
  while (e.health().state !== 'ok' && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
  t.equal(e.health().state, 'ok', 'the write path was reopened without a restart');
  t.ok(e.health().recoveries >= 1, 'counted as a recovery');
  await e.put(b('after'), b('3'));
  t.same((await e.get(b('after')))?.value, b('3'), 'writes work again');
  t.same((await e.get(b('before')))?.value, b('1'), 'the acknowledged write is still there');
  t.equal(await e.get(b('during')), undefined, 'the failed write was not made durable, so it was not replayed');
  await e.close();
  const e2 = await Engine.open('/db', { fs });
  t.same((await e2.get(b('before')))?.value, b('1'));
  t.same((await e2.get(b('after')))?.value, b('3'));
  await e2.close();
});

t.test('TTL: invisible at once when expired, in memtable and in tables; metadata kept', async (t) => {
  const clock = new ManualClock();
  const { e } = await memEngine({ clock });
  await e.put(b('s1'), b('session'), { ttlMs: 1000, contentType: 'application/json', flags: 5, version: b('v1') });
  const r = await e.get(b('s1'));
  t.equal(r?.contentType, 'application/json');
  t.equal(r?.flags, 5);
  t.same(r?.version, b('v1'));
  t.equal(r?.expiresAtMs, clock.nowMs() + 1000);
  clock.advance(999);
  t.ok(await e.get(b('s1')), 'alive 1 ms before expiry');
  clock.advance(1);
  t.equal(await e.get(b('s1')), undefined, 'gone at expiry (memtable)');
  t.ok(await e.getRaw(b('s1')), 'getRaw still sees the expired version (for version merges)');
  await e.put(b('s2'), b('x'), { ttlMs: 500 });
  await e.flush();
  t.ok(await e.get(b('s2')), 'alive in a table');
  clock.advance(500);
  t.equal(await e.get(b('s2')), undefined, 'gone at expiry (table)');
  await e.put(b('s3'), b('x'), { expiresAtMs: clock.nowMs() + 10 });
  const seen: string[] = [];
  for await (const rec of e.iterate()) seen.push(rec.key.toString());
  t.same(seen, ['s3'], 'scans skip expired values');
  await e.close();
});

t.test('iterate: bounds, limit, tombstones on request, snapshot isolation', async (t) => {
  const { e } = await memEngine({ memtableSizeBytes: 4096 });
  for (let i = 0; i < 300; i++) await e.put(b(`k${String(i).padStart(3, '0')}`), b(`v${i}`));
  await e.delete(b('k010'));
  const keys = async (opts: Parameters<Engine['iterate']>[0]) => {
    const out: string[] = [];
    for await (const r of e.iterate(opts)) out.push(r.key.toString() + (r.tombstone ? '(del)' : ''));
    return out;
  };
  t.same(await keys({ gte: b('k008'), lt: b('k012') }), ['k008', 'k009', 'k011']);
  t.same(await keys({ gt: b('k008'), lte: b('k012') }), ['k009', 'k011', 'k012']);
  t.same(await keys({ gte: b('k008'), lt: b('k012'), includeTombstones: true }), ['k008', 'k009', 'k010(del)', 'k011']);
  t.same(await keys({ gte: b('k290'), limit: 3 }), ['k290', 'k291', 'k292']);
  t.equal((await keys({})).length, 299);
  t.ok(e.stats().tableCount + e.stats().immutableMemtables > 0, 'the data spans tables and memtables');

  // A scan started before writes does not see them, and a compaction under it does not break it.
  const it = e.iterate({ gte: b('k100'), lt: b('k200') });
  const first = await it.next();
  t.equal(first.value?.key.toString(), 'k100');
  await e.put(b('k150'), b('changed'));
  await e.delete(b('k160'));
  await e.compact();
  let n = 1;
  let k150 = '';
  for await (const r of it) {
    n++;
    if (r.key.toString() === 'k150') k150 = r.value.toString();
  }
  t.equal(n, 100, 'the scan saw the snapshot: 100 keys, k160 included');
  t.equal(k150, 'v150', 'and the old value of k150');
  t.equal((await e.get(b('k150')))?.value.toString(), 'changed');
  await e.close();
});

t.test('compaction drops tombstones only after the grace period and never resurrects', async (t) => {
  const clock = new ManualClock();
  const { e } = await memEngine({ clock, tombstoneGraceMs: 60_000, autoCompaction: false });
  await e.put(b('a'), b('old'));
  await e.flush(); // table 1 holds a=old
  await e.delete(b('a'));
  await e.put(b('b'), b('x'), { ttlMs: 1000 });
  await e.flush(); // table 2 holds the tombstone of a, and b with TTL
  clock.advance(2000); // b expired, the tombstone is not yet past grace
  await e.compact();
  let s = e.stats();
  t.equal(s.tableCount, 1);
  t.equal(s.tables[0]!.tombstones, 2, 'the tombstone and the expired value (now a tombstone) are kept within grace');
  t.equal(await e.get(b('a')), undefined);
  t.equal(await e.get(b('b')), undefined);
  clock.advance(60_000);
  await e.compact();
  s = e.stats();
  t.equal(s.tableCount, 0, 'past grace, a full compaction drops them all');
  t.equal(await e.get(b('a')), undefined, 'the old value did not come back');
  await e.close();
});

t.test('gets stay at about one block read when the data is far larger than the cache', async (t) => {
  const { e } = await memEngine({
    blockCacheSizeBytes: 16 * 1024,
    memtableSizeBytes: 64 * 1024,
    compactionRateBytesPerSec: 0,
  });
  const n = 20_000;
  const value = Buffer.alloc(100, 'v');
  // Keys in a scattered order, so that every table spans the whole key range and only the
  // bloom filters can rule tables out.
  for (let i = 0; i < n; i += 500) {
    const ops = [];
    for (let j = i; j < i + 500; j++) ops.push({ type: 'put' as const, key: b(`key${String((j * 7001) % n).padStart(8, '0')}`), value });
    await e.write(ops);
  }
  await e.flush();
  const s0 = e.stats();
  t.ok(s0.tableBytes > 10 * 16 * 1024 * 10, `data (${s0.tableBytes} B) is over 10x the block cache (16 KiB)`);
  t.ok(s0.tableCount >= 2, `several tables (${s0.tableCount})`);
  const reads0 = s0.blockReads;
  let found = 0;
  for (let i = 0; i < 2000; i++) {
    const k = (i * 7919) % n;
    if (await e.get(b(`key${String(k).padStart(8, '0')}`))) found++;
  }
  const hitReads = e.stats().blockReads - reads0;
  t.equal(found, 2000);
  t.ok(hitReads / 2000 <= 1.3, `block reads per get hit: ${(hitReads / 2000).toFixed(3)}`);
  const reads1 = e.stats().blockReads;
  for (let i = 0; i < 2000; i++) t.equal(await e.get(b(`key${String(i * 9).padStart(8, "0")}-missing`)), undefined);
  const missReads = e.stats().blockReads - reads1;
  t.ok(missReads / 2000 <= 0.6, `block reads per get miss: ${(missReads / 2000).toFixed(3)} (bloom filters)`);
  await e.close();
});

t.test('memtables freeze at jittered sizes, so replicas of the same data do not flush together', async (t) => {
  const flushedEntries = async (jitter: number): Promise<number[]> => {
    const { e } = await memEngine({ memtableSizeBytes: 64 * 1024, memtableJitterPercent: jitter, autoCompaction: false });
    // Identical writes, one at a time: without jitter every memtable freezes at the same count.
    for (let i = 0; i < 6000; i++) await e.put(Buffer.from(`key-${String(i).padStart(6, '0')}`), Buffer.alloc(40, 7));
    await new Promise((r) => setTimeout(r, 50));
    const counts = e.stats().tables.map((x) => x.entries);
    await e.close();
    return counts;
  };
  const fixed = await flushedEntries(0);
  t.ok(fixed.length >= 4, `${fixed.length} flushes without jitter`);
  const top = Math.max(...fixed);
  t.ok(Math.min(...fixed) >= top * 0.98, `without jitter every flushed memtable holds about the same count: ${fixed.join(', ')}`);
  const jittered = await flushedEntries(50);
  t.ok(jittered.length > fixed.length, `more, smaller flushes with up to 50% jitter (${jittered.length} vs ${fixed.length})`);
  t.ok(new Set(jittered).size >= 3, `the flushed counts differ: ${jittered.join(', ')}`);
  t.ok(Math.min(...jittered) >= top * 0.45 && Math.max(...jittered) <= top * 1.01, 'each within [50%, 100%] of the configured size');
  t.ok(Math.max(...jittered) - Math.min(...jittered) > top * 0.1, 'and they spread over more than a tenth of it');
  await t.rejects(memEngine({ memtableJitterPercent: 95 }), { code: 'INVALID_ARGUMENT' });
});
