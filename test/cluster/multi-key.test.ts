// getMany / putMany / deleteMany against a real 3-node cluster: per-key results in input
// order, a bad key fails alone with its own typed error, the keys travel in batch requests
// (the per-node batcher carries many keys per request), and a key whose replicas cannot
// answer fails with QUORUM_NOT_MET while the others succeed.

import t from 'tap';
import { TestCluster } from '../helpers/cluster.js';
import { FaultyTransport, HttpTransport } from '../../sdk/transport.js';
import type { PutEntry } from '../../sdk/multi-key.js';
import type { PutOptions } from '../../sdk/client.js';

t.setTimeout(120_000);

t.test('multi-key operations', async (t) => {
  const c = await TestCluster.start(t, { nodes: 3 });
  const kv = await c.client<string>({ valueEncoding: 'utf8', timeoutMs: 10_000 });
  const keys = Array.from({ length: 200 }, (_, i) => `mk:${i}`);

  await t.test('putMany: one outcome per entry, in order; bad entries fail alone with their codes', async (t) => {
    const entries: PutEntry<string, PutOptions>[] = keys.map((key, i) => ({ key, value: `v${i}` }));
    entries.splice(10, 0, { key: 'x'.repeat(300), value: 'too long a key' });
    entries.splice(20, 0, { key: 'mk:big', value: 'y'.repeat(1024 * 1024 + 1) });
    entries.splice(30, 0, { key: 'mk:ttl', value: 'short-lived', options: { ttl: 3600, flags: 7 } });
    const before = { ...kv.batchCounters };
    const out = await kv.putMany(entries);
    t.equal(out.length, entries.length, 'one outcome per entry');
    t.same(out.map((o) => o.key), entries.map((e) => e.key), 'in input order');
    t.same(
      out.filter((o) => !o.ok).map((o) => [o.key === entries[10]!.key ? 'long-key' : o.key, o.ok ? '' : o.error.code]),
      [
        ['long-key', 'KEY_TOO_LARGE'],
        ['mk:big', 'VALUE_TOO_LARGE'],
      ],
      'the two bad entries fail with their own codes',
    );
    t.equal(out.filter((o) => o.ok).length, 201, 'every other entry succeeded');
    const batches = kv.batchCounters.batches - before.batches;
    const ops = kv.batchCounters.ops - before.ops;
    t.ok(ops >= 201 * 2, `at least W = 2 replica writes per key went out (${ops})`);
    t.ok(batches * 4 <= ops, `the keys travelled in batch requests: ${ops} replica operations in ${batches} requests`);
  });

  await t.test('getMany: values, a missing key, a bad key; per-key options applied', async (t) => {
    const asked = [...keys, 'mk:missing', '', 'mk:ttl'];
    const out = await kv.getMany(asked);
    t.same(out.map((o) => o.key), asked, 'in input order');
    for (let i = 0; i < keys.length; i++) {
      const o = out[i]!;
      if (!o.ok || o.result?.value !== `v${i}`) {
        t.fail(`${keys[i]} reads back`, { outcome: o });
        return;
      }
    }
    t.pass('all 200 values read back');
    const missing = out[200]!;
    t.ok(missing.ok && missing.result === undefined, 'a missing key is ok with an undefined result');
    const empty = out[201]!;
    t.equal(empty.ok ? 'ok' : empty.error.code, 'KEY_EMPTY', 'an empty key fails alone with KEY_EMPTY');
    const ttl = out[202]!;
    t.ok(ttl.ok && ttl.result?.flags === 7 && typeof ttl.result.expiresAtMs === 'number', 'the per-entry options (ttl, flags) were applied');
  });

  await t.test('deleteMany: the deleted keys read as missing, the others stay', async (t) => {
    const gone = keys.slice(0, 50);
    const out = await kv.deleteMany([...gone, 'k'.repeat(257)]);
    t.equal(out.filter((o) => o.ok).length, 50, 'the 50 deletes succeeded');
    t.equal(out[50]!.ok ? 'ok' : out[50]!.error.code, 'KEY_TOO_LARGE', 'the bad key failed alone');
    const after = await kv.getMany(keys);
    t.equal(after.filter((o) => o.ok && o.result === undefined).length, 50, '50 keys read as missing');
    t.equal(after.filter((o) => o.ok && o.result !== undefined).length, 150, '150 keys are still there');
  });

  await t.test('a key whose replicas cannot answer fails alone with QUORUM_NOT_MET', async (t) => {
    // Three nodes with N = 3: every key lives on every node, so a per-key failure needs
    // per-key consistency. Two nodes dropped: `all` cannot be met, `eventual` can.
    const faulty = new FaultyTransport(new HttpTransport());
    const kv2 = await c.client<string>({ valueEncoding: 'utf8', transport: faulty, timeoutMs: 3000, health: { failuresToAvoid: 1000 } });
    faulty.set(c.node('n2').address, { drop: true });
    faulty.set(c.node('n3').address, { drop: true });
    const out = await kv2.putMany([
      { key: 'mk:one', value: '1', options: { consistency: 'eventual' } },
      { key: 'mk:all', value: 'all', options: { consistency: 'all' } },
      { key: 'mk:two', value: '2', options: { consistency: 'eventual' } },
    ]);
    t.same(
      out.map((o) => (o.ok ? 'ok' : o.error.code)),
      ['ok', 'QUORUM_NOT_MET', 'ok'],
      'the key that needed every replica failed; the others did not',
    );
    faulty.heal();
    await faulty.close();
  });
});
