// The sharded counter (kv.counter(key, { shards })) on three real server processes: three
// clients increment one write-hot counter at once and every increment counts (the value is
// the sum of the shards, read at strong and, after repair, on every replica); the writes
// spread over the shards, and so over the nodes' hot-key lists, instead of all landing on one
// key; a retry with the same opId goes to the same shard and is applied once; a counter that
// moves from 1 to more shards keeps its count; the shard keys and the bound on shards.

import t from 'tap';
import type { RingkvClient } from '../../sdk/client.js';
import { shardKey, shardsOf } from '../../sdk/sharded-counter.js';
import { Routes } from '../../sdk/wire/protocol.js';
import { TestCluster } from '../helpers/cluster.js';

t.setTimeout(240_000);

const SHARDS = 16;
const PER_CLIENT = 120;

t.test('shard keys and the bound on shards (no servers)', async (t) => {
  t.equal(shardKey('likes:42', 0), 'likes:42', 'shard 0 is the key itself');
  t.equal(shardKey('likes:42', 15), 'likes:42#15');
  t.same(shardKey(Buffer.from([1, 2]), 3), Buffer.from([1, 2, 0x23, 0x33]), 'bytes: the key, then "#3"');
  for (const shards of [0, 1.5, 1025, Number.NaN]) t.throws(() => shardsOf({ shards }), { code: 'INVALID_ARGUMENT' }, `shards ${shards} refused`);
  t.equal(shardsOf({}), 1, 'default 1');
  t.equal(shardsOf({ shards: 1024 }), 1024);
});

t.test('a write-hot counter in 16 shards: concurrent increments all count, spread over the shards', async (t) => {
  const c = await TestCluster.start(t, { nodes: 3 });
  const clients: RingkvClient[] = [];
  for (let i = 0; i < 3; i++) clients.push(await c.client({ timeoutMs: 5000 }));
  const key = 'likes:hot';

  // Three writers, each with a few increments in flight at a time.
  let acknowledged = 0;
  await Promise.all(
    clients.map(async (kv, w) => {
      const counter = kv.counter(key, { shards: SHARDS });
      for (let i = 0; i < PER_CLIENT; i += 4) {
        await Promise.all(
          [0, 1, 2, 3].map(async (j) => {
            const by = 1 + ((w + i + j) % 3);
            await counter.increment(by);
            acknowledged += by;
          }),
        );
      }
    }),
  );
  const reader = clients[0]!.counter(key, { shards: SHARDS });
  t.equal(await reader.value(), acknowledged, `the value is the sum of every acknowledged increment (${acknowledged})`);
  const parts = await reader.shardValues();
  t.equal(parts.length, SHARDS);
  t.equal(parts.reduce((a, b) => a + b, 0), acknowledged);
  const used = parts.filter((v) => v > 0).length;
  // 360 increments to 16 shards chosen at random: every shard gets some (the chance that one
  // gets none is below 16 * (15/16)^360 ~ 1e-9).
  t.equal(used, SHARDS, `every shard took increments: ${parts.join(' ')}`);
  t.ok(Math.max(...parts) < acknowledged / 4, 'no shard took a quarter of the count');
  t.equal(await clients[1]!.counter(key).value(), parts[0], 'shard 0 is the plain counter on the key itself');
  t.equal(await clients[2]!.counter(`${key}#7`).value(), parts[7], 'shard 7 is the counter on key#7');

  // Every replica, after a repair, sums to the same value (at `all`).
  t.equal(await reader.value({ consistency: 'all' }), acknowledged, 'read at all');

  // The nodes' hot-key lists: the shards are written, each one on its own replicas; no single
  // key holds the writes.
  let writesByKey = new Map<string, number>();
  for (const id of ['n1', 'n2', 'n3']) {
    const hk = await c.call<{ keys: { key: string; writes: number }[] }>(id, `${Routes.hotKeys}?k=64`, undefined);
    for (const h of hk.keys) {
      const k = Buffer.from(h.key, 'base64').toString();
      if (k === key || k.startsWith(`${key}#`)) writesByKey.set(k, (writesByKey.get(k) ?? 0) + h.writes);
    }
  }
  writesByKey = new Map([...writesByKey].filter(([, n]) => n > 0));
  t.equal(writesByKey.size, SHARDS, `the nodes saw writes to ${writesByKey.size} shard keys`);
});

t.test('a retry with the same opId goes to the same shard and counts once; more shards keep the count', async (t) => {
  const c = await TestCluster.start(t, { nodes: 3 });
  const kv = await c.client({ timeoutMs: 5000 });
  const counter = kv.counter('retried', { shards: SHARDS });
  const shardsSeen = new Set<number>();
  for (let i = 0; i < 8; i++) {
    const opId = `op-${i}`;
    const first = await counter.increment(10, { opId });
    const retry = await counter.increment(10, { opId });
    t.equal(retry.shard, first.shard, `${opId}: the retry goes to shard ${first.shard} again`);
    shardsSeen.add(first.shard);
  }
  t.ok(shardsSeen.size > 1, `opIds spread over shards too (${[...shardsSeen].join(',')})`);
  t.equal(await counter.value(), 80, 'eight increments of 10, each sent twice, count once');

  // A counter that starts plain and later becomes sharded keeps what it counted.
  await kv.counter('grown').increment(5);
  const grown = kv.counter('grown', { shards: 4 });
  for (let i = 0; i < 8; i++) await grown.increment(1);
  t.equal(await grown.value(), 13, 'the plain count (shard 0) plus the sharded increments');
  await grown.decrement(3);
  t.equal(await grown.value(), 10, 'decrements go to a shard too');
});
