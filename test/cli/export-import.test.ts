// `ringkv export > file` and `ringkv import < file` against a real 3-node cluster: the
// export holds every live key (a binary key in base64, a TTL as its expiry) after the
// format's header line, with progress on stderr; after the keys are deleted, the import
// brings every one back with its value, content type and flags.

import t from 'tap';
import { TestCluster } from '../helpers/cluster.js';
import type { CliRun } from '../helpers/run-cli.js';
import { runRingkv } from '../helpers/run-cli.js';

t.setTimeout(120_000);

function ringkv(args: string[], input = ''): Promise<CliRun> {
  return runRingkv(args, { input, timeoutMs: 60_000 });
}

t.test('export and import', async (t) => {
  const c = await TestCluster.start(t, { nodes: 3 });
  const seeds = ['--seeds', c.addresses.join(',')];
  const kv = await c.client({ timeoutMs: 10_000 });
  const keys = Array.from({ length: 1200 }, (_, i) => `ex:${i}`);
  const out = await kv.putMany(keys.map((key) => ({ key, value: Buffer.from(`v-${key}`), options: { contentType: 'text/plain; charset=utf-8', flags: 3 } })), { consistency: 'all' });
  t.equal(out.filter((o) => o.ok).length, 1200);
  const binary = Buffer.from([0xff, 0xfe, 0x00, 0x41]);
  await kv.put(binary, Buffer.from([1, 2, 3]), { consistency: 'all' });
  await kv.put('ex:ttl', Buffer.from('lives an hour'), { consistency: 'all', ttl: 3600 });
  await kv.put('ex:deleted', Buffer.from('x'), { consistency: 'all' });
  await kv.delete('ex:deleted', { consistency: 'all' });

  const exp = await ringkv(['export', ...seeds]);
  t.equal(exp.code, 0, exp.stderr);
  const lines = exp.stdout.trim().split('\n');
  t.same(JSON.parse(lines[0]!), { format: 'ringkv-export', version: 1 }, 'the header line');
  t.equal(lines.length, 1 + 1202, 'one line per live key');
  t.match(exp.stderr, /exported 1000 keys\n/, 'progress on stderr');
  t.match(exp.stderr, /exported 1202 keys: done/);
  const parsed = lines.slice(1).map((l) => JSON.parse(l) as Record<string, unknown>);
  t.notOk(parsed.some((l) => l.key === 'ex:deleted'), 'the deleted key is not exported');
  t.ok(parsed.some((l) => l.keyBase64 === binary.toString('base64')), 'the binary key is in base64');
  t.ok(typeof parsed.find((l) => l.key === 'ex:ttl')?.expiresAtMs === 'number', 'the TTL travels as its expiry');

  const del = await kv.deleteMany([...keys, binary, 'ex:ttl'], { consistency: 'all' });
  t.equal(del.filter((o) => o.ok).length, 1202);
  t.equal((await kv.getMany(keys.slice(0, 10))).filter((o) => o.ok && o.result).length, 0, 'gone before the import');

  const imp = await ringkv(['import', ...seeds], exp.stdout);
  t.equal(imp.code, 0, imp.stderr);
  t.match(imp.stderr, /imported 1202 keys \(0 failed, 0 expired before import\): done/);
  const back = await kv.getMany([...keys, binary, 'ex:ttl']);
  const wrong = back.filter((o, i) => !o.ok || !o.result || (i < 1200 && (o.result.value.toString() !== `v-${keys[i]}` || o.result.flags !== 3 || !o.result.contentType.startsWith('text/plain'))));
  t.equal(wrong.length, 0, 'every key is back with its value, content type and flags');
  t.same(back[1200]!.ok && back[1200]!.result?.value, Buffer.from([1, 2, 3]), 'the binary key too');
  t.ok(back[1201]!.ok && back[1201]!.result?.expiresAtMs, 'and the TTL');

  const bad = await ringkv(['import', ...seeds], '{"format":"ringkv-export","version":1}\nnot json\n');
  t.equal(bad.code, 2, 'a malformed line is a usage error');
  t.match(bad.stderr, /line 2: not JSON/);
});
