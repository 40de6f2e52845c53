// Data types with real processes: concurrent counter increments and set adds/removes from
// several clients through a kill -9, a client-side partition and hinted handoff, checked on
// every replica after repair (acknowledged <= value <= acknowledged + unknown; every
// acknowledged add not removed by a context that saw it is on every replica); an update
// retried with its operation id (the SDK after an injected timeout, the same HTTP request
// twice) applied once; WRONG_TYPE; 413 at the 1 MiB bound; the HTTP contract and the CLI;
// a decommissioned node's counter entries folded into the survivors with values unchanged.

import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import t from 'tap';
import type { RingkvClient } from '../../sdk/client.js';
import type { RingkvError } from '../../sdk/errors.js';
import { ErrorCodes, TimeoutError } from '../../sdk/errors.js';
import type { CrdtState } from '../../sdk/crdt/index.js';
import { crdtValue, decodeCrdt } from '../../sdk/crdt/index.js';
import { forEachCounter } from '../../sdk/crdt/store.js';
import type { CallOptions, Transport } from '../../sdk/transport.js';
import { FaultyTransport, HttpTransport } from '../../sdk/transport.js';
import type { BatchRequest, BatchResponse } from '../../sdk/wire/protocol.js';
import { OpType, PROTOCOL_VERSION, Routes } from '../../sdk/wire/protocol.js';
import { CLI, TestCluster } from '../helpers/cluster.js';

t.setTimeout(400_000);
const exec = promisify(execFile);

/** The data-type state one replica holds for `key` (an internal Get), or null. */
async function rawState(c: TestCluster, id: string, key: string): Promise<CrdtState | null> {
  const res = await c.call<BatchResponse>(id, Routes.batch, { v: PROTOCOL_VERSION, ops: [{ t: OpType.Get, key: Buffer.from(key) }] });
  const r = res.results[0]!;
  if (!r.ok) throw new Error(`${r.code}: ${r.msg}`);
  if (!r.obj) return null;
  if (r.obj.mode !== 'crdt') throw new Error(`${id} holds a ${r.obj.mode} object for ${key}`);
  return decodeCrdt(r.obj.siblings[0]!.value);
}

