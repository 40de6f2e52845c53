// The authorization table on real processes (TLS required, authentication on): (token,
// operation, key) -> 200 / 401 / 403 over the public API, the SDK's batch endpoint (each
// operation of a batch answered on its own), the endpoints the dashboard and the CLI read,
// operator actions and user management, with the prefix edges (app: vs app2:, app); the SDK
// with tokens (typed errors); a reader's read repair, which the node confirms with the other
// replicas and never stores as sent; a public route without a permission rule (closed);
// every route of the wire protocol by caller (a route this test does not know fails it);
// and the CLI's user and role commands.

import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { connect } from '../../sdk/client.js';
import type { RingkvError } from '../../sdk/errors.js';
import type { BatchResponse, WireResult } from '../../sdk/wire/protocol.js';
import { decodeMessage, OpType, PROTOCOL_VERSION, Routes } from '../../sdk/wire/protocol.js';
import type { StoredObject } from '../../sdk/versioning/index.js';
import { skipWithoutOpenssl } from '../helpers/certs.js';
import { CLI } from '../helpers/cluster.js';
import { codeOf, msgpackBody, startSecureCluster } from '../helpers/secure-cluster.js';

t.setTimeout(240_000);

const skip = skipWithoutOpenssl();

/** The error a call failed with (undefined when it succeeded). */
const failure = (p: Promise<unknown>): Promise<RingkvError | undefined> => p.then(
  () => undefined,
  (e: unknown) => e as RingkvError,
);

const lww = (value: string, ts: number, writer = 'w'): StoredObject => ({
  mode: 'lww',
  siblings: [{ value: Buffer.from(value), tombstone: false, expiresAtMs: 0, contentType: '', flags: 0, ts, writer }],
  context: {},
});

