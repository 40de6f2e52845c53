// The node's HTTP router: one table of routes (path or prefix, the methods taken, the
// handler, the label of its metrics) and the steps every request takes before its handler
// — the URL, CORS, the access check of http/access-policy.ts (transport, certificate, token,
// per-key permission on the public API), cross-site protection — and after it: error answers
// with stable codes (msgpack on /internal/, JSON elsewhere) and request metrics. Handlers run
// concurrently, each answering its own response; the router counts them so a stop can wait
// until they are done.

import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import type pino from 'pino';
import { MalformedRequestError, RingkvError } from '../../sdk/errors.js';
import type { TlsMode } from '../../sdk/transport-security.js';
import type { AuthCaller, AuthService } from '../auth/auth-service.js';
import { bearerToken } from '../auth/tokens.js';
import type { ServerMetrics } from '../metrics.js';
import type { TokenCheck } from './access-policy.js';
import { checkAccess, checkKeyAccess, checkTransport, peerIdentity } from './access-policy.js';
import { answerPreflight, checkOrigin, setCorsHeaders } from './cors.js';
import { discardBody } from './read-body.js';
import { sendError } from './respond.js';

/** A request past the router's checks, as a handler gets it. */
export interface RouteRequest {
  req: IncomingMessage;
  res: ServerResponse;
  url: URL;
  /** The URL's path. */
  path: string;
  /** Who the access check found the caller to be. */
  caller: AuthCaller;
  /** performance.now() when the request arrived. */
  arrivedAt: number;
}

export interface Route {
  /** The route label of ringkv_http_requests_total and the latency histogram. */
  name: string;
  /** The exact path this route serves. */
  path?: string;
  /** A path prefix this route serves (the public API's /api/v1/kv/{key}, the dashboard's /ui/{file}). */
  prefix?: string;
  /** The methods it takes; others are answered METHOD_NOT_ALLOWED. Absent: the handler decides. */
  methods?: readonly string[];
  /** Answers the request; a thrown or rejected error is answered with its code. */
  handle(r: RouteRequest): Promise<void> | void;
}

export interface RouterOptions {
  routes: Route[];
  tlsMode: TlsMode;
  /** Authentication on (auth.enabled): tokens are checked. */
  authEnabled: boolean;
  /** The user table that checks tokens (absent when the node keeps none). */
  auth: AuthService | undefined;
  corsAllowedOrigins: readonly string[];
  metrics: ServerMetrics;
  log: pino.Logger;
  /** True once the server stops: answers outside /internal/ close their connection. */
  stopping: () => boolean;
}

export class Router {
  private readonly exact = new Map<string, Route>();
  private readonly prefixes: Route[] = [];
  private inFlight = 0;
  private idleWaiters: (() => void)[] = [];

  constructor(private readonly o: RouterOptions) {
    for (const r of o.routes) {
      if (r.path !== undefined) {
        if (this.exact.has(r.path)) throw new Error(`two routes for ${r.path}`);
        this.exact.set(r.path, r);
      }
      if (r.prefix !== undefined) this.prefixes.push(r);
    }
  }

  /** Every exact path and prefix the table serves (the tests check each has an access rule). */
  get paths(): string[] {
    return [...this.exact.keys(), ...this.prefixes.map((r) => r.prefix!)];
  }

  /** Requests being answered. */
  get requestsInFlight(): number {
    return this.inFlight;
  }

  /** Resolves when no request is being answered. */
  whenIdle(): Promise<void> {
    if (this.inFlight === 0) return Promise.resolve();
    return new Promise<void>((resolve) => this.idleWaiters.push(resolve));
  }

  /** The route serving path `p`, if any. */
  find(p: string): Route | undefined {
    return this.exact.get(p) ?? this.prefixes.find((r) => p.startsWith(r.prefix!));
  }