async function waitFor(what: string, fn: () => Promise<boolean> | boolean, timeoutMs: number): Promise<void> {
  const started = Date.now();
  let last = '';
  while (Date.now() - started < timeoutMs) {
    try {
      if (await fn()) return;
    } catch (err) {
      last = (err as Error).message;
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? ` (last error: ${last})` : ''}`);
}

async function admin(c: TestCluster, id: string, action: string, timeoutMs = 60_000): Promise<Record<string, unknown>> {
  return c.call<Record<string, unknown>>(id, Routes.admin, { v: PROTOCOL_VERSION, action }, timeoutMs);
}

async function hintsPending(c: TestCluster, ids: string[]): Promise<number> {
  let n = 0;
  for (const id of ids) n += (await c.call<{ hintsPending: number }>(id, Routes.status, undefined)).hintsPending;
  return n;
}

function isNotApplied(err: unknown): boolean {
  return (err as RingkvError).notApplied === true;
}

/** A transport that lets the first batch carrying a DtUpdate reach its replica, then loses the answer (a timeout after the fact). */
class LoseFirstUpdateAnswer implements Transport {
  lost: string | undefined;
  constructor(private readonly inner: Transport) {}
  async call<T>(address: string, path: string, body: unknown, opts: CallOptions): Promise<T> {
    const ops = (body as BatchRequest | undefined)?.ops;
    const res = await this.inner.call<T>(address, path, body, opts);
    if (this.lost === undefined && path === Routes.batch && ops?.some((o) => o.t === OpType.DtUpdate)) {
      this.lost = address;
      throw new TimeoutError(`request to ${address}${path} (answer lost, injected)`, opts.timeoutMs, { node: address });
    }
    return res;
  }
  close(): Promise<void> {
    return this.inner.close();
  }
}

t.test('counters and sets under kill -9, a client-side partition and hints converge to what was acknowledged', async (t) => {
  const c = await TestCluster.start(t, { nodes: 4 });
  const ids = c.nodes.map((n) => n.id);
  const a = await c.client({ timeoutMs: 3000 });
  const b = await c.client({ timeoutMs: 3000 });
  // Client p cannot reach n3: its writes for n3 go to hint holders.
  const faulty = new FaultyTransport(new HttpTransport());
  faulty.set(c.node('n3').address, { drop: true });
  const p = await c.client({ timeoutMs: 3000, transport: faulty });
  const counters = ['likes:0', 'likes:1', 'likes:2'];
  const sets = ['tags:0', 'tags:1'];
  const acked = new Map<string, number>(counters.map((k) => [k, 0]));
  const unknown = new Map<string, number>(counters.map((k) => [k, 0]));
  const added = new Map<string, Set<string>>(sets.map((k) => [k, new Set()]));
  const maybeRemoved = new Map<string, Set<string>>(sets.map((k) => [k, new Set()]));
  const errors = new Map<string, number>();
  let stop = false;
  let ops = 0;
  const loop = async (kv: RingkvClient<Buffer>, name: string) => {
    for (let i = 0; !stop; i++) {
      ops++;
      const r = Math.random();
      try {
        if (r < 0.7) {
          const key = counters[i % counters.length]!;
          const n = 1 + Math.floor(Math.random() * 3);
          try {
            await kv.counter(key).increment(n, { consistency: 'strong' });
            acked.set(key, acked.get(key)! + n);
          } catch (err) {
            if (!isNotApplied(err)) unknown.set(key, unknown.get(key)! + n);
            throw err;
          }
        } else if (r < 0.9) {
          const key = sets[i % sets.length]!;
          const member = `${name}-${i}`;
          await kv.set(key).add(member, { consistency: 'strong' });
          added.get(key)!.add(member);
        } else {
          const key = sets[i % sets.length]!;
          const seen = await kv.set(key).fetch({ consistency: 'strong' });
          const victim = seen.value[Math.floor(Math.random() * seen.value.length)];
          if (victim === undefined) continue;
          // Whatever its outcome, the member may be gone: it is not checked for presence.
          maybeRemoved.get(key)!.add(victim);
          await kv.set(key).remove(victim, { context: seen.context, consistency: 'strong' });
        }
      } catch (err) {
        const code = (err as RingkvError).code ?? 'ERROR';
        errors.set(code, (errors.get(code) ?? 0) + 1);
      }
    }
  };
  const loops = [loop(a, 'a'), loop(a, 'a2'), loop(b, 'b'), loop(p, 'p')];
  await new Promise((r) => setTimeout(r, 1500));
  await c.kill('n2');
  await new Promise((r) => setTimeout(r, 4000));
  await c.restart('n2');
  await new Promise((r) => setTimeout(r, 2000));
  stop = true;
  await Promise.all(loops);
  faulty.heal();
  t.comment(`${ops} operations; errors: ${JSON.stringify(Object.fromEntries(errors))}`);
  t.ok([...acked.values()].every((v) => v > 0), 'increments were acknowledged on every counter');
  await waitFor('every hint delivered', async () => (await hintsPending(c, ids)) === 0, 90_000);
  for (const id of ids) await admin(c, id, 'repair');

  for (const key of counters) {
    const values: number[] = [];
    for (const id of a.replicasOf(key)) {
      const s = await rawState(c, id, key);
      values.push(s ? (crdtValue(s) as number) : 0);
    }
    const lo = acked.get(key)!;
    const hi = lo + unknown.get(key)!;
    t.ok(values.every((v) => v === values[0]), `${key}: every replica holds the same value (${values.join(', ')})`);
    t.ok(values[0]! >= lo && values[0]! <= hi, `${key}: acknowledged ${lo} <= ${values[0]} <= acknowledged + unknown ${hi}`);
    t.equal(await a.counter(key).value({ consistency: 'all' }), values[0], `${key}: a read at all agrees`);
  }
  for (const key of sets) {
    const mustHave = [...added.get(key)!].filter((m) => !maybeRemoved.get(key)!.has(m));
    t.ok(mustHave.length > 0, `${key}: ${mustHave.length} acknowledged adds not removed`);
    for (const id of a.replicasOf(key)) {
      const s = await rawState(c, id, key);
      const members = new Set((s ? crdtValue(s) : []) as string[]);
      const missing = mustHave.filter((m) => !members.has(m));
      t.same(missing, [], `${key}: every acknowledged add not removed is on ${id}`);
    }
  }
});

t.test('an update retried with its operation id is applied once', async (t) => {
  const c = await TestCluster.start(t, { nodes: 3 });
  const losing = new LoseFirstUpdateAnswer(new HttpTransport());
  const kv = await c.client({ transport: losing, timeoutMs: 5000 });
  // The first coordinator applies it, its answer is lost; the SDK asks the next replica with the same id.
  const r = await kv.counter('retried').increment(5, { consistency: 'strong' });
  t.ok(losing.lost, `the first answer (from ${losing.lost}) was lost`);
  t.equal(r.value, 5, 'the second coordinator applied it once');
  const reader = await c.client();
  await waitFor('every replica holds the increment', async () => {
    for (const id of reader.replicasOf('retried')) if (!(await rawState(c, id, 'retried'))) return false;
    return true;
  }, 20_000);
  t.equal(await reader.counter('retried').value({ consistency: 'all' }), 5, 'applied at two replicas, counted once');
  for (const id of c.nodes.map((n) => n.id)) await admin(c, id, 'repair');
  const states = await Promise.all(reader.replicasOf('retried').map((id) => rawState(c, id, 'retried')));
  t.ok(states.every((s) => s && crdtValue(s) === 5), 'every replica counts it once');
  t.equal(states[0]!.applied.length, 2, 'the window holds both applications of the operation (the duplicate is known)');

  // An application that retries with its own id.
  const kv2 = await c.client();
  await kv2.counter('app-retry').increment(3, { opId: 'order-1234' });
  await kv2.counter('app-retry').increment(3, { opId: 'order-1234' });
  t.equal(await kv2.counter('app-retry').value(), 3, 'the same opId twice: once');

  // The same HTTP request twice.
  const post = () =>
    fetch(`http://${c.addresses[1]}/api/v1/dt/http-retry`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-ringkv-op-id': 'req-77' },
      body: JSON.stringify({ type: 'counter', increment: 10 }),
    });
  t.equal((await post()).status, 200);
  const again = await post();
  t.equal(again.status, 200);
  t.match(await again.json(), { type: 'counter', value: 10 }, 'the retried request answers the state, applied once');
  const plain = await fetch(`http://${c.addresses[2]}/api/v1/dt/http-retry`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ type: 'counter', increment: 1 }) });
  t.match(await plain.json(), { value: 11 }, 'without the header every request is a new operation');
});

