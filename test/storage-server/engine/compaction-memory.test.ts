// What a compaction holds in memory for its tables: the compaction thread's inputs are
// scanned without their filters and with their indexes streamed (a bounded window of block
// positions, not one per block), the output's key hashes are sized for the inputs' entries
// (no doubling), and a table's filter and index are let go with its last reference. Real
// tables on disk; the streamed scan is checked record by record and against a damaged index.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import v8 from 'node:v8';
import vm from 'node:vm';
import t from 'tap';
import { NodeFileSystem } from '../../../storage-server/engine/file-system.js';
import type { EngineRecord } from '../../../storage-server/engine/record.js';
import { ScanTable, StreamedIndex } from '../../../storage-server/engine/scan-table.js';
import type { ReadStats } from '../../../storage-server/engine/table.js';
import { createBlockCache, readTableMeta, TableBuilder, TableReader } from '../../../storage-server/engine/table.js';

v8.setFlagsFromString('--expose-gc');
const gcOnce = vm.runInNewContext('gc') as () => void;
/** Collects until array buffers freed by earlier work are gone (their frees can trail a gc). */
async function gc(): Promise<void> {
  for (let i = 0; i < 3; i++) {
    gcOnce();
    await new Promise((r) => setImmediate(r));
  }
}

const key = (i: number) => Buffer.from(`k${i.toString().padStart(9, '0')}`);
const record = (i: number, valueBytes = 64): EngineRecord => ({
  key: key(i),
  seq: i + 1,
  tombstone: false,
  expiresAtMs: 0,
  flags: 0,
  contentType: '',
  version: Buffer.alloc(0),
  value: Buffer.alloc(valueBytes, i & 0xff),
});
const newStats = (): ReadStats => ({ blockReads: 0, scanBlockReads: 0, blockCacheHits: 0, bloomNegatives: 0, bloomPositives: 0 });

async function build(file: string, n: number, blockSizeBytes: number): Promise<void> {
  const nfs = new NodeFileSystem();
  const b = new TableBuilder(await nfs.open(file, 'create'), { blockSizeBytes, bloomBitsPerKey: 10, nowMs: 0 });
  for (let i = 0; i < n; i++) {
    b.add(record(i));
    if (b.needsDrain) await b.drain();
  }
  await b.finish();
}

const BLOCKS = 40_000;

t.test('a table scanned for compaction: every record in order, its index held a window at a time, no filter read', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'compaction-memory-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const nfs = new NodeFileSystem();
  const file = path.join(dir, 'big.sst');
  await build(file, BLOCKS, 1); // one record per block

  // The streamed index on its own: walked forward with release(), it never holds more
  // than about a piece of entries (64 KiB / ~16 bytes each), where the whole index is 40,000.
  const fh = await nfs.open(file, 'read');
  t.teardown(() => fh.close());
  const meta = await readTableMeta(fh);
  const index = await StreamedIndex.open(fh, meta.indexOffset, meta.indexLen);
  t.equal(index.count, BLOCKS);
  const full = await TableReader.open(await nfs.open(file, 'read'), 1, createBlockCache(1 << 20), newStats());
  t.teardown(() => full.unref());
  let maxHeld = 0;
  let wrongPlace = 0;
  let at = 0;
  for (let b = 0; b < BLOCKS; b++) {
    const p = index.load(b);
    if (p) await p;
    maxHeld = Math.max(maxHeld, index.held);
    if (index.offset(b) !== at) wrongPlace++;
    at += index.length(b);
    index.release(b);
  }
  t.equal(wrongPlace, 0, 'every block position read from the stream is where the previous block ends');
  t.ok(maxHeld < BLOCKS / 4, `at most ${maxHeld} of ${BLOCKS} block positions held at once`);

  // A cursor over a ScanTable returns exactly what a fully opened table's cursor returns.
  const stats = newStats();
  const scan = await ScanTable.open(await nfs.open(file, 'read'), stats);
  t.teardown(() => scan.close());
  t.equal(scan.props.entries, BLOCKS);
  const c = scan.cursor(16 * 1024);
  await c.start();
  let n = 0;
  let outOfOrder = 0;
  while (c.valid) {
    const r = c.decode();
    if (!r.key.equals(key(n)) || r.seq !== n + 1 || r.value[0] !== (n & 0xff)) outOfOrder++;
    n++;
    const p = c.next();
    if (p) await p;
  }
  t.equal(n, BLOCKS, 'the scan reads every record');
  t.equal(outOfOrder, 0, 'each record is the next key with its own value');
  t.equal(stats.scanBlockReads, BLOCKS);
  t.equal(stats.bloomPositives + stats.bloomNegatives, 0);

  // Passing over blocks (a compaction dropping repaired quarantined blocks) works the same.
  const skip = new Set([0, 1, 5000, BLOCKS - 1]);
  const c2 = scan.cursor(16 * 1024, skip);
  await c2.start();
  let seen = 0;
  let skippedSeen = 0;
  while (c2.valid) {
    const i = Number(c2.decode().key.toString().slice(1));
    if (skip.has(i)) skippedSeen++;
    seen++;
    const p = c2.next();
    if (p) await p;
  }
  t.equal(seen, BLOCKS - skip.size);
  t.equal(skippedSeen, 0, 'no record of a skipped block');
});

