// Hedged reads on three real server processes, one or all of them slowed by a delay in the
// client's transport (a FaultyTransport: every request to the node answers that much later).
// With one replica slow, strong reads that asked it send a hedge to the third replica at the
// cap (50 ms) and complete far below the slowed latency, while a client without hedging waits
// it out; with every replica slow, no hedge is sent once the client has seen them slow.
// Latency figures here are bounds with wide margins (the machine is shared), never rates.

import t from 'tap';
import { FaultyTransport, HttpTransport } from '../../sdk/transport.js';
import type { RingkvClient } from '../../sdk/client.js';
import { preload, TestCluster } from '../helpers/cluster.js';

t.setTimeout(240_000);

const KEYS = 30;
const key = (i: number) => `hedge-${i}`;

/** Sequential strong reads of every key; each read's latency in ms. */
async function timedReads(kv: RingkvClient<string>, rounds = 1): Promise<number[]> {
  const out: number[] = [];
  for (let r = 0; r < rounds; r++) {
    for (let i = 0; i < KEYS; i++) {
      const t0 = performance.now();
      const v = await kv.get(key(i), { consistency: 'strong' });
      out.push(performance.now() - t0);
      if (v?.value !== `v${i}`) throw new Error(`read ${key(i)}: ${v?.value}`);
    }
  }
  return out;
}

t.test('one slow replica: hedges are sent and won, and reads complete below its latency', async (t) => {
  const c = await TestCluster.start(t, { nodes: 3 });
  const setup = await c.client<string>({ valueEncoding: 'utf8' });
  await preload(setup, KEYS, key, (i) => `v${i}`);

  const SLOW_MS = 600;
  const slowed = (): FaultyTransport => {
    const tr = new FaultyTransport(new HttpTransport());
    tr.set(c.node('n3').address, { delayMs: SLOW_MS });
    t.teardown(() => tr.close());
    return tr;
  };
  // Without hedging: a read that asked n3 waits for it.
  const plain = await c.client<string>({ valueEncoding: 'utf8', transport: slowed(), readRepairChance: 0, hedge: false, timeoutMs: 5000 });
  const without = await timedReads(plain);
  const slowWithout = without.filter((ms) => ms >= SLOW_MS).length;
  t.ok(slowWithout >= KEYS * 0.3, `without hedging ${slowWithout} of ${KEYS} reads took >= ${SLOW_MS} ms (those that asked n3)`);
  t.equal(plain.hedgeCounters.sent, 0, 'no hedge when turned off');

  // With hedging (a budget that does not limit this short test).
  const hedged = await c.client<string>({ valueEncoding: 'utf8', transport: slowed(), readRepairChance: 0, hedge: { budgetPercent: 100, maxDelayMs: 50 }, timeoutMs: 5000 });
  const withHedges = await timedReads(hedged, 2);
  const h = hedged.hedgeCounters;
  t.ok(h.sent > 0, `hedges sent: ${h.sent}`);
  t.ok(h.won > 0, `hedges won: ${h.won}`);
  t.ok(h.won <= h.sent);
  const slowWith = withHedges.filter((ms) => ms >= SLOW_MS).length;
  t.ok(slowWith <= withHedges.length * 0.1, `with hedging ${slowWith} of ${withHedges.length} reads took >= ${SLOW_MS} ms`);
  const sorted = [...withHedges].sort((a, b) => a - b);
  t.comment(`read latency with hedging: median ${sorted[sorted.length >> 1]!.toFixed(1)} ms, max ${sorted.at(-1)!.toFixed(1)} ms; hedges sent ${h.sent}, won ${h.won}`);
  const n3 = hedged.replicaLatencyMs('n3', 50);
  t.ok(n3 === undefined || n3 >= SLOW_MS * 0.9, `the client measures n3 slow (median ${n3} ms)`);
});

t.test('every replica slow: no amplification once the client has seen them slow', async (t) => {
  const c = await TestCluster.start(t, { nodes: 3 });
  const setup = await c.client<string>({ valueEncoding: 'utf8' });
  await preload(setup, KEYS, key, (i) => `v${i}`);
  const tr = new FaultyTransport(new HttpTransport());
  t.teardown(() => tr.close());
  const SLOW_MS = 150;
  for (const n of c.nodes) tr.set(n.address, { delayMs: SLOW_MS });
  // A budget of 100%: if the slow-replica check did not hold hedges back, every late read would hedge.
  const kv = await c.client<string>({ valueEncoding: 'utf8', transport: tr, readRepairChance: 0, hedge: { budgetPercent: 100, maxDelayMs: 50, minSamples: 5 }, timeoutMs: 5000 });
  // Warm-up: the client learns every replica's latency (hedges may go while it does not know them).
  await timedReads(kv);
  for (const n of ['n1', 'n2', 'n3']) {
    const m = kv.replicaLatencyMs(n, 50);
    t.ok(m !== undefined && m >= SLOW_MS, `${n}: median ${m?.toFixed(1)} ms`);
  }
  const before = kv.hedgeCounters;
  const lat = await timedReads(kv);
  const after = kv.hedgeCounters;
  t.equal(after.sent - before.sent, 0, 'no hedge sent while every replica is slow');
  t.ok(after.skippedSlow - before.skippedSlow >= KEYS * 0.9, `${after.skippedSlow - before.skippedSlow} late reads held back as every replica is slow`);
  t.ok(lat.every((ms) => ms >= SLOW_MS), 'every read waited for slow replicas');
});
