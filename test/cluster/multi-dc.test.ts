// Two data centers of three real server processes each (east and west, 3 replicas in each),
// with the link between them through a user-space proxy the test cuts and delays
// (benchmarks/harness/inter-dc-link.ts). Checks: a client must name its data center; local levels
// never touch the link, a remote level pays its delay and the replication lag is at least
// the delay; with the link cut, local-quorum writes succeed on both sides while each-quorum
// fails with a typed error and the lag grows and is reported; after healing every
// acknowledged write is present on the other side (or superseded by a newer one there, the
// same on both), the lag falls back, and a full sync finds both sides agreeing; a queue
// pushed past its bound counts what it dropped, the full sync repairs the gap, and a delete
// made on one side during the cut stays deleted.

import t from 'tap';
import { connect } from '../../sdk/client.js';
import type { RingkvError } from '../../sdk/errors.js';
import { HttpTransport } from '../../sdk/transport.js';
import type { Transport } from '../../sdk/transport.js';
import { runFullSync } from '../../storage-server/cli/repl-commands.js';
import { repairCheck } from '../../storage-server/cli/admin-commands.js';
import type { ReplDcStatus } from '../../storage-server/replication/replication.js';
import { Routes } from '../../sdk/wire/protocol.js';
import { DcCluster } from '../helpers/dc-cluster.js';

const QUEUE_BYTES = 64 * 1024;

async function waitFor(what: string, cond: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await cond().catch(() => false)) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** A transport that records the addresses its operation batches were sent to. */
class RecordingTransport implements Transport {
  readonly addresses = new Map<string, number>();
  constructor(private readonly inner: Transport) {}
  call<T>(address: string, path: string, body: unknown, opts: { timeoutMs: number; method?: 'GET' | 'POST' }): Promise<T> {
    if (path === Routes.batch) this.addresses.set(address, (this.addresses.get(address) ?? 0) + 1);
    return this.inner.call<T>(address, path, body, opts);
  }
  close(): Promise<void> {
    return this.inner.close();
  }
}

function p99(samples: number[]): number {
  const s = [...samples].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(s.length * 0.99))]!;
}

