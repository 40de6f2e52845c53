// The public HTTP API against real server processes: the happy paths (JSON and binary
// values, TTL, 201/200, 204, 404) and every bad-input case, each answered with a JSON
// error with a stable code, nothing written, and the server still serving afterwards.

import http from 'node:http';
import t from 'tap';
import { encodeMessage, PROTOCOL_VERSION, Routes } from '../../sdk/wire/protocol.js';
import { TestCluster } from '../helpers/cluster.js';

t.setTimeout(120_000);

interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
  json: () => Record<string, unknown>;
}

/** A raw HTTP request (so bodies can be streamed, chunked, or lie about their length). */
function request(
  address: string,
  method: string,
  path: string,
  opts: { headers?: Record<string, string>; body?: Buffer | string; chunks?: Buffer[] } = {},
): Promise<Reply> {
  const [host, port] = address.split(':');
  return new Promise((resolve, reject) => {
    let responded = false;
    const req = http.request({ host, port: Number(port), method, path, headers: opts.headers, agent: false }, (res) => {
      responded = true;
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const body = Buffer.concat(chunks);
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body, json: () => JSON.parse(body.toString('utf8')) as Record<string, unknown> });
      });
      res.on('error', reject);
    });
    // A server that refuses a body early answers and closes while we are still sending:
    // the write fails (EPIPE) but the answer arrives; give it a moment before failing.
    req.on('error', (err) => setTimeout(() => (responded ? undefined : reject(err)), 500));
    if (opts.chunks) {
      // Stream without Content-Length (chunked): the server must refuse while reading.
      let i = 0;
      const next = () => {
        if (i >= opts.chunks!.length) return req.end();
        const ok = req.write(opts.chunks![i++]!);
        if (ok) setImmediate(next);
        else req.once('drain', next);
      };
      req.on('response', () => {
        i = opts.chunks!.length;
      });
      next();
    } else req.end(opts.body);
  });
}

