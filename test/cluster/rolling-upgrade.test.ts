// A rolling upgrade from protocol 5 to 6: messages carry the version of their shape
// (MESSAGE_VERSION), so servers of 5 and 6 mix. (a) Every message the SDK sends for a route
// that existed in 5 carries v = 5 (its transport intercepted), the scan route 6. (b) A real
// cluster of three nodes, n3 started with RINGKV_TEST_ACCEPT_PROTOCOL_MAX=5 (it refuses
// v > 5 as a server of protocol 5 does), stays converged — every node sees every node up —,
// strong writes and reads work, hints for n3 are delivered to it, and a listing through n3
// fails with a ProtocolMismatchError naming n3. n3 has no seeds: it learns n1 and n2 only
// from their messages. With RINGKV_OLD_SERVER_CLIS (comma-separated dist/storage-server/cli/
// ringkv.js of builds of protocol 5), a real server of each joins two nodes of this build: every view converges, strong
// writes and reads work and the old server stores them. Real builds of protocol 5: RINGKV_OLD_SERVER_CLIS
// in ./listing-protocol.test.ts.

import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import t from 'tap';
import { NodeUnavailableError, ProtocolMismatchError, RingkvError } from '../../sdk/errors.js';
import { HttpTransport } from '../../sdk/transport.js';
import type { Transport } from '../../sdk/transport.js';
import type { StoredObject } from '../../sdk/versioning/index.js';
import { MESSAGE_VERSION, OpType, PROTOCOL_OF_ROUTE, PROTOCOL_VERSION, Routes } from '../../sdk/wire/protocol.js';
import type { BatchResponse } from '../../sdk/wire/protocol.js';
import { TEST_ACCEPT_PROTOCOL_MAX_ENV } from '../../storage-server/cli/server-command.js';
import { freePort, TestCluster } from '../helpers/cluster.js';

t.setTimeout(240_000);

/** Failure detection of the defaults (membership/README.md), with room for a loaded machine. */
const DETECTION_BOUND_MS = 30_000;

/** Records the route and `v` of every message the client sends; may fail scans meant for some addresses. */
class RecordingTransport implements Transport {
  readonly sent: { route: string; v: unknown }[] = [];
  constructor(
    private readonly inner: Transport,
    private readonly failScansTo: string[] = [],
  ) {}
  call<T>(address: string, route: string, body: unknown, opts: { timeoutMs: number; method?: 'GET' | 'POST' }): Promise<T> {
    if (body !== undefined) this.sent.push({ route, v: (body as { v?: unknown }).v });
    if (route === Routes.scan && this.failScansTo.includes(address)) return Promise.reject(new NodeUnavailableError(address, 'scans to it are cut by the test'));
    return this.inner.call<T>(address, route, body, opts);
  }
  close(): Promise<void> {
    return this.inner.close();
  }
}