t.test('a damaged index fails the streamed scan with CORRUPTION (its checksum), not a wrong record', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'compaction-memory-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const nfs = new NodeFileSystem();
  const file = path.join(dir, 't.sst');
  await build(file, 20_000, 1);
  const fh0 = await nfs.open(file, 'read');
  const meta = await readTableMeta(fh0);
  await fh0.close();
  // Flip a byte of a key in the index's last piece (block positions stay plausible).
  const bytes = fs.readFileSync(file);
  const at = meta.indexOffset + meta.indexLen - 4 - 30;
  bytes[at] = bytes[at]! ^ 0x01;
  fs.writeFileSync(file, bytes);
  const scan = await ScanTable.open(await nfs.open(file, 'read'), newStats());
  t.teardown(() => scan.close());
  const c = scan.cursor(16 * 1024);
  const walk = async () => {
    await c.start();
    while (c.valid) {
      const p = c.next();
      if (p) await p;
    }
  };
  await t.rejects(walk(), { code: 'CORRUPTION', message: /index checksum mismatch/ });
});

t.test("a compaction's output sized for its inputs' entries: the key hashes are not doubled past them", async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'compaction-memory-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const nfs = new NodeFileSystem();
  const N = 600_000; // 2.4 MB of hashes sized exactly; doubling from 1,024 ends at 1,048,576 (4.2 MB)
  const measure = async (name: string, expectedEntries: number | undefined, n: number) => {
    const fh = await nfs.open(path.join(dir, name), 'create');
    await gc();
    const before = process.memoryUsage().arrayBuffers;
    const b = new TableBuilder(fh, {
      blockSizeBytes: 64 * 1024,
      bloomBitsPerKey: 10,
      nowMs: 0,
      ...(expectedEntries !== undefined ? { expectedEntries } : {}),
    });
    for (let i = 0; i < n; i++) {
      b.add(record(i, 8));
      if (b.needsDrain) await b.drain();
    }
    await gc();
    const grown = process.memoryUsage().arrayBuffers - before;
    const { props } = await b.finish();
    return { grown, props };
  };
  const sized = await measure('sized.sst', N, N);
  t.ok(sized.grown < 3_500_000, `sized: array buffers grew ${sized.grown} bytes for ${N} keys (< 3.5 MB; doubling holds 4.2 MB of hashes)`);
  t.equal(sized.props.entries, N);
  // Fewer expected than added still builds a whole table (the array grows past the estimate).
  const under = await measure('under.sst', 10, 3000);
  t.equal(under.props.entries, 3000);
  const r = await TableReader.open(await nfs.open(path.join(dir, 'under.sst'), 'read'), 2, createBlockCache(1 << 20), newStats());
  t.teardown(() => r.unref());
  let missing = 0;
  for (let i = 0; i < 3000; i += 7) if (!(await r.get(key(i)))) missing++;
  t.equal(missing, 0, 'every sampled key of the under-estimated table passes its filter and reads back');
});

t.test("a table's filter and index are let go with its last reference, and kept while one is held", async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'compaction-memory-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const nfs = new NodeFileSystem();
  const file = path.join(dir, 't.sst');
  await build(file, 5000, 256);
  const r = await TableReader.open(await nfs.open(file, 'read'), 1, createBlockCache(1 << 20), newStats());
  const pinned = r.pinnedBytes;
  t.ok(pinned > 5000, `pinned ${pinned} bytes while open`);
  r.ref();
  r.unref();
  t.equal(r.pinnedBytes, pinned, 'still pinned while a reference is held');
  t.ok(await r.get(key(4321)), 'and readable');
  await gc();
  const before = process.memoryUsage().arrayBuffers;
  r.unref();
  t.equal(r.pinnedBytes, 0, 'nothing pinned after the last reference');
  await gc();
  const freed = before - process.memoryUsage().arrayBuffers;
  // The reader object is still reachable here (as a compaction's input list keeps it): its
  // filter and index must be freed all the same.
  t.ok(freed >= pinned / 2, `${freed} bytes of array buffers freed (filter and index ~${pinned})`);
});
