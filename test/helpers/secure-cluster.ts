// A cluster of real processes with TLS required and authentication on, for the auth tests:
// certificates made with openssl (helpers/certs.ts), the first admin made with a node's
// certificate as `ringkv auth init` makes it, users and roles through the auth admin route,
// and one-shot HTTPS requests carrying a token. Everything is stopped at the test's teardown.

import type { Test } from 'tap';
import { decodeMessage, encodeMessage, PROTOCOL_VERSION, Routes } from '../../sdk/wire/protocol.js';
import type { AuthAdminRequest } from '../../storage-server/auth/auth-service.js';
import type { Answer, TestCerts } from './certs.js';
import { httpsRequest, makeTestCerts, tlsArgs } from './certs.js';
import { TestCluster } from './cluster.js';
import type { TestClusterOptions } from './cluster.js';

export interface SecureCluster {
  c: TestCluster;
  certs: TestCerts;
  /** The token of `admin`, made by `auth init` with n1's certificate. */
  adminToken: string;
  /** An auth admin action through n1 with n1's certificate; resolves with its answer. */
  authAdmin<T = Record<string, unknown>>(req: Omit<AuthAdminRequest, 'v'>, via?: string): Promise<T>;
  /** Adds a role with grants (prefix -> perms) and resolves once it is made. */
  role(name: string, grants: Record<string, ('read' | 'write' | 'admin')[]>): Promise<void>;
  /** Adds a user holding `roles`; resolves with its token. */
  user(name: string, roles: string[]): Promise<string>;
  /** One HTTPS request to a node (by id), with `token` and optionally a certificate. */
  request(id: string, o: { method?: string; path: string; token?: string | undefined; body?: Buffer | string; headers?: Record<string, string>; identity?: { cert: Buffer; key: Buffer } }): Promise<Answer>;
}

/** Starts `nodes` nodes with TLS required and --auth, and makes the first admin. */
export async function startSecureCluster(t: Test, o: { nodes?: number; env?: Record<string, string>; args?: string[] } & Pick<TestClusterOptions, 'logLevel'> = {}): Promise<SecureCluster> {
  const n = o.nodes ?? 3;
  const ids = Array.from({ length: n }, (_, i) => `n${i + 1}`);
  const certs = makeTestCerts(ids, ['app']);
  t.teardown(() => certs.cleanup());
  const c = await TestCluster.start(t, {
    nodes: n,
    ...(o.args ? { args: o.args } : {}),
    ...(o.env ? { env: o.env } : {}),
    ...(o.logLevel ? { logLevel: o.logLevel } : {}),
    nodeArgs: (node) => [...tlsArgs(certs, node.id, 'required'), '--auth'],
    // The helper's own requests (views, internal calls) present n1's node certificate.
    tls: { ca: certs.ca, ...certs.node('n1') },
  });
  const authAdmin = <T>(req: Omit<AuthAdminRequest, 'v'>, via = 'n1') => c.call<T>(via, Routes.authAdmin, { v: PROTOCOL_VERSION, ...req }, 15_000);
  const init = await authAdmin<{ token: string }>({ action: 'init', name: 'admin' });
  const request: SecureCluster['request'] = (id, r) =>
    httpsRequest(c.node(id).address, {
      method: r.method ?? 'GET',
      path: r.path,
      headers: { ...(r.headers ?? {}), ...(r.token ? { authorization: `Bearer ${r.token}` } : {}) },
      ...(r.body !== undefined ? { body: r.body } : {}),
      ca: certs.ca,
      ...(r.identity ? { identity: r.identity } : {}),
    });
  return {
    c,
    certs,
    adminToken: init.token,
    authAdmin,
    async role(name, grants) {
      await authAdmin({ action: 'role-add', name });
      for (const [prefix, perms] of Object.entries(grants)) await authAdmin({ action: 'role-grant', name, prefix, perms });
    },
    async user(name, roles) {
      return (await authAdmin<{ token: string }>({ action: 'user-add', name, roles })).token;
    },
    request,
  };
}

/** The stable code of an answer's error body (msgpack on /internal/, JSON elsewhere). */
export function codeOf(a: Answer): string | undefined {
  try {
    return decodeMessage<{ code?: string }>(a.body).code;
  } catch {
    try {
      return (JSON.parse(a.body.toString()) as { code?: string }).code;
    } catch {
      return undefined;
    }
  }
}

/** A msgpack POST body and its headers. */
export function msgpackBody(msg: unknown): { body: Buffer; headers: Record<string, string> } {
  return { body: encodeMessage(msg), headers: { 'content-type': 'application/msgpack', accept: 'application/msgpack' } };
}
