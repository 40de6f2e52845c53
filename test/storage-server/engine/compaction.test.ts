// Compaction copies records as raw bytes: every field must come through unchanged, the
// newest version must win across many inputs, and a damaged input block must stop the
// compaction (CORRUPTION) rather than be copied into the output. On the real file system
// the same holds on the worker thread, which close() also stops promptly.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import t from 'tap';
import type { Test } from 'tap';
import { ManualClock } from '../../../sdk/clock.js';
import { Engine, MemoryFileSystem, resolveEngineOptions } from '../../../storage-server/engine/index.js';
import type { EngineRecord } from '../../../storage-server/engine/index.js';

const b = (s: string) => Buffer.from(s);

function plain(r: EngineRecord | undefined) {
  return r && { ...r, key: r.key.toString('hex'), value: r.value.toString('hex'), version: r.version.toString('hex') };
}

t.test('every field survives compaction; the newest version wins across many inputs', async (t) => {
  const clock = new ManualClock();
  const fs = new MemoryFileSystem();
  await fs.mkdirp('/db');
  const e = await Engine.open('/db', { fs, clock, autoCompaction: false, blockSizeBytes: 512 });
  const keys = 300;
  const want = new Map<string, ReturnType<typeof plain>>();
  for (let round = 0; round < 6; round++) {
    for (let i = round; i < keys; i += 1 + round) {
      const key = b(`key-${String(i).padStart(4, '0')}`);
      if ((i + round) % 11 === 0) {
        await e.delete(key, { version: b(`del-${round}`) });
      } else {
        await e.put(key, Buffer.alloc((i * 7 + round) % 700, i + round), {
          version: Buffer.from([round, i & 0xff, 0, 0xff]),
          contentType: i % 3 === 0 ? 'application/json' : '',
          flags: i % 5 === 0 ? 0 : i * 1000 + round,
          ...(i % 4 === 0 ? { ttlMs: 3_600_000 } : {}),
          ...(i % 37 === 0 ? { ttlMs: 5 } : {}),
        });
      }
    }
    await e.flush();
  }
  t.equal(e.stats().tableCount, 6, 'six tables');
  clock.advance(10); // the 5 ms TTLs have expired: compaction turns them into tombstones
  for (let i = 0; i < keys; i++) {
    const key = b(`key-${String(i).padStart(4, '0')}`);
    want.set(key.toString(), await e.getRaw(key).then((r) => r && structuredClone(plain(r))));
  }
  await e.compact();
  t.equal(e.stats().tableCount, 1, 'one table after compact()');
  for (const [k, w] of want) {
    const got = plain(await e.getRaw(b(k)));
    if (w && !w.tombstone && w.expiresAtMs > 0 && w.expiresAtMs <= clock.nowMs()) {
      // An expired value is kept as a tombstone dated at its expiry.
      t.same(got && { tombstone: got.tombstone, expiresAtMs: got.expiresAtMs, seq: got.seq, version: got.version }, {
        tombstone: true,
        expiresAtMs: w.expiresAtMs,
        seq: w.seq,
        version: w.version,
      }, `${k}: expired value became a tombstone`);
    } else {
      t.same(got, w, `${k} unchanged`);
    }
  }
  let n = 0;
  let prev = '';
  for await (const r of e.iterate({ includeTombstones: true })) {
    const k = r.key.toString();
    t.ok(k > prev, 'scan in key order');
    prev = k;
    n++;
  }
  t.equal(n, [...want.values()].filter(Boolean).length, 'one record per key');
  await e.close();
});

