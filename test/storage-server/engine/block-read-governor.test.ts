// Block reads of gets: the governor's decisions (sync while fast, async once slow, probes),
// and the engine over a file system whose synchronous reads are slow: under 'auto' it moves
// to async reads, under 'sync' / 'async' it keeps to its mode, and every mode returns the
// same records.

import t from 'tap';
import { AUTO_PROBE_EVERY, BlockReadGovernor } from '../../../storage-server/engine/block-read-governor.js';
import { Engine, MemoryFileSystem } from '../../../storage-server/engine/index.js';
import type { BlockReadMode, FileHandle, FileSystem } from '../../../storage-server/engine/index.js';

t.test('sync and async modes never change their mind', async (t) => {
  const s = new BlockReadGovernor('sync');
  const a = new BlockReadGovernor('async');
  for (let i = 0; i < 200; i++) {
    s.observe(10_000);
    t.equal(s.useSync(), true);
    t.equal(a.useSync(), false);
  }
  t.equal(s.measures, false, 'only auto times its reads');
});

t.test('auto: sync while fast; one outlier is not enough; a slow device flips it; probes bring it back', async (t) => {
  const g = new BlockReadGovernor('auto');
  t.equal(g.measures, true);
  for (let i = 0; i < 100; i++) {
    t.equal(g.useSync(), true);
    g.observe(4);
  }
  g.observe(20_000); // the thread was descheduled for 20 ms once
  t.equal(g.useSync(), true, 'a single outlier does not switch to async');
  for (let i = 0; i < 20; i++) g.observe(120); // an SSD being read
  t.equal(g.useSync(), false, 'slow reads switch to async');
  let probes = 0;
  for (let i = 1; i < 10 * AUTO_PROBE_EVERY; i++) if (g.useSync()) probes++;
  t.equal(probes, 10, `one sync probe in ${AUTO_PROBE_EVERY} reads`);
  let calls = 0;
  while (!g.useSync() || g.averageSyncReadUs >= 50) {
    g.observe(3); // the probes find the page cache warm again
    if (++calls > 10_000) break;
  }
  for (let i = 0; i < 10; i++) g.observe(3);
  t.equal(g.useSync(), true, 'back to sync once probes are fast');
});

/** A MemoryFileSystem whose readSync busy-waits `slowUs` and counts read calls. */
function slowSyncReads(slowUs: number): { fs: FileSystem; counts: { read: number; readSync: number } } {
  const mem = new MemoryFileSystem();
  const counts = { read: 0, readSync: 0 };
  const fs = new Proxy(mem, {
    get(target, prop, receiver) {
      if (prop !== 'open') return Reflect.get(target, prop, receiver);
      return async (file: string, mode: Parameters<FileSystem['open']>[1]): Promise<FileHandle> => {
        const fh = await target.open(file, mode);
        return {
          path: fh.path,
          read: (...a) => {
            counts.read++;
            return fh.read(...a);
          },
          readSync: (...a) => {
            counts.readSync++;
            const until = performance.now() + slowUs / 1000;
            while (performance.now() < until);
            return fh.readSync(...a);
          },
          write: (...a) => fh.write(...a),
          writeSync: (...a) => fh.writeSync(...a),
          sync: () => fh.sync(),
          truncate: (n) => fh.truncate(n),
          size: () => fh.size(),
          close: () => fh.close(),
        };
      };
    },
  });
  return { fs, counts };
}

const key = (i: number) => Buffer.from(`key-${String((i * 7919) % 5000).padStart(5, '0')}`);

async function loadAndRead(mode: BlockReadMode, slowUs: number) {
  const { fs, counts } = slowSyncReads(slowUs);
  await fs.mkdirp('/db');
  const opts = { fs, blockReadMode: mode, blockCacheSizeBytes: 4096, memtableSizeBytes: 32 * 1024, autoCompaction: false } as const;
  let e = await Engine.open('/db', opts);
  for (let i = 0; i < 5000; i += 100) {
    await e.write(Array.from({ length: 100 }, (_, j) => ({ type: 'put' as const, key: key(i + j), value: Buffer.from(`v${(i + j) * 7919 % 5000}`) })));
  }
  await e.delete(key(7));
  await e.close();
  e = await Engine.open('/db', opts);
  counts.read = 0;
  counts.readSync = 0;
  const got: (string | undefined)[] = [];
  await Promise.all(
    Array.from({ length: 8 }, async (_, w) => {
      for (let i = w; i < 2000; i += 8) got[i] = (await e.get(key(i)))?.value.toString();
    }),
  );
  const stats = e.stats();
  await e.close();
  return { got, counts: { ...counts }, tables: stats.tableCount, blockReads: stats.blockReads };
}

t.test('the engine follows its mode; every mode returns the same records', async (t) => {
  const sync = await loadAndRead('sync', 0);
  const async_ = await loadAndRead('async', 0);
  const autoFast = await loadAndRead('auto', 0);
  const autoSlow = await loadAndRead('auto', 300);
  t.ok(sync.tables > 3 && sync.blockReads > 1000, `reads come from ${sync.tables} tables (${sync.blockReads} block reads)`);
  t.equal(sync.counts.read, 0, 'sync: no async reads');
  t.equal(async_.counts.readSync, 0, 'async: no sync reads');
  t.equal(autoFast.counts.read, 0, 'auto with fast sync reads: all sync');
  t.ok(autoSlow.counts.read > autoSlow.counts.readSync * 5, `auto with 300 µs sync reads: mostly async (${autoSlow.counts.read} async, ${autoSlow.counts.readSync} sync)`);
  t.equal(sync.got[7], undefined, 'the deleted key is gone');
  t.equal(sync.got[8], `v${(8 * 7919) % 5000}`);
  t.same(async_.got, sync.got, 'async returns what sync returns');
  t.same(autoSlow.got, sync.got, 'auto (mostly async) returns what sync returns');
});
