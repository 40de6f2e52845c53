// Horizontal scaling with real processes: grow 3 -> 5 nodes under a strong read/write load,
// decommission one node of 4 under load, remove a killed node of 4 — with no failed or lost
// acknowledged write, and every key at exactly N replicas on its right owners afterwards.

import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import t from 'tap';
import type { Test } from 'tap';
import type { RingkvClient } from '../../sdk/client.js';
import type { BatchResponse } from '../../sdk/wire/protocol.js';
import { OpType, PROTOCOL_VERSION, Routes } from '../../sdk/wire/protocol.js';
import { liveSiblings } from '../../sdk/versioning/index.js';
import { CLI, preload, TestCluster } from '../helpers/cluster.js';

t.setTimeout(300_000);
const exec = promisify(execFile);

async function waitFor(what: string, fn: () => Promise<boolean> | boolean, timeoutMs: number): Promise<number> {
  const started = Date.now();
  while (Date.now() - started < timeoutMs) {
    if (await Promise.resolve(fn()).catch(() => false)) return Date.now() - started;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out waiting for ${what}`);
}

async function stateOf(c: TestCluster, viewer: string, id: string): Promise<string | undefined> {
  return (await c.view(viewer)).members.find((m) => m.id === id)?.state;
}

/** Continuous strong writes and reads; every acknowledged write is recorded. */
function load(kv: RingkvClient<string>, writers: number, readers: number) {
  const acked = new Map<string, number>();
  const failures: string[] = [];
  let stop = false;
  let seq = 0;
  let reads = 0;
  const loops = [
    ...Array.from({ length: writers }, async (_, w) => {
      while (!stop) {
        const i = seq++;
        const key = `scale-${w}-${i % 400}`;
        try {
          await kv.put(key, String(i), { consistency: 'strong' });
          acked.set(key, Math.max(acked.get(key) ?? -1, i));
        } catch (err) {
          failures.push(`put ${key}: ${(err as Error).message}`);
        }
      }
    }),
    ...Array.from({ length: readers }, async () => {
      while (!stop) {
        const keys = [...acked.keys()];
        if (keys.length === 0) {
          await new Promise((r) => setTimeout(r, 10));
          continue;
        }
        const key = keys[Math.floor(Math.random() * keys.length)]!;
        const want = acked.get(key)!;
        try {
          const r = await kv.get(key, { consistency: 'strong' });
          reads++;
          if (!r || Number(r.value) < want) failures.push(`read ${key}: got ${r?.value}, acknowledged ${want}`);
        } catch (err) {
          failures.push(`get ${key}: ${(err as Error).message}`);
        }
      }
    }),
  ];
  return {
    acked,
    failures,
    get reads() {
      return reads;
    },
    async stop() {
      stop = true;
      await Promise.all(loops);
    },
  };
}

/** Every key's live copies are exactly on its N replicas of the final ring, with the acknowledged value. */
async function checkPlacement(t: Test, c: TestCluster, kv: RingkvClient<string>, acked: Map<string, number>, nodes: string[]): Promise<void> {
  let misplaced = 0;
  let stale = 0;
  const keys = [...acked.keys()];
  for (let i = 0; i < keys.length; i += 200) {
    const chunk = keys.slice(i, i + 200);
    const holders = new Map<string, string[]>();
    for (const id of nodes) {
      const res = await c.call<BatchResponse>(id, Routes.batch, { v: PROTOCOL_VERSION, ops: chunk.map((k) => ({ t: OpType.Get, key: Buffer.from(k) })) }, 10_000);
      chunk.forEach((k, j) => {
        const r = res.results[j]!;
        if (!r.ok || !r.obj) return;
        const live = liveSiblings(r.obj, Date.now());
        if (live.length === 0) return;
        if (Number(live[0]!.value.toString()) < acked.get(k)!) stale++;
        const l = holders.get(k) ?? [];
        l.push(id);
        holders.set(k, l);
      });
    }
    for (const k of chunk) {
      const want = kv.replicasOf(k).sort().join(',');
      if ((holders.get(k) ?? []).sort().join(',') !== want) misplaced++;
    }
  }
  t.equal(stale, 0, `every copy of the ${keys.length} keys holds the acknowledged value or newer`);
  t.equal(misplaced, 0, 'every key is on exactly its N replicas, the right owners');
}

async function cleanupAll(c: TestCluster): Promise<void> {
  await exec(process.execPath, [CLI, 'cleanup', '--seeds', c.addresses.join(',')]);
}

t.test('grow 3 -> 5 nodes under a strong read/write load', async (t) => {
  const c = await TestCluster.start(t, { nodes: 3 });
  const kv = await c.client<string>({ valueEncoding: 'utf8', timeoutMs: 3000 });
  await preload(kv, 3000, (i) => `pre-${i}`, (i) => String(i));
  // The load overwrites a fixed set of keys, written once up front, so the number of keys
  // (and of stored copies) is known while the nodes join.
  await preload(kv, 8 * 400, (i) => `scale-${Math.floor(i / 400)}-${i % 400}`, () => '-1');
  const distinctKeys = 3000 + 8 * 400;
  const traffic = load(kv, 8, 4);
  await new Promise((r) => setTimeout(r, 1000));
  const moved: { node: string; keys: number; bytes: number; ms: number; distinctKeys: number }[] = [];
  for (const _ of [4, 5]) {
    const node = await c.addNode(['--join']);
    const ms = await waitFor(`${node.id} up`, async () => (await stateOf(c, 'n1', node.id)) === 'up', 60_000);
    const st = await c.call<{ lastBootstrap: { keys: number; bytes: number } }>(node.id, Routes.status, undefined);
    moved.push({ node: node.id, keys: st.lastBootstrap.keys, bytes: st.lastBootstrap.bytes, ms, distinctKeys });
    await waitFor('the SDK sees it up', () => kv.cluster.member(node.id)?.state === 'up', 10_000);
  }
  await new Promise((r) => setTimeout(r, 1000));
  await traffic.stop();
  t.same(traffic.failures.slice(0, 5), [], `no failed or stale operation (${traffic.acked.size} keys written, ${traffic.reads} reads)`);
  // Joining as node k of k takes N/k of the keys, i.e. about 1/k of the stored copies (N per key).
  moved.forEach((m, i) => {
    const k = 4 + i;
    const fraction = m.keys / (m.distinctKeys * 3);
    t.ok(
      Math.abs(fraction - 1 / k) < 0.05,
      `${m.node} joined in ${m.ms} ms, streaming ${m.keys} keys (${m.bytes} bytes): ${(fraction * 100).toFixed(1)}% of the ${m.distinctKeys * 3} stored copies (1/${k} = ${(100 / k).toFixed(1)}%)`,
    );
  });
  await cleanupAll(c);
  const all = new Map(traffic.acked);
  for (let i = 0; i < 3000; i++) all.set(`pre-${i}`, i);
  await checkPlacement(t, c, kv, all, ['n1', 'n2', 'n3', 'n4', 'n5']);
});

t.test('decommission one node of 4 under a strong read/write load', async (t) => {
  const c = await TestCluster.start(t, { nodes: 4 });
  const kv = await c.client<string>({ valueEncoding: 'utf8', timeoutMs: 3000 });
  await preload(kv, 2000, (i) => `pre-${i}`, (i) => String(i));
  const traffic = load(kv, 8, 4);
  await new Promise((r) => setTimeout(r, 1000));
  const { stdout } = await exec(process.execPath, [CLI, 'decommission', 'n4', '--seeds', c.addresses.join(',')]);
  t.match(stdout, /n4 left the ring: \d+ ranges, \d+ keys/);
  await waitFor('n4 left everywhere', async () => (await stateOf(c, 'n1', 'n4')) === 'left' && kv.cluster.member('n4')?.state === 'left', 10_000);
  await new Promise((r) => setTimeout(r, 1000));
  await traffic.stop();
  t.same(traffic.failures.slice(0, 5), [], `no failed or stale operation (${traffic.acked.size} keys written, ${traffic.reads} reads)`);
  await c.stop('n4');
  await cleanupAll(c);
  const all = new Map(traffic.acked);
  for (let i = 0; i < 2000; i++) all.set(`pre-${i}`, i);
  await checkPlacement(t, c, kv, all, ['n1', 'n2', 'n3']);
});

t.test('removenode: a killed node of 4 is removed and every key is back at N copies', async (t) => {
  const c = await TestCluster.start(t, { nodes: 4 });
  const kv = await c.client<string>({ valueEncoding: 'utf8' });
  const acked = new Map<string, number>();
  await preload(kv, 2000, (i) => `rm-${i}`, (i) => String(i));
  for (let i = 0; i < 2000; i++) acked.set(`rm-${i}`, i);
  await c.kill('n4');
  await waitFor('n4 down', async () => (await stateOf(c, 'n1', 'n4')) === 'down', 15_000);
  const { stdout } = await exec(process.execPath, [CLI, 'removenode', 'n4', '--seeds', c.addresses.slice(0, 3).join(',')]);
  t.match(stdout, /n4 removed; \d+ keys re-replicated/);
  await waitFor('the SDK sees n4 left', () => kv.cluster.member('n4')?.state === 'left', 10_000);
  await checkPlacement(t, c, kv, acked, ['n1', 'n2', 'n3']);
});
