// The engine's tombstone horizon (EngineOptions.tombstoneHorizon): deletes made at or after
// the time it returns survive compaction past their grace period; earlier ones go as usual;
// undefined leaves it to the grace period. (Cross-DC replication holds deletes back with it
// until the other data centers have them.)

import t from 'tap';
import { ManualClock } from '../../../sdk/clock.js';
import { Engine, MemoryFileSystem } from '../../../storage-server/engine/index.js';

const b = (s: string) => Buffer.from(s);

t.test('tombstones at or after the horizon outlive the grace period', async (t) => {
  const clock = new ManualClock();
  const fs = new MemoryFileSystem();
  await fs.mkdirp('/db');
  let horizon: number | undefined = 0;
  const e = await Engine.open('/db', { fs, clock, tombstoneGraceMs: 1000, autoCompaction: false, tombstoneHorizon: () => horizon });
  t.teardown(() => e.close());
  await e.put(b('early'), b('v'));
  await e.put(b('late'), b('v'));
  await e.flush();
  await e.delete(b('early'));
  clock.advance(5000);
  const between = clock.nowMs();
  await e.delete(b('late'));
  await e.flush();
  clock.advance(10_000); // both deletes are far past the grace period
  await e.compact();
  t.equal(e.stats().tables[0]?.tombstones, 2, 'horizon 0 (no full sync yet): every tombstone is kept');
  horizon = between; // deletes before it are in the other data centers
  await e.compact();
  t.equal(e.stats().tables[0]?.tombstones, 1, 'the delete before the horizon is dropped, the one after is kept');
  t.equal(await e.get(b('late')), undefined);
  t.equal(await e.get(b('early')), undefined);
  horizon = undefined;
  await e.compact();
  t.equal(e.stats().tableCount, 0, 'no horizon: the grace period alone decides');
});
