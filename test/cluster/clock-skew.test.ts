// Writes that clock skew cannot break, on three real server processes: a client whose
// clock lags is never acknowledged for a write that an earlier write hides (it follows the
// servers' clock, and a write that loses to a newer version is re-stamped above it); a
// server refuses a write stamped too far ahead of its clock (CLOCK_SKEW) and a client is
// not dragged into the future by a version stamped there; `linearizable` over the SDK and
// HTTP. The nemesis suite (test/nemesis/) runs the same under faults and checks histories.

import t from 'tap';
import { ManualClock, SkewedClock, systemClock } from '../../sdk/clock.js';
import { ErrorCodes, RingkvError } from '../../sdk/errors.js';
import { hlcToWallMs } from '../../sdk/hlc.js';
import type { StoredObject } from '../../sdk/versioning/index.js';
import type { BatchResponse, WireOp } from '../../sdk/wire/protocol.js';
import { OpType, PROTOCOL_VERSION, Routes } from '../../sdk/wire/protocol.js';
import { TestCluster } from '../helpers/cluster.js';

t.setTimeout(240_000);

function lwwObject(value: string, ts: number, writer: string): StoredObject {
  return {
    mode: 'lww',
    siblings: [{ value: Buffer.from(value), tombstone: false, expiresAtMs: 0, contentType: 'text/plain; charset=utf-8', flags: 0, ts, writer }],
    context: {},
  };
}

async function batch(c: TestCluster, id: string, ops: WireOp[]): Promise<BatchResponse> {
  return c.call<BatchResponse>(id, Routes.batch, { v: PROTOCOL_VERSION, ops });
}