  /** The request listener of the node's HTTP server. */
  readonly handle = (req: IncomingMessage, res: ServerResponse): void => {
    this.inFlight++;
    const started = performance.now();
    let route = 'other';
    res.on('close', () => {
      this.o.metrics.httpRequests.inc({ route, method: req.method ?? '', status: String(res.statusCode) });
      this.o.metrics.httpLatency.observe({ route, method: req.method ?? '' }, (performance.now() - started) / 1000);
      if (--this.inFlight === 0) this.notifyIdle();
    });
    let url: URL;
    try {
      url = new URL(req.url ?? '/', 'http://node');
    } catch {
      sendError(res, new MalformedRequestError('bad request URL'));
      return;
    }
    const p = url.pathname;
    const { tlsMode, corsAllowedOrigins } = this.o;
    if (this.o.stopping() && !p.startsWith('/internal/')) res.setHeader('connection', 'close');
    setCorsHeaders(req, res, p, corsAllowedOrigins);
    let work: Promise<void> | void = undefined;
    try {
      const peer = peerIdentity(req.socket);
      // Plain HTTP to a node that requires TLS: answer, then close the connection.
      if (peer.kind === 'plain' && tlsMode === 'required') res.setHeader('connection', 'close');
      if (req.method === 'OPTIONS') {
        // A CORS preflight carries no credentials: only the transport is checked.
        checkTransport(tlsMode, peer);
        route = 'preflight';
        answerPreflight(req, res, p, corsAllowedOrigins);
        return;
      }
      // The access check per route: the rule of the path (access-policy.ts), before any routing.
      const caller = checkAccess({ tlsMode, auth: this.o.authEnabled }, p, peer, this.tokenOf(req, peer.kind === 'node'));
      checkOrigin(req, p, corsAllowedOrigins);
      if (p.startsWith('/api/')) checkKeyAccess(caller, p, req.method ?? 'GET');
      const r = this.find(p);
      if (!r) throw new RingkvError('ROUTE_NOT_FOUND', `no route ${req.method} ${p}`);
      route = r.name;
      if (r.methods && !r.methods.includes(req.method ?? '')) throw new RingkvError('METHOD_NOT_ALLOWED', `${r.name} takes ${r.methods.join(' or ')}`);
      work = r.handle({ req, res, url, path: p, caller, arrivedAt: started });
    } catch (err) {
      discardBody(req);
      const e = sendError(res, err, p.startsWith('/internal/') ? 'msgpack' : 'json');
      if (e.code === 'UNAUTHENTICATED' || e.code === 'PERMISSION_DENIED') this.o.metrics.authRefusals.inc({ code: e.code, what: 'request' });
      return;
    }
    if (work) {
      work.catch((err: unknown) => {
        discardBody(req);
        const e = sendError(res, err, p.startsWith('/internal/') ? 'msgpack' : 'json');
        if (e.code === 'INTERNAL') this.o.log.error({ err, route }, 'request failed');
      });
    }
  };

  /**
   * What the request's bearer token proves (authentication on; nodes prove themselves by
   * their certificates and are not asked): nothing sent, not valid, or a user.
   */
  private tokenOf(req: IncomingMessage, fromNode: boolean): TokenCheck {
    if (!this.o.authEnabled || fromNode || !this.o.auth) return { kind: 'none' };
    const token = bearerToken(req.headers.authorization);
    if (token === undefined) return { kind: 'none' };
    if (token === null) return { kind: 'invalid' };
    const principal = this.o.auth.table.authenticate(token);
    return principal ? { kind: 'valid', principal } : { kind: 'invalid' };
  }

  private notifyIdle(): void {
    const w = this.idleWaiters;
    this.idleWaiters = [];
    for (const f of w) f();
  }
}

/**
 * Answers what Node's HTTP parser refused before any route saw it: a request not received
 * in time (headersTimeoutMs, requestReceiveTimeoutMs), headers too large, or one that could
 * not be parsed — with a coded JSON body when the socket still takes it.
 */
export function answerClientError(err: NodeJS.ErrnoException, socket: Duplex, log: pino.Logger): void {
  const timedOut = err.code === 'ERR_HTTP_REQUEST_TIMEOUT';
  const tooBig = err.code === 'HPE_HEADER_OVERFLOW';
  const [status, code, message] = timedOut
    ? ['408 Request Timeout', 'TIMEOUT', 'the request was not received in time']
    : tooBig
      ? ['431 Request Header Fields Too Large', 'MALFORMED_REQUEST', 'request headers too large']
      : ['400 Bad Request', 'MALFORMED_REQUEST', 'malformed HTTP request'];
  const body = JSON.stringify({ code, message });
  if (socket.writable) {
    socket.end(`HTTP/1.1 ${status}\r\nconnection: close\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
  } else socket.destroy();
  log.debug({ err: err.message, code: err.code }, 'bad or slow HTTP from a client');
}
