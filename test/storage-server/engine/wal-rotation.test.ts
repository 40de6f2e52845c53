// WAL rotation on the in-memory file system: a power cut before every file-system operation
// of writes that roll segments and flush them, under each sync policy; a failed sync at
// rotation; segments rolling at the memtable's size; replay across several segments; and
// segments deleted only once their memtable is in a table and a durable manifest says so.
// The power-cut runs go twice: with new segments (format 2) and with segments preallocated
// and recycled (walRecycleSegments, format 3), whose files hold zeros or old frames past the log.
// (The healing of write errors in general: error-recovery.test.ts.)

import t from 'tap';
import type { Test } from 'tap';
import { Engine, MemoryFileSystem } from '../../../storage-server/engine/index.js';
import type { EngineOptions, FileCut, PendingFileOp, SyncPolicy } from '../../../storage-server/engine/index.js';
import { readManifest } from '../../../storage-server/engine/manifest.js';

const DIR = '/db';
const key = (i: number) => Buffer.from(`key-${String(i).padStart(4, '0')}`);
const val = (i: number) => Buffer.from(`value-${i}-`.padEnd(300, String.fromCharCode(97 + (i % 26))));

const small: EngineOptions = { memtableSizeBytes: 4096, memtableJitterPercent: 0, autoCompaction: false };

/** The worst a cut can do to the WAL: tear every file's last pending write, keep every directory change. */
const tearLastWrite = (_file: string, pending: readonly PendingFileOp[]): FileCut => {
  const last = pending[pending.length - 1]!;
  return last.kind === 'write' && last.bytes.length > 3 ? { ops: pending.length - 1, tornBytes: last.bytes.length - 3 } : { ops: pending.length };
};

interface Snapshot {
  fs: MemoryFileSystem;
  what: string;
  /** Writes acknowledged when the power went. */
  acked: number;
  /** Writes issued when the power went. */
  issued: number;
  /** Writes acknowledged before a flush() that had completed when the power went. */
  flushed: number;
}

/**
 * Runs `n` sequential puts of 300-byte values (a segment rolls about every 12) with a
 * flush() after put `flushAt`, and takes three power cuts before every file-system
 * operation: pessimistic, worst-tear (above) and seeded random.
 */
async function cutEverywhere(sync: SyncPolicy, n: number, flushAt: number, walRecycleSegments: number): Promise<Snapshot[]> {
  const fs = new MemoryFileSystem();
  await fs.mkdirp(DIR);
  const e = await Engine.open(DIR, { ...small, sync, fs, walRecycleSegments });
  const snaps: Snapshot[] = [];
  let acked = 0;
  let issued = 0;
  let flushed = 0;
  fs.faultHook = (op, file) => {
    const what = `before ${op} ${file.replace(`${DIR}/`, '')} (op ${fs.opCount})`;
    const at = { acked, issued, flushed };
    snaps.push({ fs: fs.powerCut(), what: `${what}, pessimistic`, ...at });
    snaps.push({ fs: fs.powerCut({ files: tearLastWrite, dirs: (_d, p) => p.length }), what: `${what}, worst tear`, ...at });
    snaps.push({ fs: fs.powerCut({ seed: fs.opCount }), what: `${what}, seed ${fs.opCount}`, ...at });
  };
  for (let i = 0; i < n; i++) {
    issued = i + 1;
    await e.put(key(i), val(i));
    acked = i + 1;
    if (i === flushAt) {
      await e.flush();
      flushed = i + 1;
    }
  }
  fs.faultHook = undefined;
  if (walRecycleSegments > 0 && e.stats().walSegmentsRecycled === 0) throw new Error('no segment was recycled: the runs do not test recycling');
  await e.close();
  return snaps;
}

