// A table builder's memory while it writes a large table (a compaction's output) does not
// grow by a heap object per data block: the index is encoded as blocks finish. Builds a
// table of 40,000 blocks on real disk, checks the heap grew by less than 16 bytes per block
// (a Buffer per block key cost ~100) and that every block's keys read back through the
// index that was built that way.

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

t.test('building a table of 40,000 blocks keeps no heap object per block, and its index reads back', async (t) => {
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
});
