// A table's memory in a compaction does not grow with the table: the builder's heap does
// not grow by an object per data block (the index is encoded as blocks finish), and a
// cursor reads every chunk into one reused buffer (not a new ~256 KiB one per read). Builds
// a table of 40,000 blocks on real disk, checks the heap grew by less than 16 bytes per block
// (a Buffer per block key cost ~136), that every sampled key reads back through the index
// built that way, and that a cursor's records all come out of one buffer, in order.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import v8 from 'node:v8';
import vm from 'node:vm';
import t from 'tap';
import { NodeFileSystem } from '../../../storage-server/engine/file-system.js';
import type { EngineRecord } from '../../../storage-server/engine/record.js';
import { createBlockCache, TableBuilder, TableReader } from '../../../storage-server/engine/table.js';

v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;

const BLOCKS = 40_000;
const key = (i: number) => Buffer.from(`k${i.toString().padStart(9, '0')}`);
const record = (i: number): EngineRecord => ({ key: key(i), seq: i + 1, tombstone: false, expiresAtMs: 0, flags: 0, contentType: '', version: Buffer.alloc(0), value: Buffer.alloc(64, i & 0xff) });

t.test('building a table of 40,000 blocks keeps no heap object per block; its index reads back; a cursor reuses one buffer', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'table-builder-memory-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const nfs = new NodeFileSystem();
  const file = path.join(dir, 'big.sst');
  // Blocks of ~1 record: blockSizeBytes 1 finishes a block before every added record.
  const b = new TableBuilder(await nfs.open(file, 'create'), { blockSizeBytes: 1, bloomBitsPerKey: 10, nowMs: 0 });
  b.add(record(0));
  gc();
  const before = process.memoryUsage().heapUsed;
  for (let i = 1; i < BLOCKS; i++) {
    b.add(record(i));
    if (b.needsDrain) await b.drain();
  }
  gc();
  const grown = process.memoryUsage().heapUsed - before;
  t.ok(grown < BLOCKS * 16, `heap grew ${grown} bytes for ${BLOCKS} blocks (< 16 per block)`);
  const { props } = await b.finish();
  t.equal(props.blocks, BLOCKS);
  t.equal(props.largestKey, key(BLOCKS - 1).toString('base64'));
  const stats = { blockReads: 0, scanBlockReads: 0, blockCacheHits: 0, bloomNegatives: 0, bloomPositives: 0 };
  const reader = await TableReader.open(await nfs.open(file, 'read'), 1, createBlockCache(1 << 20), stats);
  t.teardown(() => reader.unref());
  let bad = 0;
  for (let i = 0; i < BLOCKS; i += 97) {
    const r = await reader.get(key(i));
    if (!r || r.seq !== i + 1 || r.value[0] !== (i & 0xff)) bad++;
  }
  t.equal(bad, 0, 'every sampled key is found in its block through the index');
  t.equal(await reader.get(Buffer.from('k999999999x')), undefined, 'a key past the last block is not found');

  // A cursor reading 16 KiB at a time: ~100 chunks, one buffer.
  const c = reader.cursor(16 * 1024);
  await c.start();
  const buffers = new Set<ArrayBufferLike>();
  let n = 0;
  let outOfOrder = 0;
  while (c.valid) {
    buffers.add(c.buf.buffer);
    if (!c.buf.subarray(c.span.keyStart, c.span.keyEnd).equals(key(n))) outOfOrder++;
    n++;
    const p = c.next();
    if (p) await p;
  }
  t.equal(n, BLOCKS, 'the cursor reads every record');
  t.equal(outOfOrder, 0, 'each record is the next key');
  t.equal(stats.scanBlockReads, BLOCKS);
  t.equal(buffers.size, 1, `every chunk read into one buffer (${buffers.size})`);
});
