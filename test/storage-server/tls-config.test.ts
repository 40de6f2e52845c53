// The tls section of a server's config: the layering (file, environment, flags merge field
// by field), and the checks that fail a start with an error naming the setting, the file
// and the problem — missing or unreadable files, a key that is not the certificate's, a
// certificate of another CA, an expired one, a client certificate, another node's.

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
