// Merkle anti-entropy with real processes: a replica that missed writes (its hints
// deleted) is brought back in one repair round that exchanges only the differing keys, a
// delete missed by a replica does not come back, and `repair --check` agrees afterwards.

import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import t from 'tap';
import type { RepairStats } from '../../storage-server/anti-entropy/anti-entropy.js';
import { repairCheck } from '../../storage-server/cli/admin-commands.js';
import type { BatchResponse } from '../../sdk/wire/protocol.js';
import { OpType, PROTOCOL_VERSION, Routes } from '../../sdk/wire/protocol.js';
import type { StoredObject } from '../../sdk/versioning/index.js';
import { liveSiblings } from '../../sdk/versioning/index.js';
import { CLI, TestCluster } from '../helpers/cluster.js';

t.setTimeout(240_000);
const exec = promisify(execFile);

async function rawGet(c: TestCluster, id: string, key: string): Promise<StoredObject | null> {
  const res = await c.call<BatchResponse>(id, Routes.batch, { v: PROTOCOL_VERSION, ops: [{ t: OpType.Get, key: Buffer.from(key) }] });
  const r = res.results[0]!;
  if (!r.ok) throw new Error(`${r.code}: ${r.msg}`);
  return r.obj;
}

async function waitFor(what: string, fn: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await fn().catch(() => false)) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out waiting for ${what}`);
}

async function admin<T>(c: TestCluster, id: string, action: string): Promise<T> {
  return c.call<T>(id, Routes.admin, { v: PROTOCOL_VERSION, action }, 60_000);
}

/** Kills n3, runs `during`, drops every hint, restarts n3: n3 missed exactly what `during` wrote. */
async function missWrites(c: TestCluster, during: () => Promise<void>): Promise<void> {
  await c.kill('n3');
  await waitFor('n3 down', async () => (await c.view('n1')).members.find((m) => m.id === 'n3')?.state === 'down', 15_000);
  await during();
  for (const id of ['n1', 'n2']) await admin(c, id, 'drop-hints');
  await c.restart('n3');
  // Every node must see n3 up again (a repair skips replicas it thinks are down).
  await waitFor('n3 up everywhere and merkle-ready', async () => {
    const st = await c.call<{ merkleReady: boolean }>('n3', Routes.status, undefined);
    if (!st.merkleReady) return false;
    for (const id of ['n1', 'n2']) if ((await c.view(id)).members.find((m) => m.id === 'n3')?.state !== 'up') return false;
    return true;
  }, 15_000);
}

t.test('one repair round brings a replica that missed writes back, exchanging only the differing keys', async (t) => {
  const c = await TestCluster.start(t, { nodes: 3 });
  const kv = await c.client<string>({ valueEncoding: 'utf8', readRepair: false });
  const base = 2000;
  // Preloading is not what is tested: generous timeouts, so a loaded machine does not fail it.
  await Promise.all(Array.from({ length: base }, (_, i) => kv.put(`ae-${i}`, `v0-${i}`, { consistency: 'all', timeoutMs: 20_000 })));
  let check = await repairCheck(c.addresses);
  t.ok(check.allAgree, 'all replicas agree before the failure');

  const changed = new Map<string, string | undefined>();
  await missWrites(c, async () => {
    for (let i = 0; i < 150; i++) {
      await kv.put(`ae-new-${i}`, `new-${i}`, { consistency: 'strong' });
      changed.set(`ae-new-${i}`, `new-${i}`);
    }
    for (let i = 0; i < 100; i++) {
      await kv.put(`ae-${i * 7}`, `v1-${i * 7}`, { consistency: 'strong' });
      changed.set(`ae-${i * 7}`, `v1-${i * 7}`);
    }
    for (let i = 0; i < 50; i++) {
      await kv.delete(`ae-${1000 + i}`, { consistency: 'strong' });
      changed.set(`ae-${1000 + i}`, undefined);
    }
  });
  t.equal(await rawGet(c, 'n3', 'ae-new-0'), null, 'n3 missed the writes (no hints left)');

  check = await repairCheck(c.addresses);
  t.notOk(check.allAgree, `repair --check sees the difference (${check.ranges.filter((r) => !r.agree).length} ranges differ)`);
  const { stdout: before } = await exec(process.execPath, [CLI, 'repair', '--check', '--seeds', c.addresses.join(',')]).catch((e) => e);
  t.match(before, /differ/, 'the CLI reports differing ranges');

  const res = await admin<{ repair: RepairStats }>(c, 'n1', 'repair');
  t.equal(res.repair.keysExchanged, changed.size, `the round exchanged exactly the ${changed.size} differing keys, not all ${base + 150}`);
  t.ok(res.repair.hashesCompared > 0, `${res.repair.hashesCompared} hashes compared`);

  check = await repairCheck(c.addresses);
  t.ok(check.allAgree, 'after one round every range agrees');
  const cli = await exec(process.execPath, [CLI, 'repair', '--check', '--seeds', c.addresses.join(',')]);
  t.match(cli.stdout, /ranges: \d+ agree, 0 differ/, 'and `ringkv repair --check` exits 0');
  for (const [key, value] of changed) {
    const obj = await rawGet(c, 'n3', key);
    const live = obj ? liveSiblings(obj, Date.now()) : [];
    t.equal(live[0]?.value.toString(), value, `n3 has ${key} = ${value ?? '(deleted)'}`);
  }
  // A second round finds nothing.
  const again = await admin<{ repair: RepairStats }>(c, 'n2', 'repair');
  t.equal(again.repair.keysExchanged, 0, 'a second round exchanges nothing');
});

t.test('a delete missed by a replica stays deleted after repair (no resurrection)', async (t) => {
  const c = await TestCluster.start(t, { nodes: 3 });
  const kv = await c.client<string>({ valueEncoding: 'utf8', readRepair: false });
  await kv.put('zombie', 'alive', { consistency: 'all' });
  await missWrites(c, async () => {
    await kv.delete('zombie', { consistency: 'strong' });
  });
  const onN3 = await rawGet(c, 'n3', 'zombie');
  t.equal(onN3 && liveSiblings(onN3, Date.now())[0]?.value.toString(), 'alive', 'n3 still has the old value');
  await admin(c, 'n2', 'repair');
  for (const id of ['n1', 'n2', 'n3']) {
    const obj = await rawGet(c, id, 'zombie');
    t.ok(obj, `${id} keeps the tombstone`);
    t.equal(liveSiblings(obj!, Date.now()).length, 0, `${id}: the key is deleted`);
  }
  const reader = await c.client<string>({ valueEncoding: 'utf8' });
  for (const consistency of ['eventual', 'strong', 'all'] as const) {
    t.equal(await reader.get('zombie', { consistency }), undefined, `deleted at ${consistency}`);
  }
  t.ok((await repairCheck(c.addresses)).allAgree, 'all replicas agree');
});