t.test('clock skew', async (t) => {
  const c = await TestCluster.start(t, { nodes: 3 });

  await t.test('a client 3 s behind: each of its strong writes after another client\'s is the one later reads see', async (t) => {
    const ahead = await c.client<string>({ valueEncoding: 'utf8' });
    const behind = await c.client<string>({ valueEncoding: 'utf8', clock: new SkewedClock(systemClock, -3000) });
    const reader = await c.client<string>({ valueEncoding: 'utf8' });
    t.ok(Math.abs(behind.clusterClock.correctionMs - 3000) < 500, `the lagging client follows the servers' clock (correction ${behind.clusterClock.correctionMs} ms)`);
    let stale = 0;
    for (let i = 0; i < 30; i++) {
      await ahead.put('skew-a', `ahead-${i}`, { consistency: 'strong' });
      await behind.put('skew-a', `behind-${i}`, { consistency: 'strong' });
      const r = await reader.get('skew-a', { consistency: 'strong' });
      if (r?.value !== `behind-${i}`) stale++;
    }
    t.equal(stale, 0, 'no strong read returned the value the lagging client overwrote');
  });

  await t.test('a write that loses to a newer version is re-stamped above it, never acknowledged unseen', async (t) => {
    // 800 ms ahead: under the clock-correction threshold and within the servers' bound,
    // so the other client's stamps are below this one's and only re-stamping saves them.
    const fast = await c.client<string>({ valueEncoding: 'utf8', clock: new SkewedClock(systemClock, 800) });
    const normal = await c.client<string>({ valueEncoding: 'utf8' });
    t.equal(fast.clusterClock.correctionMs, 0, 'the fast client is not corrected');
    let stale = 0;
    for (let i = 0; i < 30; i++) {
      await fast.put('skew-b', `fast-${i}`, { consistency: 'strong' });
      const w = await normal.put('skew-b', `normal-${i}`, { consistency: 'strong' });
      const r = await normal.get('skew-b', { consistency: 'strong' });
      if (r?.value !== `normal-${i}` || r.version !== w.version) stale++;
    }
    t.equal(stale, 0, 'every acknowledged write is what the next strong read returns');
    t.ok(normal.counters.restampedWrites >= 25, `writes were re-stamped (${normal.counters.restampedWrites} of 30)`);
  });

  await t.test('the same at eventual: the write that wins at its one replica is re-stamped too', async (t) => {
    const fast = await c.client<string>({ valueEncoding: 'utf8', clock: new SkewedClock(systemClock, 800) });
    const normal = await c.client<string>({ valueEncoding: 'utf8' });
    await fast.put('skew-e', 'fast', { consistency: 'all' });
    await normal.put('skew-e', 'normal', { consistency: 'eventual' });
    const r = await normal.get('skew-e', { consistency: 'all' });
    t.equal(r?.value, 'normal');
  });

  await t.test('a server refuses a new write stamped beyond maxClockSkewMs, but not a repair of an existing version', async (t) => {
    const future = (Date.now() + 60_000) * 1000;
    const put = await batch(c, 'n1', [{ t: OpType.Put, key: Buffer.from('skew-c'), obj: lwwObject('from the future', future, 'rogue') }]);
    const r = put.results[0]!;
    t.equal(r.ok, false);
    if (!r.ok) t.equal(r.code, ErrorCodes.CLOCK_SKEW, r.msg);
    t.ok(typeof put.now === 'number' && Math.abs(put.now - Date.now()) < 5000, 'the answer carries the server\'s clock');
    const merge = await batch(c, 'n1', [{ t: OpType.Merge, key: Buffer.from('skew-c'), obj: lwwObject('from the future', future, 'rogue') }]);
    t.equal(merge.results[0]!.ok, true, 'Merge (repair, hints, anti-entropy) keeps versions that exist elsewhere');
  });

  await t.test('a key stamped far ahead: writes to it fail with CLOCK_SKEW (not applied); the client is not dragged along', async (t) => {
    const kv = await c.client<string>({ valueEncoding: 'utf8' });
    const key = 'skew-d';
    const future = (Date.now() + 120_000) * 1000;
    for (const n of kv.replicasOf(key)) {
      await batch(c, n, [{ t: OpType.Merge, key: Buffer.from(key), obj: lwwObject('future', future, 'rogue') }]);
    }
    t.equal((await kv.get(key, { consistency: 'strong' }))?.value, 'future', 'the read returns it');
    const err = await kv.put(key, 'now', { consistency: 'strong' }).catch((e: unknown) => e);
    t.ok(err instanceof RingkvError && err.code === ErrorCodes.CLOCK_SKEW, `refused with CLOCK_SKEW (${(err as Error).message})`);
    t.equal((err as RingkvError).notApplied, true, 'and known not to be applied anywhere');
    t.equal((await kv.get(key, { consistency: 'all' }))?.value, 'future', 'nothing was written');
    const other = await kv.put('skew-d-other', 'fine', { consistency: 'strong' });
    const ts = Number(other.version.split('-')[0]);
    t.ok(Math.abs(hlcToWallMs(ts) - Date.now()) < 5000, `a write to another key is stamped with the present (${other.version})`);
    // Number.MAX_SAFE_INTEGER, which used to stop a client that read it from writing anything.
    const key2 = 'skew-max';
    for (const n of kv.replicasOf(key2)) {
      await batch(c, n, [{ t: OpType.Merge, key: Buffer.from(key2), obj: lwwObject('max', Number.MAX_SAFE_INTEGER, 'rogue') }]);
    }
    t.equal((await kv.get(key2))?.value, 'max');
    await kv.put('skew-after-max', 'still writes', { consistency: 'strong' });
    t.equal((await kv.get('skew-after-max'))?.value, 'still writes', 'the client still writes after reading it');
  });

  await t.test('a client whose clock is far ahead follows the servers instead of being refused', async (t) => {
    const kv = await c.client<string>({ valueEncoding: 'utf8', clock: new SkewedClock(systemClock, 30_000) });
    const w = await kv.put('skew-f', 'ok', { consistency: 'strong' });
    const ts = Number(w.version.split('-')[0]);
    t.ok(Math.abs(hlcToWallMs(ts) - Date.now()) < 5000, `stamped in server time (${w.version})`);
    // Even a clock an hour ahead that stands still follows the servers' readings.
    const stuck = await c.client<string>({ valueEncoding: 'utf8', clock: new ManualClock(Date.now() + 3_600_000) });
    const err = await stuck.put('skew-g', 'x', { consistency: 'strong', timeoutMs: 1000 }).catch((e: unknown) => e);
    t.equal(stuck.clusterClock.correctionMs < -3_000_000, true, 'its corrected clock follows the servers');
    t.notOk(err instanceof Error, `and its write goes through (${err instanceof Error ? err.message : "ok"})`);
  });

  await t.test('linearizable over the SDK and HTTP', async (t) => {
    const a = await c.client<string>({ valueEncoding: 'utf8', clock: new SkewedClock(systemClock, 800) });
    const b = await c.client<string>({ valueEncoding: 'utf8' });
    for (let i = 0; i < 20; i++) {
      await a.put('lin', `a-${i}`, { consistency: 'linearizable' });
      await b.put('lin', `b-${i}`, { consistency: 'linearizable' });
      t.equal((await a.get('lin', { consistency: 'linearizable' }))?.value, `b-${i}`);
    }
    t.equal(b.counters.restampedWrites, 0, 'ABD writes stamp above what a majority holds: no re-stamping');
    const base = `http://${c.nodes[0]!.address}/api/v1/kv/lin-http`;
    const put = await fetch(base, { method: 'PUT', headers: { 'content-type': 'application/json', consistency: 'linearizable' }, body: JSON.stringify({ value: 'h' }) });
    t.equal(put.status, 201);
    const get = await fetch(base, { headers: { consistency: 'linearizable' } });
    t.equal(((await get.json()) as { value: string }).value, 'h');
    const vc = await c.client({ conflictMode: 'vector-clock' });
    const err = await vc.get('lin', { consistency: 'linearizable' }).catch((e: unknown) => e);
    t.equal((err as RingkvError).code, ErrorCodes.INVALID_CONSISTENCY, 'vector-clock mode has no linearizable level');
  });
});