async function waitFor(what: string, fn: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const started = Date.now();
  let lastErr = '';
  while (Date.now() - started < timeoutMs) {
    try {
      if (await fn()) return;
    } catch (err) {
      lastErr = (err as Error).message;
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${lastErr ? ` (last error: ${lastErr})` : ''}`);
}

/** Every node's view has every node up. */
async function allUp(c: TestCluster): Promise<boolean> {
  for (const n of c.nodes) {
    const v = await c.view(n.id);
    if (c.nodes.some((m) => v.members.find((x) => x.id === m.id)?.state !== 'up')) return false;
  }
  return true;
}

async function rawGet(c: TestCluster, id: string, key: string): Promise<StoredObject | null> {
  const res = await c.call<BatchResponse>(id, Routes.batch, { v: 5, ops: [{ t: OpType.Get, key: Buffer.from(key) }] });
  const r = res.results[0]!;
  if (!r.ok) throw new Error(`${r.code}: ${r.msg}`);
  return r.obj;
}

async function hintsPending(c: TestCluster, ids: string[]): Promise<number> {
  let n = 0;
  for (const id of ids) n += (await c.call<{ hintsPending: number }>(id, Routes.status, undefined)).hintsPending;
  return n;
}

t.test('the route table: existing routes carry 5, the routes of 6 carry 6', async (t) => {
  t.equal(PROTOCOL_VERSION, 6, 'this build speaks 6');
  for (const [route, v] of Object.entries(MESSAGE_VERSION)) {
    const want = route in PROTOCOL_OF_ROUTE ? PROTOCOL_OF_ROUTE[route as keyof typeof PROTOCOL_OF_ROUTE] : 5;
    t.equal(v, want, `${route}: v ${v}`);
  }
});

t.test('a node that accepts only up to protocol 5 in a cluster of protocol 6', async (t) => {
  const c = await TestCluster.start(t, {
    nodes: 3,
    args: ['--replication', '3'],
    nodeEnv: (node): Record<string, string> => (node.id === 'n3' ? { [TEST_ACCEPT_PROTOCOL_MAX_ENV]: '5' } : {}),
    // n3 is given no seeds: it learns the others only from what they send it, as a node of 5
    // learns a node of 6 that comes up (the gossip, pings and hints a node of 5 refused).
    seedsOf: (node, nodes) => (node.id === 'n3' ? [] : nodes.filter((x) => x !== node).map((x) => x.address)),
  });

  await t.test('n3 answers like a server of protocol 5', async (t) => {
    const err = await c.call(
      'n3',
      Routes.batch,
      { v: 6, ops: [{ t: OpType.Get, key: Buffer.from('x') }] },
      5000,
    ).then(
      () => undefined,
      (e: unknown) => e as RingkvError,
    );
    t.equal(err?.code, 'PROTOCOL_MISMATCH', `a batch of v 6 is refused: ${err?.message}`);
    t.same(err?.details, { min: 1, max: 5 }, 'it speaks 1..5');
  });

  await t.test('every node sees every node up, and keeps seeing it', async (t) => {
    await waitFor('every node up in every view', () => allUp(c), DETECTION_BOUND_MS);
    // Long enough for many gossip rounds and pings (every second by default) to n3 and from it.
    const until = Date.now() + 5000;
    while (Date.now() < until) {
      t.ok(await allUp(c), 'every view has n1, n2 and n3 up');
      await new Promise((r) => setTimeout(r, 1000));
    }
  });

  await t.test('the SDK sends v 5 on every route of 5; strong writes and reads work', async (t) => {
    const transport = new RecordingTransport(new HttpTransport());
    const kv = await c.client<string>({ valueEncoding: 'utf8', transport, consistency: 'strong' });
    for (let i = 0; i < 30; i++) await kv.put(`ru:${i}`, `v${i}`);
    await kv.putMany(Array.from({ length: 30 }, (_, i) => ({ key: `ru:m${i}`, value: `m${i}` })));
    for (let i = 0; i < 30; i++) {
      const r = await kv.get(`ru:${i}`);
      t.equal(r?.value, `v${i}`, `ru:${i} read back`);
    }
    await kv.delete('ru:0');
    t.notOk(await kv.get('ru:0'), 'a delete reads back as nothing');
    for (let i = 1; i < 30; i++) t.ok(await rawGet(c, 'n3', `ru:${i}`), `n3 stores ru:${i}`);
    const fives = transport.sent.filter((m) => m.route !== Routes.scan && m.route !== Routes.ring);
    t.ok(fives.length >= 90, `${fives.length} messages sent`);
    t.same(
      fives.filter((m) => m.v !== 5),
      [],
      `every one carries v 5 (routes: ${[...new Set(fives.map((m) => m.route))].join(', ')})`,
    );
  });

  await t.test('hints for n3 are delivered to it', async (t) => {
    await c.kill('n3');
    await waitFor('n3 down in n1 and n2', async () => {
      for (const id of ['n1', 'n2']) if ((await c.view(id)).members.find((m) => m.id === 'n3')?.state !== 'down') return false;
      return true;
    }, DETECTION_BOUND_MS);
    const kv = await c.client<string>({ valueEncoding: 'utf8', seeds: [c.node('n1').address, c.node('n2').address] });
    for (let i = 0; i < 20; i++) await kv.put(`hint:${i}`, `h${i}`, { consistency: 'strong', timeoutMs: 10_000 });
    const pending = await hintsPending(c, ['n1', 'n2']);
    t.ok(pending > 0, `n1 and n2 hold hints for n3 (${pending})`);
    await c.restart('n3');
    await waitFor('every node up in every view', () => allUp(c), DETECTION_BOUND_MS);
    await waitFor('every hint delivered', async () => (await hintsPending(c, ['n1', 'n2'])) === 0, 90_000);
    t.pass('no hint left on n1 and n2');
    for (let i = 0; i < 20; i++) {
      const obj = await rawGet(c, 'n3', `hint:${i}`);
      t.equal(obj?.siblings.find((s) => !s.tombstone)?.value.toString(), `h${i}`, `n3 holds hint:${i}`);
    }
  });

  await t.test('a listing through n3 fails with a ProtocolMismatchError naming it', async (t) => {
    const transport = new RecordingTransport(new HttpTransport(), [c.node('n1').address, c.node('n2').address]);
    const kv = await c.client<string>({ valueEncoding: 'utf8', transport });
    let err: unknown;
    try {
      for await (const k of kv.keys()) void k;
    } catch (e) {
      err = e;
    }
    t.ok(err instanceof ProtocolMismatchError, `a ProtocolMismatchError (got ${(err as Error)?.constructor?.name}: ${(err as Error)?.message})`);
    t.match((err as ProtocolMismatchError).details, { node: 'n3', address: c.node('n3').address, route: Routes.scan, needsProtocol: 6, nodeProtocol: 5 }, JSON.stringify((err as ProtocolMismatchError).details));
    t.match((err as Error).message, /node n3 /, 'the message names n3');
    t.same([...new Set(transport.sent.filter((m) => m.route === Routes.scan).map((m) => m.v))], [6], 'scans carry v 6');
  });
});

const oldClis = (process.env.RINGKV_OLD_SERVER_CLIS ?? '').split(',').filter((p) => p.length > 0);
t.test('real servers of protocol 5 with nodes of this build', { skip: oldClis.length === 0 ? 'set RINGKV_OLD_SERVER_CLIS to dist/storage-server/cli/ringkv.js of builds of protocol 5 to run it' : false }, async (t) => {
  for (const cli of oldClis) {
    await t.test(cli, async (t) => {
      // Two nodes of this build, then the old server, seeded with them (a node coming back from its upgrade the other way round).
      const c = await TestCluster.start(t, { nodes: 2, args: ['--replication', '3'] });
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ringkv-p5-'));
      const port = await freePort();
      const oldAddress = `127.0.0.1:${port}`;
      const seeds = [c.node('n1').address, c.node('n2').address].join(',');
      const child = spawn(process.execPath, [cli, 'server', '--id', 'old1', '--host', '127.0.0.1', '--port', String(port), '--data', dir, '--seeds', seeds, '--replication', '3', '--log-level', 'warn'], {
        stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
      });
      t.teardown(() => {
        child.kill('SIGKILL');
        fs.rmSync(dir, { recursive: true, force: true });
      });
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`${cli} did not start in 60 s`)), 60_000);
        child.on('message', (m: { type?: string }) => m?.type === 'ready' && (clearTimeout(timer), resolve()));
        child.once('exit', (code) => (clearTimeout(timer), reject(new Error(`${cli} exited (${code})`))));
      });
      const transport = new HttpTransport();
      t.teardown(() => transport.close());
      const viewOf = (address: string) => transport.call<{ members: { id: string; state: string }[] }>(address, Routes.members, undefined, { timeoutMs: 2000, method: 'GET' });
      const ids = ['n1', 'n2', 'old1'];
      const addresses = [c.node('n1').address, c.node('n2').address, oldAddress];
      await waitFor('every node up in every view, the old server\'s too', async () => {
        for (const a of addresses) {
          const v = await viewOf(a);
          if (ids.some((id) => v.members.find((m) => m.id === id)?.state !== 'up')) return false;
        }
        return true;
      }, DETECTION_BOUND_MS);
      t.pass('n1, n2 and old1 see each other up');
      const kv = await c.client<string>({ valueEncoding: 'utf8', seeds: addresses, consistency: 'strong' });
      for (let i = 0; i < 20; i++) await kv.put(`p5:${i}`, `v${i}`);
      for (let i = 0; i < 20; i++) t.equal((await kv.get(`p5:${i}`))?.value, `v${i}`, `p5:${i} read back`);
      for (let i = 0; i < 20; i++) {
        const res = await transport.call<BatchResponse>(oldAddress, Routes.batch, { v: 5, ops: [{ t: OpType.Get, key: Buffer.from(`p5:${i}`) }] }, { timeoutMs: 5000 });
        const r = res.results[0]!;
        t.ok(r.ok && r.obj, `old1 stores p5:${i}`);
      }
    });
  }
});
