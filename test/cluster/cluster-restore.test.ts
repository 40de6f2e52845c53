// A whole cluster restored from its snapshots, with real processes and the real CLI, as the
// README's "Backups" says: 3 nodes (2 replicas a key, so each node holds its own part), keys
// written, deleted and data types updated, one key reaching a replica only through a hint;
// `ringkv snapshot --name s1`; more writes; every node stopped, every data directory deleted,
// each node's s1 restored into its own, all started, `ringkv repair`. Each replica holds its
// snapshot's keys before the repair; every key then reads its snapshot value at strong and
// all, deletes stay deleted through a compaction that collects their tombstones, writes made
// after the snapshot are gone, and writes work again. The snapshots are older than the
// (short) tombstone grace when the nodes start: a whole-cluster restore must not leave every
// node `recovering`, waiting for a peer that is up.

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
import { readNodeState } from '../../storage-server/node-state.js';

t.setTimeout(180_000);

const GRACE_MS = 8000;

function ringkv(args: string[]): Promise<CliRun> {
  return runRingkv(args, { timeoutMs: 120_000 });
}

async function waitFor(what: string, fn: () => Promise<boolean> | boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  while (Date.now() < deadline) {
    try {
      if (await fn()) return;
    } catch (err) {
      last = (err as Error).message;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? ` (last error: ${last})` : ''}`);
}

/** The objects node `id` alone holds for `keys` (null: none, not even a tombstone). */
async function rawOnNode(c: TestCluster, id: string, keys: string[]): Promise<(StoredObject | null)[]> {
  const out: (StoredObject | null)[] = [];
  for (let i = 0; i < keys.length; i += 200) {
    const req: BatchRequest = { v: PROTOCOL_VERSION, from: 'test', ops: keys.slice(i, i + 200).map((k) => ({ t: OpType.Get, key: Buffer.from(k) })) };
    const res = await c.call<BatchResponse>(id, Routes.batch, req, 10_000);
    for (const r of res.results) {
      if (!r.ok) throw new Error(`${id}: ${r.code}: ${r.msg}`);
      out.push((r as { obj?: StoredObject | null }).obj ?? null);
    }
  }
  return out;
}

/** What node `id` alone holds for `keys`: the live value, or undefined (absent or deleted). */
async function onNode(c: TestCluster, id: string, keys: string[]): Promise<(string | undefined)[]> {
  return (await rawOnNode(c, id, keys)).map((obj) => {
    const live = obj ? liveSiblings(obj, Date.now()) : [];
    return live.length > 0 ? Buffer.from(live[0]!.value).toString() : undefined;
  });
}

t.test('restore a whole cluster from snapshots of one name', async (t) => {
  const c = await TestCluster.start(t, {
    nodes: 3,
    args: ['--replication', '2'],
    // Automatic repair off: before `ringkv repair`, each node holds only what its restore gave it.
    env: { RINGKV_TOMBSTONE_GRACE_MS: String(GRACE_MS), RINGKV_REPAIR_INTERVAL_MS: '0' },
  });
  const seeds = ['--seeds', c.addresses.join(',')];
  const kv = await c.client<string>({ valueEncoding: 'utf8', timeoutMs: 10_000 });

  // Before the snapshot: 300 keys at strong, 40 of them deleted, a counter and a set.
  const keys = Array.from({ length: 300 }, (_, i) => `cr:a:${i}`);
  const wrote = await kv.putMany(keys.map((key) => ({ key, value: `v1 ${key}` })), { consistency: 'strong' });
  t.equal(wrote.filter((o) => o.ok).length, 300, '300 keys written at strong');
  const deleted = await kv.deleteMany(keys.slice(0, 40), { consistency: 'strong' });
  t.equal(deleted.filter((o) => o.ok).length, 40, '40 of them deleted at strong');
  const deletedAt = Date.now();
  await kv.counter('cr:counter').increment(5, { consistency: 'strong' });
  await kv.set('cr:set').add('a', 'b', { consistency: 'strong' });

  // A key that reaches n3 only through a hint: written while n3 is down, delivered when it returns.
  const hinted = Array.from({ length: 200 }, (_, i) => `cr:hinted:${i}`).find((k) => kv.replicasOf(k).includes('n3'))!;
  await c.kill('n3');
  await kv.put(hinted, 'through a hint', { consistency: 'eventual' });
  // W = 1 is met by whichever of the live replica and the hint holder answers first: the
  // live replica applies it within a bound, not necessarily before the acknowledgement.
  const live = kv.replicasOf(hinted).find((x) => x !== 'n3')!;
  await waitFor('the hinted key on its live replica', async () => (await onNode(c, live, [hinted]))[0] === 'through a hint', 10_000);
  t.pass('the hinted key is on its live replica');
  await c.restart('n3');
  await c.waitForMembers(3, 'up', 30_000);
  await waitFor('the hint delivered to n3', async () => (await onNode(c, 'n3', [hinted]))[0] === 'through a hint', 30_000);

  const snap = await ringkv(['snapshot', '--name', 's1', ...seeds]);
  t.equal(snap.code, 0, 'ringkv snapshot --name s1', { stdout: snap.stdout, stderr: snap.stderr });
  const snapDirs = new Map<string, string>();
  for (const line of snap.stdout.split('\n')) {
    const m = /^(n\d): (\S+) \(/.exec(line);
    if (m) snapDirs.set(m[1]!, m[2]!);
  }
  t.same([...snapDirs.keys()].sort(), ['n1', 'n2', 'n3'], 'every node took s1');

  // After the snapshot: new keys, overwrites, deletes, data-type updates — all to be lost.
  const later = Array.from({ length: 100 }, (_, i) => `cr:b:${i}`);
  t.equal((await kv.putMany(later.map((key) => ({ key, value: `new ${key}` })), { consistency: 'strong' })).filter((o) => o.ok).length, 100, 'after the snapshot: 100 new keys');
  t.equal((await kv.putMany(keys.slice(40, 60).map((key) => ({ key, value: `v2 ${key}` })), { consistency: 'strong' })).filter((o) => o.ok).length, 20, '20 keys overwritten');
  t.equal((await kv.deleteMany(keys.slice(60, 80), { consistency: 'strong' })).filter((o) => o.ok).length, 20, '20 keys deleted');
  await kv.counter('cr:counter').increment(7, { consistency: 'strong' });
  await kv.set('cr:set').add('c', { consistency: 'strong' });
  t.equal(await kv.counter('cr:counter').value({ consistency: 'all' }), 12, 'the counter moved on after the snapshot');

  // Stop every node; keep each snapshot off its disk (a backup); delete every data directory.
  await Promise.all(c.nodes.map((n) => c.stop(n.id)));
  for (const n of c.nodes) {
    fs.cpSync(snapDirs.get(n.id)!, path.join(c.dir, 'backup', n.id), { recursive: true });
    fs.rmSync(n.dataDir, { recursive: true, force: true });
  }
  // The snapshots are older than the tombstone grace when the nodes start (as a backup of
  // last month is older than the default 10 days): each node's NODE-STATE says so.
  const lastAlive = Math.max(...c.nodes.map((n) => readNodeState(path.join(c.dir, 'backup', n.id, 'NODE-STATE'))!.lastAliveMs));
  await waitFor('the snapshots to be older than the tombstone grace', () => Date.now() - lastAlive > GRACE_MS + 200, GRACE_MS + 5000);

  const restores = await Promise.all(c.nodes.map((n) => ringkv(['restore', '--from', path.join(c.dir, 'backup', n.id), '--data', n.dataDir, '--whole-cluster'])));
  restores.forEach((r, i) => t.equal(r.code, 0, `ringkv restore ${c.nodes[i]!.id} --whole-cluster`, { stdout: r.stdout, stderr: r.stderr }));
  await Promise.all(c.nodes.map((n) => c.restart(n.id)));
  await c.waitForMembers(3, 'up', 30_000);
  t.pass('membership is back: every node sees all three up');
  // The mark counts once: a later outage longer than the grace recovers as any other.
  t.same(
    c.nodes.filter((n) => readNodeState(path.join(n.dataDir, 'NODE-STATE'))?.wholeClusterRestoreMs !== undefined).map((n) => n.id),
    [],
    "each node's start wrote its NODE-STATE without the whole-cluster mark",
  );

  const kv2 = await c.client<string>({ valueEncoding: 'utf8', timeoutMs: 10_000 });
  const want = (k: string, i: number) => (i < 40 ? undefined : `v1 ${k}`);

  /** The keys some replica of which does not hold what it should, as `key@node=value`. */
  const wrongOnReplicas = async (): Promise<string[]> => {
    const wrong: string[] = [];
    for (const n of c.nodes) {
      const mine = keys.map((k, i) => ({ k, i })).filter(({ k }) => kv2.replicasOf(k).includes(n.id));
      const got = await onNode(c, n.id, mine.map((x) => x.k));
      mine.forEach(({ k, i }, j) => got[j] !== want(k, i) && wrong.push(`${k}@${n.id}=${got[j]}`));
      const gone = await onNode(c, n.id, later);
      later.forEach((k, j) => gone[j] !== undefined && wrong.push(`${k}@${n.id}=${gone[j]}`));
    }
    return wrong;
  };

  // Before any repair each replica holds its own snapshot: a node restored from another
  // node's snapshot, or not restored, lacks keys here.
  t.same(await wrongOnReplicas(), [], "before the repair, every replica holds its snapshot's keys and none written after it");
  for (const id of kv2.replicasOf(hinted)) t.same(await onNode(c, id, [hinted]), ['through a hint'], `the hinted key on ${id}`);

  const repair = await ringkv(['repair', ...seeds]);
  t.equal(repair.code, 0, 'ringkv repair', { stdout: repair.stdout, stderr: repair.stderr });

  /** The keys that do not read as expected at `consistency`, as `key=value`. */
  const wrongReads = async (consistency: 'strong' | 'all'): Promise<string[]> => {
    const all = [...keys, ...later, hinted];
    const res = await kv2.getMany(all, { consistency });
    const wrong: string[] = [];
    res.forEach((o, i) => {
      const expected = i < keys.length ? want(all[i]!, i) : i < keys.length + later.length ? undefined : 'through a hint';
      const got = o.ok ? o.result?.value : `error ${o.error.code}`;
      if (got !== expected) wrong.push(`${all[i]}=${got}`);
    });
    return wrong;
  };
  t.same(await wrongReads('strong'), [], 'at strong: every key of the snapshot, no deleted key, nothing written after it');
  t.same(await wrongReads('all'), [], 'at all: the same');
  t.equal(await kv2.counter('cr:counter').value({ consistency: 'all' }), 5, 'the counter reads its snapshot value');
  t.same(await kv2.set('cr:set').members({ consistency: 'all' }), ['a', 'b'], 'the set reads its snapshot members');

  // Once the deletes are older than the grace, a compaction collects their tombstones, and
  // they must stay deleted.
  await waitFor('the deletes to be older than the tombstone grace', () => Date.now() - deletedAt > GRACE_MS + 200, GRACE_MS + 5000);
  const compact = await ringkv(['compact', ...seeds]);
  t.equal(compact.code, 0, 'ringkv compact', { stdout: compact.stdout, stderr: compact.stderr });
  const tombstonesLeft: string[] = [];
  for (const n of c.nodes) {
    const mine = keys.slice(0, 40).filter((k) => kv2.replicasOf(k).includes(n.id));
    (await rawOnNode(c, n.id, mine)).forEach((obj, j) => obj !== null && tombstonesLeft.push(`${mine[j]}@${n.id}`));
  }
  t.same(tombstonesLeft, [], "the compaction collected the deleted keys' tombstones on every replica");
  t.same(await wrongOnReplicas(), [], 'after it, every replica still holds what it should: no deleted key back');
  t.same(await wrongReads('all'), [], 'and reads at all agree');

  // Writes work again.
  await kv2.put('cr:c:0', 'after the restore', { consistency: 'strong' });
  t.equal((await kv2.get('cr:c:0', { consistency: 'all' }))?.value, 'after the restore', 'a new key is written and read');
  await kv2.delete(keys[100]!, { consistency: 'strong' });
  t.equal(await kv2.get(keys[100]!, { consistency: 'all' }), undefined, 'a key deleted');
  await kv2.counter('cr:counter').increment(1, { consistency: 'strong' });
  t.equal(await kv2.counter('cr:counter').value({ consistency: 'all' }), 6, 'the counter counts on from its snapshot value');
  await kv2.set('cr:set').add('d', { consistency: 'strong' });
  t.same(await kv2.set('cr:set').members({ consistency: 'all' }), ['a', 'b', 'd'], 'the set takes a new member');
});