t.test('the HTTP contract, WRONG_TYPE, the bound and the CLI', async (t) => {
  const c = await TestCluster.start(t, { nodes: 3 });
  const base = `http://${c.addresses[0]}/api/v1/dt`;
  const post = async (key: string, body: unknown, headers: Record<string, string> = {}) => {
    const res = await fetch(`${base}/${encodeURIComponent(key)}`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: typeof body === 'string' ? body : JSON.stringify(body) });
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  };
  const get = async (key: string, query = '', headers: Record<string, string> = {}) => {
    const res = await fetch(`${base}/${encodeURIComponent(key)}${query}`, { headers });
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  };

  t.test('shapes', async (t) => {
    t.match(await post('c', { type: 'counter', increment: 5 }), { status: 200, body: { type: 'counter', value: 5, context: String } });
    t.match(await post('c', { type: 'counter', decrement: 2 }), { status: 200, body: { value: 3 } });
    t.match(await get('c'), { status: 200, body: { type: 'counter', value: 3, context: String } });
    t.match(await post('s', { type: 'set', add: ['b', 'a', 'c'] }), { status: 200, body: { type: 'set', value: ['a', 'b', 'c'] } });
    const seen = (await get('s')).body;
    // An add after the fetch survives a remove made with the fetch's context (add wins).
    await post('s', { type: 'set', add: ['a'] });
    t.match(await post('s', { type: 'set', remove: ['a', 'b'], context: seen.context }), { status: 200, body: { value: ['a', 'c'] } });
    t.match(await post('s', { type: 'set', remove: ['a'] }), { body: { value: ['c'] } }, 'without a context: what the coordinator has seen');
    t.match(await post('r', { type: 'register', set: { n: 1, tags: ['x'] } }), { status: 200, body: { type: 'register', value: { n: 1, tags: ['x'] } } });
    t.match(await post('r', { type: 'register', set: '42' }), { body: { value: '42' } }, 'a string stays a string');
    const m = await post('m', {
      type: 'map',
      update: {
        name_register: { set: 'Ada' },
        visits_counter: { increment: 2 },
        tags_set: { add: ['x', 'y'] },
        admin_flag: { enable: true },
        address_map: { update: { city_register: { set: 'Paris' } } },
      },
    });
    t.same(m.body.value, { address_map: { city_register: 'Paris' }, admin_flag: true, name_register: 'Ada', tags_set: ['x', 'y'], visits_counter: 2 });
    const m2 = await post('m', { type: 'map', update: { tags_set: { remove: ['x'] }, address_map: { remove: ['city_register'] } }, remove: ['admin_flag'], context: m.body.context });
    t.same(m2.body.value, { address_map: {}, name_register: 'Ada', tags_set: ['y'], visits_counter: 2 });
    t.match(await get('m'), { status: 200, body: { type: 'map', value: m2.body.value } });
    t.match(await get('never'), { status: 404, body: { code: 'NOT_FOUND' } });
    t.match(await get('never', '?type=set'), { status: 200, body: { type: 'set', value: [] } }, 'with ?type=, an empty value');
    t.match(await get('c', '', { consistency: 'all' }), { status: 200, body: { value: 3 } });
  });

  t.test('errors', async (t) => {
    await fetch(`http://${c.addresses[0]}/api/v1/kv/plain`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ value: 'v' }) });
    t.match(await post('c', { type: 'set', add: ['x'] }), { status: 409, body: { code: 'WRONG_TYPE' } }, 'a set operation on a counter');
    t.match(await get('c', '?type=map'), { status: 409, body: { code: 'WRONG_TYPE' } });
    t.match(await post('plain', { type: 'counter', increment: 1 }), { status: 409, body: { code: 'WRONG_TYPE' } }, 'an update of a plain key');
    t.match(await get('plain'), { status: 409, body: { code: 'WRONG_TYPE' } });
    const kvGet = await fetch(`http://${c.addresses[1]}/api/v1/kv/c`);
    t.match({ status: kvGet.status, body: await kvGet.json() }, { status: 409, body: { code: 'WRONG_TYPE' } }, 'a plain get of a counter');
    const kvPut = await fetch(`http://${c.addresses[1]}/api/v1/kv/c`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ value: 1 }) });
    t.match({ status: kvPut.status, body: await kvPut.json() }, { status: 409, body: { code: 'WRONG_TYPE' } }, 'a plain put on a counter');
    const kvDel = await fetch(`http://${c.addresses[2]}/api/v1/kv/c`, { method: 'DELETE' });
    t.match({ status: kvDel.status, body: await kvDel.json() }, { status: 409, body: { code: 'WRONG_TYPE' } }, 'a plain delete of a counter');
    t.match(await get('c'), { body: { value: 3 } }, 'the counter is intact');
    t.match(await post('c', '{"type": "counter"'), { status: 400, body: { code: 'MALFORMED_REQUEST' } });
    t.match(await post('c', [1]), { status: 400, body: { code: 'MALFORMED_REQUEST' } });
    t.match(await post('c', { type: 'gauge', increment: 1 }), { status: 400, body: { code: 'INVALID_ARGUMENT' } });
    t.match(await post('c', { type: 'counter', increment: 1.5 }), { status: 400, body: { code: 'INVALID_ARGUMENT' } });
    t.match(await post('c', { type: 'counter', increment: 1, decrement: 1 }), { status: 400, body: { code: 'INVALID_ARGUMENT' } });
    t.match(await post('c', { type: 'counter', incremnt: 1 }), { status: 400, body: { code: 'INVALID_ARGUMENT' } }, 'a misspelt property');
    t.match(await post('s', { type: 'set', add: [] }), { status: 400, body: { code: 'INVALID_ARGUMENT' } });
    t.match(await post('s', { type: 'set', add: ['x'], remove: ['x'] }), { status: 400, body: { code: 'INVALID_ARGUMENT' } });
    t.match(await post('s', { type: 'set', remove: ['c'], context: 'not-a-token' }), { status: 400, body: { code: 'INVALID_ARGUMENT' } });
    const counterCtx = (await get('c')).body.context as string;
    t.match(await post('s', { type: 'set', remove: ['c'], context: counterCtx }), { status: 409, body: { code: 'WRONG_TYPE' } }, 'a counter\'s context on a set');
    t.match(await post('m', { type: 'map', update: { x_gauge: { set: 1 } } }), { status: 400, body: { code: 'INVALID_ARGUMENT' } });
    t.match(await post('m', { type: 'map', update: { f_flag: { enable: 'yes' } } }), { status: 400, body: { code: 'INVALID_ARGUMENT' } });
    t.match(await post('c', { type: 'counter', increment: 1 }, { consistency: 'linearizable' }), { status: 400, body: { code: 'INVALID_CONSISTENCY' } });
    t.match(await post('c', { type: 'counter', increment: 1 }, { 'x-ringkv-op-id': 'has space' }), { status: 400, body: { code: 'INVALID_ARGUMENT' } });
    t.match(await post('c', { type: 'counter', increment: 1 }, { 'x-ringkv-op-id': 'x'.repeat(65) }), { status: 400, body: { code: 'INVALID_ARGUMENT' } });
    const put = await fetch(`${base}/c`, { method: 'PUT', body: '{}' });
    t.equal(put.status, 405);
    const text = await fetch(`${base}/c`, { method: 'POST', headers: { 'content-type': 'text/plain' }, body: 'x' });
    t.equal(text.status, 415);
    t.match(await get('c'), { status: 200, body: { value: 3 } }, 'nothing was applied, and the node still serves');
  });

  t.test('413 before a set passes 1 MiB', async (t) => {
    const big = (i: number) => `${String(i).padStart(6, '0')}-${'x'.repeat(1000)}`;
    const first = await post('bigset', { type: 'set', add: Array.from({ length: 600 }, (_, i) => big(i)) });
    t.equal(first.status, 200, '600 members of 1 KB fit');
    const refused = await post('bigset', { type: 'set', add: Array.from({ length: 600 }, (_, i) => big(600 + i)) });
    t.match(refused, { status: 413, body: { code: 'VALUE_TOO_LARGE', details: { type: 'set', limitBytes: 1024 * 1024 } } }, '600 more would pass 1 MiB');
    t.ok((refused.body.details as { sizeBytes: number }).sizeBytes > 1024 * 1024);
    const after = await get('bigset');
    t.equal((after.body.value as string[]).length, 600, 'nothing of the refused update was applied');
    t.match(await post('bigset', { type: 'set', remove: [big(0)] }), { status: 200 }, 'removes still pass');
  });

  t.test('the SDK', async (t) => {
    const kv = await c.client<string>({ valueEncoding: 'utf8' });
    await t.rejects(kv.get('c'), { code: ErrorCodes.WRONG_TYPE }, 'get of a counter');
    await t.rejects(kv.put('c', 'x'), { code: ErrorCodes.WRONG_TYPE, notApplied: true }, 'put on a counter');
    await t.rejects(kv.set('c').add('x'), { code: ErrorCodes.WRONG_TYPE }, 'a set add on a counter');
    await t.rejects(kv.delete('c'), { code: ErrorCodes.WRONG_TYPE, notApplied: true }, 'delete of a counter');
    await t.rejects(kv.counter('plain').increment(), { code: ErrorCodes.WRONG_TYPE }, 'an increment of a plain key');
    await t.rejects(kv.counter('c').value({ consistency: 'linearizable' }), { code: ErrorCodes.INVALID_CONSISTENCY });
    t.equal(await kv.counter('c').value({ consistency: { r: 3 } }), 3);
    t.equal(await kv.counter('fresh').value(), 0, 'a counter never updated reads 0');
    t.same(await kv.set('fresh-set').members(), []);
    const m = await kv.map('profile:1').update((m) => {
      m.register('name').set('Ada');
      m.counter('visits').increment();
      m.counter('visits').increment(2);
      m.set('langs').add('en', 'fr');
      m.map('address').register('city').set('London');
    });
    t.same(m.value, { address_map: { city_register: 'London' }, langs_set: ['en', 'fr'], name_register: 'Ada', visits_counter: 3 });
    const f = await kv.map('profile:1').fetch({ consistency: 'all' });
    await kv.map('profile:1').update((m) => m.remove('langs', 'set'), { context: f.context });
    t.same(await kv.map('profile:1').value(), { address_map: { city_register: 'London' }, name_register: 'Ada', visits_counter: 3 });
  });

  t.test('the CLI', async (t) => {
    const seeds = ['--seeds', c.addresses.join(',')];
    const run = (args: string[]) =>
      exec(process.execPath, [CLI, ...args, ...seeds]).then(
        (r) => ({ code: 0, stdout: r.stdout, stderr: r.stderr }),
        (e: { code: number; stdout: string; stderr: string }) => ({ code: e.code, stdout: e.stdout, stderr: e.stderr }),
      );
    t.match(await run(['counter', 'incr', 'cli-c', '5']), { code: 0, stdout: '5\n' });
    t.match(await run(['counter', 'decr', 'cli-c']), { code: 0, stdout: '4\n' });
    t.match(await run(['counter', 'incr', 'cli-c', '2', '--op-id', 'once']), { code: 0, stdout: '6\n' });
    t.match(await run(['counter', 'incr', 'cli-c', '2', '--op-id', 'once']), { code: 0, stdout: '6\n' }, 'the same --op-id: applied once');
    t.match(await run(['set', 'add', 'cli-s', 'b', 'a']), { code: 0, stdout: '["a","b"]\n' });
    t.match(await run(['set', 'remove', 'cli-s', 'a']), { code: 0, stdout: '["b"]\n' });
    t.match(await run(['dt', 'get', 'cli-c']), { code: 0, stdout: '6\n' });
    const j = await run(['dt', 'get', 'cli-s', '--json']);
    t.match(JSON.parse(j.stdout), { type: 'set', value: ['b'], context: String });
    t.match(await run(['dt', 'get', 'cli-none']), { code: 1, stderr: /NOT_FOUND/ });
    t.match(await run(['get', 'cli-c']), { code: 2, stderr: /WRONG_TYPE/ }, 'a plain get of a counter: exit 2');
    t.match(await run(['counter', 'incr', 'cli-s']), { code: 2, stderr: /WRONG_TYPE/ });
    t.match(await run(['counter', 'incr', 'cli-c', '--consistency', 'linearizable']), { code: 2, stderr: /INVALID_CONSISTENCY/ });
    t.match(await run(['counter', 'incr', 'cli-c', 'x']), { code: 2 });
  });
});

