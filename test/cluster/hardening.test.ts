// The attacks of the security issue against real server processes, each refused. With auth
// off (the hardening that holds regardless): a cross-site "simple" POST to an internal
// endpoint, a cross-origin browser write through the public API, hints for made-up nodes,
// forged gossip, ping-req to any address, and Merkle requests sized to freeze a node (which
// stays responsive throughout). With TLS required and auth on, by an outsider (no
// certificate, a client certificate of the cluster's CA, no token, a made-up token) and by
// an insider with a read-only token: reading every key through the stream endpoint,
// writing through the batch endpoint, hints, operator actions, gossip, ping-req, Merkle
// work, and cross-site requests.

import http from 'node:http';
import t from 'tap';
import { connect } from '../../sdk/client.js';
import { decodeMessage, encodeMessage, OpType, PROTOCOL_VERSION, Routes } from '../../sdk/wire/protocol.js';
import type { BatchResponse } from '../../sdk/wire/protocol.js';
import { TestCluster } from '../helpers/cluster.js';
import { skipWithoutOpenssl } from '../helpers/certs.js';
import { codeOf, msgpackBody, startSecureCluster } from '../helpers/secure-cluster.js';

t.setTimeout(180_000);

function request(address: string, method: string, path: string, headers: Record<string, string>, body?: Buffer | string): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: Buffer }> {
  const [host, port] = address.split(':');
  return new Promise((resolve, reject) => {
    const req = http.request({ host, port: Number(port), method, path, headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

const lww = (value: string) => ({
  mode: 'lww',
  siblings: [{ value: Buffer.from(value), tombstone: false, expiresAtMs: 0, contentType: '', flags: 0, ts: Date.now() * 1000, writer: 'evil' }],
  context: {},
});

t.test('hardening', async (t) => {
  const c = await TestCluster.start(t, { nodes: 3, env: { RINGKV_CORS_ALLOWED_ORIGINS: 'https://app.example.com' } });
  const a = c.nodes[0]!.address;
  const kv = await c.client<string>({ valueEncoding: 'utf8' });

  await t.test('a cross-site "simple" POST to an internal endpoint is refused and does nothing', async (t) => {
    const body = encodeMessage({ v: PROTOCOL_VERSION, ops: [{ t: OpType.Merge, key: Buffer.from('csrf'), obj: lww('pwned') }] });
    for (const ct of ['text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', '']) {
      const headers: Record<string, string> = { origin: 'https://evil.example' };
      if (ct) headers['content-type'] = ct;
      const r = await request(a, 'POST', Routes.batch, headers, body);
      t.equal(r.status, 415, `content-type ${ct || '(none)'}: 415`);
      t.equal(decodeMessage<{ code: string }>(r.body).code, 'UNSUPPORTED_MEDIA_TYPE');
    }
    const admin = await request(a, 'POST', Routes.admin, { 'content-type': 'text/plain' }, encodeMessage({ v: PROTOCOL_VERSION, action: 'drop-hints' }));
    t.equal(admin.status, 415, 'admin actions too');
    t.equal(await kv.get('csrf', { consistency: 'all' }), undefined, 'nothing was written');
  });

  await t.test('cross-origin browser writes through the public API need an allowed origin', async (t) => {
    const evil = await request(a, 'POST', '/api/v1/kv/xsite', { origin: 'https://evil.example', 'content-type': 'text/plain' }, 'pwned');
    t.equal(evil.status, 403);
    t.equal((JSON.parse(evil.body.toString()) as { code: string }).code, 'PERMISSION_DENIED');
    const del = await request(a, 'DELETE', '/api/v1/kv/xsite', { origin: 'https://evil.example' });
    t.equal(del.status, 403, 'deletes too');
    t.equal(await kv.get('xsite', { consistency: 'all' }), undefined, 'nothing was written');
    const preflightEvil = await request(a, 'OPTIONS', '/api/v1/kv/xsite', { origin: 'https://evil.example', 'access-control-request-method': 'PUT' });
    t.equal(preflightEvil.status, 403, 'no preflight for a foreign origin');
    const preflight = await request(a, 'OPTIONS', '/api/v1/kv/xsite', { origin: 'https://app.example.com', 'access-control-request-method': 'PUT' });
    t.equal(preflight.status, 204, 'the configured origin passes its preflight');
    t.equal(preflight.headers['access-control-allow-origin'], 'https://app.example.com');
    const ok = await request(a, 'PUT', '/api/v1/kv/xsite', { origin: 'https://app.example.com', 'content-type': 'application/json' }, '{"value":"hello"}');
    t.equal(ok.status, 201, 'and may write');
    t.equal(ok.headers['access-control-allow-origin'], 'https://app.example.com');
    const internalPreflight = await request(a, 'OPTIONS', Routes.batch, { origin: 'https://app.example.com', 'access-control-request-method': 'POST' });
    t.equal(internalPreflight.status, 403, 'never for internal endpoints');
    const plain = await request(a, 'PUT', '/api/v1/kv/xsite2', { 'content-type': 'application/json' }, '{"value":"v"}');
    t.equal(plain.status, 201, 'requests without an Origin (curl, SDKs) are not affected');
  });

  await t.test('hints for a node that is not a member are refused', async (t) => {
    const res = await c.call<BatchResponse>('n1', Routes.batch, {
      v: PROTOCOL_VERSION,
      ops: [{ t: OpType.Merge, key: Buffer.from('h'), obj: lww('x'), hintFor: 'made-up-node' }],
    });
    const r = res.results[0]!;
    t.equal(r.ok, false);
    if (!r.ok) t.equal(r.code, 'INVALID_ARGUMENT', r.msg);
    const st = await c.call<{ hintsPending: number }>('n1', Routes.status, undefined);
    t.equal(st.hintsPending, 0, 'nothing was stored');
  });

  await t.test('forged gossip: "n3 left", "n3 down at 2^53", a member of weight 1e6 — refused or refuted at once', async (t) => {
    const view = await c.view('n1');
    const n3 = view.members.find((m) => m.id === 'n3')!;
    const gossip = (members: unknown[]) => c.call<unknown>('n1', Routes.gossip, { v: PROTOCOL_VERSION, from: 'evil', members });
    await gossip([{ ...n3, state: 'down', incarnation: 2 ** 53 }, { ...n3, state: 'left', incarnation: 2 ** 40, ringVersion: 2 ** 40 }]);
    t.equal((await c.view('n1')).members.find((m) => m.id === 'n3')?.state, 'up', 'counters n3 could not have reached are ignored');
    const started = Date.now();
    await gossip([{ ...n3, state: 'left', incarnation: n3.incarnation + 1000, ringVersion: (n3.ringVersion ?? 0) + 500 }]);
    let seen: string[] = [];
    while (Date.now() - started < 15_000) {
      seen = await Promise.all(['n1', 'n2', 'n3'].map(async (id) => (await c.view(id)).members.find((m) => m.id === 'n3')?.state ?? '?'));
      if (seen.every((x) => x === 'up')) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    t.same(seen, ['up', 'up', 'up'], `n3 refuted "left" everywhere within ${Date.now() - started} ms`);
    const writer = await c.client<string>({ valueEncoding: 'utf8' });
    await writer.put('after-forgery', 'ok', { consistency: 'strong' });
    t.equal((await writer.get('after-forgery', { consistency: 'all' }))?.value, 'ok', 'and strong writes work');
    const before = Date.now();
    await gossip([{ id: 'heavy', address: '127.0.0.1:1', weight: 1e6, state: 'up', incarnation: 1 }]);
    t.notOk((await c.view('n1')).members.some((m) => m.id === 'heavy'), 'a member of weight 1e6 is not taken');
    t.ok(Date.now() - before < 2000, 'and the node answers at once');
  });

  await t.test('ping-req only to current members at their own address', async (t) => {
    // A listener that would see the node's request if it made one.
    const net = await import('node:net');
    let connections = 0;
    const trap = net.createServer((s) => {
      connections++;
      s.destroy();
    });
    await new Promise<void>((r) => trap.listen(0, '127.0.0.1', () => r()));
    const port = (trap.address() as { port: number }).port;
    for (const msg of [
      { target: 'nobody', address: `127.0.0.1:${port}` },
      { target: 'n2', address: `127.0.0.1:${port}` },
    ]) {
      const err = await c.call<unknown>('n1', Routes.pingReq, { v: PROTOCOL_VERSION, from: 'evil', timeoutMs: 500, ...msg }).catch((e: unknown) => e);
      t.equal((err as { code?: string }).code, 'INVALID_ARGUMENT', `refused: ${JSON.stringify(msg)}`);
    }
    await new Promise((r) => setTimeout(r, 300));
    trap.close();
    t.equal(connections, 0, 'the node made no request to the address named');
  });

  await t.test('Merkle requests sized to freeze a node are refused or bounded; the node keeps answering', async (t) => {
    // Preloading is not what is tested: generous timeouts, so a loaded machine does not fail it.
    for (let i = 0; i < 3000; i += 500) {
      await Promise.all(Array.from({ length: 500 }, (_, j) => kv.put(`mk-${i + j}`, 'x'.repeat(50), { consistency: 'all', timeoutMs: 20_000 })));
    }
    const fullRing: [number, number] = [0, 0xffffffff];
    const tooMany = await c.call<unknown>('n1', Routes.merkle, { v: PROTOCOL_VERSION, spans: Array.from({ length: 20_000 }, () => fullRing) }).catch((e: unknown) => e);
    t.equal((tooMany as { code?: string }).code, 'MALFORMED_REQUEST', '20,000 full-ring spans: refused');
    const tooMuch = await c.call<unknown>('n1', Routes.merkle, { v: PROTOCOL_VERSION, spans: Array.from({ length: 4096 }, () => fullRing) }).catch((e: unknown) => e);
    t.equal((tooMuch as { code?: string }).code, 'MALFORMED_REQUEST', '4,096 full-ring spans (268 million leaves): refused');
    // The most work one merkle-keys request can ask for: 4,096 full-ring spans of every key.
    let worstHealthMs = 0;
    let stop = false;
    const probe = (async () => {
      while (!stop) {
        const started = Date.now();
        await request(a, 'GET', '/health', {});
        worstHealthMs = Math.max(worstHealthMs, Date.now() - started);
        await new Promise((r) => setTimeout(r, 20));
      }
    })();
    const started = Date.now();
    const keys = await c.call<{ keys: unknown[][]; truncated: boolean[] }>(
      'n1',
      Routes.merkleKeys,
      { v: PROTOCOL_VERSION, spans: Array.from({ length: 4096 }, () => fullRing), limit: 1_000_000 },
      60_000,
    );
    stop = true;
    await probe;
    const returned = keys.keys.reduce((n, l) => n + l.length, 0);
    t.ok(returned <= 250_000, `at most 250,000 entries come back (${returned}), the rest marked truncated`);
    t.ok(keys.truncated[4095], 'the last span is truncated');
    t.ok(Date.now() - started < 45_000, `answered in ${Date.now() - started} ms`);
    t.ok(worstHealthMs < 3000, `/health kept answering (worst ${worstHealthMs} ms)`);
  });
});

t.test('the same attacks against a cluster with TLS required and auth on', { skip: skipWithoutOpenssl() }, async (t) => {
  const s = await startSecureCluster(t, { nodes: 3 });
  const { c, certs } = s;
  await s.role('app-ro', { 'app:': ['read'] });
  await s.role('app-rw', { 'app:': ['read', 'write'] });
  const reader = await s.user('reader', ['app-ro']);
  const writer = await s.user('writer', ['app-rw']);
  const kv = await connect({ seeds: c.addresses, valueEncoding: 'utf8', tls: { ca: certs.ca }, auth: { token: s.adminToken } });
  t.teardown(() => kv.close());
  await kv.put('app:secret', 'the crown jewels', { consistency: 'all' });
  await kv.put('other:secret', 'more jewels', { consistency: 'all' });
  const client = certs.client('app');
  // Who attacks: [name, certificate, token].
  const outsiders: [string, { cert: Buffer; key: Buffer } | undefined, string | undefined][] = [
    ['no certificate, no token', undefined, undefined],
    ['a client certificate of the CA, no token', client, undefined],
    ['a made-up token', client, 'rkv_made-up-token-00000000000000000000000000000'],
    ['a read-only token', client, reader],
    ['a read-write token on app:', undefined, writer],
  ];
  const post = (id: string, path: string, msg: unknown, who: (typeof outsiders)[number]) => s.request(id, { method: 'POST', path, token: who[2], ...msgpackBody(msg), ...(who[1] ? { identity: who[1] } : {}) });
  const refused = (status: number) => status === 401 || status === 403;

  await t.test('reading every key through /internal/v1/stream', async (t) => {
    for (const who of outsiders) {
      const a = await post('n1', Routes.stream, { v: PROTOCOL_VERSION, spans: [[0, 0xffffffff]], limit: 10_000 }, who);
      t.ok(refused(a.status), `${who[0]}: ${a.status} ${codeOf(a)}`);
      t.notMatch(a.body.toString('latin1'), /jewels/, 'no value comes back');
    }
  });

  await t.test('writing through /internal/v1/batch without permission', async (t) => {
    const ts = (Date.now() + 60_000) * 1000;
    for (const who of outsiders) {
      const ops = [
        { t: OpType.Put, key: Buffer.from('app:secret'), obj: lww('pwned') },
        { t: OpType.Merge, key: Buffer.from('other:secret'), obj: { ...lww('pwned'), siblings: [{ ...lww('pwned').siblings[0], ts }] } },
      ];
      const a = await post('n2', Routes.batch, { v: PROTOCOL_VERSION, ops }, who);
      if (refused(a.status)) t.pass(`${who[0]}: the batch is refused (${a.status} ${codeOf(a)})`);
      else {
        const results = decodeMessage<BatchResponse>(a.body).results;
        const expected = who[2] === writer ? [true, false] : [false, false];
        t.same(results.map((r) => r.ok), expected, `${who[0]}: ${JSON.stringify(results.map((r) => (r.ok ? 'ok' : r.code)))}`);
        if (who[2] === writer) await kv.put('app:secret', 'the crown jewels', { consistency: 'all' });
      }
    }
    t.equal((await kv.get('other:secret', { consistency: 'all' }))?.value, 'more jewels', 'other:secret is untouched');
    t.equal((await kv.get('app:secret', { consistency: 'all' }))?.value, 'the crown jewels');
  });

  await t.test('hints for made-up nodes (and for real ones, without permission)', async (t) => {
    for (const who of outsiders) {
      for (const hintFor of ['made-up-node', 'n3']) {
        const a = await post('n1', Routes.batch, { v: PROTOCOL_VERSION, ops: [{ t: OpType.Merge, key: Buffer.from('other:h'), obj: lww('x'), hintFor }] }, who);
        if (refused(a.status)) t.pass(`${who[0]}, hint for ${hintFor}: ${a.status}`);
        else {
          const r = decodeMessage<BatchResponse>(a.body).results[0]!;
          t.same([r.ok, !r.ok && r.code], [false, 'PERMISSION_DENIED'], `${who[0]}, hint for ${hintFor}: refused per operation`);
        }
      }
    }
    const made = await post('n1', Routes.batch, { v: PROTOCOL_VERSION, ops: [{ t: OpType.Merge, key: Buffer.from('app:h'), obj: lww('x'), hintFor: 'made-up-node' }] }, outsiders[4]!);
    const r = decodeMessage<BatchResponse>(made.body).results[0]!;
    t.same([r.ok, !r.ok && r.code], [false, 'INVALID_ARGUMENT'], 'a permitted writer still cannot store hints for a made-up node');
    const st = await c.call<{ hintsPending: number }>('n1', Routes.status, undefined);
    t.equal(st.hintsPending, 0, 'no hint was stored');
  });

  await t.test('operator actions', async (t) => {
    for (const who of outsiders) {
      for (const action of ['drop-hints', 'repair', 'cleanup', 'rebuild-leaves', 'removenode', 'decommission']) {
        const a = await post('n1', Routes.admin, { v: PROTOCOL_VERSION, action, node: 'n3' }, who);
        t.ok(refused(a.status), `${who[0]}: ${action} -> ${a.status} ${codeOf(a)}`);
      }
      const u = await post('n1', Routes.authAdmin, { v: PROTOCOL_VERSION, action: 'user-add', name: 'intruder', roles: [] }, who);
      t.ok(refused(u.status), `${who[0]}: user-add -> ${u.status}`);
    }
    t.equal((await c.view('n1')).members.filter((m) => m.state === 'up').length, 3, 'every node is still up and in the ring');
  });

  await t.test('gossip, ping-req and Merkle work from a non-node', async (t) => {
    const view = await c.view('n1');
    const n3 = view.members.find((m) => m.id === 'n3')!;
    const attacks: [string, unknown][] = [
      [Routes.gossip, { v: PROTOCOL_VERSION, from: 'evil', members: [{ ...n3, state: 'left', incarnation: n3.incarnation + 1000, ringVersion: (n3.ringVersion ?? 0) + 10 }, { id: 'fake', address: '127.0.0.1:1', weight: 1, state: 'up', incarnation: 1 }] }],
      [Routes.pingReq, { v: PROTOCOL_VERSION, from: 'evil', target: 'n2', address: '127.0.0.1:9', timeoutMs: 500 }],
      [Routes.ringFence, { v: PROTOCOL_VERSION, from: 'evil', members: [] }],
      [Routes.authSync, { v: PROTOCOL_VERSION, from: 'evil', records: [] }],
      [Routes.merkleKeys, { v: PROTOCOL_VERSION, spans: Array.from({ length: 4096 }, () => [0, 0xffffffff]), limit: 1_000_000 }],
      [Routes.merkle, { v: PROTOCOL_VERSION, spans: Array.from({ length: 4096 }, () => [0, 0xffffffff]) }],
    ];
    for (const who of [...outsiders, ['an admin token without a node certificate', client, s.adminToken] as (typeof outsiders)[number]]) {
      for (const [path, msg] of attacks) {
        const a = await post('n1', path, msg, who);
        // Merkle hashes take an admin's token (repair --check): bounded, so refused as too large.
        const admitted = who[2] === s.adminToken && path === Routes.merkle;
        if (admitted) t.same([a.status, codeOf(a)], [400, 'MALFORMED_REQUEST'], `${who[0]}: ${path} is bounded`);
        else t.ok(refused(a.status), `${who[0]}: ${path} -> ${a.status} ${codeOf(a)}`);
      }
    }
    const after = await c.view('n1');
    t.equal(after.members.find((m) => m.id === 'n3')?.state, 'up', 'n3 is still up');
    t.notOk(after.members.some((m) => m.id === 'fake'), 'no fake member joined');
  });

  await t.test('cross-site requests: a page cannot send the token, and is refused', async (t) => {
    // A browser sends no Authorization header cross-site unless a preflight allowed it, and
    // bearer tokens are not cookies: a "simple" request arrives without one.
    const put = await s.request('n1', { method: 'POST', path: '/api/v1/kv/app:secret', headers: { origin: 'https://evil.example', 'content-type': 'text/plain' }, body: 'pwned' });
    t.same([put.status, codeOf(put)], [401, 'UNAUTHENTICATED'], 'a cross-site simple write: 401');
    const internal = await s.request('n1', { method: 'POST', path: Routes.batch, headers: { origin: 'https://evil.example', 'content-type': 'text/plain' }, body: encodeMessage({ v: PROTOCOL_VERSION, ops: [] }) });
    t.ok(refused(internal.status), `a cross-site simple POST to an internal endpoint: ${internal.status}`);
    const preflight = await s.request('n1', { method: 'OPTIONS', path: '/api/v1/kv/app:secret', headers: { origin: 'https://evil.example', 'access-control-request-method': 'PUT', 'access-control-request-headers': 'authorization' } });
    t.equal(preflight.status, 403, 'no preflight lets a foreign page send a token to the public API');
    // Even holding a token, a foreign page's write is refused for its origin.
    const withToken = await s.request('n1', { method: 'PUT', path: '/api/v1/kv/app:secret', token: writer, headers: { origin: 'https://evil.example', 'content-type': 'application/json' }, body: '{"value":"pwned"}' });
    t.same([withToken.status, codeOf(withToken)], [403, 'PERMISSION_DENIED'], 'a foreign origin with a token: 403');
    t.equal((await kv.get('app:secret', { consistency: 'all' }))?.value, 'the crown jewels', 'nothing was written');
  });
});
