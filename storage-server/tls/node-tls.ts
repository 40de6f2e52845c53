// A node's TLS material: reads the CA, certificate and key files named in its config and
// checks them before anything starts (readable, PEM, the key matches the certificate, the
// CA signed it, it is valid now, it may serve and be a client, it names this node), so a
// mistake fails the start with one error naming the file and the problem. Synchronous;
// called by the config resolver and again by the server when it starts.

import crypto from 'node:crypto';
import fs from 'node:fs';
import { InvalidArgumentError } from '../../sdk/errors.js';
import type { TlsMode } from '../../sdk/transport-security.js';
import { identitiesOf, nodeIdentityUri } from '../../sdk/transport-security.js';

/** The tls section of a server's config: the mode and the three PEM files. */
export interface NodeTlsConfig {
  /** `off` (default), `transitional` (plain and TLS on one port) or `required` (TLS only). */
  mode: TlsMode;
  /** The cluster CA certificate(s) (PEM file); peers' and clients' certificates must chain to it. */
  ca: string;
  /** This node's certificate (PEM file), signed by the CA, naming URI:ringkv://node/<id>. */
  cert: string;
  /** The private key of `cert` (PEM file, unencrypted). */
  key: string;
}

/** The loaded material of a node in `transitional` or `required` mode. */
export interface NodeTlsMaterial {
  ca: Buffer;
  cert: Buffer;
  key: Buffer;
  /** When the certificate expires (for the log and the metrics). */
  notAfter: Date;
}

const SERVER_AUTH = '1.3.6.1.5.5.7.3.1';
const CLIENT_AUTH = '1.3.6.1.5.5.7.3.2';

function readPem(setting: string, file: string): Buffer {
  if (!file) throw new InvalidArgumentError(`${setting} is required when tls.mode is transitional or required`);
  try {
    return fs.readFileSync(file);
  } catch (err) {
    throw new InvalidArgumentError(`${setting}: cannot read ${file}: ${(err as Error).message}`);
  }
}

/** The certificates of a PEM bundle (one or more BEGIN CERTIFICATE blocks). */
function certificates(setting: string, file: string, pem: Buffer): crypto.X509Certificate[] {
  const blocks = pem.toString('utf8').match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
  if (blocks.length === 0) throw new InvalidArgumentError(`${setting}: ${file} holds no PEM certificate`);
  return blocks.map((b) => {
    try {
      return new crypto.X509Certificate(b);
    } catch (err) {
      throw new InvalidArgumentError(`${setting}: ${file} holds a certificate that cannot be parsed: ${(err as Error).message}`);
    }
  });
}

/**
 * Reads and checks the material of node `id`. Throws InvalidArgumentError naming the
 * setting, the file and what is wrong.
 */
export function loadNodeTls(cfg: NodeTlsConfig, id: string, now: Date = new Date()): NodeTlsMaterial {
  const ca = readPem('tls.ca', cfg.ca);
  const cert = readPem('tls.cert', cfg.cert);
  const key = readPem('tls.key', cfg.key);
  const cas = certificates('tls.ca', cfg.ca, ca);
  const [leaf] = certificates('tls.cert', cfg.cert, cert);
  let privateKey: crypto.KeyObject;
  try {
    privateKey = crypto.createPrivateKey(key);
  } catch (err) {
    throw new InvalidArgumentError(`tls.key: ${cfg.key} is not a readable unencrypted private key: ${(err as Error).message}`);
  }
  if (!leaf!.checkPrivateKey(privateKey)) {
    throw new InvalidArgumentError(`tls.key: ${cfg.key} does not match the certificate ${cfg.cert} (tls.cert)`);
  }
  if (!cas.some((c) => leaf!.checkIssued(c) && leaf!.verify(c.publicKey))) {
    throw new InvalidArgumentError(`tls.cert: ${cfg.cert} is not signed by the CA in ${cfg.ca} (tls.ca; issuer: ${leaf!.issuer.replace(/\n/g, ', ')})`);
  }
  const notBefore = new Date(leaf!.validFrom);
  const notAfter = new Date(leaf!.validTo);
  if (now < notBefore) throw new InvalidArgumentError(`tls.cert: ${cfg.cert} is not valid before ${notBefore.toISOString()}`);
  if (now > notAfter) throw new InvalidArgumentError(`tls.cert: ${cfg.cert} expired on ${notAfter.toISOString()}`);
  const eku = leaf!.keyUsage;
  if (eku && eku.length > 0 && !(eku.includes(SERVER_AUTH) && eku.includes(CLIENT_AUTH))) {
    throw new InvalidArgumentError(
      `tls.cert: ${cfg.cert} is not a node certificate: a node serves and calls its peers, so its extended key usage needs serverAuth and clientAuth (it has ${eku.join(', ')})`,
    );
  }
  const ids = identitiesOf(leaf!.subjectAltName);
  if (!ids.nodes.includes(id)) {
    throw new InvalidArgumentError(
      `tls.cert: ${cfg.cert} does not name this node: its subject alt names must hold URI:${nodeIdentityUri(id)} ` +
        `(they are: ${leaf!.subjectAltName ?? 'none'}); make one with \`ringkv certs --nodes ${id}\``,
    );
  }
  return { ca, cert, key, notAfter };
}
