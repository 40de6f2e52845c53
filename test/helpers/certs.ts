// Certificates for TLS tests, made with the openssl command: the cluster's CA with node and
// client certificates (through storage-server/tls/cert-authority.ts, as `ringkv certs`
// makes them), a second CA with its own, a node certificate that has expired (openssl ca
// with -startdate/-enddate in the past: openssl 3.0's x509 cannot backdate), and one that
// may serve but names no node. Tests skip when openssl is missing.

import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import { certFiles, ensureCerts, opensslAvailable, opensslPath } from '../../storage-server/tls/cert-authority.js';

export { opensslAvailable };

/** Why TLS tests skip here, or false when they can run. */
export function skipWithoutOpenssl(): string | false {
  return opensslAvailable() ? false : 'the openssl command is not installed (Debian: apt-get install openssl): TLS tests need it to make certificates';
}

/** PEM material of one certificate. */
export interface Pems {
  cert: Buffer;
  key: Buffer;
  certFile: string;
  keyFile: string;
}

export interface TestCerts {
  dir: string;
  caFile: string;
  ca: Buffer;
  node(id: string): Pems;
  client(name: string): Pems;
  /** A node certificate of a second CA (same id): valid-looking, but not ours. */
  otherCaNode: Pems;
  /** A client certificate of the second CA. */
  otherCaClient: Pems;
  /** The second CA's certificate (a client that trusts only it must refuse our nodes). */
  otherCa: Buffer;
  otherCaFile: string;
  /** A node certificate of our CA that expired in 2020. */
  expiredNode: Pems;
  /** A certificate of our CA that may serve (serverAuth) but names no node. */
  serverWithoutIdentity: Pems;
  cleanup(): void;
}

function pems(certFile: string, keyFile: string): Pems {
  return { cert: fs.readFileSync(certFile), key: fs.readFileSync(keyFile), certFile, keyFile };
}

function openssl(args: string[]): void {
  execFileSync(opensslPath(), args, { stdio: ['ignore', 'ignore', 'pipe'] });
}

/** A certificate of the CA in `caDir` with the given extension lines, valid from `start` to `end` (openssl ca dates, YYYYMMDDHHMMSSZ). */
function customCert(caDir: string, name: string, ext: string, dates?: { start: string; end: string }): Pems {
  const work = fs.mkdtempSync(path.join(caDir, `.custom-${name}-`));
  const keyFile = path.join(caDir, `${name}.key`);
  const certFile = path.join(caDir, `${name}.crt`);
  openssl(['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', keyFile]);
  openssl(['req', '-new', '-key', keyFile, '-subj', `/CN=${name}`, '-out', path.join(work, 'req.csr')]);
  fs.writeFileSync(path.join(work, 'ext.cnf'), ext);
  if (dates) {
    fs.writeFileSync(path.join(work, 'index.txt'), '');
    fs.writeFileSync(path.join(work, 'serial'), `${crypto.randomBytes(8).toString('hex')}\n`);
    fs.writeFileSync(
      path.join(work, 'ca.cnf'),
      [
        '[ca]',
        'default_ca = test_ca',
        '[test_ca]',
        `database = ${path.join(work, 'index.txt')}`,
        `new_certs_dir = ${work}`,
        `serial = ${path.join(work, 'serial')}`,
        'default_md = sha256',
        'policy = any',
        'unique_subject = no',
        '[any]',
        'commonName = supplied',
        '',
      ].join('\n'),
    );
    openssl([
      'ca', '-batch', '-config', path.join(work, 'ca.cnf'), '-cert', certFiles.caCert(caDir), '-keyfile', certFiles.caKey(caDir),
      '-in', path.join(work, 'req.csr'), '-out', certFile, '-notext', '-extfile', path.join(work, 'ext.cnf'),
      '-startdate', dates.start, '-enddate', dates.end,
    ]);
  } else {
    openssl([
      'x509', '-req', '-in', path.join(work, 'req.csr'), '-CA', certFiles.caCert(caDir), '-CAkey', certFiles.caKey(caDir),
      '-set_serial', `0x${crypto.randomBytes(8).toString('hex')}`, '-days', '30', '-sha256', '-extfile', path.join(work, 'ext.cnf'), '-out', certFile,
    ]);
  }
  fs.rmSync(work, { recursive: true, force: true });
  return pems(certFile, keyFile);
}

/** Makes every certificate the TLS tests use, in a temp directory. */
export function makeTestCerts(nodes: string[], clients: string[] = ['app']): TestCerts {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'ringkv-certs-'));
  const dir = path.join(root, 'cluster');
  const other = path.join(root, 'other');
  ensureCerts({ dir, nodes, clients });
  ensureCerts({ dir: other, nodes: [nodes[0]!], clients: ['app'] });
  const nodeExt = (id: string) =>
    `basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth,clientAuth\nsubjectAltName=URI:ringkv://node/${id},IP:127.0.0.1\n`;
  const expiredNode = customCert(dir, 'expired-node', nodeExt(nodes[0]!), { start: '20200101000000Z', end: '20200201000000Z' });
  const serverWithoutIdentity = customCert(
    dir,
    'server-no-identity',
    'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth,clientAuth\nsubjectAltName=DNS:localhost,IP:127.0.0.1\n',
  );
  return {
    dir,
    caFile: certFiles.caCert(dir),
    ca: fs.readFileSync(certFiles.caCert(dir)),
    node: (id) => pems(certFiles.nodeCert(dir, id), certFiles.nodeKey(dir, id)),
    client: (name) => pems(certFiles.clientCert(dir, name), certFiles.clientKey(dir, name)),
    otherCaNode: pems(certFiles.nodeCert(other, nodes[0]!), certFiles.nodeKey(other, nodes[0]!)),
    otherCaClient: pems(certFiles.clientCert(other, 'app'), certFiles.clientKey(other, 'app')),
    otherCa: fs.readFileSync(certFiles.caCert(other)),
    otherCaFile: certFiles.caCert(other),
    expiredNode,
    serverWithoutIdentity,
    cleanup: () => fs.rmSync(root, { recursive: true, force: true }),
  };
}

/** The server flags of node `id` in `mode` with these certificates. */
export function tlsArgs(certs: TestCerts, id: string, mode: 'off' | 'transitional' | 'required'): string[] {
  const n = certs.node(id);
  return ['--tls-mode', mode, '--tls-ca', certs.caFile, '--tls-cert', n.certFile, '--tls-key', n.keyFile];
}

export interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
}

/** One HTTPS request on a fresh connection, presenting `identity` (or no certificate). */
export function httpsRequest(
  address: string,
  o: { method?: string; path: string; headers?: Record<string, string>; body?: Buffer | string; ca: Buffer; identity?: { cert: Buffer; key: Buffer } },
): Promise<Answer> {
  const [host, port] = address.split(':');
  return new Promise((resolve, reject) => {
    const req = https.request(
      {
        host,
        port: Number(port),
        method: o.method ?? 'GET',
        path: o.path,
        headers: o.headers,
        ca: o.ca,
        ...(o.identity ? { cert: o.identity.cert, key: o.identity.key } : {}),
        agent: false,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
      },
    );
    req.on('error', reject);
    req.setTimeout(10_000, () => req.destroy(new Error('request timed out')));
    req.end(o.body);
  });
}
