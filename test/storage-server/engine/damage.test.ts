// Damaged and hostile directories on real disk: torn and flipped WAL bytes, a flipped byte
// inside an SSTable block (quarantined, passed over, dropped once repaired), broken
// footers, missing or garbage manifests, and locks.

import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import t from 'tap';
import type { Test } from 'tap';
import { EngineError } from '../../../storage-server/engine/engine-errors.js';
import { Engine } from '../../../storage-server/engine/index.js';

function tmpDir(t: Test): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ringkv-damage-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}


const key = (i: number) => Buffer.from(`key-${String(i).padStart(5, '0')}`);
const val = (i: number) => Buffer.from(`value-${i}-${'x'.repeat(i % 50)}`);

/** Writes `n` keys one batch each, then closes without flushing so they stay in the WAL. */
async function writeWalOnly(dir: string, n: number): Promise<void> {
  const e = await Engine.open(dir, { flushOnClose: false });
  for (let i = 0; i < n; i++) await e.put(key(i), val(i));
  await e.close();
}

function onlyFile(dir: string, ext: string): string {
  const files = fs.readdirSync(dir).filter((f) => f.endsWith(ext));
  if (files.length !== 1) throw new Error(`expected one ${ext} file in ${dir}, found ${files.join(',')}`);
  return path.join(dir, files[0]!);
}

async function expectCode(t: Test, p: Promise<unknown>, code: string, re?: RegExp): Promise<EngineError | undefined> {
  try {
    await p;
    t.fail(`expected ${code}, but it succeeded`);
    return undefined;
  } catch (err) {
    t.ok(err instanceof EngineError, 'a typed EngineError');
    t.equal((err as EngineError).code, code, `code ${code}`);
    if (re) t.match((err as Error).message, re);
    return err as EngineError;
  }
}

t.test('a torn WAL tail is truncated and everything before it recovered', async (t) => {
  const dir = tmpDir(t);
  await writeWalOnly(dir, 50);
  const wal = onlyFile(dir, '.log');
  const size = fs.statSync(wal).size;
  fs.truncateSync(wal, size - 5); // the last frame lost its end
  const e = await Engine.open(dir);
  t.equal(e.stats().recoveredWalRecords, 49, '49 whole records replayed');
  t.ok(e.stats().recoveredTornTailBytes > 0, 'the torn bytes were counted');
  for (let i = 0; i < 49; i++) t.same((await e.get(key(i)))?.value, val(i));
  t.equal(await e.get(key(49)), undefined, 'the torn record is gone');
  await e.close();
});

t.test('a flipped byte in the last WAL frame is a torn tail', async (t) => {
  const dir = tmpDir(t);
  await writeWalOnly(dir, 20);
  const wal = onlyFile(dir, '.log');
  const buf = fs.readFileSync(wal);
  buf[buf.length - 3]! ^= 0xff;
  fs.writeFileSync(wal, buf);
  const e = await Engine.open(dir);
  t.equal(e.stats().recoveredWalRecords, 19);
  t.equal(await e.get(key(19)), undefined);
  t.same((await e.get(key(18)))?.value, val(18));
  await e.close();
});

t.test('garbage appended after the last frame (zeros, junk) is a torn tail', async (t) => {
  const dir = tmpDir(t);
  await writeWalOnly(dir, 10);
  const wal = onlyFile(dir, '.log');
  fs.appendFileSync(wal, Buffer.concat([Buffer.alloc(100), Buffer.from('not a frame at all')]));
  const e = await Engine.open(dir);
  t.equal(e.stats().recoveredWalRecords, 10);
  t.equal(e.stats().recoveredTornTailBytes, 118);
  await e.close();
});

t.test('a flipped byte inside the WAL (valid frames after it) is reported with file and offset', async (t) => {
  const dir = tmpDir(t);
  await writeWalOnly(dir, 30);
  const wal = onlyFile(dir, '.log');
  const before = fs.readFileSync(wal);
  const buf = Buffer.from(before);
  buf[40]! ^= 0x01; // inside the first or second frame
  fs.writeFileSync(wal, buf);
  const err = await expectCode(t, Engine.open(dir), 'CORRUPTION', /\.log at offset \d+/);
  t.equal(err?.details?.file, wal, 'names the file');
  t.type(err?.details?.offset, 'number', 'names the offset');
  t.same(fs.readFileSync(wal), buf, 'the damaged WAL is left as it was, for inspection');
  // Repair it and everything is there: nothing was lost by the failed open.
  fs.writeFileSync(wal, before);
  const e = await Engine.open(dir);
  for (let i = 0; i < 30; i++) t.same((await e.get(key(i)))?.value, val(i));
  await e.close();
});