t.test('a decommissioned node\'s counter entries are folded into survivors; values do not change', async (t) => {
  const c = await TestCluster.start(t, {
    nodes: 4,
    env: { RINGKV_DATA_TYPE_OP_WINDOW_MS: '1500', RINGKV_CLEANUP_DELAY_MS: '1500' },
  });
  const kv = await c.client({ timeoutMs: 5000 });
  const keys = Array.from({ length: 40 }, (_, i) => `fold:${i}`);
  // Updates from every node's clients: the coordinator is the first healthy replica, so n4 coordinates some.
  for (let round = 1; round <= 3; round++) {
    await Promise.all(keys.map((k, i) => kv.counter(k).increment(i + round, { consistency: 'all' })));
    await Promise.all(keys.map((k) => kv.map(`${k}:m`).update((m) => m.counter('n').increment(round), { consistency: 'all' })));
  }
  const expected = new Map(keys.map((k, i) => [k, 3 * i + 6]));
  const isN4 = (actor: string) => actor.startsWith('n4#');
  const withN4 = async (id: string, key: string) => {
    const s = await rawState(c, id, key);
    let found = false;
    if (s) forEachCounter(s.store, (ctr) => (found ||= ctr.entries.some((e) => isN4(e.dot[0]))));
    return found;
  };
  let before = 0;
  for (const k of keys) if (await withN4(kv.replicasOf(k)[0]!, k)) before++;
  t.ok(before > 0, `${before} counters hold entries of n4 before it leaves`);

  const { stdout } = await exec(process.execPath, [CLI, 'decommission', 'n4', '--seeds', c.addresses.join(',')]);
  t.match(stdout, /n4 left the ring/);
  await waitFor('n4 left everywhere', async () => (await c.view('n1')).members.find((m) => m.id === 'n4')?.state === 'left' && kv.cluster.member('n4')?.state === 'left', 20_000);
  await c.stop('n4');
  const survivors = ['n1', 'n2', 'n3'];
  await waitFor(
    'no replica holds counter entries of n4',
    async () => {
      for (const k of keys) for (const key of [k, `${k}:m`]) for (const id of kv.replicasOf(key)) if (await withN4(id, key)) return false;
      return true;
    },
    120_000,
  );
  for (const id of survivors) await admin(c, id, 'repair');
  for (const k of keys) {
    for (const id of kv.replicasOf(k)) {
      const s = await rawState(c, id, k);
      t.equal(s && crdtValue(s), expected.get(k), `${k} on ${id}`);
    }
    t.same(await kv.map(`${k}:m`).value({ consistency: 'all' }), { n_counter: 6 }, `${k}:m`);
  }
  const folds = await Promise.all(survivors.map(async (id) => (await c.call<{ lastFold: { folded: number } | null }>(id, Routes.status, undefined)).lastFold?.folded ?? 0));
  t.ok(folds.reduce((x, y) => x + y, 0) > 0, `the survivors folded keys (${folds.join(', ')})`);
});
