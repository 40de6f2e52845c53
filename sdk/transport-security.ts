// Transport security as the SDK and the storage servers share it: the TLS modes a node
// advertises, the identities certificates carry (ringkv://node/<id>, ringkv://client/<name>),
// the one rule by which every sender picks plain HTTP or TLS for a node, and the check a
// sender makes of a server's certificate. Pure data and functions; see
// storage-server/tls/README.md for the design (identities, endpoint matrix, rolling move).

import type { PeerCertificate } from 'node:tls';
import tls from 'node:tls';
import { InvalidArgumentError } from './errors.js';

/**
 * What a node accepts, as it advertises in its MemberInfo (absent = `off`):
 * `off` plain HTTP only; `transitional` plain and TLS on the same port; `required` TLS only.
 */
export type TlsMode = 'off' | 'transitional' | 'required';

export const TLS_MODES: readonly TlsMode[] = ['off', 'transitional', 'required'];

/** True for one of the three modes. */
export function isTlsMode(x: unknown): x is TlsMode {
  return x === 'off' || x === 'transitional' || x === 'required';
}

/** PEM text or bytes, or a list of them (a CA bundle). */
export type Pem = string | Buffer;

/** The SDK's TLS options (`connect({ tls })`). */
export interface TlsOptions {
  /** The cluster's CA certificate(s), PEM. Servers must present a node certificate it signed. */
  ca: Pem | Pem[];
  /** This client's certificate, PEM (needed for the internal data endpoints; optional for the public API). */
  cert?: Pem;
  /** The private key of `cert`, PEM. */
  key?: Pem;
  /**
   * Server name for SNI, and, when given, also checked against the server certificate's
   * DNS/IP names as an HTTPS client would. Default: none (addresses come from gossip; the
   * node identity in the certificate is what is checked).
   */
  servername?: string;
  /**
   * Also speak plain HTTP, to the nodes the cluster's view lists as `off` (and to seeds
   * first, switching to TLS when a seed answers TLS_REQUIRED): for an application that keeps
   * running while its cluster moves from plain to TLS. Default false: TLS to every node.
   */
  allowPlain?: boolean;
}

/**
 * How a sender picks the protocol: `off` never speaks TLS; `required` always does;
 * `transitional` speaks TLS to nodes that accept it and plain to the others.
 */
export type TlsPolicy = TlsMode;

/** TLS material and policy of a transport (a node's, or an SDK client's). */
export interface TransportTls {
  ca: Pem | Pem[];
  cert?: Pem | undefined;
  key?: Pem | undefined;
  servername?: string | undefined;
  /** `transitional` or `required` (an `off` sender has no TLS material at all). */
  policy: 'transitional' | 'required';
}

/** The transport TLS settings of an SDK client's options (undefined: plain only). */
export function transportTlsFromOptions(o: TlsOptions | undefined): TransportTls | undefined {
  if (o === undefined) return undefined;
  if (!o || typeof o !== 'object') throw new InvalidArgumentError('tls must be an object { ca, cert?, key?, servername? }');
  const pemOk = (x: unknown) => typeof x === 'string' || Buffer.isBuffer(x);
  if (!(pemOk(o.ca) || (Array.isArray(o.ca) && o.ca.length > 0 && o.ca.every(pemOk)))) {
    throw new InvalidArgumentError('tls.ca must be the PEM text (string or Buffer) of the cluster CA');
  }
  if ((o.cert === undefined) !== (o.key === undefined)) throw new InvalidArgumentError('tls.cert and tls.key go together');
  if (o.cert !== undefined && !(pemOk(o.cert) && pemOk(o.key))) throw new InvalidArgumentError('tls.cert and tls.key must be PEM strings or Buffers');
  if (o.servername !== undefined && typeof o.servername !== 'string') throw new InvalidArgumentError('tls.servername must be a string');
  if (o.allowPlain !== undefined && typeof o.allowPlain !== 'boolean') throw new InvalidArgumentError('tls.allowPlain must be a boolean');
  return { ca: o.ca, cert: o.cert, key: o.key, servername: o.servername, policy: o.allowPlain ? 'transitional' : 'required' };
}

/**
 * The one rule every sender follows (nodes, SDK clients, the CLI): which protocol to use
 * for a node that the sender's view lists with `peer` (undefined: an address not in the
 * view, such as a seed). A transitional sender that gets TLS_REQUIRED back from a plain
 * request repeats it over TLS.
 */
export function schemeFor(policy: TlsPolicy, peer: TlsMode | undefined): 'http' | 'https' {
  if (policy === 'off') return 'http';
  if (policy === 'required') return 'https';
  return peer === 'transitional' || peer === 'required' ? 'https' : 'http';
}

/** Node ids as config.ts allows them. */
const ID_RE = /^[A-Za-z0-9._-]{1,64}$/;

/** The SAN URI that names node `id`. */
export function nodeIdentityUri(id: string): string {
  return `ringkv://node/${id}`;
}

/** The SAN URI that names client `name`. */
export function clientIdentityUri(name: string): string {
  return `ringkv://client/${name}`;
}

/** The ringkv identities a certificate's subjectAltName string names. */
export interface CertIdentities {
  nodes: string[];
  clients: string[];
}

/**
 * Reads the ringkv identities out of a subjectAltName string as Node prints it
 * ("URI:ringkv://node/n1, DNS:localhost, IP Address:127.0.0.1"). Entries Node had to
 * quote (they held separators) never match.
 */
export function identitiesOf(subjectAltName: string | undefined): CertIdentities {
  const out: CertIdentities = { nodes: [], clients: [] };
  if (!subjectAltName) return out;
  for (const entry of subjectAltName.split(', ')) {
    if (!entry.startsWith('URI:ringkv://')) continue;
    const rest = entry.slice('URI:ringkv://'.length);
    const slash = rest.indexOf('/');
    if (slash < 0) continue;
    const kind = rest.slice(0, slash);
    const name = rest.slice(slash + 1);
    if (!ID_RE.test(name)) continue;
    if (kind === 'node') out.nodes.push(name);
    else if (kind === 'client') out.clients.push(name);
  }
  return out;
}

/**
 * The check a sender makes of a server's certificate (besides the CA signature and dates,
 * which TLS itself checks): it must name a node (ringkv://node/<id>), so that a client
 * certificate of the same CA cannot pose as a server; with `servername`, also the usual
 * host-name check.
 */
export function checkNodeServerIdentity(servername: string | undefined) {
  return (host: string, cert: PeerCertificate): Error | undefined => {
    if (identitiesOf(cert.subjectaltname).nodes.length === 0) {
      return new Error(`the server at ${host || '(address)'} did not present a ringkv node certificate (subject alt names: ${cert.subjectaltname ?? 'none'})`);
    }
    return servername ? tls.checkServerIdentity(servername, cert) : undefined;
  };
}
