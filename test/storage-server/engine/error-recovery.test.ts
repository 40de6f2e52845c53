// The engine heals after transient I/O errors, on the in-memory file system with injected
// errnos: a full disk (ENOSPC, after a short write) or no descriptors (EMFILE) refuse
// writes until a background probe succeeds, with no reopen; a failed fdatasync (EIO) is
// recovered by an internal reopen from what is durable, never syncing that file again; a
// failed flush keeps its memtable and retries; a failed compaction is retried later; a
// fatal error, or a recovery failing again and again, stops writes for an operator. After
// each, a power cut loses no acknowledged write.

import t from 'tap';
import type { Test } from 'tap';
import type { EngineError } from '../../../storage-server/engine/engine-errors.js';
import { Engine, MemoryFileSystem } from '../../../storage-server/engine/index.js';
import type { EngineOptions } from '../../../storage-server/engine/index.js';
import { readManifest } from '../../../storage-server/engine/manifest.js';

const DIR = '/db';
const key = (i: number) => Buffer.from(`key-${String(i).padStart(5, '0')}`);
const val = (i: number) => Buffer.from(`value-${i}-`.padEnd(200, String.fromCharCode(97 + (i % 26))));
/** Fast retries, so the tests wait milliseconds for a probe, not seconds. */
const quick: EngineOptions = { errorRetryInitialMs: 2, errorRetryMaxMs: 20, compactionRetryMaxMs: 20 };

async function open(fs: MemoryFileSystem, extra: EngineOptions = {}): Promise<Engine> {
  await fs.mkdirp(DIR);
  return Engine.open(DIR, { fs, ...quick, ...extra });
}

/** Polls `cond` every 2 ms for up to 10 s (generous: a loaded machine must not fail it). */
async function waitFor(t: Test, what: string, cond: () => boolean): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!cond() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 2));
  t.ok(cond(), what);
}

/** Puts keys [from, to) concurrently; returns the ones acknowledged and the errors of the others. */
async function putAll(e: Engine, from: number, to: number): Promise<{ acked: number[]; errors: EngineError[]; failed: number[] }> {
  const res = await Promise.allSettled(Array.from({ length: to - from }, (_, j) => e.put(key(from + j), val(from + j))));
  const acked: number[] = [];
  const failed: number[] = [];
  const errors: EngineError[] = [];
  res.forEach((r, j) => {
    if (r.status === 'fulfilled') acked.push(from + j);
    else {
      failed.push(from + j);
      errors.push(r.reason as EngineError);
    }
  });
  return { acked, errors, failed };
}

/** Reopens `fs` after power cuts (pessimistic and seeded) and checks that every acknowledged write is there. */
async function survivesPowerCuts(t: Test, fs: MemoryFileSystem, acked: number[], extra: EngineOptions = {}): Promise<void> {
  for (const seed of [undefined, 1, 2, 3]) {
    const cut = fs.powerCut(seed === undefined ? {} : { seed });
    const e = await Engine.open(DIR, { fs: cut, ...extra });
    let missing = 0;
    for (const i of acked) if (!(await e.get(key(i)))?.value.equals(val(i))) missing++;
    t.equal(missing, 0, `power cut (${seed === undefined ? 'pessimistic' : `seed ${seed}`}): all ${acked.length} acknowledged writes reopen`);
    await e.close();
  }
}