t.test('two data centers: locality, a cut link, overflow, full sync', async (t) => {
  const dc = await DcCluster.start(t, {
    dcs: [
      { name: 'east', nodes: 3 },
      { name: 'west', nodes: 3 },
    ],
    env: {
      RINGKV_REPL_QUEUE_MAX_BYTES: String(QUEUE_BYTES),
      RINGKV_REPL_RETRY_MAX_MS: '500',
      RINGKV_FULL_SYNC_INTERVAL_MS: '0',
    },
  });
  const east = await dc.client<string>('east', { valueEncoding: 'utf8' });
  const west = await dc.client<string>('west', { valueEncoding: 'utf8' });
  const eastSeeds = dc.nodesOf('east').map((n) => n.address);
  const status = async (id: string): Promise<ReplDcStatus[]> => (await dc.cluster.call<{ repl: ReplDcStatus[] }>(id, Routes.status, undefined)).repl;
  const pendingEverywhere = async (): Promise<number> => {
    let sum = 0;
    for (const n of dc.cluster.nodes) for (const r of await status(n.id)) sum += r.pending;
    return sum;
  };

  await t.test('a client must name its data center; unknown ones are refused', async (t) => {
    const err = await connect({ seeds: eastSeeds }).then(
      (c) => c.close().then(() => undefined),
      (e: RingkvError) => e,
    );
    t.equal(err?.code, 'LOCAL_DC_REQUIRED', 'connect without localDc: LOCAL_DC_REQUIRED');
    const err2 = await connect({ seeds: eastSeeds, localDc: 'north' }).then(
      (c) => c.close().then(() => undefined),
      (e: RingkvError) => e,
    );
    t.equal(err2?.code, 'LOCAL_DC_REQUIRED', 'an unknown data center is refused');
    t.match(err2?.message, /north/);
  });

  await t.test('placement: every key has 3 replicas in each data center', async (t) => {
    for (const k of ['a', 'user:42', 'zz-9']) {
      const r = east.replicasOf(k);
      t.equal(r.filter((x) => dc.dcOf.get(x) === 'east').length, 3, `${k}: 3 in east`);
      t.equal(r.filter((x) => dc.dcOf.get(x) === 'west').length, 3, `${k}: 3 in west`);
    }
  });

  await t.test('delayed link: local levels never cross it; remote levels and the lag pay the delay', async (t) => {
    dc.link.delay(50);
    const recording = new RecordingTransport(new HttpTransport());
    const local = await connect({ seeds: eastSeeds, localDc: 'east', valueEncoding: 'utf8', transport: recording, timeoutMs: 5000 });
    t.teardown(() => local.close().then(() => recording.close()));
    const remoteAddresses = new Set(dc.nodesOf('west').map((n) => dc.remoteAddress.get(n.id)!));
    const localMs: number[] = [];
    recording.addresses.clear();
    for (let i = 0; i < 60; i++) {
      const t0 = performance.now();
      await local.put(`d:${i}`, `v${i}`, { consistency: 'localQuorum' });
      t.equal((await local.get(`d:${i}`, { consistency: 'localQuorum' }))?.value, `v${i}`);
      localMs.push(performance.now() - t0);
    }
    const crossed = [...recording.addresses.keys()].filter((a) => remoteAddresses.has(a));
    t.same(crossed, [], 'localQuorum reads and writes sent no operation to the other data center');
    const t0 = performance.now();
    await local.put('d:each', 'x', { consistency: 'eachQuorum' });
    const eachMs = performance.now() - t0;
    t.ok(eachMs >= 100, `an eachQuorum write waits for the other data center: ${eachMs.toFixed(0)} ms >= 2 x 50 ms`);
    t.ok([...recording.addresses.keys()].some((a) => remoteAddresses.has(a)), 'eachQuorum reached the other data center');
    // The writes above reach west through the queue: apply time minus write time is at least the delay.
    await waitFor('d:59 in west', async () => (await west.get('d:59', { consistency: 'localOne' }))?.value === 'v59', 20_000);
    await waitFor('east queues drained', async () => (await pendingEverywhere()) === 0, 20_000);
    const lags = (await Promise.all(dc.nodesOf('east').map((n) => status(n.id)))).map((s) => s[0]!.shipper.lastAppliedLagMs).filter((x): x is number => x !== undefined);
    t.ok(lags.length > 0, 'east nodes shipped to west');
    for (const l of lags) t.ok(l >= 50, `applied lag ${l} ms >= the 50 ms delay`);
    t.comment(`with a 50 ms delay each way (one run on a loaded machine): localQuorum put+get p99 ${p99(localMs).toFixed(1)} ms; eachQuorum put ${eachMs.toFixed(0)} ms; applied lag east->west ${lags.join(', ')} ms`);
    dc.link.delay(0);
  });

  // Written during the cut, with what each side acknowledged.
  const acked = new Map<string, { side: 'east' | 'west'; value: string; version: string }[]>();
  let lagDuringCut = 0;

  await t.test('cut link: local quorums go on, eachQuorum fails typed, the lag grows and is reported', async (t) => {
    dc.link.cut();
    const note = (k: string, side: 'east' | 'west', value: string, version: string) => {
      const l = acked.get(k) ?? [];
      l.push({ side, value, version });
      acked.set(k, l);
    };
    for (let i = 0; i < 60; i++) {
      const e = await east.put(`cut:e:${i}`, `east-${i}`, { consistency: 'localQuorum' });
      note(`cut:e:${i}`, 'east', `east-${i}`, e.version);
      const w = await west.put(`cut:w:${i}`, `west-${i}`, { consistency: 'localQuorum' });
      note(`cut:w:${i}`, 'west', `west-${i}`, w.version);
    }
    // The same keys written on both sides: last write wins once the sides meet.
    for (let i = 0; i < 10; i++) {
      const e = await east.put(`both:${i}`, `east-${i}`, { consistency: 'localQuorum' });
      note(`both:${i}`, 'east', `east-${i}`, e.version);
      const w = await west.put(`both:${i}`, `west-${i}`, { consistency: 'localQuorum' });
      note(`both:${i}`, 'west', `west-${i}`, w.version);
    }
    t.pass('120 localQuorum writes and 20 conflicting ones succeeded on both sides');
    const err = await east.put('cut:each', 'x', { consistency: 'eachQuorum', timeoutMs: 1500 }).then(
      () => undefined,
      (e: RingkvError) => e,
    );
    t.ok(err && (err.code === 'QUORUM_NOT_MET' || err.code === 'TIMEOUT'), `eachQuorum fails with a typed error (${err?.code}: ${err?.message})`);
    const errRead = await west.get('cut:e:0', { consistency: 'eachQuorum', timeoutMs: 1500 }).then(
      () => undefined,
      (e: RingkvError) => e,
    );
    t.ok(errRead && (errRead.code === 'QUORUM_NOT_MET' || errRead.code === 'TIMEOUT'), `an eachQuorum read fails typed too (${errRead?.code})`);
    t.equal(await west.get('cut:e:0', { consistency: 'localQuorum' }), undefined, 'west does not have east\'s write yet (localQuorum never falls over to east)');
    // The same over HTTP: the Consistency header takes the names (case-insensitive), and a
    // node's public API coordinates in its own data center.
    const eastHttp = dc.nodesOf('east')[0]!.address;
    const put = (consistency: string) =>
      fetch(`http://${eastHttp}/api/v1/kv/http:cut`, {
        method: 'PUT',
        headers: { 'content-type': 'application/json', Consistency: consistency, 'X-Ringkv-Timeout-Ms': '1500' },
        body: JSON.stringify({ value: consistency }),
      });
    const local = await put('localQuorum');
    t.ok(local.status === 200 || local.status === 201, `HTTP PUT at Consistency: localQuorum succeeds during the cut (${local.status})`);
    const each = await put('EACH_QUORUM');
    const eachBody = (await each.json()) as { error?: { code?: string }; code?: string };
    const eachCode = eachBody.error?.code ?? eachBody.code;
    t.ok((each.status === 503 || each.status === 504) && (eachCode === 'QUORUM_NOT_MET' || eachCode === 'TIMEOUT'), `HTTP PUT at Consistency: EACH_QUORUM fails typed (${each.status} ${eachCode})`);
    const bogus = await put('localquorumish');
    t.equal(bogus.status, 400, 'an unknown level is refused with 400');
    await waitFor(
      'the lag to west reported past 3 s',
      async () => {
        const lags = await dc.metricOver('east', 'ringkv_repl_lag_ms', 'west');
        lagDuringCut = Math.max(...lags);
        return lagDuringCut >= 3000;
      },
      30_000,
    );
    const pending = await dc.metricOver('east', 'ringkv_repl_pending', 'west');
    t.ok(pending.reduce((a, b) => a + b, 0) >= 70, `writes queued for west: ${pending.join(', ')}`);
    t.comment(`lag to west during the cut: ${lagDuringCut} ms`);
  });

  await t.test('heal: every acknowledged write is present or superseded, the lag falls back, full sync agrees', async (t) => {
    dc.link.heal();
    await waitFor('the queues drained', async () => (await pendingEverywhere()) === 0, 60_000);
    for (const [k, writes] of acked) {
      const e = await east.get(k, { consistency: 'localQuorum' });
      const w = await west.get(k, { consistency: 'localQuorum' });
      t.ok(e && w && e.version === w.version && e.value === w.value, `${k}: both sides hold the same version`);
      // The version held is one of the acknowledged writes, and no acknowledged write of the
      // key is newer than it (versions are "ts-writer", ordered by timestamp).
      const held = writes.find((x) => x.version === e?.version);
      t.ok(held && held.value === e?.value, `${k}: the value held is an acknowledged write`);
      const newest = writes.reduce((a, b) => (Number(b.version.split('-')[0]) > Number(a.version.split('-')[0]) ? b : a));
      t.equal(e?.version, newest.version, `${k}: no acknowledged write is lost (the newest one wins)`);
    }
    // A fresh write after the backlog: its lag is far below the one during the cut.
    await east.put('after-heal', 'x', { consistency: 'localQuorum' });
    await waitFor('after-heal in west', async () => (await west.get('after-heal', { consistency: 'localOne' }))?.value === 'x', 20_000);
    await waitFor('east queues drained', async () => (await pendingEverywhere()) === 0, 20_000);
    let lagAfter = Infinity;
    await waitFor(
      'the lag to fall back',
      async () => {
        const owner = east.replicasOf('after-heal').find((x) => dc.dcOf.get(x) === 'east')!;
        lagAfter = (await status(owner))[0]!.lagMs;
        return lagAfter < lagDuringCut / 2;
      },
      20_000,
    );
    t.ok(lagAfter < lagDuringCut / 2, `lag back to ${lagAfter} ms (it was ${lagDuringCut} ms during the cut)`);
    const fs = await runFullSync(eastSeeds, 'west', 'east');
    t.ok(fs.nodes.every((n) => n.fullsync?.every((f) => f.ok)), 'the full sync from every east node completed');
    const differing = fs.nodes.reduce((a, n) => a + (n.fullsync?.[0]?.keysDiffering ?? 0), 0);
    t.comment(`full sync after heal: ${differing} keys differed (the queue had delivered the rest)`);
    const check = await repairCheck(eastSeeds, 30_000, { acrossDcs: true });
    t.ok(check.allAgree, `every range agrees across the data centers (${check.ranges.filter((r) => !r.agree).length} differ)`);
  });

  await t.test('overflow: dropped writes are counted, the full sync repairs the gap, deletes during the cut stay deleted', async (t) => {
    dc.link.cut();
    // Deleted in west during the cut: written on both sides before it.
    const deleted = Array.from({ length: 10 }, (_, i) => `cut:e:${i}`);
    for (const k of deleted) await west.delete(k, { consistency: 'localQuorum' });
    const value = 'x'.repeat(400);
    const keys = Array.from({ length: 900 }, (_, i) => `over:${i}`);
    for (let i = 0; i < keys.length; i += 100) {
      await Promise.all(keys.slice(i, i + 100).map((k) => east.put(k, value, { consistency: 'localQuorum', timeoutMs: 20_000 })));
    }
    const dropped = await dc.metricOver('east', 'ringkv_repl_dropped_total', 'west');
    t.ok(dropped.reduce((a, b) => a + b, 0) > 0, `writes dropped over the queue's bound are counted: ${dropped.join(', ')}`);
    const bytes = await dc.metricOver('east', 'ringkv_repl_pending_bytes', 'west');
    for (const b of bytes) t.ok(b <= QUEUE_BYTES, `a queue stays within its bound (${b} <= ${QUEUE_BYTES})`);
    dc.link.heal();
    await waitFor('the queues drained', async () => (await pendingEverywhere()) === 0, 60_000);
    const missing = async () => {
      let n = 0;
      for (let i = 0; i < keys.length; i += 100) {
        const got = await Promise.all(keys.slice(i, i + 100).map((k) => west.get(k, { consistency: 'localQuorum' })));
        n += got.filter((g) => g?.value !== value).length;
      }
      return n;
    };
    const gap = await missing();
    t.ok(gap > 0, `after the queues drained, ${gap} of ${keys.length} writes are still missing in west (they were dropped)`);
    const fs = await runFullSync(eastSeeds, 'west', 'east');
    t.ok(fs.nodes.every((n) => n.fullsync?.every((f) => f.ok)), 'the full sync completed');
    t.equal(await missing(), 0, 'the full sync repaired the gap: every write is in west');
    for (const k of deleted) {
      t.equal(await east.get(k, { consistency: 'localQuorum' }), undefined, `${k}: deleted in west during the cut, deleted in east after healing`);
      t.equal(await west.get(k, { consistency: 'localQuorum' }), undefined, `${k}: still deleted in west`);
    }
    const check = await repairCheck(eastSeeds, 30_000, { acrossDcs: true });
    t.ok(check.allAgree, 'every range agrees across the data centers');
  });
});
