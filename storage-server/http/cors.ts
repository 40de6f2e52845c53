// Cross-origin rules of a node's HTTP port: the dashboard of one node reads the monitoring
// GETs of the others (any origin); the public API answers the origins in corsAllowedOrigins;
// internal endpoints take POST bodies only as msgpack, which no page can send cross-site
// without a preflight (refused here), so a web page an operator opens cannot drive them.
// Stateless.

import type { IncomingMessage, ServerResponse } from 'node:http';
import { RingkvError } from '../../sdk/errors.js';
import { MSGPACK_CONTENT_TYPE, Routes } from '../../sdk/wire/protocol.js';
import { DT_PREFIX } from './data-type-api.js';
import { KV_PREFIX } from './public-api.js';

/** The GET routes the dashboard reads on every node (CORS from any origin, with a token when authentication is on). */
const MONITOR_ROUTES = new Set<string>([Routes.status, Routes.ring, Routes.members, Routes.whoami, Routes.hotKeys, '/metrics', '/health']);

/** True for the public API's paths (key-value and data types). */
function isPublicApi(p: string): boolean {
  return p.startsWith(KV_PREFIX) || p.startsWith(DT_PREFIX);
}

/** The CORS headers of an answer: any origin for the monitoring GETs, the allowed ones for the public API. */
export function setCorsHeaders(req: IncomingMessage, res: ServerResponse, p: string, allowedOrigins: readonly string[]): void {
  // The dashboard of one node reads the status and metrics of the others.
  if ((req.method === 'GET' || req.method === 'OPTIONS') && MONITOR_ROUTES.has(p)) {
    res.setHeader('access-control-allow-origin', '*');
  }
  const origin = req.headers.origin;
  if (origin !== undefined && isPublicApi(p) && allowedOrigins.includes(origin)) {
    res.setHeader('access-control-allow-origin', origin);
    res.setHeader('access-control-expose-headers', 'x-ringkv-version, x-ringkv-context, x-ringkv-expires-at');
    res.setHeader('vary', 'origin');
  }
}

/**
 * Cross-site protection. Internal endpoints take POST bodies only as application/msgpack,
 * which no page can send cross-site without a CORS preflight (that this node refuses), so
 * a web page an operator opens cannot drive them with a "simple" request. A public-API
 * write that carries an Origin header (a browser) is refused unless that origin is in
 * corsAllowedOrigins.
 */
export function checkOrigin(req: IncomingMessage, p: string, allowedOrigins: readonly string[]): void {
  const method = req.method ?? 'GET';
  if (p.startsWith('/internal/') && method === 'POST') {
    const ct = String(req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
    if (ct !== MSGPACK_CONTENT_TYPE) {
      throw new RingkvError('UNSUPPORTED_MEDIA_TYPE', `internal endpoints take ${MSGPACK_CONTENT_TYPE} bodies, not ${JSON.stringify(ct || '(none)')}`);
    }
  }
  const origin = req.headers.origin;
  if (origin !== undefined && isPublicApi(p) && method !== 'GET' && method !== 'HEAD' && method !== 'OPTIONS') {
    if (!allowedOrigins.includes(origin)) {
      throw new RingkvError('PERMISSION_DENIED', `writes from pages of ${JSON.stringify(origin)} are not allowed (corsAllowedOrigins)`);
    }
  }
}

/**
 * CORS preflight: for the public API, from the origins in corsAllowedOrigins; for the GETs
 * the dashboard of another node makes (status, members, metrics, health, whoami), from any
 * origin, with the Authorization header (a page of a foreign origin has no token to send).
 */
export function answerPreflight(req: IncomingMessage, res: ServerResponse, p: string, allowedOrigins: readonly string[]): void {
  const origin = req.headers.origin;
  if (MONITOR_ROUTES.has(p) && origin !== undefined && req.headers['access-control-request-method'] === 'GET') {
    res.writeHead(204, {
      'access-control-allow-origin': '*',
      'access-control-allow-methods': 'GET',
      'access-control-allow-headers': 'authorization, accept',
      'access-control-max-age': '600',
    });
    res.end();
    return;
  }
  if (!isPublicApi(p) || origin === undefined || !allowedOrigins.includes(origin)) {
    throw new RingkvError('PERMISSION_DENIED', `cross-origin requests to ${p} are not allowed`);
  }
  res.writeHead(204, {
    'access-control-allow-origin': origin,
    'access-control-allow-methods': 'GET, HEAD, PUT, POST, DELETE',
    'access-control-allow-headers': 'content-type, consistency, x-ringkv-context, x-ringkv-ttl, x-ringkv-timeout-ms, x-ringkv-op-id, authorization',
    'access-control-expose-headers': 'x-ringkv-version, x-ringkv-context, x-ringkv-expires-at',
    'access-control-max-age': '600',
    vary: 'origin',
  });
  res.end();
}