/** Opens each snapshot and checks what survived: a prefix of the writes, at least `mustHave(s)` long. */
async function checkSnapshots(t: Test, snaps: Snapshot[], n: number, mustHave: (s: Snapshot) => number, walRecycleSegments = 0): Promise<void> {
  let bad = 0;
  for (const s of snaps) {
    let e: Engine;
    try {
      e = await Engine.open(DIR, { ...small, fs: s.fs, walRecycleSegments });
    } catch (err) {
      if (bad++ < 5) t.fail(`${s.what}: open failed: ${(err as Error).message}`);
      continue;
    }
    const present: boolean[] = [];
    for (let i = 0; i < n; i++) {
      const r = await e.get(key(i));
      present.push(r !== undefined && r.value.equals(val(i)));
    }
    await e.close();
    const prefix = present.indexOf(false) < 0 ? n : present.indexOf(false);
    const problems: string[] = [];
    if (present.slice(prefix).some(Boolean)) problems.push(`not a prefix: ${present.map((p) => (p ? 1 : 0)).join('')}`);
    if (prefix < mustHave(s)) problems.push(`${mustHave(s)} writes had to survive, ${prefix} did`);
    if (prefix > s.issued) problems.push(`${prefix} writes present but only ${s.issued} issued`);
    if (problems.length > 0 && bad++ < 5) t.fail(`${s.what}: ${problems.join('; ')}`);
  }
  t.equal(bad, 0, `${snaps.length} power cuts reopened to a prefix of the writes, none lost that had to survive`);
}

for (const recycle of [0, 2]) {
  const how = recycle ? ', segments recycled' : '';
  t.test(`sync 'none'${how}: a power cut anywhere in a rotation leaves no torn segment before the last`, async (t) => {
    const n = 40;
    const snaps = await cutEverywhere('none', n, 30, recycle);
    // 'none' promises nothing of a write until a flush() (or close) after it has completed.
    await checkSnapshots(t, snaps, n, (s) => s.flushed, recycle);
  });

  for (const sync of ['batch', 'always'] as const) {
    t.test(`sync '${sync}'${how}: every acknowledged write survives a power cut anywhere across rotations and flushes`, async (t) => {
      const n = 40;
      const snaps = await cutEverywhere(sync, n, 30, recycle);
      await checkSnapshots(t, snaps, n, (s) => s.acked, recycle);
    });
  }
}

