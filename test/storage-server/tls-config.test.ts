// The tls section of a server's config: the layering (file, environment, flags merge field
// by field), and the checks that fail a start with an error naming the setting, the file
// and the problem — missing or unreadable files, a key that is not the certificate's, a
// certificate of another CA, an expired one, a client certificate, another node's. The
// auth section: off by default, needs TLS required, and a cache TTL that bounds a pull round.

import fs from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { configFromEnv, configFromFile, resolveServerConfig } from '../../storage-server/config.js';
import { makeTestCerts, skipWithoutOpenssl } from '../helpers/certs.js';

const skip = skipWithoutOpenssl();

t.test('tls settings', { skip }, async (t) => {
  const certs = makeTestCerts(['n1', 'n2'], ['app']);
  t.teardown(() => certs.cleanup());
  const n1 = certs.node('n1');
  const good = { mode: 'required', ca: certs.caFile, cert: n1.certFile, key: n1.keyFile };

  await t.test('off by default; paths made absolute; file < environment < flags, field by field', async (t) => {
    t.same(resolveServerConfig({ id: 'n1' }).tls, { mode: 'off', ca: '', cert: '', key: '' });
    const file = path.join(certs.dir, 'node.json');
    fs.writeFileSync(file, JSON.stringify({ id: 'n1', tls: { mode: 'transitional', ca: certs.caFile, cert: n1.certFile, key: n1.keyFile } }));
    const fromFile = resolveServerConfig(configFromFile(file));
    t.same(fromFile.tls, { mode: 'transitional', ca: certs.caFile, cert: n1.certFile, key: n1.keyFile });
    const env = configFromEnv({ RINGKV_TLS_MODE: 'required' });
    t.same(resolveServerConfig(configFromFile(file), env).tls.mode, 'required', 'the environment sets the mode, the file keeps the paths');
    const flags = { tls: { mode: 'off', ca: undefined, cert: undefined, key: undefined } };
    t.same(resolveServerConfig(configFromFile(file), env, flags).tls.mode, 'off', 'a flag wins');
    const rel = path.relative(process.cwd(), certs.caFile);
    t.equal(resolveServerConfig({ id: 'n1', tls: { ...good, ca: rel } }).tls.ca, certs.caFile, 'a relative path is resolved');
    t.same(
      resolveServerConfig({ id: 'n1' }, configFromEnv({ RINGKV_TLS_MODE: 'transitional', RINGKV_TLS_CA: certs.caFile, RINGKV_TLS_CERT: n1.certFile, RINGKV_TLS_KEY: n1.keyFile })).tls,
      { mode: 'transitional', ca: certs.caFile, cert: n1.certFile, key: n1.keyFile },
      'all from the environment',
    );
    t.equal(resolveServerConfig({ id: 'n1', tls: { mode: 'off', cert: '/no/such/file' } }).tls.mode, 'off', 'files are not read when the mode is off');
  });

  await t.test('each mistake fails with an error naming it', async (t) => {
    const cases: [string, Record<string, unknown>, RegExp][] = [
      ['an unknown mode', { mode: 'on' }, /tls\.mode must be off, transitional or required/],
      ['an unknown field', { ...good, crl: 'x' }, /unknown tls setting "crl"/],
      ['a missing key file setting', { mode: 'required', ca: certs.caFile, cert: n1.certFile }, /tls\.key is required/],
      ['an unreadable certificate', { ...good, cert: '/no/such/cert.pem' }, /tls\.cert: cannot read \/no\/such\/cert\.pem/],
      ['a file that is no certificate', { ...good, ca: n1.keyFile }, /tls\.ca: .* holds no PEM certificate/],
      ['the key of another certificate', { ...good, key: certs.node('n2').keyFile }, /tls\.key: .* does not match the certificate/],
      ['a certificate of another CA', { ...good, cert: certs.otherCaNode.certFile, key: certs.otherCaNode.keyFile }, /tls\.cert: .* is not signed by the CA/],
      ['an expired certificate', { ...good, cert: certs.expiredNode.certFile, key: certs.expiredNode.keyFile }, /tls\.cert: .* expired on 2020-02-01/],
      ['a client certificate', { ...good, cert: certs.client('app').certFile, key: certs.client('app').keyFile }, /not a node certificate: .*serverAuth and clientAuth/],
      ['another node\'s certificate', { ...good, cert: certs.node('n2').certFile, key: certs.node('n2').keyFile }, /does not name this node: .*URI:ringkv:\/\/node\/n1 .*ringkv:\/\/node\/n2/],
      ['a certificate that names no node', { ...good, cert: certs.serverWithoutIdentity.certFile, key: certs.serverWithoutIdentity.keyFile }, /does not name this node/],
    ];
    for (const [what, tls, message] of cases) {
      t.throws(() => resolveServerConfig({ id: 'n1', tls }), { code: 'INVALID_ARGUMENT', message }, what);
    }
    t.doesNotThrow(() => resolveServerConfig({ id: 'n1', tls: good }), 'the right files pass');
  });
});

t.test('auth settings', { skip }, async (t) => {
  const certs = makeTestCerts(['n1'], []);
  t.teardown(() => certs.cleanup());
  const n1 = certs.node('n1');
  const tls = { mode: 'required', ca: certs.caFile, cert: n1.certFile, key: n1.keyFile };
  t.same(resolveServerConfig({ id: 'n1' }).auth, { enabled: false, cacheTtlMs: 5000, syncIntervalMs: 2000 }, 'off by default (npm start is unchanged)');
  const on = resolveServerConfig({ id: 'n1', tls }, configFromEnv({ RINGKV_AUTH_ENABLED: 'true', RINGKV_AUTH_CACHE_TTL_MS: '8000' }));
  t.same(on.auth, { enabled: true, cacheTtlMs: 8000, syncIntervalMs: 2000 }, 'from the environment');
  t.throws(() => resolveServerConfig({ id: 'n1', auth: { enabled: true } }), /auth.enabled needs tls.mode required/, 'auth without TLS is refused');
  t.throws(() => resolveServerConfig({ id: 'n1', tls: { ...tls, mode: 'transitional' }, auth: { enabled: true } }), /needs tls.mode required/, 'and with transitional TLS');
  // The cache TTL is the revocation bound: the pull (syncIntervalMs + requestTimeoutMs) must fit in it.
  t.throws(
    () => resolveServerConfig({ id: 'n1', tls, auth: { enabled: true, cacheTtlMs: 3000, syncIntervalMs: 2000 } }),
    /auth.cacheTtlMs \(3000\) must be at least auth.syncIntervalMs \+ requestTimeoutMs \(4000\)/,
    'a cache TTL shorter than a pull round is refused',
  );
  t.throws(() => resolveServerConfig({ id: 'n1', tls, requestTimeoutMs: 4000, auth: { enabled: true } }), /must be at least/, 'a longer request timeout counts too');
  t.equal(resolveServerConfig({ id: 'n1', tls, auth: { enabled: true, cacheTtlMs: 4000 } }).auth.cacheTtlMs, 4000, 'exactly a pull round is accepted');
  t.throws(() => resolveServerConfig({ id: 'n1', tls, auth: { enabled: true, cacheTtlMs: 61_000 } }), /at most 60000/);
  t.throws(() => resolveServerConfig({ id: 'n1', auth: { enabled: 'yes' } }), /auth.enabled must be true or false/);
  t.throws(() => resolveServerConfig({ id: 'n1', auth: { ttl: 1 } }), /unknown auth setting "ttl"/);
});