t.test('ENOSPC on the WAL append (after a short write): writes refused, then resumed with no reopen once space is back', async (t) => {
  const fs = new MemoryFileSystem();
  const e = await open(fs);
  const acked = (await putAll(e, 0, 50)).acked;
  t.equal(acked.length, 50);
  t.equal(e.health().state, 'ok');

  // The disk is full: every WAL write stops after 7 bytes with ENOSPC (probes' headers too).
  const clear = fs.injectFault({ op: 'write', file: /\.log$/, errno: 'ENOSPC', partialBytes: 7 });
  const during = await putAll(e, 50, 80);
  t.equal(during.acked.length, 0, 'no write is acknowledged while the disk is full');
  t.ok(
    during.errors.every((err) => err.code === 'WRITE_REFUSED' && err.notApplied === true),
    `every write is refused as not applied (${[...new Set(during.errors.map((x) => x.code))].join(', ')})`,
  );
  const h = e.health();
  t.equal(h.state, 'degraded-retrying', 'state: degraded-retrying');
  t.ok(h.writesRefused, 'writes are refused');
  t.same(h.retrying, ['wal'], 'the WAL is being retried');
  t.equal(h.lastError?.errno, 'ENOSPC', 'the last error names ENOSPC');
  t.ok(h.sinceMs !== null && h.errors['wal:ENOSPC']! >= 1, 'since when, and counted by kind');
  const fast = Date.now();
  const r = await e.put(key(90), val(90)).catch((err: EngineError) => err);
  t.equal((r as EngineError).code, 'WRITE_REFUSED', 'a new write fails fast with WRITE_REFUSED');
  t.ok(Date.now() - fast < 1000, 'without waiting for the disk');
  await waitFor(t, 'the probe keeps retrying in the background', () => e.health().retries >= 3);
  t.equal(e.health().state, 'degraded-retrying', 'still degraded while the disk is full');

  // Flushes are held, so the segment the short writes went to is still there (not the last
  // one any more) when the crashes below are taken.
  let release!: () => void;
  const held = new Promise<void>((r) => (release = r));
  fs.delayHook = (_op, file) => (file.endsWith('.sst') ? held : undefined);
  clear();
  await waitFor(t, 'writes resume by themselves once space is back', () => e.health().state === 'ok');
  t.equal(e.health().autoResumes, 1, 'counted as an automatic resume');
  t.notOk(e.failed, 'the engine never gave up');
  const after = await putAll(e, 100, 150);
  t.equal(after.acked.length, 50, 'the same engine (no reopen) acknowledges writes again');
  acked.push(...after.acked);
  for (const i of during.failed) t.equal(await e.get(key(i)), undefined, `refused write ${i} is absent`);
  t.ok((await fs.readdir(DIR)).filter((f) => f.endsWith('.log')).length >= 2, 'the old segment waits for its flush');
  // A process crash keeps the short writes' bytes: the old segment must end on a frame boundary.
  const crashed = await Engine.open(DIR, { fs: fs.processCrash() });
  for (const i of acked) if (!(await crashed.get(key(i)))?.value.equals(val(i))) t.fail(`write ${i} lost after a process crash`);
  await crashed.close();
  t.pass('a process crash reopens with every acknowledged write');
  await survivesPowerCuts(t, fs, acked);
  fs.delayHook = undefined;
  release();
  await e.close();
  // A clean reopen too: the short write left no damage before a later segment.
  const e2 = await Engine.open(DIR, { fs });
  for (const i of acked) if (!(await e2.get(key(i)))?.value.equals(val(i))) t.fail(`write ${i} lost`);
  await e2.close();
});

t.test('EMFILE when creating the next WAL segment: the rolling write is refused, writes resume when descriptors are back', async (t) => {
  const fs = new MemoryFileSystem();
  const e = await open(fs, { memtableSizeBytes: 4096, memtableJitterPercent: 0, autoCompaction: false });
  const clear = fs.injectFault({ op: 'open', file: /\.log$/, errno: 'EMFILE' });
  const acked: number[] = [];
  let refusedAt = -1;
  for (let i = 0; i < 100 && refusedAt < 0; i++) {
    try {
      await e.put(key(i), val(i));
      acked.push(i);
    } catch (err) {
      t.equal((err as EngineError).code, 'WRITE_REFUSED', `write ${i}, which needed a new segment, is refused: ${(err as Error).message}`);
      t.equal((err as EngineError).notApplied, true, 'as not applied');
      refusedAt = i;
    }
  }
  t.ok(refusedAt > 0, 'writes went on until the memtable was full');
  t.equal(e.health().state, 'degraded-retrying');
  t.equal(e.health().lastError?.errno, 'EMFILE', 'the last error names EMFILE');
  await t.rejects(e.put(key(500), val(500)), { code: 'WRITE_REFUSED' }, 'new writes fail fast');
  clear();
  await waitFor(t, 'writes resume once descriptors are back', () => e.health().state === 'ok');
  const more = await putAll(e, 1000, 1040);
  t.equal(more.acked.length, 40, 'the memtable rolled and writes are acknowledged again');
  acked.push(...more.acked);
  t.equal(await e.get(key(refusedAt)), undefined, 'the refused write is absent');
  const st = e.stats();
  t.ok(st.flushes + st.immutableMemtables >= 1, `the memtable rolled onto a new segment (${st.flushes} flushed)`);
  await survivesPowerCuts(t, fs, acked);
  await e.close();
});