t.test('the public HTTP API', async (t) => {
  const c = await TestCluster.start(t, { nodes: 3 });
  const [a, b] = c.addresses as [string, string, string];
  const json = { 'content-type': 'application/json' };

  await t.test('put, get and delete JSON values; 201 then 200; 404 once deleted', async (t) => {
    let r = await request(a, 'PUT', '/api/v1/kv/greeting', { headers: { ...json, consistency: 'strong' }, body: '{"value":"hello","ttl":3600}' });
    t.equal(r.status, 201, 'created');
    const version = r.json().version as string;
    t.match(version, /^\d+-/);
    r = await request(b, 'GET', '/api/v1/kv/greeting', { headers: { consistency: 'strong' } });
    t.equal(r.status, 200);
    t.same({ key: r.json().key, value: r.json().value, version: r.json().version }, { key: 'greeting', value: 'hello', version });
    t.ok(r.json().expiresAt, 'the TTL is reported');
    r = await request(a, 'PUT', '/api/v1/kv/greeting', { headers: json, body: '{"value":{"nested":[1,2,3]}}' });
    t.equal(r.status, 200, 'replaced');
    r = await request(b, 'GET', '/api/v1/kv/greeting');
    t.same(r.json().value, { nested: [1, 2, 3] }, 'JSON values come back as JSON');
    r = await request(a, 'DELETE', '/api/v1/kv/greeting', { headers: { consistency: 'strong' } });
    t.equal(r.status, 204);
    r = await request(b, 'GET', '/api/v1/kv/greeting', { headers: { consistency: 'strong' } });
    t.equal(r.status, 404);
    t.equal(r.json().code, 'NOT_FOUND');
  });

  await t.test('binary values round-trip byte for byte', async (t) => {
    const bytes = Buffer.from(Array.from({ length: 4096 }, (_, i) => (i * 131) % 256));
    let r = await request(a, 'PUT', '/api/v1/kv/blob%2Fwith%20slash', { headers: { 'content-type': 'application/octet-stream' }, body: bytes });
    t.equal(r.status, 201);
    r = await request(b, 'GET', '/api/v1/kv/blob%2Fwith%20slash');
    t.equal(r.headers['content-type'], 'application/octet-stream');
    t.ok(r.body.equals(bytes), 'same bytes back');
    t.ok(r.headers['x-ringkv-version'], 'version header');
  });

  await t.test('TTL on a raw value through ?ttl=', async (t) => {
    await request(a, 'PUT', '/api/v1/kv/short?ttl=1', { headers: { 'content-type': 'application/octet-stream' }, body: 'x' });
    t.equal((await request(b, 'GET', '/api/v1/kv/short')).status, 200);
    await new Promise((r) => setTimeout(r, 1100));
    t.equal((await request(b, 'GET', '/api/v1/kv/short')).status, 404, 'expired');
  });

  const bad: [string, () => Promise<Reply>, number, string][] = [
    ['malformed JSON', () => request(a, 'PUT', '/api/v1/kv/bad1', { headers: json, body: '{"value": "unterminated' }), 400, 'MALFORMED_REQUEST'],
    ['JSON that is not an object', () => request(a, 'PUT', '/api/v1/kv/bad2', { headers: json, body: '[1,2]' }), 400, 'MALFORMED_REQUEST'],
    ['JSON without a value', () => request(a, 'PUT', '/api/v1/kv/bad3', { headers: json, body: '{"ttl": 5}' }), 400, 'MALFORMED_REQUEST'],
    ['a negative ttl', () => request(a, 'PUT', '/api/v1/kv/bad4', { headers: json, body: '{"value":"v","ttl":-5}' }), 400, 'INVALID_ARGUMENT'],
    ['a key over 256 bytes', () => request(a, 'PUT', `/api/v1/kv/${'k'.repeat(257)}`, { headers: json, body: '{"value":"v"}' }), 400, 'KEY_TOO_LARGE'],
    ['a key of 129 two-byte characters (258 bytes)', () => request(a, 'GET', `/api/v1/kv/${encodeURIComponent('é'.repeat(129))}`), 400, 'KEY_TOO_LARGE'],
    ['an empty key', () => request(a, 'PUT', '/api/v1/kv/', { headers: json, body: '{"value":"v"}' }), 400, 'KEY_EMPTY'],
    ['a key with broken percent-encoding', () => request(a, 'GET', '/api/v1/kv/%E0%A4%A'), 400, 'MALFORMED_REQUEST'],
    ['an unknown consistency level', () => request(a, 'PUT', '/api/v1/kv/bad5', { headers: { ...json, consistency: 'sometimes' }, body: '{"value":"v"}' }), 400, 'INVALID_CONSISTENCY'],
    ['an unknown consistency level on GET', () => request(a, 'GET', '/api/v1/kv/bad5', { headers: { consistency: 'maybe' } }), 400, 'INVALID_CONSISTENCY'],
    ['an unknown route', () => request(a, 'GET', '/api/v2/kv/x'), 404, 'ROUTE_NOT_FOUND'],
    ['an unknown method', () => request(a, 'PATCH', '/api/v1/kv/x', { headers: json, body: '{}' }), 405, 'METHOD_NOT_ALLOWED'],
    ['a raw value over 1 MiB (Content-Length)', () => request(a, 'PUT', '/api/v1/kv/big1', { headers: { 'content-type': 'application/octet-stream' }, body: Buffer.alloc(1024 * 1024 + 1) }), 413, 'VALUE_TOO_LARGE'],
    [
      'a raw value over 1 MiB streamed in chunks (no Content-Length): refused while reading',
      () => request(a, 'PUT', '/api/v1/kv/big2', { headers: { 'content-type': 'application/octet-stream' }, chunks: Array.from({ length: 64 }, () => Buffer.alloc(64 * 1024, 1)) }),
      413,
      'VALUE_TOO_LARGE',
    ],
    ['a JSON value over 1 MiB', () => request(a, 'PUT', '/api/v1/kv/big3', { headers: json, body: JSON.stringify({ value: 'x'.repeat(1024 * 1024 + 1) }) }), 413, 'VALUE_TOO_LARGE'],
    ['a JSON body far over the limit', () => request(a, 'PUT', '/api/v1/kv/big4', { headers: json, chunks: Array.from({ length: 100 }, () => Buffer.alloc(64 * 1024, 0x20)) }), 413, 'VALUE_TOO_LARGE'],
    ['a ttl of 1e13 seconds (past what a timestamp can hold)', () => request(a, 'PUT', '/api/v1/kv/bad6', { headers: json, body: '{"value":"v","ttl":1e13}' }), 400, 'INVALID_ARGUMENT'],
    ['a ttl of 1e308', () => request(a, 'PUT', '/api/v1/kv/bad6', { headers: json, body: '{"value":"v","ttl":1e308}' }), 400, 'INVALID_ARGUMENT'],
    ['a ttl over 20 years through ?ttl=', () => request(a, 'PUT', '/api/v1/kv/bad6?ttl=700000000', { headers: { 'content-type': 'application/octet-stream' }, body: 'v' }), 400, 'INVALID_ARGUMENT'],
    ['a ttl given as a string in the JSON body', () => request(a, 'PUT', '/api/v1/kv/bad6', { headers: json, body: '{"value":"v","ttl":"10"}' }), 400, 'INVALID_ARGUMENT'],
    ['a ttl given as true', () => request(a, 'PUT', '/api/v1/kv/bad6', { headers: json, body: '{"value":"v","ttl":true}' }), 400, 'INVALID_ARGUMENT'],
    ['a ttl given as [5]', () => request(a, 'PUT', '/api/v1/kv/bad6', { headers: json, body: '{"value":"v","ttl":[5]}' }), 400, 'INVALID_ARGUMENT'],
    ['a ?ttl= that is not a number', () => request(a, 'PUT', '/api/v1/kv/bad6?ttl=10s', { headers: { 'content-type': 'application/octet-stream' }, body: 'v' }), 400, 'INVALID_ARGUMENT'],
    ['a JSON value nested 100,000 deep', () => request(a, 'PUT', '/api/v1/kv/bad7', { headers: json, body: `{"value":${'['.repeat(100_000)}${']'.repeat(100_000)}}` }), 400, 'MALFORMED_REQUEST'],
    ['a JSON value nested 513 deep (one over the limit)', () => request(a, 'PUT', '/api/v1/kv/bad7', { headers: json, body: `{"value":${'['.repeat(512)}${']'.repeat(512)}}` }), 400, 'MALFORMED_REQUEST'],
    ['explicit counts past N in the Consistency header', () => request(a, 'GET', '/api/v1/kv/bad8', { headers: { consistency: 'r=4' } }), 400, 'INVALID_CONSISTENCY'],
    ['a Consistency header of JSON with another field', () => request(a, 'GET', '/api/v1/kv/bad8', { headers: { consistency: '{"r":2,"x":1}' } }), 400, 'INVALID_CONSISTENCY'],
    ['an X-Ringkv-Timeout-Ms that is not a number', () => request(a, 'GET', '/api/v1/kv/bad8', { headers: { 'x-ringkv-timeout-ms': 'soon' } }), 400, 'INVALID_ARGUMENT'],
    [
      'a raw body streamed past 16 MiB (the discard limit): 413 arrives, no reset',
      () => request(a, 'PUT', '/api/v1/kv/big5', { headers: { 'content-type': 'application/octet-stream' }, chunks: Array.from({ length: 20 }, () => Buffer.alloc(1024 * 1024, 1)) }),
      413,
      'VALUE_TOO_LARGE',
    ],
    ['malformed msgpack on the internal batch endpoint', () => request(a, 'POST', Routes.batch, { headers: { 'content-type': 'application/msgpack', accept: 'application/json' }, body: Buffer.from([0xc1, 0xff, 0x00]) }), 400, 'MALFORMED_REQUEST'],
    ['a batch of another protocol version', () => request(a, 'POST', Routes.batch, { headers: { 'content-type': 'application/msgpack' }, body: encodeMessage({ v: 99, ops: [] }) }), 400, 'PROTOCOL_MISMATCH'],
  ];
  for (const [what, send, status, code] of bad) {
    await t.test(`${what} -> ${status} ${code}`, async (t) => {
      const r = await send();
      t.equal(r.status, status);
      const body = r.headers['content-type']?.includes('json') ? r.json() : (await import('../../sdk/wire/protocol.js')).decodeMessage<Record<string, unknown>>(r.body);
      t.equal(body.code, code, `code ${code}`);
      t.type(body.message, 'string', 'with a message');
    });
  }

  await t.test('a huge declared Content-Length sent slowly gets its 413 at once, not after 10 s or a reset', async (t) => {
    const [host, port] = a.split(':');
    const started = Date.now();
    const reply = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = http.request({ host, port: Number(port), method: 'PUT', path: '/api/v1/kv/big6', agent: false, headers: { 'content-type': 'application/octet-stream', 'content-length': String(10 * 1024 ** 3) } }, (res) => {
        let body = '';
        res.on('data', (c: Buffer) => (body += c.toString()));
        res.on('end', () => {
          resolve({ status: res.statusCode ?? 0, body });
          req.destroy();
        });
        res.on('error', reject);
      });
      req.on('error', () => undefined);
      const trickle = setInterval(() => req.write(Buffer.alloc(1024)), 100);
      req.on('close', () => clearInterval(trickle));
      setTimeout(() => reject(new Error('no answer in 5 s')), 5000).unref();
    });
    t.equal(reply.status, 413);
    t.equal((JSON.parse(reply.body) as { code: string }).code, 'VALUE_TOO_LARGE');
    t.ok(Date.now() - started < 3000, `answered in ${Date.now() - started} ms`);
  });

  await t.test('explicit counts in the Consistency header, and JSON values at the depth limit', async (t) => {
    for (const consistency of ['r=1,w=3', 'w=3, r=1', '{"r":1,"w":3}', 'R=2']) {
      const r = await request(a, 'PUT', '/api/v1/kv/counts', { headers: { ...json, consistency }, body: '{"value":"v"}' });
      t.ok(r.status === 200 || r.status === 201, `${consistency}: ${r.status}`);
    }
    const deep = `${'['.repeat(511)}1${']'.repeat(511)}`;
    const put = await request(a, 'PUT', '/api/v1/kv/deep', { headers: json, body: `{"value":${deep}}` });
    t.equal(put.status, 201, 'nested 512 deep (the value inside the body object) is accepted');
    const got = await request(b, 'GET', '/api/v1/kv/deep');
    t.equal(got.status, 200);
    t.equal(JSON.stringify(got.json().value), deep, 'and comes back whole');
    const ttl = await request(a, 'PUT', '/api/v1/kv/ttl-number', { headers: json, body: '{"value":"v","ttl":630720000}' });
    t.equal(ttl.status, 201, 'a ttl of exactly 20 years is accepted');
  });

  await t.test('nothing bad was written, and every node still serves', async (t) => {
    for (const k of ['bad1', 'bad2', 'bad3', 'bad4', 'bad5', 'bad6', 'bad7', 'big1', 'big2', 'big3', 'big4', 'big5', 'big6']) {
      t.equal((await request(b, 'GET', `/api/v1/kv/${k}`, { headers: { consistency: 'all' } })).status, 404, `${k} was not written`);
    }
    for (const addr of c.addresses) {
      const r = await request(addr, 'GET', '/health');
      t.equal(r.status, 200);
      t.equal(r.json().status, 'ok');
    }
    const batch = await request(a, 'POST', Routes.batch, { headers: { 'content-type': 'application/msgpack' }, body: encodeMessage({ v: PROTOCOL_VERSION, ops: [{ t: 77, key: Buffer.from('x') }, { t: 1, key: Buffer.alloc(0) }, { t: 2, key: Buffer.from('y'), obj: { mode: 'lww', siblings: [] } }] }) });
    t.equal(batch.status, 200, 'a batch with bad operations is answered per operation');
    const { decodeMessage } = await import('../../sdk/wire/protocol.js');
    const res = decodeMessage<{ results: { ok: boolean; code?: string }[] }>(batch.body);
    t.same(res.results.map((x) => x.code), ['INVALID_ARGUMENT', 'KEY_EMPTY', 'INVALID_ARGUMENT']);
  });

  await t.test('metrics and health are served', async (t) => {
    const m = await request(a, 'GET', '/metrics');
    t.equal(m.status, 200);
    const text = m.body.toString();
    t.match(text, /ringkv_http_requests_total\{[^}]*route="kv"/, 'request counts per route');
    t.match(text, /ringkv_http_request_duration_seconds_bucket/, 'latency histograms');
    t.match(text, /ringkv_engine_table_bytes/, 'engine sizes');
    t.match(text, /ringkv_engine_compactions/, 'compactions');
    t.match(text, /nodejs_eventloop_lag_p99_seconds\{node="[^"]+"\} \d/, 'event-loop lag of the process');
    t.match(text, /# TYPE nodejs_gc_duration_seconds histogram/, 'GC pauses');
  });
});