t.test('a flipped byte inside an SSTable data block is reported, never served', async (t) => {
  const dir = tmpDir(t);
  let e = await Engine.open(dir, { autoCompaction: false });
  for (let i = 0; i < 2000; i++) await e.write([{ type: 'put', key: key(i), value: val(i) }]);
  await e.close(); // flushes into one table
  const sst = onlyFile(dir, '.sst');
  const buf = fs.readFileSync(sst);
  buf[100]! ^= 0x10; // inside the first data block
  fs.writeFileSync(sst, buf);
  e = await Engine.open(dir, { autoCompaction: false });
  const err = await expectCode(t, e.get(key(0)), 'CORRUPTION', /checksum/);
  t.equal(err?.details?.file, sst);
  t.equal(err?.details?.offset, 0, 'the offset of the damaged block');
  // Keys in other blocks still read fine.
  t.same((await e.get(key(1999)))?.value, val(1999));
  // A scan over the damaged block fails loudly too.
  await expectCode(
    t,
    (async () => {
      for await (const _ of e.iterate()) void _;
    })(),
    'CORRUPTION',
  );
  await e.close();
});

t.test('a corrupt data block is quarantined: its keys fail, scans may pass over it, a compaction drops it once repaired', async (t) => {
  const dir = tmpDir(t);
  let e = await Engine.open(dir, { autoCompaction: false });
  for (let i = 0; i < 2000; i++) await e.put(key(i), val(i));
  await e.close();
  const sst = onlyFile(dir, '.sst');
  const buf = fs.readFileSync(sst);
  buf[100]! ^= 0x10; // inside the first data block
  fs.writeFileSync(sst, buf);
  // The worker thread runs the compaction (real file system): it gets the blocks to drop.
  e = await Engine.open(dir, { autoCompaction: false, compactionThread: 'worker' });
  const seen: string[] = [];
  e.onCorruptBlock((b) => seen.push(b.id));
  const err = await expectCode(t, e.get(key(0)), 'CORRUPTION', /quarantined/);
  t.equal(err?.details?.quarantined, true, 'the error says the block is quarantined');
  const q = e.quarantine();
  t.equal(q.length, 1, 'one block quarantined');
  t.same(seen, [q[0]!.id], 'the listener heard of it once');
  t.same(q[0]!.first, key(0), 'its range starts at the table\'s smallest key');
  const last = Number(q[0]!.last.toString().slice(4));
  t.ok(last > 0 && last < 1999, `and ends at its last key (key ${last})`);
  t.equal(e.stats().corruptBlocks, 1);
  await expectCode(t, e.get(key(last)), 'CORRUPTION');
  t.same((await e.get(key(last + 1)))?.value, val(last + 1), 'the next block reads fine');
  let n = 0;
  for await (const r of e.iterate({ skipCorrupt: true })) {
    if (Number(r.key.toString().slice(4)) <= last) t.fail(`a key of the bad block was scanned: ${r.key}`);
    n++;
  }
  t.equal(n, 1999 - last, 'a scan with skipCorrupt passes over the block and nothing else');
  await expectCode(t, e.compact(), 'CORRUPTION', /repair first/);
  t.ok(fs.existsSync(sst), 'the table is kept while its range is not repaired');

  // The repair (the replica store's job): newer versions of the range, then the mark.
  for (let i = 0; i <= last; i++) await e.put(key(i), Buffer.from(`repaired-${i}`));
  t.ok(e.markRepaired(q[0]!.id), 'marked repaired');
  n = 0;
  for await (const _ of e.iterate()) n++;
  t.equal(n, 2000, 'a plain scan passes over a repaired block');
  await e.compact();
  t.equal(e.stats().corruptBlocksDropped, 1, 'the compaction dropped the block');
  t.same(e.quarantine(), [], 'nothing is quarantined any more');
  // An obsolete table is deleted once its last reader lets go of it, not within compact().
  for (let i = 0; i < 100 && fs.existsSync(sst); i++) await new Promise((r) => setTimeout(r, 50));
  t.notOk(fs.existsSync(sst), 'the bad table is gone');
  await e.close();
  e = await Engine.open(dir);
  for (let i = 0; i < 2000; i++) {
    const want = i <= last ? Buffer.from(`repaired-${i}`) : val(i);
    if (!(await e.get(key(i)))?.value.equals(want)) t.fail(`key ${i} is wrong after the compaction`);
  }
  n = 0;
  for await (const _ of e.iterate()) n++;
  t.equal(n, 2000, 'after a reopen every key reads and scans');
  await e.close();
});