t.test('authorization table', { skip }, async (t) => {
  const s = await startSecureCluster(t, { nodes: 3 });
  const { c, certs } = s;
  await s.role('app-rw', { 'app:': ['read', 'write'] });
  await s.role('app-ro', { 'app:': ['read'] });
  const alice = await s.user('alice', ['app-rw']);
  const bob = await s.user('bob', ['app-ro']);
  const mon = await s.user('mon', []);
  const gone = await s.user('gone', ['app-rw']);
  await s.authAdmin({ action: 'user-remove', name: 'gone' });
  const tokens: Record<string, string | undefined> = {
    none: undefined,
    garbage: 'rkv_not-a-token-of-anyone-here-000000000000000',
    removed: gone,
    mon,
    bob,
    alice,
    admin: s.adminToken,
  };
  const who = Object.keys(tokens);

  await t.test('the public API: (token, method, key) -> status', async (t) => {
    // Expected status per caller, in the order of `who`.
    const rows: [string, string, (number | string)[]][] = [
      ['PUT', 'app:k', [401, 401, 401, 403, 403, 201, 200]],
      ['GET', 'app:k', [401, 401, 401, 403, 200, 200, 200]],
      ['HEAD', 'app:k', [401, 401, 401, 403, 200, 200, 200]],
      ['PUT', 'app2:k', [401, 401, 401, 403, 403, 403, 201]],
      ['GET', 'app2:k', [401, 401, 401, 403, 403, 403, 200]],
      ['PUT', 'app', [401, 401, 401, 403, 403, 403, 201]],
      ['GET', 'ap', [401, 401, 401, 403, 403, 403, 404]],
      ['DELETE', 'app:k', [401, 401, 401, 403, 403, 204, 204]],
    ];
    for (const [method, key, expected] of rows) {
      for (let i = 0; i < who.length; i++) {
        const name = who[i]!;
        const a = await s.request(`n${1 + (i % 3)}`, {
          method,
          path: `/api/v1/kv/${encodeURIComponent(key)}`,
          token: tokens[name],
          ...(method === 'PUT' ? { body: JSON.stringify({ value: `by ${name}` }), headers: { 'content-type': 'application/json' } } : {}),
        });
        const code = a.status === 401 ? 'UNAUTHENTICATED' : a.status === 403 ? 'PERMISSION_DENIED' : undefined;
        t.equal(a.status, expected[i], `${name} ${method} ${key}: ${a.status} ${code ?? ''}`);
        if (code && method !== 'HEAD') t.equal(codeOf(a), code, `${name} ${method} ${key}: code ${code}`);
      }
    }
  });

  await t.test('the batch endpoint: each operation checked against its key', async (t) => {
    let ts = Date.now() * 1000;
    // Each caller's writes carry its name as the writer, so what was written shows who wrote it.
    const ops = (writer: string) => {
      ts += 1000;
      const sib = { value: Buffer.from(writer), tombstone: false, expiresAtMs: 0, contentType: '', flags: 0, ts, writer };
      return [
        { t: OpType.Get, key: Buffer.from('app:b1') },
        { t: OpType.Put, key: Buffer.from('app:b1'), obj: lww(writer, ts, writer) },
        { t: OpType.Put, key: Buffer.from('app2:b1'), obj: lww(writer, ts, writer) },
        { t: OpType.Get, key: Buffer.from('app2:b1') },
        { t: OpType.CoordinatedPut, key: Buffer.from('app:b2'), ctx: {}, sib },
        { t: OpType.Merge, key: Buffer.from('app:b3'), obj: lww(writer, ts, writer), hintFor: 'n2' },
      ];
    };
    // ok / PERMISSION_DENIED (D) per operation, per caller.
    const expected: Record<string, string[]> = {
      mon: ['D', 'D', 'D', 'D', 'D', 'D'],
      bob: ['ok', 'D', 'D', 'D', 'D', 'D'],
      alice: ['ok', 'ok', 'D', 'D', 'ok', 'ok'],
      admin: ['ok', 'ok', 'ok', 'ok', 'ok', 'ok'],
      // bob again, after admin wrote: his refused writes, stamped later, must not show.
      bob2: ['ok', 'D', 'D', 'D', 'D', 'D'],
    };
    for (const [name, want] of Object.entries(expected)) {
      const { body, headers } = msgpackBody({ v: PROTOCOL_VERSION, ops: ops(name) });
      const a = await s.request('n1', { method: 'POST', path: Routes.batch, token: tokens[name === 'bob2' ? 'bob' : name], body, headers, identity: certs.client('app') });
      t.equal(a.status, 200, `${name}: the batch is answered`);
      const results = decodeMessage<BatchResponse>(a.body).results;
      t.same(
        results.map((r: WireResult) => (r.ok ? 'ok' : r.code === 'PERMISSION_DENIED' ? 'D' : r.code)),
        want,
        `${name}: answered per operation`,
      );
    }
    for (const name of ['none', 'garbage', 'removed']) {
      const { body, headers } = msgpackBody({ v: PROTOCOL_VERSION, ops: ops(name) });
      const a = await s.request('n2', { method: 'POST', path: Routes.batch, token: tokens[name], body, headers, identity: certs.client('app') });
      t.same([a.status, codeOf(a)], [401, 'UNAUTHENTICATED'], `${name}: the whole batch is refused, even with a client certificate`);
    }
    // What was refused was not written: the last writes that stand are admin's (app2:) and
    // admin's (app:, written after alice's), though bob's came later.
    const check = await c.call<BatchResponse>('n1', Routes.batch, { v: PROTOCOL_VERSION, ops: [{ t: OpType.Get, key: Buffer.from('app2:b1') }, { t: OpType.Get, key: Buffer.from('app:b1') }] });
    t.same(
      check.results.map((r) => (r as { obj: StoredObject | null }).obj?.siblings[0]?.writer),
      ['admin', 'admin'],
      'only permitted writes were applied',
    );
  });

  await t.test('monitoring endpoints need any valid token; files and health need none', async (t) => {
    for (const path of [Routes.members, Routes.status, Routes.ring, `${Routes.ring}?key=app%3Ak`, Routes.whoami, Routes.hotKeys, '/metrics']) {
      for (const name of who) {
        const a = await s.request('n2', { path, token: tokens[name], headers: { accept: 'application/json' } });
        const want = ['none', 'garbage', 'removed'].includes(name) ? 401 : 200;
        t.equal(a.status, want, `${name} GET ${path}: ${a.status}`);
      }
    }
    for (const path of ['/health', '/ui', '/ui/dashboard.js']) {
      t.equal((await s.request('n3', { path })).status, 200, `GET ${path} without a token`);
    }
    const me = JSON.parse((await s.request('n1', { path: Routes.whoami, token: bob, headers: { accept: 'application/json' } })).body.toString()) as Record<string, unknown>;
    t.same([me.user, me.roles, me.admin], ['bob', ['app-ro'], false], 'whoami names the user');
  });

  await t.test('every route of the wire protocol, by caller (a route missing here fails)', async (t) => {
    // Per route: the request, and what the callers get, in the order none, garbage, mon
    // (a valid token, no roles), alice (app: read-write), admin — each with a client
    // certificate of the CA. 'ok' is anything past authorization (the handler's own answer).
    type Row = { method: 'GET' | 'POST'; msg?: unknown; want: [string, string, string, string, string] };
    const U = 'UNAUTHENTICATED';
    const D = 'PERMISSION_DENIED';
    const nodeOnly = (msg: unknown): Row => ({ method: 'POST', msg, want: [D, D, D, D, D] });
    const adminOnly = (msg: unknown): Row => ({ method: 'POST', msg, want: [U, U, D, D, 'ok'] });
    const anyToken: Row = { method: 'GET', want: [U, U, 'ok', 'ok', 'ok'] };
    const v = PROTOCOL_VERSION;
    const rows: Record<string, Row> = {
      batch: { method: 'POST', msg: { v, ops: [] }, want: [U, U, 'ok', 'ok', 'ok'] },
      // Listing: any user's token; a page holds only the keys it may read (tested below).
      scan: { method: 'POST', msg: { v, spans: [[0, 1000]], limit: 10 }, want: [U, U, 'ok', 'ok', 'ok'] },
      members: anyToken,
      status: anyToken,
      // The ring the dashboard draws: what status and members show, to the same callers.
      ring: anyToken,
      whoami: anyToken,
      hotKeys: anyToken,
      // A near cache's stream; v 0 (an unsupported protocol) gets past authorization and is
      // refused by the handler at once, where an accepted stream would stay open.
      invalidations: { method: 'POST', msg: { v: 0 }, want: [U, U, 'ok', 'ok', 'ok'] },
      gossip: nodeOnly({ v, from: 'evil', members: [] }),
      ping: nodeOnly({ v, from: 'evil' }),
      pingReq: nodeOnly({ v, from: 'evil', target: 'n2', address: '127.0.0.1:9', timeoutMs: 500 }),
      hints: nodeOnly({ v }),
      merkleKeys: nodeOnly({ v, spans: [[0, 1000]], limit: 10 }),
      stream: nodeOnly({ v, spans: [[0, 1000]], limit: 10 }),
      ringFence: nodeOnly({ v }),
      authSync: nodeOnly({ v, from: 'evil', records: [] }),
      // Shipping between data centers: a client must not write objects as if another data center sent them.
      replApply: nodeOnly({ v, from: 'evil', fromDc: 'west', ops: [] }),
      merkle: adminOnly({ v, spans: [[0, 1000]] }),
      admin: adminOnly({ v, action: 'no-such-action' }),
      authAdmin: adminOnly({ v, action: 'role-list' }),
    };
    const callers = ['none', 'garbage', 'mon', 'alice', 'admin'];
    for (const [name, path] of Object.entries(Routes)) {
      const row = rows[name];
      if (!row) {
        t.fail(`Routes.${name} (${path}) is not in this matrix: give it a row here and a rule in access-policy.ts`);
        continue;
      }
      const got: string[] = [];
      for (const who of callers) {
        const a = await s.request('n2', {
          method: row.method,
          path,
          token: tokens[who],
          identity: certs.client('app'),
          ...(row.method === 'POST' ? msgpackBody(row.msg) : { headers: { accept: 'application/msgpack' } }),
        });
        got.push(a.status === 401 || a.status === 403 ? `${codeOf(a)}` : 'ok');
        if (a.status === 401) t.equal(codeOf(a), U, `${who} ${path}: 401 is ${U}`);
        if (a.status === 403) t.equal(codeOf(a), D, `${who} ${path}: 403 is ${D}`);
      }
      t.same(got, row.want, `${path}: ${callers.map((c, i) => `${c} ${got[i]}`).join(', ')}`);
    }
    // Paths no table lists are node-only: a made-up internal route and a top-level one.
    for (const path of ['/internal/v1/added-later', '/internal/v2/batch', '/admin']) {
      const a = await s.request('n2', { path, token: s.adminToken, identity: certs.client('app') });
      t.same([a.status, codeOf(a)], [403, D], `${path}: refused to an admin token without a node certificate`);
    }
  });

  await t.test('listing lists only the keys the user may read', async (t) => {
    const kvAdmin = await connect({ seeds: c.addresses, valueEncoding: 'utf8', tls: { ca: certs.ca }, auth: { token: s.adminToken } });
    t.teardown(() => kvAdmin.close());
    await kvAdmin.putMany(['app:list1', 'app:list2', 'other:list1'].map((key) => ({ key, value: key })), { consistency: 'all' });
    const list = async (token: string) => {
      const kv = await connect({ seeds: c.addresses, valueEncoding: 'utf8', tls: { ca: certs.ca }, auth: { token } });
      try {
        const keys: string[] = [];
        for await (const k of kv.keys({ prefix: '' })) if (k.includes('list')) keys.push(k);
        return keys.sort();
      } finally {
        await kv.close();
      }
    };
    t.same(await list(bob), ['app:list1', 'app:list2'], 'bob (app: read) lists the app: keys only');
    t.same(await list(mon), [], 'a user without roles lists nothing');
    t.same(await list(s.adminToken), ['app:list1', 'app:list2', 'other:list1'], 'an admin lists every key');
  });

  await t.test('operator actions and user management need admin', async (t) => {
    const actions: [string, number][] = [
      ['drop-hints', 200],
      ['compact', 200],
      ['rebuild-leaves', 200],
      ['cleanup', 200],
      ['repair', 200],
      // Past authorization, refused for what they are: 3 replicas need 3 nodes; n2 is up.
      ['decommission', 400],
      ['removenode', 400],
    ];
    for (const [action, adminStatus] of actions) {
      for (const name of ['none', 'garbage', 'bob', 'alice', 'mon', 'admin']) {
        const { body, headers } = msgpackBody({ v: PROTOCOL_VERSION, action, node: 'n2' });
        const a = await s.request('n3', { method: 'POST', path: Routes.admin, token: tokens[name], body, headers, identity: certs.client('app') });
        const want = name === 'admin' ? [adminStatus] : ['none', 'garbage'].includes(name) ? [401, 'UNAUTHENTICATED'] : [403, 'PERMISSION_DENIED'];
        t.same(name === 'admin' ? [a.status] : [a.status, codeOf(a)], want, `${name}: ${action} -> ${a.status}`);
      }
    }
    for (const name of ['none', 'bob', 'mon', 'admin']) {
      const { body, headers } = msgpackBody({ v: PROTOCOL_VERSION, action: 'user-list' });
      const a = await s.request('n2', { method: 'POST', path: Routes.authAdmin, token: tokens[name], body, headers });
      t.equal(a.status, name === 'admin' ? 200 : name === 'none' ? 401 : 403, `${name}: user-list -> ${a.status}`);
    }
    const { body, headers } = msgpackBody({ v: PROTOCOL_VERSION, action: 'user-add', name: 'mallory', roles: ['admin'] });
    const a = await s.request('n2', { method: 'POST', path: Routes.authAdmin, token: alice, body, headers });
    t.same([a.status, codeOf(a)], [403, 'PERMISSION_DENIED'], 'a non-admin cannot make itself an admin');
    const users = await s.authAdmin<{ users: { name: string }[] }>({ action: 'user-list' });
    t.notOk(users.users.some((u) => u.name === 'mallory'), 'mallory was not made');
    t.notMatch(JSON.stringify(users), /tokenHash|rkv_/, 'user-list shows neither tokens nor their hashes');
    // Merkle hashes (repair --check) with an admin's token; the node-only endpoints never.
    const merkle = msgpackBody({ v: PROTOCOL_VERSION, spans: [[0, 1000]] });
    t.equal((await s.request('n1', { method: 'POST', path: Routes.merkle, token: s.adminToken, ...merkle })).status, 200, 'admin: merkle');
    t.equal((await s.request('n1', { method: 'POST', path: Routes.merkle, token: bob, ...merkle })).status, 403, 'bob: merkle');
    const stream = msgpackBody({ v: PROTOCOL_VERSION, spans: [[0, 0xffffffff]], limit: 100 });
    const st = await s.request('n1', { method: 'POST', path: Routes.stream, token: s.adminToken, identity: certs.client('app'), ...stream });
    t.same([st.status, codeOf(st)], [403, 'PERMISSION_DENIED'], 'stream is for nodes, even with an admin token');
  });

  await t.test('the SDK with tokens: typed errors', async (t) => {
    const tls = { ca: certs.ca };
    const as = (token: string) => connect({ seeds: c.addresses, valueEncoding: 'utf8', tls, auth: { token }, timeoutMs: 5000 });
    const a = await as(alice);
    t.teardown(() => a.close());
    await a.put('app:sdk', 'hello', { consistency: 'all' });
    t.equal((await a.get('app:sdk'))?.value, 'hello', 'alice writes and reads app:');
    const denied = await failure(a.put('app2:sdk', 'no'));
    t.equal(denied?.code, 'PERMISSION_DENIED', 'alice may not write app2:');
    t.equal(denied?.notApplied, true, 'and the refused write is known not applied');
    const b = await as(bob);
    t.teardown(() => b.close());
    t.equal((await b.get('app:sdk'))?.value, 'hello', 'bob reads app:');
    t.equal((await failure(b.put('app:sdk', 'no')))?.code, 'PERMISSION_DENIED', 'bob may not write');
    t.equal((await failure(b.delete('app:sdk')))?.code, 'PERMISSION_DENIED', 'nor delete');
    t.equal((await failure(b.get('other:x')))?.code, 'PERMISSION_DENIED', 'nor read outside app:');
    t.same(b.avoidedNodes, [], 'refusals do not make the client avoid nodes');

    // A near cache under authentication: its invalidation streams carry the token (a stream
    // without it is refused 401 and never comes up), and a change made by alice reaches bob's cache.
    const cached = await connect({ seeds: c.addresses, valueEncoding: 'utf8', tls, auth: { token: bob }, timeoutMs: 5000, cache: { ttlMs: 60_000 } });
    t.teardown(() => cached.close());
    let deadline = Date.now() + 20_000;
    for (let i = 0; Date.now() < deadline && (cached.nearCacheStats?.liveStreams.length ?? 0) < c.nodes.length; i++) {
      await cached.get(`app:miss-${i}`, { consistency: 'eventual' });
      await new Promise((r) => setTimeout(r, 50));
    }
    t.equal(cached.nearCacheStats?.liveStreams.length, c.nodes.length, `bob's invalidation streams are live on every node (${JSON.stringify(cached['subscriber']?.counters)})`);
    let hit = false;
    while (Date.now() < deadline && !hit) {
      const hits = cached.nearCacheStats!.hits;
      await cached.get('app:sdk', { consistency: 'eventual' });
      hit = cached.nearCacheStats!.hits > hits;
    }
    t.ok(hit, "bob's near cache serves app:sdk");
    await a.put('app:sdk', 'hello again', { consistency: 'all' });
    deadline = Date.now() + 20_000;
    let seen: string | undefined;
    while (Date.now() < deadline && (seen = (await cached.get('app:sdk', { consistency: 'eventual' }))?.value) !== 'hello again') await new Promise((r) => setTimeout(r, 20));
    t.equal(seen, 'hello again', "alice's change is invalidated in bob's cache (well within its 60 s ttl)");
    t.ok((cached.nearCacheStats?.invalidations ?? 0) >= 1, 'by an invalidation');
    t.equal((await failure(cached.get('other:x', { consistency: 'eventual' })))?.code, 'PERMISSION_DENIED', 'a cached client may not read outside app: either');
    for (const [name, token] of [['a removed user', gone], ['a made-up token', tokens.garbage!]] as const) {
      const e = await as(token).then(
        (x) => x.close().then(() => undefined),
        (err: unknown) => err as RingkvError,
      );
      t.equal(e?.code, 'UNAUTHENTICATED', `${name}: connect is refused`);
    }
    const anonymous = await failure(connect({ seeds: c.addresses, tls }).then((x) => x.close()));
    t.equal(anonymous?.code, 'UNAUTHENTICATED', 'no token: connect is refused');
  });

  await t.test("a reader's read repair: confirmed with the replicas, stored as they hold it", async (t) => {
    const key = 'app:repair';
    const ts1 = Date.now() * 1000;
    const kvAdmin = await connect({ seeds: c.addresses, valueEncoding: 'utf8', tls: { ca: certs.ca }, auth: { token: s.adminToken } });
    t.teardown(() => kvAdmin.close());
    await kvAdmin.put(key, 'v1', { consistency: 'all' });
    // A newer version on one replica only (as a write that reached one replica would leave).
    const replicas = kvAdmin.replicasOf(key);
    const ts2 = Math.max(ts1, Date.now() * 1000) + 1000;
    await c.call<BatchResponse>(replicas[0]!, Routes.batch, { v: PROTOCOL_VERSION, ops: [{ t: OpType.Merge, key: Buffer.from(key), obj: lww('v2', ts2, 'admin') }] });
    const reader = await connect({ seeds: c.addresses, valueEncoding: 'utf8', tls: { ca: certs.ca }, auth: { token: bob }, readFanout: 'all' });
    t.teardown(() => reader.close());
    t.equal((await reader.get(key, { consistency: 'all' }))?.value, 'v2', 'bob reads the newest version at all (the write-back to the stale replicas succeeded)');
    t.equal(reader.counters.readRepairFailures, 0, 'no repair was refused');
    const held = async () =>
      Promise.all(
        replicas.map(async (id) => {
          const r = await c.call<BatchResponse>(id, Routes.batch, { v: PROTOCOL_VERSION, ops: [{ t: OpType.Get, key: Buffer.from(key) }] });
          return (r.results[0] as { obj: StoredObject }).obj.siblings[0]!.value.toString();
        }),
      );
    t.same(await held(), ['v2', 'v2', 'v2'], 'every replica holds v2');
    // A "repair" with a version no replica holds is a write: refused.
    const forge = async (obj: StoredObject, id: string) => {
      const { body, headers } = msgpackBody({ v: PROTOCOL_VERSION, ops: [{ t: OpType.Merge, key: Buffer.from(key), obj }] });
      const a = await s.request(id, { method: 'POST', path: Routes.batch, token: bob, body, headers });
      return decodeMessage<BatchResponse>(a.body).results[0]!;
    };
    const newer = await forge(lww('forged', ts2 + 1_000_000, 'bob'), replicas[1]!);
    t.same([newer.ok, !newer.ok && newer.code], [false, 'PERMISSION_DENIED'], 'a newer forged version is refused');
    // The same stamp and writer as the real version, another value: confirmed (it adds no
    // newer version), and what is stored is what the replicas hold, never the caller's bytes.
    const twin = await forge(lww('a forged twin', ts2, 'admin'), replicas[2]!);
    t.equal(twin.ok, true, 'a version with the stamp of one the replicas hold passes the check');
    t.same(await held(), ['v2', 'v2', 'v2'], 'and the replicas still hold v2');
    t.equal((await kvAdmin.get(key, { consistency: 'all' }))?.value, 'v2');
    // The same twin sent to a replica that holds no copy of the key: the node stores what the
    // other replicas hold (v2), not the bytes it was sent.
    const fresh = 'app:repair-fresh';
    const [r0, r1, r2] = kvAdmin.replicasOf(fresh) as [string, string, string];
    const ts3 = Date.now() * 1000;
    for (const id of [r0, r1]) {
      await c.call<BatchResponse>(id, Routes.batch, { v: PROTOCOL_VERSION, ops: [{ t: OpType.Merge, key: Buffer.from(fresh), obj: lww('v3', ts3, 'admin') }] });
    }
    const { body, headers } = msgpackBody({ v: PROTOCOL_VERSION, ops: [{ t: OpType.Merge, key: Buffer.from(fresh), obj: lww('a forged twin', ts3, 'admin') }] });
    const onEmpty = decodeMessage<BatchResponse>((await s.request(r2, { method: 'POST', path: Routes.batch, token: bob, body, headers })).body).results[0]!;
    t.equal(onEmpty.ok, true, 'a repair of a replica without the key is confirmed by the others');
    const stored = await c.call<BatchResponse>(r2, Routes.batch, { v: PROTOCOL_VERSION, ops: [{ t: OpType.Get, key: Buffer.from(fresh) }] });
    t.equal((stored.results[0] as { obj: StoredObject | null }).obj?.siblings[0]?.value.toString(), 'v3', 'and it stores what they hold, not the forged bytes');
  });

  await t.test('a public route without a permission rule is closed to non-admins', async (t) => {
    const other = await s.request('n1', { path: '/api/v1/no-rule-yet/x', token: alice });
    t.same([other.status, codeOf(other)], [403, 'PERMISSION_DENIED'], 'alice: refused');
    const asAdmin = await s.request('n1', { path: '/api/v1/no-rule-yet/x', token: s.adminToken });
    t.equal(asAdmin.status, 404, 'admin: passes authorization (and finds no route)');
  });

  await t.test('the CLI: auth init with a node certificate, users and roles with an admin token', async (t) => {
    const n2 = certs.node('n2');
    const run = (args: string[], env: Record<string, string> = {}) =>
      new Promise<{ code: number; out: string; err: string }>((resolve) => {
        const p = spawn(process.execPath, [CLI, ...args, '--seeds', c.node('n2').address], {
          env: { ...process.env, RINGKV_TLS_CA: certs.caFile, RINGKV_TLS_CERT: '', RINGKV_TLS_KEY: '', RINGKV_TOKEN: '', ...env },
        });
        let out = '';
        let err = '';
        p.stdout.on('data', (d: Buffer) => (out += d.toString()));
        p.stderr.on('data', (d: Buffer) => (err += d.toString()));
        p.on('exit', (code) => resolve({ code: code ?? -1, out, err }));
      });
    const init = await run(['auth', 'init', '--user', 'ops'], { RINGKV_TLS_CERT: n2.certFile, RINGKV_TLS_KEY: n2.keyFile });
    t.equal(init.code, 0, `auth init with n2's certificate: ${init.err}`);
    const opsToken = init.out.trim();
    t.match(opsToken, /^rkv_[A-Za-z0-9_-]{43}$/, 'prints the token alone on stdout');
    const noCert = await run(['auth', 'init', '--user', 'ops2']);
    t.equal(noCert.code, 3, 'auth init without a node certificate or admin token is refused');
    t.match(noCert.err, /UNAUTHENTICATED/);
    const tokenFile = path.join(c.dir, 'ops.token');
    fs.writeFileSync(tokenFile, `${opsToken}\n`, { mode: 0o600 });
    const asOps = (args: string[]) => run([...args, '--token-file', tokenFile]);
    t.equal((await asOps(['role', 'add', 'cli-role'])).code, 0);
    const empty = await asOps(['role', 'grant', 'cli-role', '--prefix', '', '--perm', 'read']);
    t.equal(empty.code, 2, 'an empty --prefix is refused (write --all for every key)');
    t.match(empty.err, /--all/);
    t.equal((await asOps(['role', 'grant', 'cli-role', '--prefix', 'cli:', '--perm', 'readwrite'])).code, 0);
    t.equal((await asOps(['role', 'grant', 'cli-role', '--prefix', 'cli:', '--perm', 'admin'])).code, 2, 'admin on a prefix is refused');
    const add = await asOps(['user', 'add', 'carol', '--role', 'cli-role']);
    t.equal(add.code, 0, add.err);
    const carol = add.out.trim();
    t.match(add.err, /taken by n1, n2, n3/, 'the change reached every node before the command returned');
    const put = await run(['put', 'cli:1', 'from carol'], { RINGKV_TOKEN: carol });
    t.equal(put.code, 0, `carol writes cli:1: ${put.err}`);
    const get = await run(['get', 'cli:1'], { RINGKV_TOKEN: carol });
    t.equal(get.out, 'from carol');
    const outside = await run(['put', 'app:1', 'x'], { RINGKV_TOKEN: carol });
    t.equal(outside.code, 3, 'outside her prefix');
    t.match(outside.err, /PERMISSION_DENIED/);
    const list = await asOps(['user', 'list', '--json']);
    t.ok((JSON.parse(list.out) as { users: { name: string }[] }).users.some((u) => u.name === 'carol'), 'user list names carol');
    t.notMatch(list.out, new RegExp(carol), 'and never a token');
    const rotate = await asOps(['user', 'token', 'carol']);
    t.equal(rotate.code, 0);
    t.equal((await run(['get', 'cli:1'], { RINGKV_TOKEN: carol })).code, 3, 'the old token is refused after a rotation');
    t.equal((await run(['get', 'cli:1'], { RINGKV_TOKEN: rotate.out.trim() })).code, 0, 'the new one works');
    const who = await run(['auth', 'whoami', '--json'], { RINGKV_TOKEN: rotate.out.trim() });
    t.equal((JSON.parse(who.out) as { user: string }).user, 'carol');
    const revoke = await asOps(['role', 'revoke', 'cli-role', '--prefix', 'cli:', '--perm', 'write']);
    t.equal(revoke.code, 0);
    t.equal((await run(['put', 'cli:1', 'x'], { RINGKV_TOKEN: rotate.out.trim() })).code, 3, 'write revoked');
    t.equal((await asOps(['user', 'remove', 'carol'])).code, 0);
    t.equal((await asOps(['user', 'remove', 'carol'])).code, 1, 'removing a user that is not there: exit 1 (not found)');
  });
});
