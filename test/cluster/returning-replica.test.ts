// A replica down for longer than the tombstone grace period, with real processes and a short
// grace: keys deleted while it was down, whose tombstones the other replicas have since
// collected, must not come back when it returns. It comes back `recovering` — no reads, no
// repair from it — and is repaired from its peers (pull-only, deletes winning) before it
// serves again. A data type only it holds is kept (data types are never deleted).

import t from 'tap';
import type { BatchResponse } from '../../sdk/wire/protocol.js';
import { OpType, PROTOCOL_VERSION, Routes } from '../../sdk/wire/protocol.js';
import type { StoredObject } from '../../sdk/versioning/index.js';
import { liveSiblings } from '../../sdk/versioning/index.js';
import { crdtValue, decodeCrdt } from '../../sdk/crdt/index.js';
import { TestCluster } from '../helpers/cluster.js';

t.setTimeout(120_000);

const GRACE_MS = 8000;

async function waitFor(what: string, fn: () => Promise<boolean> | boolean, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await Promise.resolve(fn()).catch(() => false)) return true;
    await new Promise((r) => setTimeout(r, 100));
  }
  return false;
}

async function rawGet(c: TestCluster, id: string, key: string): Promise<{ ok: boolean; obj?: StoredObject | null; code?: string }> {
  const res = await c.call<BatchResponse>(id, Routes.batch, { v: PROTOCOL_VERSION, ops: [{ t: OpType.Get, key: Buffer.from(key) }] });
  const r = res.results[0]!;
  return r.ok ? { ok: true, obj: r.obj } : { ok: false, code: r.code };
}

function liveValue(obj: StoredObject | null | undefined): string | undefined {
  return obj ? liveSiblings(obj, Date.now())[0]?.value.toString() : undefined;
}

async function admin<T>(c: TestCluster, id: string, action: string): Promise<T> {
  return c.call<T>(id, Routes.admin, { v: PROTOCOL_VERSION, action }, 60_000);
}

t.test('a replica back after an outage longer than the tombstone grace does not bring deleted keys back', async (t) => {
  const c = await TestCluster.start(t, {
    nodes: 3,
    env: { RINGKV_TOMBSTONE_GRACE_MS: String(GRACE_MS), RINGKV_REPAIR_INTERVAL_MS: '3000' },
  });
  const kv = await c.client<string>({ valueEncoding: 'utf8' });
  const gone = Array.from({ length: 20 }, (_, i) => `gone-${i}`);
  const kept = Array.from({ length: 20 }, (_, i) => `kept-${i}`);
  await Promise.all([...gone, ...kept].map((k) => kv.put(k, `value of ${k}`, { consistency: 'all' })));

  // A data type only n3 holds (written to it alone just before it goes down): data types are
  // never deleted, so its recovery must not take it for a key whose delete was collected.
  const dt = await c.call<BatchResponse>('n3', Routes.batch, {
    v: PROTOCOL_VERSION,
    ops: [{ t: OpType.DtUpdate, key: Buffer.from('only-n3'), op: { type: 'counter', increment: 7 }, id: Buffer.from('only-n3-op') }],
  });
  t.ok(dt.results[0]!.ok, 'a counter written to n3 alone');
  await c.kill('n3');
  await Promise.all(gone.map((k) => kv.delete(k, { consistency: 'strong' })));
  const deletedAt = Date.now();
  // Hints expire long before a tombstone's grace in production (maxHintAgeMs 3 h vs 10 days):
  // dropping them stands for that.
  for (const id of ['n1', 'n2']) await admin(c, id, 'drop-hints');
  await new Promise((r) => setTimeout(r, Math.max(0, deletedAt + GRACE_MS + 1500 - Date.now())));
  for (const id of ['n1', 'n2']) await admin(c, id, 'compact');
  for (const id of ['n1', 'n2']) {
    t.equal((await rawGet(c, id, 'gone-0')).obj, null, `${id} collected the tombstone of gone-0 (no trace left)`);
  }

  // n2 down too, so that n3 cannot finish its recovery while it is looked at.
  await c.kill('n2');
  await c.restart('n3');
  const recovering = await waitFor('n3 recovering', async () => (await c.call<{ state: string }>('n3', Routes.status, undefined)).state === 'recovering', 5000);
  t.ok(recovering, 'n3 comes back recovering (its outage exceeded the grace period)');
  const r = await rawGet(c, 'n3', 'gone-0');
  t.equal(r.code, 'UNAVAILABLE', `n3 answers no reads while recovering (got ${r.ok ? `a value: ${liveValue(r.obj)}` : r.code})`);
  const reader = await c.client<string>({ valueEncoding: 'utf8' });
  t.ok(await waitFor('the SDK sees n3 recovering', () => reader.cluster.member('n3')?.state === 'recovering', 10_000), 'the SDK sees n3 recovering');
  t.equal(await reader.get('gone-0', { consistency: 'eventual' }), undefined, 'an eventual read does not go to n3');
  t.equal((await reader.get('kept-0', { consistency: 'eventual' }))?.value, 'value of kept-0', 'reads are served by the others');

  await c.restart('n2');
  t.ok(await waitFor('n3 up', async () => (await c.view('n1')).members.find((m) => m.id === 'n3')?.state === 'up', 30_000), 'n3 is up once repaired from its peers');
  const st = await c.call<{ recovery: { keysDropped?: number; done?: string } | null }>('n3', Routes.status, undefined);
  t.ok(st.recovery?.done, 'its recovery finished');
  t.ok((st.recovery?.keysDropped ?? 0) >= gone.length, `it dropped the ${gone.length} keys no peer holds any more (${st.recovery?.keysDropped})`);
  const onlyN3 = (await rawGet(c, 'n3', 'only-n3')).obj;
  t.ok(onlyN3 && onlyN3.mode === 'crdt' && crdtValue(decodeCrdt(onlyN3.siblings[0]!.value)) === 7, 'the counter only n3 held survived its recovery');

  // Repair rounds everywhere now: nothing may bring the keys back.
  await waitFor('every node sees the others up', async () => {
    for (const id of ['n1', 'n2', 'n3']) if ((await c.view(id)).members.some((m) => m.state !== 'up')) return false;
    return true;
  }, 20_000);
  for (const id of ['n1', 'n2', 'n3']) await admin(c, id, 'repair');
  for (const id of ['n1', 'n2', 'n3']) {
    const back = [];
    for (const key of gone) if (liveValue((await rawGet(c, id, key)).obj) !== undefined) back.push(key);
    t.same(back, [], `no deleted key is back on ${id}`);
  }
  const after = await c.client<string>({ valueEncoding: 'utf8' });
  await waitFor('the new client sees n3 up', () => after.cluster.member('n3')?.state === 'up', 10_000);
  for (const consistency of ['eventual', 'strong', 'all'] as const) {
    const back = [];
    for (const key of gone) if ((await after.get(key, { consistency })) !== undefined) back.push(key);
    t.same(back, [], `every deleted key stays deleted at ${consistency}`);
  }
  const missing = [];
  for (const key of kept) if ((await after.get(key, { consistency: 'all' }))?.value !== `value of ${key}`) missing.push(key);
  t.same(missing, [], 'the keys that were not deleted are all there');
});