t.test('a damaged block in a compaction input fails the compaction and keeps the inputs', async (t) => {
  const fs = new MemoryFileSystem();
  await fs.mkdirp('/db');
  let e = await Engine.open('/db', { fs, autoCompaction: false });
  for (let i = 0; i < 2000; i++) await e.put(b(`key-${i}`), b(`value-${i}`));
  await e.flush();
  for (let i = 0; i < 100; i++) await e.put(b(`more-${i}`), b(`value-${i}`));
  await e.flush();
  const first = e.stats().tables[0]!.file;
  await e.close();
  const file = `/db/${String(first).padStart(6, '0')}.sst`;
  const raw = Buffer.from(fs.rawFile(file));
  raw[5000]! ^= 0x20; // inside a data block of the first table
  fs.setRawFile(file, raw);
  e = await Engine.open('/db', { fs, autoCompaction: false });
  await t.rejects(e.compact(), { code: 'CORRUPTION', message: /checksum/ });
  t.equal(e.stats().tableCount, 2, 'the inputs are still the live tables');
  t.same((await e.get(b('more-5')))?.value, b('value-5'), 'undamaged data still reads');
  t.equal((await fs.readdir('/db')).filter((f) => f.endsWith('.sst')).length, 2, 'the unfinished output was deleted');
  await e.close();
});

// ---------------------------------------------------------------------------------------
// On the real file system compaction runs on the worker thread (compaction-worker.ts).

function tmpDir(t: Test): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ringkv-compaction-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

t.test('worker thread: the same result as the engine thread, tombstones and all', async (t) => {
  const results: Record<string, string[]> = {};
  for (const compactionThread of ['worker', 'engine'] as const) {
    const dir = tmpDir(t);
    const e = await Engine.open(dir, { compactionThread, autoCompaction: false, tombstoneGraceMs: 0 });
    for (let i = 0; i < 3000; i++) await e.put(b(`key-${String(i).padStart(5, '0')}`), b(`old-${i}`));
    await e.flush();
    for (let i = 0; i < 3000; i += 3) await e.delete(b(`key-${String(i).padStart(5, '0')}`));
    for (let i = 1; i < 3000; i += 3) await e.put(b(`key-${String(i).padStart(5, '0')}`), b(`new-${i}`));
    await e.flush();
    const before = e.stats().scanBlockReads;
    await e.compact();
    const s = e.stats();
    t.equal(s.tableCount, 1, `${compactionThread}: one table`);
    t.equal(s.compactionDroppedRecords, 1000, `${compactionThread}: the 1000 tombstones were dropped (bottommost, past grace)`);
    t.ok(s.scanBlockReads > before, `${compactionThread}: the compaction's block reads are counted`);
    const seen: string[] = [];
    for await (const r of e.iterate()) seen.push(`${r.key}=${r.value}`);
    results[compactionThread] = seen;
    t.equal(seen.length, 2000);
    t.same((await e.get(b('key-00004')))?.value, b('new-4'));
    t.equal(await e.get(b('key-00003')), undefined);
    await e.close();
    t.same(fs.readdirSync(dir).filter((f) => f.endsWith('.sst')).length, 1, `${compactionThread}: no table left behind`);
  }
  t.same(results.worker, results.engine, 'worker and engine thread agree');
});

/** Niceness of each thread of this process (Linux /proc), by thread id. */
function threadNiceness(): Map<string, number> {
  const out = new Map<string, number>();
  for (const tid of fs.readdirSync('/proc/self/task')) {
    try {
      const stat = fs.readFileSync(`/proc/self/task/${tid}/stat`, 'utf8');
      // Fields after "(comm) ": state is field 3, nice is field 19.
      out.set(tid, Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[16]));
    } catch {
      // The thread ended meanwhile.
    }
  }
  return out;
}

