// The internal protocol hardened, with auth off, against real server processes — each
// attack of one unauthenticated request refused: a cross-site "simple" POST to an internal
// endpoint, a cross-origin browser write through the public API, hints for made-up nodes,
// and Merkle requests sized to freeze a node (which stays responsive throughout).

import http from 'node:http';
import t from 'tap';
import { decodeMessage, encodeMessage, OpType, PROTOCOL_VERSION, Routes } from '../../sdk/wire/protocol.js';
import type { BatchResponse } from '../../sdk/wire/protocol.js';
import { TestCluster } from '../helpers/cluster.js';

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
