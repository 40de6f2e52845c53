// Data types across two data centers of three real server processes each (east and west,
// 3 replicas in each), the link between them through the user-space proxy the test cuts
// (benchmarks/harness/inter-dc-link.ts). Checks that an update of a data type is shipped to
// the other data center like a plain write, and that updates made on both sides of a cut
// link merge after healing: a counter incremented on both sides reads the sum everywhere,
// a set holds the members added on both sides, and the full sync finds the sides agreeing.

import t from 'tap';
import { runFullSync } from '../../storage-server/cli/repl-commands.js';
import { repairCheck } from '../../storage-server/cli/admin-commands.js';
import type { ReplDcStatus } from '../../storage-server/replication/replication.js';
import { Routes } from '../../sdk/wire/protocol.js';
import { DcCluster } from '../helpers/dc-cluster.js';

async function waitFor(what: string, cond: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await cond().catch(() => false)) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

t.test('data types merge across data centers after a cut link heals', async (t) => {
  const dc = await DcCluster.start(t, {
    dcs: [
      { name: 'east', nodes: 3 },
      { name: 'west', nodes: 3 },
    ],
    env: { RINGKV_REPL_RETRY_MAX_MS: '500', RINGKV_FULL_SYNC_INTERVAL_MS: '0' },
  });
  const east = await dc.client('east');
  const west = await dc.client('west');
  const eastSeeds = dc.nodesOf('east').map((n) => n.address);
  const status = async (id: string): Promise<ReplDcStatus[]> => (await dc.cluster.call<{ repl: ReplDcStatus[] }>(id, Routes.status, undefined)).repl;
  const pendingEverywhere = async (): Promise<number> => {
    let sum = 0;
    for (const n of dc.cluster.nodes) for (const r of await status(n.id)) sum += r.pending;
    return sum;
  };
  const local = { consistency: 'localQuorum' as const };

  await t.test('an update is shipped to the other data center', async (t) => {
    await east.counter('likes').increment(1, local);
    await east.set('tags').add('base', local);
    await waitFor('west to read the counter east incremented', async () => (await west.counter('likes').value(local)) === 1, 30_000);
    await waitFor('west to read the set east added to', async () => (await west.set('tags').members(local)).includes('base'), 30_000);
    t.equal(await west.counter('likes').value(local), 1, 'west reads 1 at localQuorum');
    t.same(await west.set('tags').members(local), ['base'], 'west reads the member');
  });

  await t.test('cut: both sides update; heal: both read the merge', async (t) => {
    dc.link.cut();
    for (let i = 0; i < 5; i++) await east.counter('likes').increment(1, local);
    for (let i = 0; i < 7; i++) await west.counter('likes').increment(1, local);
    await east.counter('score').increment(10, local);
    await west.counter('score').decrement(3, local);
    await east.set('tags').add('from-east', local);
    await west.set('tags').add('from-west', local);
    t.equal(await east.counter('likes').value(local), 6, 'east reads its own increments during the cut (1 + 5)');
    t.equal(await west.counter('likes').value(local), 8, 'west reads its own increments during the cut (1 + 7)');
    const err = await east.counter('other').increment(1, { consistency: 'eachQuorum', timeoutMs: 1500 }).then(
      () => undefined,
      (e: { code?: string }) => e,
    );
    t.ok(err?.code === 'QUORUM_NOT_MET' || err?.code === 'TIMEOUT', `an eachQuorum increment fails typed during the cut (${err?.code})`);
    // (On another counter: the failed increment may have been applied in east, not undone.)

    dc.link.heal();
    await waitFor('the queues drained', async () => (await pendingEverywhere()) === 0, 60_000);
    let e = 0;
    let w = 0;
    await waitFor(
      'both sides to read the same sum',
      async () => {
        e = await east.counter('likes').value(local);
        w = await west.counter('likes').value(local);
        return e === w && e === 13;
      },
      60_000,
    );
    t.equal(e, w, `east and west read the same counter (${e})`);
    t.equal(e, 13, "the counter is the sum of both sides' increments: 1 + 5 + 7");
    t.equal(await east.counter('score').value(local), 7, 'east: 10 - 3');
    t.equal(await west.counter('score').value(local), 7, 'west: 10 - 3');
    t.same(await east.set('tags').members(local), ['base', 'from-east', 'from-west'], 'east holds the members added on both sides');
    t.same(await west.set('tags').members(local), ['base', 'from-east', 'from-west'], 'west holds the members added on both sides');

    const fs = await runFullSync(eastSeeds, 'west', 'east');
    t.ok(fs.nodes.every((n) => n.fullsync?.every((f) => f.ok)), 'the full sync from every east node completed');
    const check = await repairCheck(eastSeeds, 30_000, { acrossDcs: true });
    t.ok(check.allAgree, `every range agrees across the data centers (${check.ranges.filter((r) => !r.agree).length} differ)`);
    // Nothing counted twice by the full sync or a later merge.
    t.equal(await east.counter('likes').value({ consistency: 'all' }), e, 'the sum is unchanged after the full sync, read at all (both data centers)');
    t.equal(await west.counter('likes').value(local), e, 'and in west');
  });
});
