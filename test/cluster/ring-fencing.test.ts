// Ring changes fenced by epochs, with real processes: a client whose membership view is
// frozen (no subscription, no refresh) keeps writing at `strong` while a 4th node joins and
// while a node decommissions. Replicas refuse its writes routed on the ring from before each
// change (RING_CHANGED, carrying their view); it routes again. Afterwards, with cleanup run
// on every node, every acknowledged write is on all N of its final replicas and readable at
// `all`.

import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import t from 'tap';
import type { RingkvClient } from '../../sdk/client.js';
import type { BatchResponse } from '../../sdk/wire/protocol.js';
import { OpType, PROTOCOL_VERSION, Routes } from '../../sdk/wire/protocol.js';
import { liveSiblings } from '../../sdk/versioning/index.js';
import { CLI, TestCluster } from '../helpers/cluster.js';

t.setTimeout(180_000);
const exec = promisify(execFile);

async function waitFor(what: string, fn: () => Promise<boolean> | boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await Promise.resolve(fn()).catch(() => false)) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out waiting for ${what}`);
}

async function stateOf(c: TestCluster, viewer: string, id: string): Promise<string | undefined> {
  return (await c.view(viewer)).members.find((m) => m.id === id)?.state;
}

/** Writers that put new keys at `strong` until stopped; every acknowledged key is recorded. */
function writers(kv: RingkvClient<string>, count: number) {
  const acked = new Map<string, string>();
  const failures: string[] = [];
  let stop = false;
  const loops = Array.from({ length: count }, async (_, w) => {
    for (let i = 0; !stop; i++) {
      const key = `fence-${w}-${i}`;
      try {
        await kv.put(key, `v${i}`, { consistency: 'strong' });
        acked.set(key, `v${i}`);
      } catch (err) {
        failures.push(`put ${key}: ${(err as Error).message}`);
      }
      // A steady, light load: the point is the routing, not the throughput.
      await new Promise((r) => setTimeout(r, 5));
    }
  });
  return {
    acked,
    failures,
    async stop() {
      stop = true;
      await Promise.all(loops);
    },
  };
}

t.test('a client with a frozen view writes through a join and a decommission: no acknowledged write misses a final replica', async (t) => {
  const c = await TestCluster.start(t, { nodes: 3 });
  const stale = await c.client<string>({ valueEncoding: 'utf8', timeoutMs: 5000, membershipWatchMs: 0, membershipRefreshMs: 3_600_000 });
  const load = writers(stale, 3);
  await new Promise((r) => setTimeout(r, 500));

  const n4 = await c.addNode(['--join']);
  await waitFor('n4 up', async () => (await stateOf(c, 'n1', n4.id)) === 'up', 60_000);
  await new Promise((r) => setTimeout(r, 500));
  const { stdout } = await exec(process.execPath, [CLI, 'decommission', 'n2', '--seeds', c.addresses.join(',')]);
  t.match(stdout, /n2 left the ring/, 'n2 decommissioned');
  await waitFor('n2 left everywhere', async () => (await stateOf(c, 'n1', 'n2')) === 'left' && (await stateOf(c, 'n4', 'n2')) === 'left', 15_000);
  await new Promise((r) => setTimeout(r, 500));
  await load.stop();
  await c.stop('n2');

  t.same(load.failures.slice(0, 5), [], `no failed write (${load.acked.size} acknowledged)`);
  t.ok(load.acked.size > 100, `the frozen client kept writing (${load.acked.size} writes)`);
  // Its subscription is frozen: what it knows of n4 and n2 came with the replicas' refusals.
  t.ok(stale.cluster.member('n4') !== undefined, 'the frozen client learned of n4 from a refusal');
  t.ok(['leaving', 'left'].includes(stale.cluster.member('n2')?.state ?? ''), `and of n2 leaving (${stale.cluster.member('n2')?.state})`);
  let refusals = 0;
  for (const id of ['n1', 'n3', 'n4']) refusals += (await c.call<{ ring: { refusals: number } }>(id, Routes.status, undefined)).ring.refusals;
  t.ok(refusals > 0, `replicas refused writes routed on old rings (${refusals} refusals; the client routed again ${stale.counters.ringRetries} times)`);

  await exec(process.execPath, [CLI, 'cleanup', '--seeds', c.node('n1').address]);
  const fresh = await c.client<string>({ valueEncoding: 'utf8', timeoutMs: 5000 });
  await waitFor('the fresh client sees n2 left', () => fresh.cluster.member('n2')?.state === 'left', 10_000);
  const live = ['n1', 'n3', 'n4'];
  const keys = [...load.acked.keys()];
  let missing = 0;
  const examples: string[] = [];
  for (let i = 0; i < keys.length; i += 500) {
    const chunk = keys.slice(i, i + 500);
    const held = new Map<string, Map<string, string | undefined>>();
    for (const id of live) {
      const res = await c.call<BatchResponse>(id, Routes.batch, { v: PROTOCOL_VERSION, ops: chunk.map((k) => ({ t: OpType.Get, key: Buffer.from(k) })) }, 10_000);
      const m = new Map<string, string | undefined>();
      chunk.forEach((k, j) => {
        const r = res.results[j]!;
        const sib = r.ok && r.obj ? liveSiblings(r.obj, Date.now())[0] : undefined;
        m.set(k, sib?.value.toString());
      });
      held.set(id, m);
    }
    for (const k of chunk) {
      for (const owner of fresh.replicasOf(k)) {
        if (held.get(owner)?.get(k) !== load.acked.get(k)) {
          missing++;
          if (examples.length < 5) examples.push(`${k} missing on ${owner}`);
        }
      }
    }
  }
  t.equal(missing, 0, `every acknowledged write is on all 3 of its final replicas after cleanup ${examples.join('; ')}`);
  let unreadable = 0;
  for (const k of keys) {
    const r = await fresh.get(k, { consistency: 'all' });
    if (r?.value !== load.acked.get(k)) unreadable++;
  }
  t.equal(unreadable, 0, `every acknowledged write reads back at all (${keys.length} keys)`);
});
