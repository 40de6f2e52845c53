// The access policy's table without servers: every route of the wire protocol has a rule of
// its own (a route added to Routes without one fails here), paths the policy does not list
// are node-only whatever the token, and the token rules of checkAccess per endpoint class
// (auth on). The same table on real processes: test/cluster/auth-matrix.test.ts.

import t from 'tap';
import type { RingkvError } from '../../../sdk/errors.js';
import { Routes } from '../../../sdk/wire/protocol.js';
import { Principal } from '../../../storage-server/auth/permissions.js';
import type { PeerIdentity, TokenCheck } from '../../../storage-server/http/access-policy.js';
import { checkAccess, checkKeyAccess, endpointRule, listedInternalRoutes } from '../../../storage-server/http/access-policy.js';

const on = { tlsMode: 'required' as const, auth: true };
const client: PeerIdentity = { kind: 'client', name: 'app' };
const anonymous: PeerIdentity = { kind: 'anonymous' };
const node: PeerIdentity = { kind: 'node', id: 'n2' };
const admin: TokenCheck = { kind: 'valid', principal: new Principal('root', ['admin'], [{ prefix: '', perms: ['admin'] }]) };
const alice: TokenCheck = { kind: 'valid', principal: new Principal('alice', ['app-rw'], [{ prefix: 'app:', perms: ['read', 'write'] }]) };

/** The outcome of checkAccess: 'ok' or the error's code. */
function outcome(path: string, id: PeerIdentity, token: TokenCheck): string {
  try {
    checkAccess(on, path, id, token);
    return 'ok';
  } catch (err) {
    return (err as RingkvError).code;
  }
}

t.test('every wire route has a rule of its own', async (t) => {
  const listed = new Set(listedInternalRoutes());
  for (const [name, path] of Object.entries(Routes)) {
    t.ok(listed.has(path), `Routes.${name} (${path}) is listed in access-policy.ts`);
  }
  t.same([...listed].filter((p) => !(Object.values(Routes) as string[]).includes(p)), [], 'and the policy lists no route the protocol lacks');
});

t.test('paths the policy does not list are node-only, whatever the token', async (t) => {
  for (const path of ['/internal/v1/added-later', '/internal/v2/batch', '/admin', '/', '/favicon.ico', '/healthz']) {
    t.same(endpointRule(path), { cls: 'node', auth: 'node' }, `${path}: node-only`);
    t.equal(outcome(path, client, admin), 'PERMISSION_DENIED', `${path}: an admin token without a node certificate is refused`);
    t.equal(outcome(path, anonymous, admin), 'UNAUTHENTICATED', `${path}: no certificate`);
    t.equal(outcome(path, node, { kind: 'none' }), 'ok', `${path}: a node certificate passes`);
  }
  for (const path of ['/health', '/ui', '/ui/dashboard.js']) t.equal(outcome(path, anonymous, { kind: 'none' }), 'ok', `${path}: open`);
  t.equal(outcome('/metrics', anonymous, { kind: 'none' }), 'UNAUTHENTICATED', '/metrics needs a token');
});

t.test('token rules per endpoint (auth on)', async (t) => {
  const rows: [string, string, string, string, string][] = [
    // path, no token, invalid token, alice (app: rw), admin
    [Routes.batch, 'UNAUTHENTICATED', 'UNAUTHENTICATED', 'ok', 'ok'],
    [Routes.members, 'UNAUTHENTICATED', 'UNAUTHENTICATED', 'ok', 'ok'],
    [Routes.scan, 'UNAUTHENTICATED', 'UNAUTHENTICATED', 'ok', 'ok'],
    [Routes.admin, 'UNAUTHENTICATED', 'UNAUTHENTICATED', 'PERMISSION_DENIED', 'ok'],
    [Routes.authAdmin, 'UNAUTHENTICATED', 'UNAUTHENTICATED', 'PERMISSION_DENIED', 'ok'],
    [Routes.merkle, 'UNAUTHENTICATED', 'UNAUTHENTICATED', 'PERMISSION_DENIED', 'ok'],
    [Routes.stream, 'PERMISSION_DENIED', 'PERMISSION_DENIED', 'PERMISSION_DENIED', 'PERMISSION_DENIED'],
    [Routes.authSync, 'PERMISSION_DENIED', 'PERMISSION_DENIED', 'PERMISSION_DENIED', 'PERMISSION_DENIED'],
    // Objects shipped between data centers: nodes only, whatever token a client has.
    [Routes.replApply, 'PERMISSION_DENIED', 'PERMISSION_DENIED', 'PERMISSION_DENIED', 'PERMISSION_DENIED'],
    ['/api/v1/kv/app:1', 'UNAUTHENTICATED', 'UNAUTHENTICATED', 'ok', 'ok'],
  ];
  for (const [path, ...want] of rows) {
    const got = [{ kind: 'none' } as const, { kind: 'invalid' } as const, alice, admin].map((tok) => outcome(path, client, tok));
    t.same(got, want, path);
  }
});

t.test('per-key checks of the public API, with the prefix edges', async (t) => {
  const key = (path: string, method: string, who: TokenCheck & { kind: 'valid' }) => {
    try {
      checkKeyAccess({ kind: 'user', principal: who.principal }, path, method);
      return 'ok';
    } catch (err) {
      return (err as RingkvError).code;
    }
  };
  t.equal(key('/api/v1/kv/app%3A1', 'PUT', alice), 'ok', 'app:1 is under app:');
  t.equal(key('/api/v1/kv/app%3A', 'GET', alice), 'ok', 'app: itself is under app:');
  t.equal(key('/api/v1/kv/app2%3A1', 'GET', alice), 'PERMISSION_DENIED', 'app2:1 is not');
  t.equal(key('/api/v1/kv/app', 'GET', alice), 'PERMISSION_DENIED', 'nor app');
  t.equal(key('/api/v1/other/app%3A1', 'GET', alice), 'PERMISSION_DENIED', 'a public route without a per-key rule: admins only');
  t.equal(key('/api/v1/other/app%3A1', 'GET', admin), 'ok');
  // Data types: GET reads; POST writes and answers with the state, so it needs read too.
  const reader: TokenCheck & { kind: 'valid' } = { kind: 'valid', principal: new Principal('rita', ['app-r'], [{ prefix: 'app:', perms: ['read'] }]) };
  const writer: TokenCheck & { kind: 'valid' } = { kind: 'valid', principal: new Principal('wes', ['app-w'], [{ prefix: 'app:', perms: ['write'] }]) };
  t.equal(key('/api/v1/dt/app%3Alikes', 'GET', alice), 'ok', 'a data type under app: is alice\'s to read');
  t.equal(key('/api/v1/dt/app%3Alikes', 'POST', alice), 'ok', 'and to update');
  t.equal(key('/api/v1/dt/app2%3Alikes', 'GET', alice), 'PERMISSION_DENIED', 'not one under app2:');
  t.equal(key('/api/v1/dt/app%3Alikes', 'GET', reader), 'ok', 'a reader reads it');
  t.equal(key('/api/v1/dt/app%3Alikes', 'POST', reader), 'PERMISSION_DENIED', 'but does not update it');
  t.equal(key('/api/v1/dt/app%3Alikes', 'POST', writer), 'PERMISSION_DENIED', 'a writer without read does not either (the answer is the state)');
  t.equal(key('/api/v1/dt/app%3Alikes', 'GET', writer), 'PERMISSION_DENIED');
});