t.test('EIO on fdatasync: the group fails with unknown outcome, the write path is reopened from what is durable, the file is never synced again', async (t) => {
  const fs = new MemoryFileSystem();
  const e = await open(fs);
  const acked = (await putAll(e, 0, 40)).acked;
  const failedSegment = (await fs.readdir(DIR)).find((f) => f.endsWith('.log'))!;
  // Syncs of the segment from now on: the first one fails; there must be no other.
  let syncs = 0;
  fs.faultHook = (op, file) => {
    if (op === 'sync' && file.endsWith(failedSegment)) syncs++;
  };
  fs.injectFault({ op: 'sync', file: failedSegment, errno: 'EIO', times: 1 });
  // A group in flight when the fsync fails: its writes get WRITE_FAILED (they may or may not be durable).
  const group = await putAll(e, 40, 60);
  t.equal(group.acked.length, 0, 'no write of the failed group is acknowledged');
  t.ok(
    group.errors.every((err) => err.code === 'WRITE_FAILED' && err.notApplied === false),
    `they failed with WRITE_FAILED, outcome unknown (${[...new Set(group.errors.map((x) => `${x.code}`))].join(', ')})`,
  );
  await waitFor(t, 'the write path is reopened internally', () => e.health().state === 'ok');
  t.equal(e.health().recoveries, 1, 'one recovery');
  t.equal(e.health().lastError?.errno, 'EIO', 'the last error is kept for the record');
  t.equal(syncs, 1, 'the segment whose fsync failed was never synced again');
  t.notOk((await fs.readdir(DIR)).includes(failedSegment), 'and it is gone once its durable part is in a table');
  for (const i of acked) if (!(await e.get(key(i)))?.value.equals(val(i))) t.fail(`acknowledged write ${i} lost`);
  for (const i of group.failed) t.equal(await e.get(key(i)), undefined, `failed write ${i} was not replayed (it was past the last successful sync)`);
  const after = await putAll(e, 100, 140);
  t.equal(after.acked.length, 40, 'writes resume on the same engine');
  acked.push(...after.acked);
  fs.faultHook = undefined;
  await survivesPowerCuts(t, fs, acked);
  await e.close();
});

t.test('a recovery that meets a full disk waits for space (not counted against it), then completes', async (t) => {
  const fs = new MemoryFileSystem();
  const e = await open(fs, { maxRecoveryHardFailures: 2 });
  const acked = (await putAll(e, 0, 30)).acked;
  fs.injectFault({ op: 'sync', file: /\.log$/, errno: 'EIO', times: 1 });
  const clearSpace = fs.injectFault({ op: 'write', file: /\.sst$/, errno: 'ENOSPC' });
  const group = await putAll(e, 30, 40);
  t.ok(group.errors.every((err) => err.code === 'WRITE_FAILED'), 'the group failed');
  await waitFor(t, 'the recovery retries while the disk is full', () => e.health().retries >= 4);
  t.equal(e.health().state, 'recovering', 'state: recovering');
  t.ok(e.health().writesRefused, 'writes refused meanwhile');
  await t.rejects(e.put(key(99), val(99)), { code: 'WRITE_REFUSED' });
  t.notOk(e.failed, 'soft errors do not make it give up');
  clearSpace();
  await waitFor(t, 'it completes once space is back', () => e.health().state === 'ok');
  acked.push(...(await putAll(e, 50, 60)).acked);
  t.equal(acked.length, 40);
  await survivesPowerCuts(t, fs, acked);
  await e.close();
});

