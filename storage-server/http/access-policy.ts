// Who may call which endpoint of a node: the identity a connection proves (nothing over
// plain HTTP; over TLS no certificate, a refused one, a client certificate, or a node
// certificate naming ringkv://node/<id>) and the one table of which endpoint takes which
// identity. The server asks check() before it routes any request; the matrix is written
// out in storage-server/tls/README.md. Authentication by token (a later change) adds an
// identity here and nowhere else. Single-threaded; identities are cached per connection.

import type { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { RingkvError } from '../../sdk/errors.js';
import type { TlsMode } from '../../sdk/transport-security.js';
import { identitiesOf } from '../../sdk/transport-security.js';
import { Routes } from '../../sdk/wire/protocol.js';
import { KV_PREFIX } from './public-api.js';

/** What a connection proved about its peer. */
export type PeerIdentity =
  /** Plain HTTP: nothing (accepted only by nodes in `off` and `transitional` mode). */
  | { kind: 'plain' }
  /** TLS without a client certificate. */
  | { kind: 'anonymous' }
  /** TLS with a certificate that failed its check (expired, another CA, ...): `reason` is the check's code. */
  | { kind: 'refused'; reason: string }
  /** A certificate of the cluster's CA that names no node (ringkv://client/<name>, or any other). */
  | { kind: 'client'; name: string }
  /** A certificate of the cluster's CA naming ringkv://node/<id>. */
  | { kind: 'node'; id: string };

/**
 * Endpoint classes: `open` anyone (health, metrics, dashboard files); `public` the public
 * API, any TLS identity but a refused one (until tokens come); `data` the internal
 * endpoints SDK clients call (batch, members, status): a client or node certificate;
 * `node` the endpoints only nodes call (gossip, failure detection, hints, anti-entropy,
 * streaming, ring fences, admin): a node certificate.
 */
export type EndpointClass = 'open' | 'public' | 'data' | 'node';

const INTERNAL: Record<string, EndpointClass> = {
  [Routes.batch]: 'data',
  [Routes.members]: 'data',
  [Routes.status]: 'data',
  [Routes.gossip]: 'node',
  [Routes.ping]: 'node',
  [Routes.pingReq]: 'node',
  [Routes.hints]: 'node',
  [Routes.merkle]: 'node',
  [Routes.merkleKeys]: 'node',
  [Routes.stream]: 'node',
  [Routes.admin]: 'node',
  [Routes.ringFence]: 'node',
};

/** The class of the endpoint at `path`. Internal paths not in the table are node-only. */
export function endpointClass(path: string): EndpointClass {
  if (path.startsWith('/internal/')) return INTERNAL[path] ?? 'node';
  if (path.startsWith(KV_PREFIX)) return 'public';
  return 'open';
}

const identities = new WeakMap<Socket, PeerIdentity>();

/** The identity the connection under a request proved (computed once per connection). */
export function peerIdentity(socket: Socket): PeerIdentity {
  let id = identities.get(socket);
  if (id === undefined) {
    id = classify(socket);
    identities.set(socket, id);
  }
  return id;
}

function classify(socket: Socket): PeerIdentity {
  const s = socket as TLSSocket;
  if (!s.encrypted) return { kind: 'plain' };
  const peer = s.getPeerCertificate();
  if (!peer || !peer.raw) return { kind: 'anonymous' };
  if (!s.authorized) {
    // At run time Node gives the OpenSSL verification code as a string.
    const e = s.authorizationError as unknown;
    return { kind: 'refused', reason: typeof e === 'string' ? e : e instanceof Error ? e.message : 'unknown' };
  }
  const ids = identitiesOf(peer.subjectaltname);
  if (ids.nodes.length > 0) return { kind: 'node', id: ids.nodes[0]! };
  return { kind: 'client', name: ids.clients[0] ?? peer.subject?.CN?.toString() ?? '(unnamed)' };
}

function describe(id: PeerIdentity): string {
  switch (id.kind) {
    case 'client':
      return `a client certificate (${id.name})`;
    case 'node':
      return `a node certificate (${id.id})`;
    case 'anonymous':
      return 'no certificate';
    case 'refused':
      return `a certificate that was not accepted (${id.reason})`;
    default:
      return 'plain HTTP';
  }
}

/**
 * Throws the error a request to `path` over a connection with `id` gets from a node in
 * `mode`, or returns when the request may go on. The whole matrix is here.
 */
export function checkAccess(mode: TlsMode, path: string, id: PeerIdentity): void {
  if (id.kind === 'plain') {
    // off and transitional nodes trust their network, as before TLS.
    if (mode === 'required') throw new RingkvError('TLS_REQUIRED', 'this node accepts TLS only (tls mode required): connect with https and the cluster CA');
    return;
  }
  if (id.kind === 'refused') {
    throw new RingkvError('UNAUTHENTICATED', `the certificate presented was not accepted: ${id.reason}`, { reason: id.reason });
  }
  const cls = endpointClass(path);
  if (cls === 'open' || cls === 'public') return;
  if (id.kind === 'node') return;
  if (cls === 'data') {
    if (id.kind === 'client') return;
    throw new RingkvError('UNAUTHENTICATED', `${path} needs a client or node certificate of the cluster CA; this connection has ${describe(id)}`);
  }
  if (id.kind === 'anonymous') {
    throw new RingkvError('UNAUTHENTICATED', `${path} is for nodes of the cluster: it needs a node certificate; this connection has ${describe(id)}`);
  }
  throw new RingkvError('PERMISSION_DENIED', `${path} is for nodes of the cluster: it takes node certificates only; this connection has ${describe(id)}`);
}
