// Failover with real processes: failure detection (kill -9 and SIGSTOP), refutation of a
// false suspicion, sloppy quorum with durable hints, hint replay after a restart, and
// zero acknowledged writes lost. Timings are bounded, not measured (the benchmark does).

import t from 'tap';
import type { Test } from 'tap';
import type { RingkvClient } from '../../sdk/client.js';
import type { BatchResponse } from '../../sdk/wire/protocol.js';
import { OpType, PROTOCOL_VERSION, Routes } from '../../sdk/wire/protocol.js';
import type { StoredObject } from '../../sdk/versioning/index.js';
import { liveSiblings } from '../../sdk/versioning/index.js';
import { TestCluster } from '../helpers/cluster.js';

t.setTimeout(300_000);

/** Failure detection settings of these tests (the defaults, written out: see membership/README.md). */
const DETECTION_BOUND_MS = 12_000;

async function rawGet(c: TestCluster, id: string, key: string): Promise<StoredObject | null> {
  const res = await c.call<BatchResponse>(id, Routes.batch, { v: PROTOCOL_VERSION, ops: [{ t: OpType.Get, key: Buffer.from(key) }] });
  const r = res.results[0]!;
  if (!r.ok) throw new Error(`${r.code}: ${r.msg}`);
  return r.obj;
}

