// Hot-key detection on three real server processes: after a skewed load through the SDK,
// every node's /metrics names its hottest keys (bounded: the top 10, keys escaped), its status
// carries them for the dashboard, and `ringkv hotkeys` merges every node's list in order.

import t from 'tap';
import { TestCluster } from '../helpers/cluster.js';
import { Routes } from '../../sdk/wire/protocol.js';
import type { CliRun } from '../helpers/run-cli.js';
import { runRingkv } from '../helpers/run-cli.js';

t.setTimeout(120_000);

function ringkv(args: string[]): Promise<CliRun> {
  return runRingkv(args);
}

const WEIRD = 'hot"q\n\\x';

t.test('hot keys in /metrics, status and `ringkv hotkeys`', async (t) => {
  const c = await TestCluster.start(t, { nodes: 3 });
  const kv = await c.client<string>({ valueEncoding: 'utf8' });
  // hot-a 200 reads, hot-b 100, the weird key 60, forty cold keys 2 each: at `all`, every
  // replica serves every read.
  await kv.put('hot-a', 'a', { consistency: 'all' });
  await kv.put('hot-b', 'b', { consistency: 'all' });
  await kv.put(WEIRD, 'w', { consistency: 'all' });
  const reads: Promise<unknown>[] = [];
  for (let i = 0; i < 200; i++) reads.push(kv.get('hot-a', { consistency: 'all' }));
  for (let i = 0; i < 100; i++) reads.push(kv.get('hot-b', { consistency: 'all' }));
  for (let i = 0; i < 60; i++) reads.push(kv.get(WEIRD, { consistency: 'all' }));
  for (let i = 0; i < 80; i++) reads.push(kv.get(`cold-${i % 40}`, { consistency: 'all' }));
  await Promise.all(reads);

  const text = await c.metrics('n1');
  const lines = text.split('\n').filter((l) => l.startsWith('ringkv_hot_key_operations{'));
  t.ok(lines.length > 0 && lines.length <= 10, `${lines.length} hot-key series (at most 10)`);
  t.match(lines.find((l) => l.includes('rank="1"')) ?? '', /key="hot-a"[^}]*\} 201$/, 'rank 1 is hot-a: 200 reads and its write');
  t.match(lines.find((l) => l.includes('rank="2"')) ?? '', /key="hot-b"/, 'rank 2 is hot-b');
  // prom-client escapes the label value (\\ and \" and \n) of the displayed key (hot"q\x0a\\x).
  t.ok(lines.some((l) => l.includes('rank="3"') && l.includes('key="hot\\"q\\\\x0a\\\\\\\\x"')), `the weird key escaped: ${lines.find((l) => l.includes('rank="3"'))}`);
  t.match(text, /ringkv_hot_key_window_seconds\{[^}]*\} \d/);

  const status = await c.call<{ hotKeys: { windowMs: number; keys: { display: string; count: number; reads: number; writes: number }[] } }>('n2', Routes.status, undefined);
  t.same(status.hotKeys.keys.slice(0, 2).map((k) => [k.display, k.count, k.reads, k.writes]), [['hot-a', 201, 200, 1], ['hot-b', 101, 100, 1]], 'the status route carries them too');

  const json = await ringkv(['hotkeys', '--k', '3', '--json', '--seeds', c.addresses.join(',')]);
  t.equal(json.code, 0, json.stderr);
  const res = JSON.parse(json.stdout) as { nodes: { node: string; total: number }[]; keys: { display: string; count: number; nodes: string[] }[] };
  t.same(res.nodes.map((n) => n.node), ['n1', 'n2', 'n3']);
  t.same(res.keys.map((k) => [k.display, k.count, k.nodes]), [
    ['hot-a', 603, ['n1', 'n2', 'n3']],
    ['hot-b', 303, ['n1', 'n2', 'n3']],
    ['hot"q\\x0a\\\\x', 183, ['n1', 'n2', 'n3']],
  ], 'merged over the three replicas, in order');

  const table = await ringkv(['hotkeys', '--seeds', c.addresses[0]!]);
  t.equal(table.code, 0, table.stderr);
  t.match(table.stdout, /RANK\s+KEY\s+OPS\/S\s+OPS\s+±\s+READS\s+WRITES\s+NODES/);
  t.match(table.stdout, /\n1\s+hot-a\s+[\d.]+\s+603\s+0\s+600\s+3\s+n1,n2,n3\n/);
  const bad = await ringkv(['hotkeys', '--k', '0', '--seeds', c.addresses[0]!]);
  t.equal(bad.code, 2, 'a bad --k is a usage error');
});
