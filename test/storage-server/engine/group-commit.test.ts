// Group commit on a real directory (storage-server/engine/group-commit.ts): writes issued in
// one turn of the event loop share one WAL frame and one fdatasync (sync batch), each gets
// its own with sync always, maxGroupCommitBytes splits a group, every write is visible once
// it resolves, and a flush (a rotation marker) waits for the writes queued before it.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import t from 'tap';
import type { Test } from 'tap';
import { Engine } from '../../../storage-server/engine/index.js';
import type { EngineOptions } from '../../../storage-server/engine/index.js';

async function open(t: Test, o: EngineOptions): Promise<Engine> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ringkv-group-commit-'));
  const e = await Engine.open(dir, { compactionThread: 'engine', ...o });
  t.teardown(async () => {
    await e.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });
  return e;
}

const N = 200;
const puts = (e: Engine, value: Buffer) => Array.from({ length: N }, (_, i) => e.put(Buffer.from(`k${i}`), value).then(async () => (await e.get(Buffer.from(`k${i}`)))?.value.equals(value)));

t.test('sync batch: the writes of one turn share one frame and one fdatasync', async (t) => {
  const e = await open(t, { sync: 'batch' });
  const before = e.stats();
  const visible = await Promise.all(puts(e, Buffer.from('v')));
  const s = e.stats();
  t.ok(visible.every(Boolean), 'every write is visible once it resolves');
  t.equal(s.writeGroups - before.writeGroups, 1, `${N} writes in one group`);
  t.equal(s.walSyncs - before.walSyncs, 1, 'synced once');
});

t.test('sync always: one group and one fdatasync per write', async (t) => {
  const e = await open(t, { sync: 'always' });
  const before = e.stats();
  await Promise.all(puts(e, Buffer.from('v')));
  const s = e.stats();
  t.equal(s.writeGroups - before.writeGroups, N, 'a group per write');
  t.equal(s.walSyncs - before.walSyncs, N, 'a sync per write');
});

t.test('maxGroupCommitBytes splits a group; sync none never syncs', async (t) => {
  const e = await open(t, { sync: 'none', maxGroupCommitBytes: 4096 });
  const before = e.stats();
  await Promise.all(puts(e, Buffer.alloc(1000, 1)));
  const s = e.stats();
  const groups = s.writeGroups - before.writeGroups;
  // Four 1 KB values fit in 4 KiB of records at most: at least N / 4 groups, far fewer than N.
  t.ok(groups >= N / 4 && groups < N / 2, `${groups} groups of at most 4 KiB`);
  t.equal(s.walSyncs - before.walSyncs, 0, 'no fdatasync');
});

t.test('a flush waits for the writes queued before it', async (t) => {
  const e = await open(t, { sync: 'batch' });
  const writes = puts(e, Buffer.from('before-flush'));
  await e.flush();
  t.equal(e.stats().memtableBytes, 0, 'the memtable is empty after the flush');
  t.ok(e.stats().tableCount >= 1, 'the writes are in a table');
  t.ok((await Promise.all(writes)).every(Boolean), 'and each one reads back');
});
