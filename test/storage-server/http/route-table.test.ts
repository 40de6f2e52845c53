// The node's route table and router without a cluster: every route the table serves has a
// rule of its own in the access policy (a route added without one fails here), every wire
// route is served (but the reserved hints route), and the router on a real socket: the
// access check before any handler, METHOD_NOT_ALLOWED and ROUTE_NOT_FOUND with their codes,
// prefixes, errors thrown or rejected by handlers answered with theirs, and whenIdle waiting
// for the requests in flight. On real processes: test/cluster/auth-matrix.test.ts.

import http from 'node:http';
import type { AddressInfo } from 'node:net';
import pino from 'pino';
import t from 'tap';
import { RingkvError } from '../../../sdk/errors.js';
import { decodeMessage, Routes } from '../../../sdk/wire/protocol.js';
import { endpointRule, listedInternalRoutes } from '../../../storage-server/http/access-policy.js';
import { routeTable } from '../../../storage-server/http/route-table.js';
import type { Route } from '../../../storage-server/http/router.js';
import { Router } from '../../../storage-server/http/router.js';
import { ServerMetrics } from '../../../storage-server/metrics.js';
import type { NodeParts } from '../../../storage-server/node-parts.js';

// Route builders only keep the parts for their handlers: the table is read without a node.
const table = routeTable({} as NodeParts);
const served = table.flatMap((r) => [r.path, r.prefix].filter((p): p is string => p !== undefined));

t.test('every route the table serves has an access rule of its own', async (t) => {
  const listed = new Set(listedInternalRoutes());
  for (const p of served) {
    if (p.startsWith('/internal/')) t.ok(listed.has(p), `${p} is listed in access-policy.ts`);
    else t.notSame(endpointRule(p === '/ui/' ? '/ui/index.html' : p), { cls: 'node', auth: 'node' }, `${p} has a rule (not the node-only default)`);
  }
  t.ok(served.length >= 20, `${served.length} paths served`);
});

t.test('every wire route is served, but the reserved hints route', async (t) => {
  for (const [name, path] of Object.entries(Routes)) {
    if (name === 'hints') continue; // hints travel as batch merges (hintFor); the path is reserved
    t.ok(served.includes(path), `Routes.${name} (${path}) has a handler`);
  }
  t.notOk(served.includes(Routes.hints), 'nothing serves the reserved hints route');
  const names = table.map((r) => r.name);
  t.same(names.filter((n, i) => names.indexOf(n) !== i), [], 'each route has its own metrics label');
});

t.test('the router on a real socket', async (t) => {
  let release: () => void = () => undefined;
  const slow = new Promise<void>((r) => (release = r));
  const routes: Route[] = [
    { name: 'post-only', path: '/internal/v1/admin', methods: ['POST'], handle: ({ res }) => void res.end('posted') },
    { name: 'open', path: '/health', handle: ({ res }) => void res.end('healthy') },
    { name: 'files', path: '/ui', prefix: '/ui/', handle: ({ res, path }) => void res.end(`file ${path}`) },
    { name: 'throws', path: '/metrics', handle: () => { throw new RingkvError('INVALID_ARGUMENT', 'thrown'); } },
    {
      name: 'slow',
      path: '/internal/v1/status',
      handle: async ({ res }) => {
        await slow;
        res.end('late');
      },
    },
  ];
  t.throws(() => new Router({ ...opts(), routes: [...routes, routes[1]!] }), /two routes for \/health/, 'one route per path');
  const router = new Router({ ...opts(), routes });
  const server = http.createServer(router.handle);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(() => new Promise<void>((r) => server.close(() => r())));
  const port = (server.address() as AddressInfo).port;
  const call = (method: string, path: string) =>
    new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = http.request({ host: '127.0.0.1', port, method, path, headers: { 'content-type': 'application/msgpack' } }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const raw = Buffer.concat(chunks);
          // Errors on /internal/ come in msgpack, elsewhere in JSON: both read back as JSON text.
          const body = String(res.headers['content-type']).startsWith('application/msgpack') ? JSON.stringify(decodeMessage(raw)) : raw.toString();
          resolve({ status: res.statusCode ?? 0, body });
        });
      });
      req.on('error', reject);
      req.end();
    });
  const code = (body: string) => (JSON.parse(body) as { code?: string }).code;

  t.same(await call('POST', '/internal/v1/admin'), { status: 200, body: 'posted' }, 'a POST route takes POST');
  const wrong = await call('GET', '/internal/v1/admin');
  t.same([wrong.status, code(wrong.body)], [405, 'METHOD_NOT_ALLOWED'], 'and answers GET METHOD_NOT_ALLOWED');
  t.same(await call('GET', '/health'), { status: 200, body: 'healthy' }, 'an exact path');
  t.same(await call('GET', '/ui/x.js'), { status: 200, body: 'file /ui/x.js' }, 'a prefix');
  t.same(await call('GET', '/ui'), { status: 200, body: 'file /ui' }, 'and its exact path');
  const sync = await call('POST', Routes.authSync);
  t.same([sync.status, code(sync.body)], [401, 'UNAUTHENTICATED'], 'the access check runs before routing (the user table never travels over plain HTTP)');
  const thrown = await call('GET', '/metrics');
  t.same([thrown.status, code(thrown.body)], [400, 'INVALID_ARGUMENT'], "a handler's thrown error is answered with its code");
  const unknown = await call('GET', '/healthz');
  t.same([unknown.status, code(unknown.body)], [404, 'ROUTE_NOT_FOUND'], 'a path no route serves: ROUTE_NOT_FOUND');

  const late = call('GET', '/internal/v1/status');
  for (let i = 0; i < 200 && router.requestsInFlight === 0; i++) await new Promise((r) => setTimeout(r, 10));
  t.equal(router.requestsInFlight, 1, 'one request in flight');
  let idle = false;
  const idleP = router.whenIdle().then(() => (idle = true));
  await new Promise((r) => setTimeout(r, 50));
  t.equal(idle, false, 'whenIdle waits for it');
  release();
  t.same(await late, { status: 200, body: 'late' }, 'it is answered');
  await idleP;
  t.equal(router.requestsInFlight, 0, 'and the router is idle');
});

function opts() {
  return {
    tlsMode: 'off' as const,
    authEnabled: false,
    auth: undefined,
    corsAllowedOrigins: [],
    metrics: new ServerMetrics('n1', () => undefined),
    log: pino({ level: 'silent' }),
    stopping: () => false,
  };
}
