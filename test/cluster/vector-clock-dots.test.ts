// Vector-clock dots are never issued twice, on three real server processes: a node that
// coordinated writes of a key comes back with an EMPTY data directory (same id, same port);
// a blind write it coordinates is acknowledged, and after anti-entropy and reads it is
// still there, a sibling of the acknowledged value it never saw. With one counter per key
// and per node id, the returning node reissued a dot the other replicas had seen, and sync
// dropped the acknowledged write everywhere. Also: the actor (`<id>#<epoch>`) survives a
// kill -9, and a node without fsync (`--sync none`) takes a new one at every start.

import fs from 'node:fs';
import t from 'tap';
import type { StoredObject } from '../../sdk/versioning/index.js';
import { liveSiblings } from '../../sdk/versioning/index.js';
import type { BatchResponse } from '../../sdk/wire/protocol.js';
import { OpType, PROTOCOL_VERSION, Routes } from '../../sdk/wire/protocol.js';
import { TestCluster } from '../helpers/cluster.js';

t.setTimeout(180_000);

async function rawGet(c: TestCluster, id: string, key: string): Promise<StoredObject | null> {
  const res = await c.call<BatchResponse>(id, Routes.batch, { v: PROTOCOL_VERSION, ops: [{ t: OpType.Get, key: Buffer.from(key) }] });
  const r = res.results[0]!;
  if (!r.ok) throw new Error(`${r.code}: ${r.msg}`);
  return r.obj;
}

/** The live values of a replica's copy, sorted, with each value's dot actor. */
async function liveOn(c: TestCluster, id: string, key: string): Promise<{ values: string[]; actors: string[] }> {
  const obj = await rawGet(c, id, key);
  const live = obj ? liveSiblings(obj, Date.now()) : [];
  const sorted = [...live].sort((a, b) => a.value.toString().localeCompare(b.value.toString()));
  return { values: sorted.map((s) => s.value.toString()), actors: sorted.map((s) => s.dot?.[0] ?? '') };
}

async function actorOf(c: TestCluster, id: string): Promise<string> {
  return (await c.call<{ actor: string }>(id, Routes.status, undefined)).actor;
}

async function waitFor(what: string, fn: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await fn().catch(() => false)) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out waiting for ${what}`);
}

t.test('a blind write coordinated by a node back with an empty disk survives, as a sibling of the value it never saw', async (t) => {
  const c = await TestCluster.start(t, { nodes: 3 });
  const kv = await c.client<string>({ valueEncoding: 'utf8', conflictMode: 'vector-clock', readRepair: false });
  // A key whose preference list starts with n1: n1 coordinates its writes.
  let key = '';
  for (let i = 0; i < 1000 && !key; i++) if (kv.cluster.ring.preferenceList(`cart-${i}`, 3)[0] === 'n1') key = `cart-${i}`;
  t.ok(key, `key ${key} is coordinated by n1`);

  let context: string | undefined;
  for (let i = 1; i <= 5; i++) context = (await kv.put(key, `v${i}`, { consistency: 'all', ...(context ? { context } : {}) })).context;
  for (const id of ['n1', 'n2', 'n3']) {
    const on = await liveOn(c, id, key);
    t.same(on.values, ['v5'], `${id} holds v5 (each write replaced the one before)`);
    t.match(on.actors[0], /^n1($|#)/, `${id}: v5 was coordinated by n1`);
  }
  const actorBefore = await actorOf(c, 'n1').catch(() => '(none)');

  // n1 comes back with an empty data directory: same id, same port.
  await c.kill('n1');
  fs.rmSync(c.node('n1').dataDir, { recursive: true, force: true });
  await c.restart('n1');
  await c.waitForMembers(3, 'up', 20_000);
  t.equal(await rawGet(c, 'n1', key), null, 'n1 has nothing (anti-entropy runs every 5 min: not before the write)');
  t.not(await actorOf(c, 'n1').catch(() => '(none)'), actorBefore, 'n1 is a new actor');

  // A blind write (no context), coordinated by n1, acknowledged by all three replicas.
  const kv2 = await c.client<string>({ valueEncoding: 'utf8', conflictMode: 'vector-clock', readRepair: false });
  await waitFor('the new client to see n1 up', async () => kv2.cluster.members().find((m) => m.id === 'n1')?.state === 'up', 10_000).catch(() => undefined);
  await kv2.put(key, 'blind', { consistency: 'all' });
  const onN1 = await liveOn(c, 'n1', key);
  t.same(onN1.values, ['blind'], 'n1 coordinated the blind write');
  t.match(onN1.actors[0], /^n1($|#)/);

  // Anti-entropy between every pair, then reads: both acknowledged writes must be there.
  for (const id of ['n1', 'n2', 'n3']) await c.call(id, Routes.admin, { v: PROTOCOL_VERSION, action: 'repair' }, 60_000);
  for (const id of ['n1', 'n2', 'n3']) t.same((await liveOn(c, id, key)).values, ['blind', 'v5'], `${id} holds the blind write and v5 as siblings`);
  const got = await kv2.get(key, { consistency: 'all' });
  t.same(got?.siblings?.map((s) => s.value).sort(), ['blind', 'v5'], 'a read returns both siblings');

  // A write with the read's context resolves them.
  await kv2.put(key, 'resolved', { consistency: 'all', context: got!.context });
  t.same((await kv2.get(key, { consistency: 'all' }))?.siblings, undefined, 'one value after the resolving write');
  t.equal((await kv2.get(key, { consistency: 'all' }))?.value, 'resolved');
});

t.test('the actor survives kill -9; without fsync (--sync none) every start is a new actor', async (t) => {
  const c = await TestCluster.start(t, { nodes: 3 });
  const a2 = await actorOf(c, 'n2');
  t.match(a2, /^n2#[0-9a-f]{8}$/);
  await c.restart('n2'); // kill -9, then start on the same data
  t.equal(await actorOf(c, 'n2'), a2, 'kill -9 and restart: the same actor');

  const a3 = await actorOf(c, 'n3');
  await c.restart('n3', ['--sync', 'none']);
  const b3 = await actorOf(c, 'n3');
  t.match(b3, /^n3#[0-9a-f]{8}$/);
  t.not(b3, a3, 'started with sync none: a new actor');
  await c.restart('n3', ['--sync', 'none']);
  t.not(await actorOf(c, 'n3'), b3, 'and again at the next start');
});
