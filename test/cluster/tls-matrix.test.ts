// Transport security against real server processes on 127.0.0.1: the connection matrix of
// a node in `required` mode (which identity each class of endpoint takes: node, client, a
// certificate of another CA, an expired one, none, plain HTTP), the public API and the SDK
// over TLS, the SDK's check that a server holds a node certificate, a `transitional` node
// taking plain and TLS on one port, and the metrics of connections and handshake failures.

import { spawn } from 'node:child_process';
import net from 'node:net';
import https from 'node:https';
import t from 'tap';
import { connect } from '../../sdk/client.js';
import { RingkvError } from '../../sdk/errors.js';
import { HttpTransport } from '../../sdk/transport.js';
import { decodeMessage, encodeMessage, PROTOCOL_VERSION, Routes } from '../../sdk/wire/protocol.js';
import { httpsRequest, makeTestCerts, skipWithoutOpenssl, tlsArgs } from '../helpers/certs.js';
import type { Answer, TestCerts } from '../helpers/certs.js';
import { metricSum, TestCluster } from '../helpers/cluster.js';
import { codeOf } from '../helpers/secure-cluster.js';
import { opensslPath } from '../../storage-server/tls/cert-authority.js';

t.setTimeout(120_000);

const skip = skipWithoutOpenssl();

function plainRequest(address: string, path: string): Promise<Answer> {
  const [host, port] = address.split(':');
  return new Promise((resolve, reject) => {
    const sock = net.connect(Number(port), host!, () => sock.end(`GET ${path} HTTP/1.1\r\nhost: ${address}\r\nconnection: close\r\n\r\n`));
    const chunks: Buffer[] = [];
    sock.on('data', (c: Buffer) => chunks.push(c));
    sock.on('error', reject);
    sock.on('close', () => {
      const text = Buffer.concat(chunks).toString('latin1');
      const head = text.slice(0, text.indexOf('\r\n\r\n'));
      resolve({ status: Number(/^HTTP\/1\.1 (\d+)/.exec(head)?.[1] ?? 0), headers: { raw: head }, body: Buffer.from(text.slice(head.length + 4), 'latin1') });
    });
  });
}

