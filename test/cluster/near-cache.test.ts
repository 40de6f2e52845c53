// The near cache against three real server processes: a value another client changes is
// invalidated end to end (long before the TTL); the client's own write drops its entry; a
// node killed with -9 (and a stream cut in the client's transport) flushes the entries that
// node served, and the stream comes back with the node; with every stream blocked (open, but
// delivering nothing), a changed value is never served past ttlMs after the change.

import t from 'tap';
import type { RingkvClient } from '../../sdk/client.js';
import { FaultyTransport, HttpTransport } from '../../sdk/transport.js';
import { TestCluster } from '../helpers/cluster.js';

t.setTimeout(240_000);

async function until(what: string, cond: () => boolean | Promise<boolean>, ms = 15_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Reads `key` at eventual until the cache holds it (the first reads open the streams). */
async function cached(kv: RingkvClient<string>, key: string): Promise<string | undefined> {
  let value: string | undefined;
  await until(`${key} to be cached`, async () => {
    const before = kv.nearCacheStats!.hits;
    value = (await kv.get(key))?.value;
    return kv.nearCacheStats!.hits > before;
  });
  return value;
}

t.test('invalidation end to end; own writes', async (t) => {
  const c = await TestCluster.start(t, { nodes: 3 });
  const writer = await c.client<string>({ valueEncoding: 'utf8' });
  await writer.put('e2e', 'v1', { consistency: 'all' });
  // A TTL far longer than the test: only an invalidation can make the new value appear.
  const kv = await c.client<string>({ valueEncoding: 'utf8', consistency: 'eventual', cache: { ttlMs: 600_000 } });
  t.equal(await cached(kv, 'e2e'), 'v1');
  t.equal((await kv.get('e2e'))?.value, 'v1', 'served from the cache');
  const inv0 = kv.nearCacheStats!.invalidations;

  const t0 = performance.now();
  await writer.put('e2e', 'v2', { consistency: 'all' });
  await until('the new value', async () => (await kv.get('e2e'))?.value === 'v2', 10_000);
  t.comment(`v2 seen ${Math.round(performance.now() - t0)} ms after the write was acknowledged`);
  t.ok(kv.nearCacheStats!.invalidations > inv0, 'an invalidation arrived');
  t.equal(await cached(kv, 'e2e'), 'v2', 'and the new value is cached again');

  // Deletes invalidate too.
  await writer.delete('e2e', { consistency: 'all' });
  await until('the delete', async () => (await kv.get('e2e')) === undefined, 10_000);

  // The client's own write drops its entry at once: read-your-writes through the cache.
  await kv.put('own', 'a', { consistency: 'all' });
  t.equal(await cached(kv, 'own'), 'a');
  await kv.put('own', 'b', { consistency: 'all' });
  t.equal((await kv.get('own'))?.value, 'b', 'the own write is seen at once');

  const text = await c.metrics('n1');
  t.match(text, /ringkv_invalidation_streams\{[^}]*\} [1-9]/, 'the node reports the stream');
});

t.test('a lost stream flushes what its node served; the stream comes back with the node', async (t) => {
  const c = await TestCluster.start(t, { nodes: 3 });
  const writer = await c.client<string>({ valueEncoding: 'utf8' });
  const N = 60;
  await Promise.all(Array.from({ length: N }, (_, i) => writer.put(`lost-${i}`, `v${i}`, { consistency: 'all' })));
  const tr = new FaultyTransport(new HttpTransport());
  t.teardown(() => tr.close());
  const kv = await c.client<string>({ valueEncoding: 'utf8', consistency: 'eventual', cache: { ttlMs: 600_000 }, transport: tr, timeoutMs: 2000 });
  await until('entries from every node', async () => {
    for (let i = 0; i < N; i++) await kv.get(`lost-${i}`);
    return kv.nearCacheEntriesByNode().size === 3;
  });
  const before = kv.nearCacheEntriesByNode();
  t.comment(`entries by node: ${JSON.stringify([...before])}`);

  // kill -9 n3: its stream breaks, its entries go; the others' stay.
  await c.kill('n3');
  await until('n3 entries flushed', () => !kv.nearCacheEntriesByNode().has('n3'), 10_000);
  t.pass(`the ${before.get('n3')} entries n3 served were flushed`);
  t.equal(kv.nearCacheEntriesByNode().get('n1'), before.get('n1'), "n1's entries stay");
  t.equal(kv.nearCacheEntriesByNode().get('n2'), before.get('n2'), "n2's entries stay");
  t.notOk(kv.nearCacheStats!.liveStreams.includes('n3'));

  // Restarted, n3 gets a stream again (the client retries with back-off) and its reads are cached again.
  await c.restart('n3');
  await until('a live stream to n3 again', () => kv.nearCacheStats!.liveStreams.includes('n3'), 60_000);
  let fresh = 0;
  await until('a read served by n3 cached again', async () => {
    // Keys not cached yet (absent ones are cached too): some are served by n3.
    await kv.get(`fresh-${fresh++}`).catch(() => undefined);
    return (kv.nearCacheEntriesByNode().get('n3') ?? 0) > 0;
  });
  t.pass('n3 streams and its reads are cached again');

  // A stream cut without a node failure (the client's side of a broken connection) flushes too.
  const n1 = kv.nearCacheEntriesByNode().get('n1') ?? 0;
  t.ok(n1 > 0);
  t.equal(tr.cutStreams(c.node('n1').address), 1, 'one stream to n1');
  await until('n1 entries flushed', () => !kv.nearCacheEntriesByNode().has('n1'), 10_000);
  t.pass(`the ${n1} entries n1 served were flushed when its stream was cut`);
  await until('a live stream to n1 again', () => kv.nearCacheStats!.liveStreams.includes('n1'), 10_000);
});

t.test('staleness bound: with every stream blocked, a changed value is not served past ttlMs', async (t) => {
  const c = await TestCluster.start(t, { nodes: 3 });
  const writer = await c.client<string>({ valueEncoding: 'utf8' });
  await writer.put('stale', 'v1', { consistency: 'all' });
  const tr = new FaultyTransport(new HttpTransport());
  t.teardown(() => tr.close());
  const TTL_MS = 1500;
  // Heartbeats a minute apart: a blocked stream is not noticed as lost during the test.
  const kv = await c.client<string>({ valueEncoding: 'utf8', consistency: 'eventual', cache: { ttlMs: TTL_MS, heartbeatMs: 60_000 }, transport: tr });
  t.equal(await cached(kv, 'stale'), 'v1');
  for (const n of c.nodes) tr.set(n.address, { blockStream: true });

  await writer.put('stale', 'v2', { consistency: 'all' });
  const changedAt = performance.now();
  let lastOldAt = -1;
  let firstNewAt = -1;
  while (performance.now() < changedAt + TTL_MS + 1500) {
    const at = performance.now();
    const v = (await kv.get('stale'))?.value;
    if (v === 'v1') lastOldAt = at;
    else if (v === 'v2' && firstNewAt < 0) firstNewAt = at;
    await new Promise((r) => setTimeout(r, 25));
  }
  t.ok(lastOldAt >= changedAt, 'the old value was still served after the change (no invalidation got through)');
  t.ok(lastOldAt < changedAt + TTL_MS, `the old value was last served ${Math.round(lastOldAt - changedAt)} ms after the change (bound ${TTL_MS} ms)`);
  t.ok(firstNewAt > 0, `the new value was served from ${firstNewAt > 0 ? `${Math.round(firstNewAt - changedAt)} ms after the change` : 'never'}`);
  t.equal(kv.nearCacheStats!.streamsLost, 0, 'the streams were never seen lost');
});