t.test('worker thread: runs at compactionThreadNice, the engine thread keeps its priority', { skip: process.platform !== 'linux' && 'per-thread niceness is read from Linux /proc' }, async (t) => {
  const base = os.getPriority();
  t.equal(base, 0, 'the test process runs at niceness 0');
  for (const nice of [10, 0]) {
    const dir = tmpDir(t);
    const before = new Set(threadNiceness().keys());
    const e = await Engine.open(dir, { autoCompaction: false, compactionThreadNice: nice });
    for (let i = 0; i < 500; i++) await e.put(b(`key-${i}`), b(`value-${i}`));
    await e.flush();
    for (let i = 0; i < 500; i++) await e.put(b(`key-${i}`), b(`again-${i}`));
    await e.flush();
    await e.compact();
    const niceThreads = [...threadNiceness()].filter(([tid, n]) => !before.has(tid) && n === 10);
    if (nice === 10) t.equal(niceThreads.length, 1, 'one new thread (the worker) runs at niceness 10');
    else t.equal(niceThreads.length, 0, 'with 0 no thread was reniced');
    t.equal(os.getPriority(), 0, 'the engine thread is still at niceness 0');
    t.equal((await e.get(b('key-7')))?.value.toString(), 'again-7');
    await e.close();
  }
  t.throws(() => resolveEngineOptions({ compactionThreadNice: 20 }), { code: 'INVALID_ARGUMENT' });
});

t.test('worker thread: a damaged input block fails compact() with CORRUPTION naming the file', async (t) => {
  const dir = tmpDir(t);
  let e = await Engine.open(dir, { autoCompaction: false });
  for (let i = 0; i < 2000; i++) await e.put(b(`key-${i}`), b(`value-${i}`));
  await e.flush();
  for (let i = 0; i < 100; i++) await e.put(b(`more-${i}`), b(`value-${i}`));
  await e.flush();
  const first = e.stats().tables[0]!.file;
  await e.close();
  const file = path.join(dir, `${String(first).padStart(6, '0')}.sst`);
  const raw = fs.readFileSync(file);
  raw[5000]! ^= 0x20;
  fs.writeFileSync(file, raw);
  e = await Engine.open(dir, { autoCompaction: false });
  await t.rejects(e.compact(), { code: 'CORRUPTION', message: /checksum/, details: { file } });
  t.equal(e.stats().tableCount, 2, 'the inputs are still the live tables');
  await e.close();
  t.equal(fs.readdirSync(dir).filter((f) => f.endsWith('.sst')).length, 2, 'the unfinished output was deleted');
});

t.test('worker thread: close() stops a long compaction promptly and leaves no partial table', async (t) => {
  const dir = tmpDir(t);
  // 64 KiB/s: compacting these ~3 MB would take most of a minute.
  const e = await Engine.open(dir, { compactionRateBytesPerSec: 64 * 1024, memtableSizeBytes: 256 * 1024, compactionTriggerTables: 4 });
  const value = Buffer.alloc(200, 'x');
  for (let i = 0; i < 16_000; i += 100) {
    await e.write(Array.from({ length: 100 }, (_, j) => ({ type: 'put' as const, key: b(`key-${String((i + j) * 7919 % 16_000).padStart(6, '0')}`), value })));
  }
  // Wait for a compaction to start writing its output (the worker runs at niceness 10: on a
  // busy machine that can take a while).
  const countOnDisk = () => fs.readdirSync(dir).filter((f) => f.endsWith('.sst')).length;
  for (const deadline = Date.now() + 20_000; countOnDisk() <= e.stats().tableCount && Date.now() < deadline; ) {
    await new Promise((r) => setTimeout(r, 20));
  }
  const onDisk = countOnDisk();
  t.ok(onDisk > e.stats().tableCount, `a compaction is writing its output (${onDisk} table files, ${e.stats().tableCount} live)`);
  const started = performance.now();
  await e.close();
  const ms = performance.now() - started;
  t.ok(ms < 2000, `close took ${ms.toFixed(0)} ms`);
  const e2 = await Engine.open(dir, { autoCompaction: false });
  const live = new Set(e2.stats().tables.map((x) => `${String(x.file).padStart(6, '0')}.sst`));
  t.same(fs.readdirSync(dir).filter((f) => f.endsWith('.sst') && !live.has(f)), [], 'every table file on disk is live');
  t.same((await e2.get(b('key-000123')))?.value, value);
  await e2.close();
});