t.test('a failed flush keeps the memtable and its WAL, and is retried; writes are refused only once the memtables are full', async (t) => {
  const fs = new MemoryFileSystem();
  const e = await open(fs, { memtableSizeBytes: 4096, memtableJitterPercent: 0, maxImmutableMemtables: 2, autoCompaction: false });
  const clear = fs.injectFault({ op: 'write', file: /\.sst$/, errno: 'ENOSPC' });
  const acked: number[] = [];
  let refusedAt = -1;
  for (let i = 0; i < 200 && refusedAt < 0; i++) {
    try {
      await e.put(key(i), val(i));
      acked.push(i);
    } catch (err) {
      t.equal((err as EngineError).code, 'WRITE_REFUSED', `write ${i} refused once the frozen memtables are full: ${(err as Error).message}`);
      refusedAt = i;
    }
  }
  t.ok(refusedAt > 30, `writes went on into new memtables while the flush failed (${refusedAt} acknowledged)`);
  const h = e.health();
  t.equal(h.state, 'degraded-retrying');
  t.ok(h.retrying.includes('flush'), 'the flush is being retried');
  t.ok(h.errors['flush:ENOSPC']! >= 1, 'flush errors counted by kind');
  await t.rejects(e.flush(), { code: 'WRITE_REFUSED' }, 'flush() says it is failing');
  const sstBefore = (await fs.readdir(DIR)).filter((f) => f.endsWith('.sst'));
  t.same(sstBefore, [], 'no partial table is left behind');
  await survivesPowerCuts(t, fs, acked);
  clear();
  await waitFor(t, 'the flush succeeds once space is back', () => e.health().state === 'ok');
  t.ok(e.stats().flushes >= 2, `${e.stats().flushes} memtables flushed`);
  acked.push(...(await putAll(e, 1000, 1050)).acked);
  await e.flush();
  const m = await readManifest(fs, DIR);
  const ssts = (await fs.readdir(DIR)).filter((f) => f.endsWith('.sst')).length;
  t.equal(ssts, m!.tables.length, 'every table on disk is named by the manifest');
  await survivesPowerCuts(t, fs, acked);
  await e.close();
});

t.test('a full disk under both the WAL and a flush: the WAL probe waits for the flush and both resume', async (t) => {
  const fs = new MemoryFileSystem();
  const e = await open(fs, { memtableSizeBytes: 4096, memtableJitterPercent: 0, maxImmutableMemtables: 1, autoCompaction: false });
  // Flushes are held: the first memtable freezes and waits, the next one fills a little.
  let release!: () => void;
  const held = new Promise<void>((r) => (release = r));
  fs.delayHook = (_op, file) => (file.endsWith('.sst') ? held : undefined);
  const acked: number[] = [];
  let i = 0;
  for (; e.stats().immutableMemtables === 0; i++) {
    await e.put(key(i), val(i));
    acked.push(i);
  }
  for (const end = i + 3; i < end; i++) {
    await e.put(key(i), val(i));
    acked.push(i);
  }
  const clearLog = fs.injectFault({ op: 'write', file: /\.log$/, errno: 'ENOSPC' });
  const clearSst = fs.injectFault({ op: 'write', file: /\.sst$/, errno: 'ENOSPC' });
  await t.rejects(e.put(key(900), val(900)), { code: 'WRITE_REFUSED' }, 'the WAL append is refused');
  // The probe must freeze the memtable, but the frozen one waits for its flush, which now fails.
  fs.delayHook = undefined;
  release();
  await waitFor(t, 'the WAL probe and the flush are both retried', () => {
    const h = e.health();
    return h.retrying.includes('wal') && h.retrying.includes('flush') && h.retries >= 6;
  });
  clearLog();
  clearSst();
  await waitFor(t, 'both resume once space is back', () => e.health().state === 'ok');
  acked.push(...(await putAll(e, 1000, 1040)).acked);
  t.equal(acked.length, acked.filter((i) => i < 1000).length + 40, 'writes are acknowledged again');
  await survivesPowerCuts(t, fs, acked);
  await e.close();
});