t.test("sync 'none': a failed sync of the old segment at rotation: never synced again, its writes kept by an internal reopen", async (t) => {
  const fs = new MemoryFileSystem();
  await fs.mkdirp(DIR);
  const e = await Engine.open(DIR, { ...small, sync: 'none', fs, errorRetryInitialMs: 5 });
  const first = (await fs.readdir(DIR)).find((f) => f.endsWith('.log'))!;
  // Every sync of the first segment fails, for good: a recovery that synced it again would never finish.
  fs.injectFault({ op: 'sync', file: first, errno: 'EIO' });
  let failedAt = -1;
  for (let i = 0; i < 40 && failedAt < 0; i++) {
    try {
      await e.put(key(i), val(i));
    } catch (err) {
      // The write that needed the rotation was never written: refused, not of unknown outcome.
      t.equal((err as { code?: string }).code, 'WRITE_REFUSED', `put ${i} refused: ${(err as Error).message}`);
      failedAt = i;
    }
  }
  t.ok(failedAt > 0, 'the write that rolled the segment failed');
  const deadline = Date.now() + 10_000;
  while (e.health().state !== 'ok' && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
  t.equal(e.health().state, 'ok', 'the write path was reopened without syncing the failed segment again');
  t.notOk(e.failed, 'the engine did not give up');
  await e.put(key(100), val(100));
  t.same((await e.get(key(100)))?.value, val(100), 'writes work again without a reopen');
  for (let i = 0; i < failedAt; i++) t.same((await e.get(key(i)))?.value, val(i), `acknowledged write ${i} is there`);
  // The recovery wrote them into a synced table: a power cut now loses none of them.
  const cut = fs.powerCut();
  const e2 = await Engine.open(DIR, { ...small, fs: cut });
  let kept = 0;
  for (let i = 0; i < failedAt; i++) if ((await e2.get(key(i)))?.value.equals(val(i))) kept++;
  t.equal(kept, failedAt, `all ${failedAt} writes acknowledged before the failure survive a power cut after the recovery`);
  await e2.close();
  await e.close();
});

/** Frame count and bytes of a format-2 segment (28-byte header, frames of a 12-byte header + length). */
function framesOf(raw: Buffer): number {
  let n = 0;
  for (let p = 28; p + 12 <= raw.length; p += 12 + raw.readUInt32LE(p)) n++;
  return n;
}

t.test('segments roll at the memtable size and are deleted only once a durable manifest is past them', async (t) => {
  for (const memtableSizeBytes of [4096, 16384]) {
    const fs = new MemoryFileSystem();
    await fs.mkdirp(DIR);
    const e = await Engine.open(DIR, { ...small, memtableSizeBytes, fs });
    const rolled: { file: string; raw: Buffer; cut: MemoryFileSystem }[] = [];
    fs.faultHook = (op, file) => {
      // The moment before a segment is deleted: what it held, and what a power cut would leave.
      if (op === 'unlink' && file.endsWith('.log')) rolled.push({ file, raw: Buffer.from(fs.rawFile(file)), cut: fs.powerCut() });
    };
    const n = Math.ceil((6 * memtableSizeBytes) / 300);
    for (let i = 0; i < n; i++) await e.put(key(i), val(i));
    await e.close();
    fs.faultHook = undefined;
    t.ok(rolled.length >= 5, `${rolled.length} segments rolled and deleted (${memtableSizeBytes}-byte memtable)`);
    const sizes = rolled.slice(0, -1).map((r) => r.raw.length); // the last one was closed early by close()
    t.ok(
      sizes.every((s) => s >= 0.75 * memtableSizeBytes && s <= memtableSizeBytes + 400),
      `each rolled at about the memtable's size: ${sizes.join(', ')} bytes`,
    );
    const frames = rolled.slice(0, -1).map((r) => framesOf(r.raw));
    t.ok(new Set(frames).size === 1, `each holds as many 300-byte writes (${frames.join(', ')})`);
    let seen = 0;
    for (const r of rolled) {
      const number = Number(r.file.slice(DIR.length + 1, -4));
      const manifest = await readManifest(r.cut, DIR);
      t.ok(manifest!.logNumber > number, `${r.file}: before its deletion the manifest on disk has logNumber ${manifest!.logNumber}`);
      // And a power cut right then loses nothing of it: its records are in a table.
      const e2 = await Engine.open(DIR, { ...small, fs: r.cut });
      const held = framesOf(r.raw);
      for (let i = seen; i < seen + held; i++) {
        if (!(await e2.get(key(i)))?.value.equals(val(i))) t.fail(`${r.file}: key ${i} lost by a power cut before the deletion`);
      }
      await e2.close();
      seen += held;
    }
    t.equal(seen, n, 'the deleted segments held every write, in order');
  }
});

t.test('several segments waiting for their flush are all replayed after a power cut', async (t) => {
  const fs = new MemoryFileSystem();
  await fs.mkdirp(DIR);
  const e = await Engine.open(DIR, { ...small, maxImmutableMemtables: 4, fs });
  // Hold every flush at the creation of its table.
  let release!: () => void;
  const held = new Promise<void>((resolve) => (release = resolve));
  fs.delayHook = (op, file) => (op === 'open' && file.endsWith('.sst') ? held : undefined);
  const n = 55; // about 12 writes a segment: 4 full segments waiting, the 5th being written
  for (let i = 0; i < n; i++) await e.put(key(i), val(i));
  const logs = (await fs.readdir(DIR)).filter((f) => f.endsWith('.log'));
  t.equal(logs.length, 5, `five segments, none deleted while its flush waits (${logs.join(' ')})`);
  const cut = fs.powerCut();
  release();
  await e.close();
  const e2 = await Engine.open(DIR, { ...small, fs: cut });
  t.equal(e2.stats().recoveredWalRecords, n, 'every write replayed, across the five segments');
  t.equal(e2.stats().recoveredTornTailBytes, 0);
  let lost = 0;
  for (let i = 0; i < n; i++) if (!(await e2.get(key(i)))?.value.equals(val(i))) lost++;
  t.equal(lost, 0, 'and every value is there');
  t.same((await cut.readdir(DIR)).filter((f) => f.endsWith('.log')).length, 1, 'once replayed into a table, the old segments are gone');
  await e2.close();
});

t.test("sync 'none': once close() has returned, every write survives a power cut, flushed or not", async (t) => {
  for (const flushOnClose of [true, false]) {
    const fs = new MemoryFileSystem();
    await fs.mkdirp(DIR);
    const e = await Engine.open(DIR, { ...small, sync: 'none', flushOnClose, fs });
    for (let i = 0; i < 5; i++) await e.put(key(i), val(i));
    await e.close();
    const e2 = await Engine.open(DIR, { ...small, fs: fs.powerCut() });
    let lost = 0;
    for (let i = 0; i < 5; i++) if (!(await e2.get(key(i)))?.value.equals(val(i))) lost++;
    t.equal(lost, 0, `flushOnClose ${flushOnClose}: nothing lost`);
    await e2.close();
  }
});
