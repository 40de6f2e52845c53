// WAL rotation on the in-memory file system: a power cut before every file-system operation
// of writes that roll segments and flush them, under each sync policy; a failed sync at
// rotation; segments rolling at the memtable's size; replay across several segments; and
// segments deleted only once their memtable is in a table and a durable manifest says so.

import t from 'tap';
import type { Test } from 'tap';
import { Engine, MemoryFileSystem } from '../../../storage-server/engine/index.js';
import type { EngineOptions, FileCut, PendingFileOp, SyncPolicy } from '../../../storage-server/engine/index.js';

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
async function cutEverywhere(sync: SyncPolicy, n: number, flushAt: number): Promise<Snapshot[]> {
  const fs = new MemoryFileSystem();
  await fs.mkdirp(DIR);
  const e = await Engine.open(DIR, { ...small, sync, fs });
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
  await e.close();
  return snaps;
}

/** Opens each snapshot and checks what survived: a prefix of the writes, at least `mustHave(s)` long. */
async function checkSnapshots(t: Test, snaps: Snapshot[], n: number, mustHave: (s: Snapshot) => number): Promise<void> {
  let bad = 0;
  for (const s of snaps) {
    let e: Engine;
    try {
      e = await Engine.open(DIR, { ...small, fs: s.fs });
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

t.test("sync 'none': a power cut anywhere in a rotation leaves no torn segment before the last", async (t) => {
  const n = 40;
  const snaps = await cutEverywhere('none', n, 30);
  // 'none' promises nothing of a write until a flush() (or close) after it has completed.
  await checkSnapshots(t, snaps, n, (s) => s.flushed);
});

for (const sync of ['batch', 'always'] as const) {
  t.test(`sync '${sync}': every acknowledged write survives a power cut anywhere across rotations and flushes`, async (t) => {
    const n = 40;
    const snaps = await cutEverywhere(sync, n, 30);
    await checkSnapshots(t, snaps, n, (s) => s.acked);
  });
}

t.test("sync 'none': a failed sync of the old segment at rotation is a write failure, sticky until reopen", async (t) => {
  const fs = new MemoryFileSystem();
  await fs.mkdirp(DIR);
  const e = await Engine.open(DIR, { ...small, sync: 'none', fs });
  const first = (await fs.readdir(DIR)).find((f) => f.endsWith('.log'))!;
  fs.injectFault({ op: 'sync', file: first, errno: 'EIO' });
  let failedAt = -1;
  for (let i = 0; i < 40 && failedAt < 0; i++) {
    try {
      await e.put(key(i), val(i));
    } catch (err) {
      t.equal((err as { code?: string }).code, 'WRITE_FAILED', `put ${i} failed with WRITE_FAILED: ${(err as Error).message}`);
      failedAt = i;
    }
  }
  t.ok(failedAt > 0, 'the write that rolled the segment failed');
  fs.clearFaults();
  await t.rejects(e.put(key(100), val(100)), { code: 'WRITE_FAILED' }, 'and every write after it');
  t.ok(e.failed, 'the engine reports that it failed');
  await e.close();
  const e2 = await Engine.open(DIR, { ...small, fs });
  await e2.put(key(100), val(100));
  t.same((await e2.get(key(100)))?.value, val(100), 'writes work again after reopening');
  await e2.close();
});
