// `ringkv snapshot` and `ringkv restore` with real processes: every node takes a snapshot
// (hard links: the snapshot's tables are the node's table files); writes, overwrites and
// deletes go on; then n1 is killed, its data directory deleted, the snapshot (copied
// off the data directory, as a backup would be) restored into it, and n1 started. Read
// from n1 alone: the snapshot's keys are there before any repair; after `ringkv repair`,
// every key holds its latest value (and deleted keys are gone) on n1: nothing lost.

import fs from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { TestCluster } from '../helpers/cluster.js';
import type { BatchRequest, BatchResponse } from '../../sdk/wire/protocol.js';
import { OpType, PROTOCOL_VERSION, Routes } from '../../sdk/wire/protocol.js';
import { liveSiblings } from '../../sdk/versioning/index.js';
import type { StoredObject } from '../../sdk/versioning/index.js';
import type { CliRun } from '../helpers/run-cli.js';
import { runRingkv } from '../helpers/run-cli.js';

t.setTimeout(180_000);

function ringkv(args: string[]): Promise<CliRun> {
  return runRingkv(args, { timeoutMs: 120_000 });
}

t.test('snapshot, then restore a node whose data directory was deleted', async (t) => {
  const c = await TestCluster.start(t, { nodes: 3 });
  const seeds = ['--seeds', c.addresses.join(',')];
  const kv = await c.client<string>({ valueEncoding: 'utf8', timeoutMs: 10_000 });
  const before = Array.from({ length: 600 }, (_, i) => `snap:a:${i}`);
  t.equal((await kv.putMany(before.map((key) => ({ key, value: `old ${key}` })), { consistency: 'all' })).filter((o) => o.ok).length, 600);

  const snap = await ringkv(['snapshot', '--name', 's1', ...seeds]);
  t.equal(snap.code, 0, snap.stderr);
  const n1Line = snap.stdout.split('\n').find((l) => l.startsWith('n1: '));
  t.ok(n1Line, snap.stdout);
  const snapDir = n1Line!.slice(4).replace(/ \(.*$/, '');
  t.equal(snapDir, path.join(c.node('n1').dataDir, 'snapshots', 's1'));
  const tables = fs.readdirSync(path.join(snapDir, 'engine')).filter((f) => f.endsWith('.sst'));
  t.ok(tables.length > 0, `the snapshot holds ${tables.length} tables`);
  t.ok(
    tables.every((f) => fs.statSync(path.join(snapDir, 'engine', f)).nlink >= 2),
    'each is a hard link to a table of the node (no copy)',
  );
  t.notOk(fs.existsSync(path.join(snapDir, 'ACTOR')), 'no ACTOR in a snapshot');
  const again = await ringkv(['snapshot', '--name', 's1', '--node', 'n2', ...seeds]);
  t.equal(again.code, 3, 'a snapshot name is not reused');

  // Life goes on after the snapshot: new keys, overwrites, deletes.
  const after = Array.from({ length: 300 }, (_, i) => `snap:b:${i}`);
  await kv.putMany(after.map((key) => ({ key, value: `new ${key}` })), { consistency: 'all' });
  await kv.putMany(before.slice(0, 50).map((key) => ({ key, value: `updated ${key}` })), { consistency: 'all' });
  await kv.deleteMany(before.slice(50, 80), { consistency: 'all' });

  // The backup: the snapshot copied off the node's disk.
  const backup = path.join(c.dir, 'backup-n1');
  fs.cpSync(snapDir, backup, { recursive: true });
  await c.kill('n1');
  fs.rmSync(c.node('n1').dataDir, { recursive: true, force: true });
  const restore = await ringkv(['restore', '--from', backup, '--data', c.node('n1').dataDir]);
  t.equal(restore.code, 0, restore.stderr);
  const refused = await ringkv(['restore', '--from', backup, '--data', c.node('n1').dataDir]);
  t.equal(refused.code, 2, 'restore refuses a data directory that is not empty');
  await c.restart('n1');
  await c.waitForMembers(3, 'up', 30_000);

  /** What n1 alone holds for `keys`: the live value, or undefined. */
  const onN1 = async (keys: string[]): Promise<(string | undefined)[]> => {
    const out: (string | undefined)[] = [];
    for (let i = 0; i < keys.length; i += 200) {
      const req: BatchRequest = { v: PROTOCOL_VERSION, from: 'test', ops: keys.slice(i, i + 200).map((k) => ({ t: OpType.Get, key: Buffer.from(k) })) };
      const res = await c.call<BatchResponse>('n1', Routes.batch, req, 10_000);
      for (const r of res.results) {
        const obj = (r as { obj?: StoredObject | null }).obj;
        const live = obj ? liveSiblings(obj, Date.now()) : [];
        out.push(live.length > 0 ? Buffer.from(live[0]!.value).toString() : undefined);
      }
    }
    return out;
  };

  const restored = await onN1(before.slice(80));
  t.ok(restored.every((v, i) => v === `old ${before[80 + i]}`), 'before any repair, n1 holds every key of the snapshot it was not told about since');

  const repair = await ringkv(['repair', ...seeds]);
  t.equal(repair.code, 0, repair.stderr + repair.stdout);
  const all = [...before, ...after];
  const want = all.map((k, i) => (i < 50 ? `updated ${k}` : i < 80 ? undefined : i < 600 ? `old ${k}` : `new ${k}`));
  const got = await onN1(all);
  const wrong = all.filter((_, i) => got[i] !== want[i]);
  t.same(wrong, [], 'after repair n1 alone holds every key at its latest value, deleted keys deleted: nothing lost');
});