async function waitFor(what: string, fn: () => Promise<boolean> | boolean, timeoutMs: number): Promise<number> {
  const started = Date.now();
  let lastErr = '';
  while (Date.now() - started < timeoutMs) {
    try {
      if (await fn()) return Date.now() - started;
    } catch (err) {
      lastErr = (err as Error).message;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${lastErr ? ` (last error: ${lastErr})` : ''}`);
}

async function stateIn(c: TestCluster, viewer: string, member: string): Promise<string | undefined> {
  const v = await c.view(viewer);
  return v.members.find((m) => m.id === member)?.state;
}

async function hintsPending(c: TestCluster, ids: string[]): Promise<number> {
  let n = 0;
  for (const id of ids) n += (await c.call<{ hintsPending: number }>(id, Routes.status, undefined)).hintsPending;
  return n;
}

/** Writes continuously from `writers` loops until stopped; records every acknowledged write. */
function writeLoad(kv: RingkvClient<string>, writers: number) {
  const acked = new Map<string, string>();
  const failures: string[] = [];
  let stop = false;
  let seq = 0;
  const loops = Array.from({ length: writers }, async (_, w) => {
    while (!stop) {
      const i = seq++;
      // Mostly new keys, some overwrites of earlier ones.
      const key = i % 5 === 4 && i > 20 ? `load-${w}-${Math.floor(i / 2)}` : `load-${w}-${i}`;
      const value = `v${i}`;
      try {
        await kv.put(key, value, { consistency: 'strong' });
        acked.set(key, value);
      } catch (err) {
        failures.push(`${key}: ${(err as Error).message}`);
      }
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

/**
 * `holder` has its own copy of every acknowledged key it replicates (raw internal Gets on it,
 * checked first: a read at `all` would repair the keys it reads, so it must not come before),
 * then every acknowledged key reads back at `all` with its acknowledged value.
 */
async function checkNothingLost(t: Test, c: TestCluster, kv: RingkvClient<string>, acked: Map<string, string>, holder: string) {
  let lost = 0;
  let missingOnHolder = 0;
  let checkedOnHolder = 0;
  const seqOf = (v: string) => Number(v.slice(1));
  const entries = [...acked];
  // 200 keys at a time: one batch request to the holder, or batched per node by the client.
  const mine = entries.filter(([key]) => kv.replicasOf(key).includes(holder));
  for (let i = 0; i < mine.length; i += 200) {
    const chunk = mine.slice(i, i + 200);
    const res = await c.call<BatchResponse>(holder, Routes.batch, { v: PROTOCOL_VERSION, ops: chunk.map(([key]) => ({ t: OpType.Get, key: Buffer.from(key) })) }, 10_000);
    chunk.forEach(([, value], j) => {
      const r = res.results[j]!;
      const live = r.ok && r.obj ? liveSiblings(r.obj, Date.now()) : [];
      if (live.length === 0 || seqOf(live[0]!.value.toString()) < seqOf(value)) missingOnHolder++;
    });
    checkedOnHolder += chunk.length;
  }
  t.ok(checkedOnHolder > 0, `${holder} replicates some of the acknowledged keys (${checkedOnHolder})`);
  t.equal(missingOnHolder, 0, `${holder} holds every key it replicates, delivered by hints (checked before any read)`);
  for (let i = 0; i < entries.length; i += 200) {
    const chunk = entries.slice(i, i + 200);
    const reads = await Promise.all(chunk.map(([key]) => kv.get(key, { consistency: 'all', timeoutMs: 10_000 })));
    chunk.forEach(([, value], j) => {
      const r = reads[j];
      if (!r || seqOf(r.value) < seqOf(value)) lost++;
    });
  }
  t.equal(lost, 0, `no acknowledged write lost (${acked.size} keys checked at consistency all)`);
}

t.test('kill -9 one of three nodes under a strong write load: nothing fails, nothing is lost', async (t) => {
  const c = await TestCluster.start(t, { nodes: 3 });
  const kv = await c.client<string>({ valueEncoding: 'utf8', timeoutMs: 2000 });
  const load = writeLoad(kv, 16);
  await new Promise((r) => setTimeout(r, 1500));
  await c.kill('n3');
  const killedAt = Date.now();
  await waitFor('n3 down in every live view', async () => (await stateIn(c, 'n1', 'n3')) === 'down' && (await stateIn(c, 'n2', 'n3')) === 'down', DETECTION_BOUND_MS);
  t.pass(`n3 down in n1's and n2's views after ${Date.now() - killedAt} ms`);
  await waitFor("n3 down in the SDK's view", () => kv.cluster.member('n3')?.state === 'down', 5000);
  await new Promise((r) => setTimeout(r, 1000));
  await load.stop();
  t.same(load.failures.slice(0, 5), [], `all writes succeeded during the failure (${load.acked.size} acknowledged)`);
  t.ok((await hintsPending(c, ['n1', 'n2'])) > 0, 'hints were stored for n3');
  await c.restart('n3');
  await waitFor('n3 up again everywhere', async () => (await stateIn(c, 'n1', 'n3')) === 'up' && (await stateIn(c, 'n2', 'n3')) === 'up', 15_000);
  const drainMs = await waitFor('hints drained', async () => (await hintsPending(c, ['n1', 'n2'])) === 0, 30_000);
  t.pass(`hints drained ${drainMs} ms after n3 was seen up`);
  await checkNothingLost(t, c, kv, load.acked, 'n3');
});

t.test('SIGSTOP one of three nodes under a strong write load, then SIGCONT: nothing fails, nothing is lost', async (t) => {
  const c = await TestCluster.start(t, { nodes: 3 });
  const kv = await c.client<string>({ valueEncoding: 'utf8', timeoutMs: 2000 });
  const load = writeLoad(kv, 16);
  await new Promise((r) => setTimeout(r, 1500));
  c.pause('n3');
  const pausedAt = Date.now();
  await waitFor('paused n3 down in every live view', async () => (await stateIn(c, 'n1', 'n3')) === 'down' && (await stateIn(c, 'n2', 'n3')) === 'down', DETECTION_BOUND_MS);
  t.pass(`paused n3 seen down after ${Date.now() - pausedAt} ms`);
  await new Promise((r) => setTimeout(r, 1000));
  c.resume('n3');
  const resumedAt = Date.now();
  await waitFor('n3 up again (it refuted)', async () => (await stateIn(c, 'n1', 'n3')) === 'up' && (await stateIn(c, 'n2', 'n3')) === 'up', 15_000);
  t.pass(`resumed n3 is up again after ${Date.now() - resumedAt} ms, with no operator action`);
  await new Promise((r) => setTimeout(r, 1000));
  await load.stop();
  t.same(load.failures.slice(0, 5), [], `all writes succeeded across the pause (${load.acked.size} acknowledged)`);
  await waitFor('hints drained', async () => (await hintsPending(c, ['n1', 'n2'])) === 0, 30_000);
  await checkNothingLost(t, c, kv, load.acked, 'n3');
});

t.test('a false suspicion of a slow node is refuted, and it never goes down', async (t) => {
  // A long suspicion timeout: the paused node is suspected but resumes before it could be declared down.
  const c2 = await TestCluster.start(t, { nodes: 3, env: { RINGKV_SUSPICION_TIMEOUT_MS: '60000' } });
  const before = (await c2.view('n1')).members.find((m) => m.id === 'n3')!.incarnation;
  c2.pause('n3');
  await waitFor('n3 suspected', async () => (await stateIn(c2, 'n1', 'n3')) === 'suspect', DETECTION_BOUND_MS);
  c2.resume('n3');
  await waitFor('n3 refuted the suspicion', async () => (await stateIn(c2, 'n1', 'n3')) === 'up' && (await stateIn(c2, 'n2', 'n3')) === 'up', 10_000);
  const after = (await c2.view('n1')).members.find((m) => m.id === 'n3')!.incarnation;
  t.ok(after > before, `n3 raised its incarnation to refute (${before} -> ${after})`);
  const log = [...c2.log('n1'), ...c2.log('n2')].join('\n');
  t.notMatch(log, /"to":"down"/, 'n3 was never marked down');
});

t.test('two of three replicas down: strong fails fast with a typed error, eventual succeeds through hints', async (t) => {
  const c = await TestCluster.start(t, { nodes: 5 });
  const kv = await c.client<string>({ valueEncoding: 'utf8', timeoutMs: 2000 });
  // A key whose replicas include n4 and n5.
  let key = '';
  for (let i = 0; i < 10_000 && !key; i++) {
    const r = kv.replicasOf(`two-down-${i}`);
    if (r.includes('n4') && r.includes('n5')) key = `two-down-${i}`;
  }
  t.ok(key, `found key ${key} replicated on n4 and n5`);
  await kv.put(key, 'before', { consistency: 'all' });
  await c.kill('n4');
  await c.kill('n5');
  await waitFor('n4 and n5 down in the SDK view', () => kv.cluster.member('n4')?.state === 'down' && kv.cluster.member('n5')?.state === 'down', DETECTION_BOUND_MS + 5000);
  const started = Date.now();
  await t.rejects(kv.put(key, 'strong', { consistency: 'strong' }), { code: 'QUORUM_NOT_MET' });
  await t.rejects(kv.get(key, { consistency: 'strong' }), { code: 'QUORUM_NOT_MET' });
  t.ok(Date.now() - started < 2000, `strong failed in ${Date.now() - started} ms, within the 2000 ms timeout`);
  await kv.put(key, 'eventual', { consistency: 'eventual' });
  // W = R = 1 does not promise to read one's own write: the put is acknowledged by whichever
  // of the live replica and the two hint holders answers first, and an eventual read asks the
  // live replica, which may not have applied it yet. What it promises is that the live
  // replica gets the write: an eventual read returns it within a bound.
  const seenMs = await waitFor('an eventual read of the eventual write', async () => (await kv.get(key, { consistency: 'eventual' }))?.value === 'eventual', 10_000);
  t.pass(`an eventual read returns the eventual write (${seenMs} ms after it was acknowledged)`);
  t.ok(kv.counters.hintedWrites >= 2, `the two missing replicas got hints (${kv.counters.hintedWrites})`);
  await c.restart('n4');
  await c.restart('n5');
  await waitFor('hints delivered to n4 and n5', async () => (await hintsPending(c, ['n1', 'n2', 'n3'])) === 0, 30_000);
  for (const id of ['n4', 'n5']) {
    const obj = await rawGet(c, id, key);
    t.equal(obj && liveSiblings(obj, Date.now())[0]?.value.toString(), 'eventual', `${id} got the eventual write from its hint`);
  }
});

t.test('a restarted storage server recovers its hints from disk and delivers them', async (t) => {
  const c = await TestCluster.start(t, { nodes: 4 });
  const kv = await c.client<string>({ valueEncoding: 'utf8' });
  await c.kill('n4');
  await waitFor('n4 down in the SDK view', () => kv.cluster.member('n4')?.state === 'down', DETECTION_BOUND_MS + 5000);
  const keys: string[] = [];
  for (let i = 0; keys.length < 50; i++) if (kv.replicasOf(`hinted-${i}`).includes('n4')) keys.push(`hinted-${i}`);
  for (const k of keys) await kv.put(k, `value-of-${k}`, { consistency: 'strong' });
  const holders = ['n1', 'n2', 'n3'];
  const pendingBefore = await hintsPending(c, holders);
  t.equal(pendingBefore, keys.length, 'one hint per write meant for n4');
  // Crash every hint holder (kill -9) and bring them back: the hints must come back from disk.
  for (const id of holders) await c.restart(id);
  await waitFor('holders up', async () => (await Promise.all(holders.map((h) => stateIn(c, 'n1', h)))).every((s) => s === 'up'), 15_000);
  t.equal(await hintsPending(c, holders), pendingBefore, 'the hints survived the restarts');
  await c.restart('n4');
  await waitFor('hints delivered', async () => (await hintsPending(c, holders)) === 0, 30_000);
  for (const k of keys) {
    const obj = await rawGet(c, 'n4', k);
    t.equal(obj && liveSiblings(obj, Date.now())[0]?.value.toString(), `value-of-${k}`);
  }
});