t.test('a compaction that meets an unknown corrupt block quarantines it and is not retried as an I/O error', async (t) => {
  const dir = tmpDir(t);
  let e = await Engine.open(dir, { autoCompaction: false });
  for (let i = 0; i < 2000; i++) await e.put(key(i), val(i));
  await e.close();
  const sst = onlyFile(dir, '.sst');
  const buf = fs.readFileSync(sst);
  buf[100]! ^= 0x10;
  fs.writeFileSync(sst, buf);
  e = await Engine.open(dir, { autoCompaction: true, compactionTriggerTables: 2, maxSizeAmplificationPercent: 1 });
  for (let i = 2000; i < 2100; i++) await e.put(key(i), val(i));
  await e.flush(); // a second table: the picker merges both, and the merge meets the block
  const deadline = Date.now() + 20_000;
  while (e.stats().compactionErrors === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  t.equal(e.stats().compactionErrors, 1, 'the compaction failed on the block');
  t.equal(e.quarantine().length, 1, 'which is quarantined now');
  t.equal(e.health().state, 'ok', 'and the engine is not retrying it as an I/O error');
  t.same((await e.get(key(2050)))?.value, val(2050), 'other keys read');
  await e.close();
});

t.test('a damaged table footer fails the open', async (t) => {
  const dir = tmpDir(t);
  const e = await Engine.open(dir);
  await e.put(key(1), val(1));
  await e.close();
  const sst = onlyFile(dir, '.sst');
  const buf = fs.readFileSync(sst);
  buf[buf.length - 20]! ^= 0xff;
  fs.writeFileSync(sst, buf);
  await expectCode(t, Engine.open(dir), 'CORRUPTION', /footer/);
  fs.truncateSync(sst, 10);
  await expectCode(t, Engine.open(dir), 'CORRUPTION', /shorter than its footer/);
});

t.test('a missing manifest beside data files is refused; a garbage one is corruption', async (t) => {
  const dir = tmpDir(t);
  const e = await Engine.open(dir);
  await e.put(key(1), val(1));
  await e.close();
  const manifest = path.join(dir, 'MANIFEST');
  const good = fs.readFileSync(manifest);
  fs.writeFileSync(manifest, 'this is not a manifest\n');
  await expectCode(t, Engine.open(dir), 'CORRUPTION', /manifest/);
  const flipped = Buffer.from(good);
  flipped[good.indexOf('"tables"') + 3]! ^= 0x01;
  fs.writeFileSync(manifest, flipped);
  await expectCode(t, Engine.open(dir), 'CORRUPTION', /checksum/);
  fs.rmSync(manifest);
  await expectCode(t, Engine.open(dir), 'MANIFEST_MISSING');
  t.ok(fs.readdirSync(dir).some((f) => f.endsWith('.sst')), 'the data files were not touched');
  fs.writeFileSync(manifest, good);
  const again = await Engine.open(dir);
  t.same((await again.get(key(1)))?.value, val(1), 'with the manifest back, the data is all there');
  await again.close();
});

t.test('a manifest naming a missing table is corruption', async (t) => {
  const dir = tmpDir(t);
  const e = await Engine.open(dir);
  await e.put(key(1), val(1));
  await e.close();
  fs.rmSync(onlyFile(dir, '.sst'));
  await expectCode(t, Engine.open(dir), 'CORRUPTION', /does not exist/);
});

t.test('the directory lock: same process, another live process, a dead one', async (t) => {
  const dir = tmpDir(t);
  const e = await Engine.open(dir);
  await expectCode(t, Engine.open(dir), 'LOCKED');
  await e.close();

  // Another live process holds it.
  const holder = spawn(process.execPath, ['-e', `require('fs').writeFileSync(${JSON.stringify(path.join(dir, 'LOCK'))}, process.pid + '\\n'); setTimeout(() => {}, 20000)`], {
    stdio: 'ignore',
  });
  t.teardown(() => holder.kill('SIGKILL'));
  // Wait until the holder has written its pid into LOCK (a busy machine may take a while).
  const lockFile = path.join(dir, 'LOCK');
  for (let i = 0; i < 200 && !(fs.existsSync(lockFile) && fs.readFileSync(lockFile, 'utf8').trim() === String(holder.pid)); i++) {
    await new Promise((r) => setTimeout(r, 50));
  }
  await expectCode(t, Engine.open(dir), 'LOCKED', new RegExp(`process ${holder.pid}`));
  holder.kill('SIGKILL');
  await new Promise((r) => holder.once('exit', r));

  // The holder died without releasing it (kill -9): the lock is taken over.
  const e2 = await Engine.open(dir);
  t.pass('a lock left by a dead process is taken over');
  await e2.close();
});
