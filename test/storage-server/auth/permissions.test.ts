// Permissions as pure functions (storage-server/auth/permissions.ts, tokens.ts): a table of
// (grant, key) -> allowed with the prefix edges (app: vs app2:, the empty prefix, a prefix
// longer than the key, bytes that are not UTF-8), admin only on every key, the permission
// words the CLI takes, and token making, hashing and header parsing.

import t from 'tap';
import type { Grant } from '../../../storage-server/auth/permissions.js';
import { checkGrant, parsePerms, Principal } from '../../../storage-server/auth/permissions.js';
import { bearerToken, hashToken, isTokenHash, newToken } from '../../../storage-server/auth/tokens.js';

t.test('prefix edges: (grants, perm, key) -> allowed', async (t) => {
  const cases: [Grant[], 'read' | 'write', string | Buffer, boolean][] = [
    [[{ prefix: 'app:', perms: ['read', 'write'] }], 'read', 'app:x', true],
    [[{ prefix: 'app:', perms: ['read', 'write'] }], 'write', 'app:', true],
    [[{ prefix: 'app:', perms: ['read', 'write'] }], 'read', 'app2:x', false],
    [[{ prefix: 'app:', perms: ['read', 'write'] }], 'read', 'app', false],
    [[{ prefix: 'app:', perms: ['read', 'write'] }], 'read', 'ap', false],
    [[{ prefix: 'app:', perms: ['read', 'write'] }], 'read', 'APP:x', false],
    [[{ prefix: 'app:', perms: ['read', 'write'] }], 'read', 'xapp:x', false],
    [[{ prefix: 'app:', perms: ['read'] }], 'write', 'app:x', false],
    [[{ prefix: 'app:', perms: ['write'] }], 'read', 'app:x', false],
    [[{ prefix: 'app', perms: ['read'] }], 'read', 'app2:x', true],
    [[{ prefix: '', perms: ['read'] }], 'read', 'anything', true],
    [[{ prefix: '', perms: ['read'] }], 'write', 'anything', false],
    [[{ prefix: '', perms: ['admin'] }], 'write', 'anything', true],
    [[{ prefix: '', perms: ['admin'] }], 'read', Buffer.from([0xff, 0x00]), true],
    [[{ prefix: 'é:', perms: ['read'] }], 'read', 'é:1', true],
    [[{ prefix: 'é:', perms: ['read'] }], 'read', Buffer.from([0xc3]), false],
    [[{ prefix: 'a:', perms: ['read'] }, { prefix: 'b:', perms: ['write'] }], 'write', 'b:1', true],
    [[{ prefix: 'a:', perms: ['read'] }, { prefix: 'b:', perms: ['write'] }], 'write', 'a:1', false],
    [[], 'read', 'app:x', false],
  ];
  for (const [grants, perm, key, allowed] of cases) {
    const p = new Principal('u', ['r'], grants);
    const k = typeof key === 'string' ? Buffer.from(key, 'utf8') : key;
    t.equal(p.can(perm, k), allowed, `${JSON.stringify(grants)} ${perm} ${JSON.stringify(k.toString('utf8'))} -> ${allowed}`);
  }
  t.ok(new Principal('u', [], [{ prefix: '', perms: ['admin'] }]).admin, 'admin on every key is admin');
  t.notOk(new Principal('u', [], [{ prefix: '', perms: ['read', 'write'] }]).admin, 'readwrite on every key is not admin');
});

t.test('grants: admin on every key only; the permission words', async (t) => {
  t.throws(() => checkGrant({ prefix: 'app:', perms: ['admin'] }), { code: 'INVALID_ARGUMENT', message: /every key only/ });
  t.same(checkGrant({ prefix: '', perms: ['admin', 'read'] }), { prefix: '', perms: ['read', 'admin'] });
  t.throws(() => checkGrant({ prefix: 'x', perms: [] }), { code: 'INVALID_ARGUMENT' });
  t.throws(() => checkGrant({ prefix: 'x', perms: ['delete'] }), { code: 'INVALID_ARGUMENT' });
  t.throws(() => checkGrant({ prefix: 'x'.repeat(257), perms: ['read'] }), { code: 'INVALID_ARGUMENT' });
  t.same(parsePerms('readwrite'), ['read', 'write']);
  t.same(parsePerms('write, read'), ['read', 'write']);
  t.same(parsePerms('admin'), ['admin']);
  t.throws(() => parsePerms('all'), { code: 'INVALID_ARGUMENT', message: /unknown permission/ });
});

t.test('tokens: 256 random bits, stored as SHA-256, read from a bearer header', async (t) => {
  const a = newToken();
  const b = newToken();
  t.match(a, /^rkv_[A-Za-z0-9_-]{43}$/);
  t.equal(Buffer.from(a.slice(4), 'base64url').length, 32, '32 random bytes');
  t.not(a, b);
  t.ok(isTokenHash(hashToken(a)));
  t.equal(hashToken(a), hashToken(a));
  t.not(hashToken(a), hashToken(b));
  t.equal(bearerToken(undefined), undefined, 'no header');
  t.equal(bearerToken(`Bearer ${a}`), a);
  t.equal(bearerToken(`bearer  ${a} `), a, 'the scheme is case-insensitive');
  t.equal(bearerToken(`Basic dXNlcjpwYXNz`), null, 'another scheme is not a token');
  t.equal(bearerToken('Bearer'), null);
  t.equal(bearerToken(`Bearer ${'x'.repeat(300)}`), null, 'an oversized header is refused unhashed');
});
