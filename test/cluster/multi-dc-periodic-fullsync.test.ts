// The periodic full sync repairs what the queue dropped, with no operator: two data centers
// of one node each, a queue bound (1 KiB) smaller than each value written (2 KiB), so every
// write in east is dropped from its queue to west (and counted), and a full-sync interval of
// 2 s. The keys must reach west by the scheduled full sync alone, and
// ringkv_fullsync_last_ok_timestamp must say when it last completed. Real processes.

import t from 'tap';
import { DcCluster } from '../helpers/dc-cluster.js';
import { metricSum } from '../helpers/cluster.js';

async function waitFor(what: string, cond: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await cond().catch(() => false)) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

t.test('writes dropped from the queue reach the other data center with the next scheduled full sync', async (t) => {
  const dc = await DcCluster.start(t, {
    dcs: [
      { name: 'east', nodes: 1, rf: 1 },
      { name: 'west', nodes: 1, rf: 1 },
    ],
    env: { RINGKV_FULL_SYNC_INTERVAL_MS: '2000', RINGKV_REPL_QUEUE_MAX_BYTES: '1024', RINGKV_REPL_RETRY_MAX_MS: '300' },
  });
  const east = await dc.client<string>('east', { valueEncoding: 'utf8' });
  const west = await dc.client<string>('west', { valueEncoding: 'utf8' });
  const [e] = dc.nodesOf('east');
  const big = 'x'.repeat(2048);
  const keys = Array.from({ length: 10 }, (_, i) => `periodic:${i}`);
  const startedAt = Date.now() / 1000;
  for (const k of keys) await east.put(k, `${k}:${big}`, { consistency: 'localQuorum' });
  const metrics = await dc.cluster.metrics(e!.id);
  t.ok(metricSum(metrics, 'ringkv_repl_dropped_total', { dc: 'west' }) >= keys.length, 'every write was dropped from the queue to west, and counted');
  t.equal(metricSum(metrics, 'ringkv_repl_pending', { dc: 'west' }), 0, 'nothing queued');
  await waitFor('the keys in west', async () => (await Promise.all(keys.map((k) => west.get(k, { consistency: 'localOne' })))).every((g, i) => g?.value === `${keys[i]}:${big}`), 30_000);
  t.pass('every key reached west without a queue entry or an operator');
  await waitFor(
    'a completed full sync in the metrics',
    async () => metricSum(await dc.cluster.metrics(e!.id), 'ringkv_fullsync_last_ok_timestamp', { dc: 'west' }) > startedAt,
    15_000,
  );
  t.pass('ringkv_fullsync_last_ok_timestamp{dc="west"} on east moved past the writes');
});
