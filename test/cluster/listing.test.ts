// keys() and entries() against a real 4-node cluster (N = 3, so every node holds only part
// of the ring and a listing must read from several): every live key once, deleted and
// expired keys left out, prefixes, resuming from a cursor with nothing lost or repeated, a
// replica killed mid-listing replaced by another replica of its ranges, and typed values
// with connect<T>.

import t from 'tap';
import { TestCluster } from '../helpers/cluster.js';
import { connect } from '../../sdk/client.js';
import { spanGroups } from '../../sdk/listing.js';
import { FaultyTransport, HttpTransport } from '../../sdk/transport.js';

t.setTimeout(120_000);

interface Profile {
  name: string;
  visits: number;
}

t.test('listing', async (t) => {
  const c = await TestCluster.start(t, { nodes: 4 });
  const kv = await c.client<string>({ valueEncoding: 'utf8', timeoutMs: 10_000 });
  const a = Array.from({ length: 300 }, (_, i) => `a:${i}`);
  const b = Array.from({ length: 200 }, (_, i) => `b:${i}`);
  // At `all`, so that whichever replica a range is listed from holds every key.
  const put = await kv.putMany([...a, ...b].map((key) => ({ key, value: `value of ${key}` })), { consistency: 'all' });
  t.equal(put.filter((o) => o.ok).length, 500, 'loaded 500 keys');
  const deleted = a.slice(0, 25);
  await kv.deleteMany(deleted, { consistency: 'all' });
  await kv.put('a:ttl', 'gone soon', { consistency: 'all', ttl: 1 });
  const liveA = new Set(a.slice(25));

  const groups = spanGroups(kv.cluster.ring, 3);
  t.ok(new Set(groups.map((g) => g.replicas.slice().sort().join())).size > 1, `the ring has ranges on different replica sets (${groups.length} runs of spans)`);

  await t.test('every live key with the prefix, once; deletes and expired keys left out', async (t) => {
    await new Promise((r) => setTimeout(r, 1100)); // a:ttl expires (its expiry is judged by the client's clock)
    const seen: string[] = [];
    for await (const key of kv.keys({ prefix: 'a:', pageSize: 37 })) seen.push(key);
    t.equal(seen.length, new Set(seen).size, 'no key twice');
    t.same(new Set(seen), liveA, `exactly the ${liveA.size} live a: keys`);
    let all = 0;
    for await (const _ of kv.keys()) all++;
    t.equal(all, 475, 'without a prefix: every live key');
  });

  await t.test('entries: values as get() returns them', async (t) => {
    const got = new Map<string, string>();
    for await (const e of kv.entries({ prefix: 'b:' })) got.set(e.key, e.value);
    t.equal(got.size, 200);
    t.ok([...got].every(([k, v]) => v === `value of ${k}`), 'every value matches');
  });

  await t.test('a data type key: listed by keys(), left out of entries(), WRONG_TYPE for getMany', async (t) => {
    await kv.counter('dt:likes').increment(3, { consistency: 'all' });
    const keys: string[] = [];
    for await (const key of kv.keys({ prefix: 'dt:' })) keys.push(key);
    t.same(keys, ['dt:likes']);
    const entries: string[] = [];
    for await (const e of kv.entries({ prefix: 'dt:' })) entries.push(e.key);
    t.same(entries, [], 'its state is not a value');
    const [o] = await kv.getMany(['dt:likes']);
    t.equal(o!.ok ? 'ok' : o!.error.code, 'WRONG_TYPE');
    await kv.counter('dt:likes').increment(-3, { consistency: 'all' }).catch(() => undefined);
  });

  await t.test('resuming from a cursor: nothing lost, nothing repeated', async (t) => {
    const first = kv.keys({ prefix: 'a:', pageSize: 10 });
    const seen: string[] = [];
    for await (const key of first) {
      seen.push(key);
      if (seen.length === 100) break;
    }
    t.notOk(first.done);
    const cursor = first.cursor;
    // Another client goes on from the cursor.
    const other = await c.client<string>({ valueEncoding: 'utf8' });
    const rest = other.keys({ prefix: 'a:', pageSize: 10, cursor });
    for await (const key of rest) seen.push(key);
    t.ok(rest.done);
    t.equal(seen.length, liveA.size, 'the two halves add up');
    t.same(new Set(seen), liveA, 'to every live key, none twice');
    t.throws(() => kv.keys({ cursor: 'l1.zz' }), { code: 'INVALID_ARGUMENT' }, 'a damaged cursor is refused');
  });

  await t.test('a replica failing mid-listing: another replica of its ranges goes on from where it stood', async (t) => {
    const faulty = new FaultyTransport(new HttpTransport());
    const lister = await c.client<string>({ valueEncoding: 'utf8', transport: faulty });
    const listing = lister.keys({ pageSize: 5 });
    const seen: string[] = [];
    let before = new Map<string, number>();
    let dropped: string | undefined;
    for await (const key of listing) {
      seen.push(key);
      if (seen.length === 39) before = new Map(faulty.calls);
      if (seen.length === 40) {
        // The node that served this page stops answering the client (a partition).
        dropped = [...faulty.calls].find(([addr, n]) => n > (before.get(addr) ?? 0))?.[0];
        if (dropped) faulty.set(dropped, { drop: true });
        before = new Map(faulty.calls);
      }
    }
    t.ok(dropped, `the node serving the listing was cut off (${dropped})`);
    t.ok((faulty.calls.get(dropped!) ?? 0) > (before.get(dropped!) ?? 0), 'the listing asked it again and met the failure');
    t.equal(seen.length, new Set(seen).size, 'no key twice across the failover');
    t.equal(seen.length, 476, 'every live key was listed (dt:likes too)');
    t.ok(listing.done);
    await faulty.close();
  });

  await t.test('a node killed: listing still reads every range', async (t) => {
    await c.kill('n2');
    const seen = new Set<string>();
    for await (const key of kv.keys({ pageSize: 50 })) seen.add(key);
    t.equal(seen.size, 476);
  });

  await t.test('connect<T>: entries and get yield T, put takes T', async (t) => {
    const profiles = await connect<Profile>({ seeds: c.addresses.filter((x) => x !== c.node('n2').address), valueEncoding: 'json' });
    t.teardown(() => profiles.close());
    await profiles.put('p:ada', { name: 'Ada', visits: 1 });
    // @ts-expect-error put takes a Profile, not another shape
    await profiles.put('p:bad', { nom: 'x' }).catch(() => undefined);
    const got = await profiles.get('p:ada');
    const visits: number | undefined = got?.value.visits;
    t.equal(visits, 1);
    const names: string[] = [];
    for await (const e of profiles.entries({ prefix: 'p:a' })) names.push(e.value.name);
    t.same(names, ['Ada']);
  });
});
