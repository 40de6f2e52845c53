// Who may call which endpoint of a node: the identity a connection proves (nothing over
// plain HTTP; over TLS no certificate, a refused one, a client certificate, or a node
// certificate naming ringkv://node/<id>), the user a bearer token names when authentication
// is on, and the one table of which endpoint takes which. The server asks checkAccess()
// before it routes any request and gets the caller back; per-key permissions (public API,
// batch operations) are then asked of the caller's principal. The matrix is written out in
// storage-server/tls/README.md and storage-server/auth/README.md. Single-threaded;
// connection identities are cached per connection.

import type { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { RingkvError } from '../../sdk/errors.js';
import type { TlsMode } from '../../sdk/transport-security.js';
import { identitiesOf } from '../../sdk/transport-security.js';
import { Routes } from '../../sdk/wire/protocol.js';
import type { AuthCaller } from '../auth/auth-service.js';
import type { Principal } from '../auth/permissions.js';
import { KV_PREFIX, keyFromPath } from './public-api.js';
import { DT_PREFIX, keyFromDtPath } from './data-type-api.js';

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
 * Endpoint classes by certificate (TLS): `open` anyone (health, metrics, dashboard files);
 * `public` the public API, any TLS identity but a refused one; `data` the internal
 * endpoints SDK clients and the CLI call (batch, members, status, ring, hot keys, the near
 * cache's invalidation streams): a client or node certificate;
 * `node` the endpoints only nodes call (gossip, failure detection, hints, anti-entropy,
 * streaming, ring fences, the user table, admin, shipping between data centers): a node
 * certificate.
 */
export type EndpointClass = 'open' | 'public' | 'data' | 'node';

/**
 * What an endpoint needs when authentication is on: `none`; `token` a valid token of any
 * user (a user without roles is a monitoring account); `key` a valid token whose per-key
 * permissions the handler checks (public API, batch); `admin` a token with admin; `node` a
 * node certificate and nothing else. A node certificate passes everywhere.
 */
export type AuthNeed = 'none' | 'token' | 'key' | 'admin' | 'node';

interface EndpointRule {
  cls: EndpointClass;
  auth: AuthNeed;
}

const INTERNAL: Record<string, EndpointRule> = {
  [Routes.batch]: { cls: 'data', auth: 'key' },
  [Routes.members]: { cls: 'data', auth: 'token' },
  [Routes.status]: { cls: 'data', auth: 'token' },
  // The ring the dashboard draws (arcs, shares, a key's replicas): what the status and members show.
  [Routes.ring]: { cls: 'data', auth: 'token' },
  [Routes.whoami]: { cls: 'data', auth: 'token' },
  // Listing (keys(), entries(), ringkv export): a client's read of one replica's keys; a
  // user's page holds only the keys it may read (storage-server/streaming/range-scan.ts).
  [Routes.scan]: { cls: 'data', auth: 'key' },
  // Key names, as the status's top 10 shows them: what any monitoring account may see.
  [Routes.hotKeys]: { cls: 'data', auth: 'token' },
  // A near cache's stream sends only keys its own Gets tracked, and a Get is tracked only
  // after its per-key read permission passed (the batch handler), so a token is enough here.
  [Routes.invalidations]: { cls: 'data', auth: 'token' },
  [Routes.gossip]: { cls: 'node', auth: 'node' },
  [Routes.ping]: { cls: 'node', auth: 'node' },
  [Routes.pingReq]: { cls: 'node', auth: 'node' },
  [Routes.hints]: { cls: 'node', auth: 'node' },
  // Merkle hashes (no keys, no values; bounded work): `ringkv repair --check` with an admin's token.
  [Routes.merkle]: { cls: 'node', auth: 'admin' },
  [Routes.merkleKeys]: { cls: 'node', auth: 'node' },
  [Routes.stream]: { cls: 'node', auth: 'node' },
  [Routes.ringFence]: { cls: 'node', auth: 'node' },
  [Routes.authSync]: { cls: 'node', auth: 'node' },
  // Operator actions: a node certificate, or (authentication on) a token with admin.
  [Routes.admin]: { cls: 'node', auth: 'admin' },
  [Routes.authAdmin]: { cls: 'node', auth: 'admin' },
  // Objects shipped from another data center: only its nodes send them.
  [Routes.replApply]: { cls: 'node', auth: 'node' },
};

/**
 * Paths not in the tables (an internal route added later, or any other new path) are
 * node-only until listed: a new route never opens up by default.
 */
const NODE_ONLY: EndpointRule = { cls: 'node', auth: 'node' };

/** The paths outside /internal/ and /api/ that a node serves. */
const OTHER: Record<string, EndpointRule> = {
  '/health': { cls: 'open', auth: 'none' },
  '/metrics': { cls: 'open', auth: 'token' },
  // The dashboard's files (they hold no data; the page then asks for a token).
  '/ui': { cls: 'open', auth: 'none' },
};

/** The internal paths the policy lists (the tests check every wire route is among them). */
export function listedInternalRoutes(): string[] {
  return Object.keys(INTERNAL);
}

/** The rule of the endpoint at `path`. */
export function endpointRule(path: string): EndpointRule {
  if (path.startsWith('/internal/')) return INTERNAL[path] ?? NODE_ONLY;
  // Every public API route (/api/...) checks per-key permissions: see checkKeyAccess().
  if (path.startsWith('/api/')) return { cls: 'public', auth: 'key' };
  if (path.startsWith('/ui/')) return OTHER['/ui']!;
  return OTHER[path] ?? NODE_ONLY;
}

/** The class of the endpoint at `path` (by certificate). */
export function endpointClass(path: string): EndpointClass {
  return endpointRule(path).cls;
}

/** Routes that move the user table or manage it: never over plain HTTP, whatever the mode. */
function needsTlsAlways(path: string): boolean {
  return path === Routes.authSync || path === Routes.authAdmin;
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
 * What the request's bearer token proved (authentication on): none sent, one that names no
 * live user (unknown, rotated or removed; or not a bearer token), or a user's principal.
 */
export type TokenCheck = { kind: 'none' } | { kind: 'invalid' } | { kind: 'valid'; principal: Principal };

export interface AccessSettings {
  tlsMode: TlsMode;
  /** Authentication on (auth.enabled). */
  auth: boolean;
}

/**
 * Throws the error a request to `path` over a connection with `id` and token `token` gets
 * from a node with `s`, or returns who the caller is when it may go on. The whole matrix is
 * here: transport first (426 plain to `required`, 401 a refused certificate), then a node
 * certificate passes everywhere, then either the certificate classes (authentication off) or
 * the token rules (on).
 */
export function checkAccess(s: AccessSettings, path: string, id: PeerIdentity, token: TokenCheck = { kind: 'none' }): AuthCaller {
  checkTransport(s.tlsMode, id);
  if (id.kind === 'plain') {
    // The user table never travels over plain HTTP (nodes in off and transitional mode trust their network for the rest).
    if (needsTlsAlways(path)) throw new RingkvError('UNAUTHENTICATED', `${path} takes a node certificate over TLS (or an admin token, for user management): this is plain HTTP`);
    return { kind: 'anyone' };
  }
  if (id.kind === 'node') return { kind: 'node', id: id.id };
  const rule = endpointRule(path);
  if (!s.auth) {
    if (rule.cls === 'open' || rule.cls === 'public') return { kind: 'anyone' };
    if (rule.cls === 'data') {
      if (id.kind === 'client') return { kind: 'anyone' };
      throw new RingkvError('UNAUTHENTICATED', `${path} needs a client or node certificate of the cluster CA; this connection has ${describe(id)}`);
    }
    return refuseNonNode(path, id);
  }
  switch (rule.auth) {
    case 'none':
      return { kind: 'anyone' };
    case 'node':
      return refuseNonNode(path, id);
    default: {
      if (token.kind === 'none') throw new RingkvError('UNAUTHENTICATED', `${path} needs a token: send Authorization: Bearer <token> (authentication is on)`);
      if (token.kind === 'invalid') throw new RingkvError('UNAUTHENTICATED', 'the token is not valid: unknown, rotated, or its user was removed');
      if (rule.auth === 'admin' && !token.principal.admin) {
        throw new RingkvError('PERMISSION_DENIED', `${path} needs admin; user ${token.principal.user} (roles: ${token.principal.roles.join(', ') || 'none'}) does not have it`);
      }
      return { kind: 'user', principal: token.principal };
    }
  }
}

/**
 * The transport part alone: plain HTTP to a node in `required` mode (426), a certificate
 * that was not accepted (401). CORS preflights, which carry no credentials, get only this.
 */
export function checkTransport(tlsMode: TlsMode, id: PeerIdentity): void {
  if (id.kind === 'plain' && tlsMode === 'required') {
    throw new RingkvError('TLS_REQUIRED', 'this node accepts TLS only (tls mode required): connect with https and the cluster CA');
  }
  if (id.kind === 'refused') {
    throw new RingkvError('UNAUTHENTICATED', `the certificate presented was not accepted: ${id.reason}`, { reason: id.reason });
  }
}

function refuseNonNode(path: string, id: PeerIdentity): never {
  if (id.kind === 'anonymous') {
    throw new RingkvError('UNAUTHENTICATED', `${path} is for nodes of the cluster: it needs a node certificate; this connection has ${describe(id)}`);
  }
  throw new RingkvError('PERMISSION_DENIED', `${path} is for nodes of the cluster: it takes node certificates only; this connection has ${describe(id)}`);
}

/**
 * The per-key permission check of a public API request by a user: the key of the path and
 * the permission its method needs — /api/v1/kv/: GET, HEAD read, PUT, POST, DELETE write;
 * /api/v1/dt/: GET, HEAD read, POST write and read (it answers with the state). Other
 * public routes (none yet) are refused to users without admin until a rule is added here —
 * a new route never opens up by default.
 */
export function checkKeyAccess(caller: AuthCaller, pathname: string, method: string): void {
  if (caller.kind !== 'user') return;
  const p = caller.principal;
  if (pathname.startsWith(KV_PREFIX)) {
    const key = keyFromPath(pathname);
    const perm = method === 'GET' || method === 'HEAD' ? 'read' : 'write';
    if (!p.can(perm, key)) throw new RingkvError('PERMISSION_DENIED', `user ${p.user} may not ${perm} ${JSON.stringify(key.toString('utf8'))}`);
    return;
  }
  if (pathname.startsWith(DT_PREFIX)) {
    const key = keyFromDtPath(pathname);
    const needs: ('read' | 'write')[] = method === 'GET' || method === 'HEAD' ? ['read'] : ['write', 'read'];
    for (const perm of needs) {
      if (!p.can(perm, key)) throw new RingkvError('PERMISSION_DENIED', `user ${p.user} may not ${perm} ${JSON.stringify(key.toString('utf8'))}${perm === 'read' && needs.length > 1 ? ' (an update answers with the state)' : ''}`);
    }
    return;
  }
  if (!p.admin) throw new RingkvError('PERMISSION_DENIED', `${pathname} has no per-key permission rule yet (access-policy.ts checkKeyAccess): admins only`);
}