t.test('TLS: connection matrix, public API, SDK, transitional port, metrics', { skip }, async (t) => {
  const certs: TestCerts = makeTestCerts(['n1', 'n2'], ['app']);
  t.teardown(() => certs.cleanup());
  // n1 requires TLS, n2 is transitional (a cluster half way through its move): they talk
  // over mutual TLS, which their convergence below shows.
  const c = await TestCluster.start(t, {
    nodes: 2,
    args: ['--replication', '2'],
    nodeArgs: ({ id }) => tlsArgs(certs, id, id === 'n1' ? 'required' : 'transitional'),
    tls: { ca: certs.ca, ...certs.node('n2') },
  });
  const n1 = c.node('n1').address;
  const n2 = c.node('n2').address;
  const views = await Promise.all([c.view('n1'), c.view('n2')]);
  t.same(
    views.map((v) => v.members.map((m) => `${m.id}:${m.state}:${m.tls ?? 'off'}`).sort()),
    [['n1:up:required', 'n2:up:transitional'], ['n1:up:required', 'n2:up:transitional']],
    'both nodes see each other up, with what each accepts',
  );

  await t.test('the endpoint matrix of a node that requires TLS', async (t) => {
    const ping = encodeMessage({ v: PROTOCOL_VERSION, from: 'n2', incarnation: 1 });
    const msgpack = { 'content-type': 'application/msgpack', accept: 'application/msgpack' };
    const routes: { cls: string; method: string; path: string; body?: Buffer }[] = [
      { cls: 'node', method: 'POST', path: Routes.gossip, body: encodeMessage({ v: PROTOCOL_VERSION, from: 'n2', members: [] }) },
      { cls: 'node', method: 'POST', path: Routes.ping, body: ping },
      { cls: 'node', method: 'POST', path: Routes.pingReq, body: encodeMessage({ v: PROTOCOL_VERSION, from: 'n2', target: 'n2', address: n2, timeoutMs: 500 }) },
      { cls: 'node', method: 'POST', path: Routes.hints, body: encodeMessage({ v: PROTOCOL_VERSION }) },
      { cls: 'node', method: 'POST', path: Routes.merkle, body: encodeMessage({ v: PROTOCOL_VERSION, spans: [[0, 1000]] }) },
      { cls: 'node', method: 'POST', path: Routes.merkleKeys, body: encodeMessage({ v: PROTOCOL_VERSION, spans: [[0, 1000]], limit: 10 }) },
      { cls: 'node', method: 'POST', path: Routes.stream, body: encodeMessage({ v: PROTOCOL_VERSION, spans: [[0, 1000]], limit: 10 }) },
      { cls: 'node', method: 'POST', path: Routes.admin, body: encodeMessage({ v: PROTOCOL_VERSION, action: 'no-such-action' }) },
      { cls: 'node', method: 'POST', path: Routes.ringFence, body: encodeMessage({ v: PROTOCOL_VERSION }) },
      { cls: 'data', method: 'POST', path: Routes.batch, body: encodeMessage({ v: PROTOCOL_VERSION, ops: [] }) },
      { cls: 'data', method: 'GET', path: Routes.members },
      { cls: 'data', method: 'GET', path: Routes.status },
      { cls: 'data', method: 'POST', path: Routes.scan, body: encodeMessage({ v: PROTOCOL_VERSION, spans: [[0, 1000]], limit: 10 }) },
      { cls: 'data', method: 'GET', path: Routes.hotKeys },
      { cls: 'public', method: 'GET', path: '/api/v1/kv/matrix-missing' },
      { cls: 'public', method: 'GET', path: '/api/v1/dt/matrix-missing' },
      { cls: 'open', method: 'GET', path: '/health' },
    ];
    const identities: { name: string; identity?: { cert: Buffer; key: Buffer }; accepts: Set<string>; refusal?: [number, string] }[] = [
      { name: 'a node certificate', identity: certs.node('n2'), accepts: new Set(['node', 'data', 'public', 'open']) },
      { name: 'a client certificate of the same CA', identity: certs.client('app'), accepts: new Set(['data', 'public', 'open']), refusal: [403, 'PERMISSION_DENIED'] },
      { name: 'no certificate', accepts: new Set(['public', 'open']), refusal: [401, 'UNAUTHENTICATED'] },
      { name: 'a node certificate of another CA', identity: certs.otherCaNode, accepts: new Set(), refusal: [401, 'UNAUTHENTICATED'] },
      { name: 'a client certificate of another CA', identity: certs.otherCaClient, accepts: new Set(), refusal: [401, 'UNAUTHENTICATED'] },
      { name: 'an expired node certificate of our CA', identity: certs.expiredNode, accepts: new Set(), refusal: [401, 'UNAUTHENTICATED'] },
    ];
    for (const who of identities) {
      for (const r of routes) {
        const a = await httpsRequest(n1, { method: r.method, path: r.path, headers: msgpack, ca: certs.ca, body: r.body, ...(who.identity ? { identity: who.identity } : {}) });
        if (who.accepts.has(r.cls)) {
          t.notOk([401, 403, 426].includes(a.status), `${who.name} is accepted on ${r.path} (${r.cls}): ${a.status} ${codeOf(a) ?? ''}`);
        } else {
          t.same([a.status, codeOf(a)], who.refusal, `${who.name} is refused on ${r.path} (${r.cls})`);
        }
      }
    }
    // Accepted means served: a node's ping is answered, a client reads the members.
    const pong = await httpsRequest(n1, { method: 'POST', path: Routes.ping, headers: msgpack, body: ping, ca: certs.ca, identity: certs.node('n2') });
    t.equal(pong.status, 200, 'a node certificate gets its ping answered');
    t.equal(decodeMessage<{ ok: boolean }>(pong.body).ok, true);
    const members = await httpsRequest(n1, { path: Routes.members, headers: { accept: 'application/json' }, ca: certs.ca, identity: certs.client('app') });
    t.equal((JSON.parse(members.body.toString()) as { members: unknown[] }).members.length, 2, 'a client certificate reads the members');
    const expired = await httpsRequest(n1, { path: Routes.members, ca: certs.ca, identity: certs.expiredNode });
    t.match(decodeMessage<{ message: string }>(expired.body).message, /CERT_HAS_EXPIRED/, 'the refusal says why');
    // Plain HTTP to a node that requires TLS: 426 on every route, and the connection closed.
    for (const path of [Routes.gossip, Routes.members, '/api/v1/kv/x', '/health']) {
      const a = await plainRequest(n1, path);
      t.same([a.status, codeOf(a)], [426, 'TLS_REQUIRED'], `plain HTTP to ${path} is refused`);
    }
  });

  await t.test('the public API over TLS, with and without a client certificate', async (t) => {
    const put = await httpsRequest(n1, {
      method: 'PUT',
      path: '/api/v1/kv/greeting',
      headers: { 'content-type': 'application/json', consistency: 'strong' },
      body: JSON.stringify({ value: 'hello over TLS' }),
      ca: certs.ca,
    });
    t.ok(put.status >= 200 && put.status < 300, `a PUT without a client certificate: ${put.status} ${put.body.toString()}`);
    const anon = await httpsRequest(n1, { path: '/api/v1/kv/greeting', ca: certs.ca });
    t.equal((JSON.parse(anon.body.toString()) as { value: string }).value, 'hello over TLS', 'a GET without a client certificate');
    const withCert = await httpsRequest(n1, { path: '/api/v1/kv/greeting', ca: certs.ca, identity: certs.client('app') });
    t.equal((JSON.parse(withCert.body.toString()) as { value: string }).value, 'hello over TLS', 'a GET with a client certificate');
  });

  await t.test('the SDK over TLS', async (t) => {
    const kv = await connect({ seeds: [n1], valueEncoding: 'utf8', tls: { ca: certs.ca, ...certs.client('app') } });
    t.teardown(() => kv.close());
    await kv.put('sdk-key', 'sdk value', { consistency: 'all' });
    t.equal((await kv.get('sdk-key', { consistency: 'all' }))?.value, 'sdk value', 'a TLS client writes and reads at all (both nodes over TLS)');

    // The near cache's invalidation streams go over TLS too (a stream in plain HTTP would be refused).
    const cached = await connect({ seeds: [n1], valueEncoding: 'utf8', tls: { ca: certs.ca, ...certs.client('app') }, cache: { ttlMs: 60_000 } });
    t.teardown(() => cached.close());
    let deadline = Date.now() + 20_000;
    // n1 takes TLS only: its stream is live only if it went over TLS. A node's stream opens
    // with the first read it serves; reads of new keys (misses) go to a random replica.
    for (let i = 0; Date.now() < deadline && (cached.nearCacheStats?.liveStreams.length ?? 0) < 2; i++) {
      await cached.get(`sdk-miss-${i}`, { consistency: 'eventual' });
      await new Promise((r) => setTimeout(r, 50));
    }
    t.same(cached.nearCacheStats?.liveStreams, ['n1', 'n2'], `the invalidation streams to both nodes are live (n1 requires TLS); subscriber ${JSON.stringify(cached['subscriber']?.counters)}, avoided ${cached.avoidedNodes.join(',')}`);
    // Read the key until a read of it is served from the cache.
    let hit = false;
    while (Date.now() < deadline && !hit) {
      const hits = cached.nearCacheStats!.hits;
      await cached.get('sdk-key', { consistency: 'eventual' });
      hit = cached.nearCacheStats!.hits > hits;
    }
    t.ok(hit, 'the near cache serves the key');
    deadline = Date.now() + 20_000;
    await kv.put('sdk-key', 'sdk value 2', { consistency: 'all' });
    let seen: string | undefined;
    while (Date.now() < deadline && (seen = (await cached.get('sdk-key', { consistency: 'eventual' }))?.value) !== 'sdk value 2') await new Promise((r) => setTimeout(r, 20));
    t.equal(seen, 'sdk value 2', 'a change is invalidated over the TLS stream (well within the 60 s ttl)');
    t.ok((cached.nearCacheStats?.invalidations ?? 0) >= 1, 'counted as an invalidation');

    const plain = await connect({ seeds: [n1] }).then(
      () => undefined,
      (e: unknown) => e,
    );
    t.equal((plain as RingkvError).code, 'TLS_REQUIRED', 'a client without tls is told the node requires TLS');
    const anonymous = await connect({ seeds: [n1], tls: { ca: certs.ca } }).then(
      () => undefined,
      (e: unknown) => e,
    );
    t.equal((anonymous as RingkvError).code, 'UNAUTHENTICATED', 'a client without a certificate may not read the members');
    const wrongCa = await connect({ seeds: [n1], tls: { ca: certs.otherCa, ...certs.client('app') }, timeoutMs: 1000 }).then(
      () => undefined,
      (e: unknown) => e,
    );
    t.equal((wrongCa as RingkvError).code, 'NODE_UNAVAILABLE', 'a client that trusts another CA does not talk to the node');

    // A sender that may speak plain (a transitional node, an allowPlain client) asks a seed
    // it knows nothing of in plain HTTP; a node that requires TLS refuses, and it asks again over TLS.
    const moving = new HttpTransport({ tls: { ca: certs.ca, ...certs.client('app'), policy: 'transitional' } });
    t.teardown(() => moving.close());
    t.equal(moving.schemeFor(n1), 'http', 'an unknown address gets plain HTTP first');
    const view = await moving.call<{ self: string }>(n1, Routes.members, undefined, { timeoutMs: 2000 });
    t.equal(view.self, 'n1', 'and the request is served over TLS after TLS_REQUIRED');
  });

  await t.test('the SDK refuses a server whose certificate names no node', async (t) => {
    // A server with a certificate of the right CA, fit to serve, but not a node's.
    const impostor = https.createServer({ ...certs.serverWithoutIdentity }, (_req, res) => res.end());
    await new Promise<void>((r) => impostor.listen(0, '127.0.0.1', r));
    t.teardown(() => new Promise<void>((r) => impostor.close(() => r())));
    const address = `127.0.0.1:${(impostor.address() as net.AddressInfo).port}`;
    const transport = new HttpTransport({ tls: { ca: certs.ca, ...certs.client('app'), policy: 'required' } });
    t.teardown(() => transport.close());
    const err = await transport.call(address, Routes.members, undefined, { timeoutMs: 2000 }).then(
      () => undefined,
      (e: unknown) => e as RingkvError,
    );
    t.equal(err?.code, 'NODE_UNAVAILABLE');
    t.match(err?.message, /did not present a ringkv node certificate/);
  });

  await t.test('a transitional node takes plain and TLS on one port', async (t) => {
    const plain = await plainRequest(n2, '/health');
    t.equal(plain.status, 200, 'plain HTTP');
    const secure = await httpsRequest(n2, { path: '/health', ca: certs.ca });
    t.equal(secure.status, 200, 'TLS');
    // A plain request that trickles in byte by byte still reaches HTTP whole.
    const [host, port] = n2.split(':');
    const slow = await new Promise<string>((resolve, reject) => {
      const sock = net.connect(Number(port), host!);
      const req = `GET /health HTTP/1.1\r\nhost: ${n2}\r\nconnection: close\r\n\r\n`;
      let i = 0;
      const timer = setInterval(() => {
        if (i < req.length) sock.write(req[i++]!);
        else clearInterval(timer);
      }, 2);
      let out = '';
      sock.on('data', (d: Buffer) => (out += d.toString()));
      sock.on('error', reject);
      sock.on('close', () => resolve(out));
    });
    t.match(slow, /^HTTP\/1\.1 200/, 'a request sent one byte at a time is served');
    // A TLS client that does not trust the node ends the handshake with an alert (OpenSSL's
    // s_client, as curl would): counted by its reason.
    await new Promise<void>((resolve) => {
      const p = spawn(opensslPath(), ['s_client', '-connect', n2, '-CAfile', certs.otherCaFile, '-verify_return_error'], { stdio: ['pipe', 'ignore', 'ignore'] });
      p.stdin.end();
      p.on('exit', () => resolve());
      setTimeout(() => p.kill('SIGKILL'), 10_000).unref();
    });
  });

  await t.test('metrics: connections by transport, handshake failures by reason', async (t) => {
    const m1 = await c.metrics('n1');
    t.ok(metricSum(m1, 'ringkv_connections_accepted_total', { transport: 'tls' }) > 10, 'n1 took TLS connections');
    t.ok(metricSum(m1, 'ringkv_tls_handshake_failures_total', { reason: 'plain_http' }) >= 4, 'plain HTTP to a required node');
    t.ok(metricSum(m1, 'ringkv_tls_handshake_failures_total', { reason: 'CERT_HAS_EXPIRED' }) >= 1, 'an expired certificate');
    const otherCa =
      metricSum(m1, 'ringkv_tls_handshake_failures_total', { reason: 'UNABLE_TO_VERIFY_LEAF_SIGNATURE' }) +
      metricSum(m1, 'ringkv_tls_handshake_failures_total', { reason: 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY' });
    t.ok(otherCa >= 1, 'a certificate of another CA');
    const m2 = await c.metrics('n2');
    t.ok(metricSum(m2, 'ringkv_connections_accepted_total', { transport: 'plain' }) >= 2, 'n2 took plain connections');
    t.ok(metricSum(m2, 'ringkv_connections_accepted_total', { transport: 'tls' }) >= 1, 'and TLS ones');
    t.ok(metricSum(m2, 'ringkv_tls_handshake_failures_total', { reason: 'ERR_SSL_TLSV1_ALERT_UNKNOWN_CA' }) >= 1, 'a client that did not trust the node');
    t.match(m1, /ringkv_tls_cert_expiry_seconds\{node="n1"\} \d+/, "the certificate's expiry");
  });
});