t.test('a failed compaction is dropped and retried later; nothing is lost', async (t) => {
  const fs = new MemoryFileSystem();
  let e = await open(fs, { autoCompaction: false });
  const acked: number[] = [];
  for (let r = 0; r < 3; r++) {
    acked.push(...(await putAll(e, r * 100, r * 100 + 50)).acked);
    await e.flush();
  }
  await e.close();
  t.equal((await readManifest(fs, DIR))!.tables.length, 3, 'three tables');
  const clear = fs.injectFault({ op: 'write', file: /\.sst$/, errno: 'ENOSPC' });
  e = await open(fs, { autoCompaction: true, compactionTriggerTables: 2 });
  await waitFor(t, 'the compaction failed', () => e.stats().compactionErrors >= 1);
  const h = e.health();
  t.equal(h.state, 'degraded-retrying');
  t.same(h.retrying, ['compaction']);
  t.notOk(h.writesRefused, 'writes are still accepted');
  acked.push(...(await putAll(e, 1000, 1010)).acked);
  t.equal(acked.length, 160);
  await waitFor(t, 'and is retried', () => e.stats().compactionErrors >= 2);
  clear();
  await waitFor(t, 'once space is back it succeeds', () => e.stats().compactions >= 1 && e.health().state === 'ok');
  for (const i of acked) if (!(await e.get(key(i)))?.value.equals(val(i))) t.fail(`write ${i} lost`);
  await survivesPowerCuts(t, fs, acked);
  await e.close();
});

t.test('a fatal error (EROFS), or a recovery failing again and again, stops writes until an operator reopens', async (t) => {
  {
    const fs = new MemoryFileSystem();
    const e = await open(fs);
    const acked = (await putAll(e, 0, 20)).acked;
    const clear = fs.injectFault({ op: 'write', file: /\.log$/, errno: 'EROFS' });
    await t.rejects(e.put(key(50), val(50)), { code: 'WRITE_FAILED' });
    t.equal(e.health().state, 'failed', 'state: failed');
    t.ok(e.failed, 'the engine reports it');
    clear();
    await new Promise((r) => setTimeout(r, 50));
    await t.rejects(e.put(key(51), val(51)), { code: 'WRITE_FAILED' }, 'no retry brings it back');
    await e.close();
    const e2 = await Engine.open(DIR, { fs });
    for (const i of acked) if (!(await e2.get(key(i)))?.value.equals(val(i))) t.fail(`write ${i} lost`);
    await e2.put(key(52), val(52));
    t.pass('after a reopen writes work');
    await e2.close();
  }
  {
    const fs = new MemoryFileSystem();
    const e = await open(fs, { maxRecoveryHardFailures: 3 });
    const acked = (await putAll(e, 0, 20)).acked;
    const clear = fs.injectFault({ op: 'sync', errno: 'EIO' }); // every fsync fails
    await t.rejects(e.put(key(50), val(50)), { code: 'WRITE_FAILED' });
    await waitFor(t, 'three failed recoveries make it give up', () => e.health().state === 'failed');
    t.ok(e.health().errors['recovery:EIO']! >= 3, 'the failed recoveries are counted');
    clear();
    await e.close();
    const e2 = await Engine.open(DIR, { fs });
    for (const i of acked) if (!(await e2.get(key(i)))?.value.equals(val(i))) t.fail(`write ${i} lost`);
    t.pass('a reopen replays what was durable');
    await e2.close();
  }
});
