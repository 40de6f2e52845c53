// Certificates for a local or test cluster, made with the openssl command: a CA, node
// certificates (SAN URI:ringkv://node/<id>, serverAuth + clientAuth) and client
// certificates (SAN URI:ringkv://client/<name>, clientAuth), EC P-256 keys, SHA-256
// signatures. Files that exist are kept (the CA signs what is added later). The commands
// are listed in storage-server/tls/README.md. Synchronous (a CLI step); not for concurrent
// use on one directory.

import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { InvalidArgumentError, UnavailableError } from '../../sdk/errors.js';
import { clientIdentityUri, nodeIdentityUri } from '../../sdk/transport-security.js';

/** The openssl binary used (RINGKV_OPENSSL overrides). */
export function opensslPath(env: NodeJS.ProcessEnv = process.env): string {
  return env.RINGKV_OPENSSL || 'openssl';
}

/** True when the openssl command runs. */
export function opensslAvailable(): boolean {
  try {
    execFileSync(opensslPath(), ['version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** File names inside a certificate directory (the one place they are made). */
export const certFiles = {
  caCert: (dir: string) => path.join(dir, 'ca.crt'),
  caKey: (dir: string) => path.join(dir, 'ca.key'),
  nodeCert: (dir: string, id: string) => path.join(dir, `node-${id}.crt`),
  nodeKey: (dir: string, id: string) => path.join(dir, `node-${id}.key`),
  clientCert: (dir: string, name: string) => path.join(dir, `client-${name}.crt`),
  clientKey: (dir: string, name: string) => path.join(dir, `client-${name}.key`),
};

export interface EnsureCertsOptions {
  /** Directory of the files (made 0700 when created). */
  dir: string;
  /** Node ids: one node certificate each. */
  nodes: string[];
  /** Client names: one client certificate each. */
  clients: string[];
  /** Host names and IP addresses put in node certificates besides the identity (for curl and browsers). Default localhost, 127.0.0.1. */
  hosts?: string[];
  /** Validity of node and client certificates. Default 365 days. */
  days?: number;
  /** Validity of a new CA. Default 3650 days. */
  caDays?: number;
}

const NAME_RE = /^[A-Za-z0-9._-]{1,64}$/;

function run(args: string[]): void {
  try {
    execFileSync(opensslPath(), args, { stdio: ['ignore', 'ignore', 'pipe'] });
  } catch (err) {
    const e = err as { code?: string; stderr?: Buffer };
    if (e.code === 'ENOENT') throw new UnavailableError(`the openssl command is not installed (${opensslPath()}); install it (Debian: apt-get install openssl)`);
    throw new UnavailableError(`openssl ${args[0]} failed: ${e.stderr?.toString().trim() ?? (err as Error).message}`);
  }
}

/** Writes a new EC P-256 private key, readable by its owner only. */
function newKey(file: string): void {
  run(['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', file]);
  fs.chmodSync(file, 0o600);
}

/** Makes the CA (key and self-signed certificate) in `dir`. */
export function makeCa(dir: string, days = 3650, commonName = `ringkv CA ${crypto.randomBytes(4).toString('hex')}`): void {
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  newKey(certFiles.caKey(dir));
  run([
    'req', '-x509', '-new', '-key', certFiles.caKey(dir), '-sha256', '-days', String(days),
    '-subj', `/CN=${commonName}`,
    '-addext', 'basicConstraints=critical,CA:TRUE,pathlen:0',
    '-addext', 'keyUsage=critical,keyCertSign,cRLSign',
    '-addext', 'subjectKeyIdentifier=hash',
    '-out', certFiles.caCert(dir),
  ]);
}

export interface IssueOptions {
  /** CA certificate and key files. */
  caCert: string;
  caKey: string;
  kind: 'node' | 'client';
  /** Node id or client name. */
  name: string;
  /** Output files. */
  certFile: string;
  keyFile: string;
  /** DNS names / IP addresses added to a node certificate. */
  hosts?: string[];
  days?: number;
}

/** The extension lines of a node or client certificate. */
export function certExtensions(kind: 'node' | 'client', name: string, hosts: string[] = []): string {
  const san =
    kind === 'node'
      ? [`URI:${nodeIdentityUri(name)}`, ...hosts.map((h) => (/^[0-9.]+$|:/.test(h) ? `IP:${h}` : `DNS:${h}`))]
      : [`URI:${clientIdentityUri(name)}`];
  return [
    'basicConstraints=critical,CA:FALSE',
    'keyUsage=critical,digitalSignature',
    `extendedKeyUsage=${kind === 'node' ? 'serverAuth,clientAuth' : 'clientAuth'}`,
    `subjectAltName=${san.join(',')}`,
    'subjectKeyIdentifier=hash',
    'authorityKeyIdentifier=keyid',
    '',
  ].join('\n');
}

/** Issues one node or client certificate (new key, CSR, signed by the CA). */
export function issueCert(o: IssueOptions): void {
  if (!NAME_RE.test(o.name)) throw new InvalidArgumentError(`${o.kind} name must be 1-64 letters, digits, '.', '_' or '-'; got "${o.name}"`);
  const dir = path.dirname(o.certFile);
  const tmp = fs.mkdtempSync(path.join(dir, `.issue-${o.name}-`));
  try {
    const csr = path.join(tmp, 'req.csr');
    const ext = path.join(tmp, 'ext.cnf');
    newKey(o.keyFile);
    run(['req', '-new', '-key', o.keyFile, '-subj', `/CN=${o.kind === 'node' ? 'ringkv node' : 'ringkv client'} ${o.name}`, '-out', csr]);
    fs.writeFileSync(ext, certExtensions(o.kind, o.name, o.hosts));
    run([
      'x509', '-req', '-in', csr, '-CA', o.caCert, '-CAkey', o.caKey,
      '-set_serial', `0x${crypto.randomBytes(16).toString('hex')}`,
      '-days', String(o.days ?? 365), '-sha256', '-extfile', ext, '-out', o.certFile,
    ]);
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

/**
 * Makes what is missing in `dir`: the CA, then a certificate per node and client. Returns
 * the files it created and those it kept.
 */
export function ensureCerts(o: EnsureCertsOptions): { created: string[]; kept: string[] } {
  for (const n of [...o.nodes, ...o.clients]) {
    if (!NAME_RE.test(n)) throw new InvalidArgumentError(`node ids and client names are 1-64 letters, digits, '.', '_' or '-'; got "${n}"`);
  }
  const days = o.days ?? 365;
  if (!(Number.isInteger(days) && days >= 1)) throw new InvalidArgumentError('days must be a positive integer');
  const created: string[] = [];
  const kept: string[] = [];
  fs.mkdirSync(o.dir, { recursive: true, mode: 0o700 });
  const caCert = certFiles.caCert(o.dir);
  const caKey = certFiles.caKey(o.dir);
  if (fs.existsSync(caCert) !== fs.existsSync(caKey)) {
    throw new InvalidArgumentError(`${o.dir} holds only one of ca.crt and ca.key: restore the other or remove both to make a new CA`);
  }
  if (fs.existsSync(caCert)) kept.push(caCert);
  else {
    makeCa(o.dir, o.caDays ?? 3650);
    created.push(caCert, caKey);
  }
  const hosts = o.hosts ?? ['localhost', '127.0.0.1'];
  const todo: [IssueOptions['kind'], string, string, string][] = [
    ...o.nodes.map((id) => ['node', id, certFiles.nodeCert(o.dir, id), certFiles.nodeKey(o.dir, id)] as [IssueOptions['kind'], string, string, string]),
    ...o.clients.map((n) => ['client', n, certFiles.clientCert(o.dir, n), certFiles.clientKey(o.dir, n)] as [IssueOptions['kind'], string, string, string]),
  ];
  for (const [kind, name, certFile, keyFile] of todo) {
    if (fs.existsSync(certFile) && fs.existsSync(keyFile)) {
      kept.push(certFile);
      continue;
    }
    issueCert({ caCert, caKey, kind, name, certFile, keyFile, hosts, days });
    created.push(certFile, keyFile);
  }
  return { created, kept };
}
