// The transport seam: how the SDK (and a storage server talking to its peers) sends one
// msgpack request to one node and gets the decoded answer. HttpTransport is the real one
// (an undici keep-alive pool per node); FaultyTransport wraps any transport so tests can
// partition, delay or fail nodes deterministically. Transports are safe for concurrent use.
// With TLS material, HttpTransport picks plain HTTP or TLS per node by the rule in
// transport-security.ts, from what the membership view says each node accepts; with a
// token, every request carries it as `Authorization: Bearer`.

import { Pool } from 'undici';
import type { RingkvError } from './errors.js';
import { RingkvError as RingkvErrorClass } from './errors.js';
import { errorFromWire, InvalidArgumentError, NodeUnavailableError, TimeoutError } from './errors.js';
import type { TlsMode, TransportTls } from './transport-security.js';
import { checkNodeServerIdentity, schemeFor } from './transport-security.js';
import { decodeMessage, encodeMessage, MSGPACK_CONTENT_TYPE, PROTOCOL_HEADER, PROTOCOL_VERSION } from './wire/protocol.js';
import { FrameDecoder } from './wire/frames.js';
import type { WireError } from './wire/protocol.js';

export interface CallOptions {
  /** Give up (TimeoutError) after this long. */
  timeoutMs: number;
  /** Default POST when there is a body, GET otherwise. */
  method?: 'GET' | 'POST';
}

/** A long-lived request whose answer is a framed msgpack stream (sdk/wire/frames.ts). */
export interface StreamOptions {
  /** Told each message of the answer, in order. */
  onMessage: (msg: unknown) => void;
  /** Ends the stream from this side (stream() then resolves). */
  signal: AbortSignal;
  /** The stream fails with TimeoutError when nothing arrives for this long (the sender's heartbeats keep it open). */
  idleTimeoutMs: number;
}

export interface Transport {
  /**
   * Sends `body` (msgpack-encoded; undefined for none) to `path` on the node at `address`
   * ("host:port") and resolves with the decoded msgpack answer. Rejects with
   * NodeUnavailableError when the node cannot be reached, TimeoutError after `timeoutMs`,
   * or the typed error the node answered with.
   */
  call<T>(address: string, path: string, body: unknown, opts: CallOptions): Promise<T>;
  /**
   * POSTs `body` to `path` on the node at `address` and hands every message of its framed
   * answer to `onMessage` until the node ends it (resolves), this side aborts it (resolves),
   * or it fails (rejects like call(): NodeUnavailableError, TimeoutError after idleTimeoutMs
   * of silence, or the node's typed error). Optional: the near cache needs it.
   */
  stream?(address: string, path: string, body: unknown, opts: StreamOptions): Promise<void>;
  /** Closes connections. */
  close(): Promise<void>;
}

export interface HttpTransportOptions {
  /** Keep-alive connections per node. Default 8. */
  connectionsPerNode?: number;
  /** TCP connect timeout. Default 1000 ms. */
  connectTimeoutMs?: number;
  /** Idle keep-alive sockets are closed after this long. Default 30 s. */
  keepAliveTimeoutMs?: number;
  /**
   * Source IP address of outgoing connections (undici's `localAddress`), for hosts with
   * several addresses: a server bound to one of them talks to its peers from it too.
   * Default: none (the operating system chooses).
   */
  localAddress?: string;
  /** TLS material and policy; without it every request is plain HTTP. */
  tls?: TransportTls | undefined;
  /**
   * A user's bearer token (storage-server/auth/README.md), sent with every request. Over
   * plain HTTP it would cross the network in the clear: nodes that check tokens require TLS.
   */
  token?: string | undefined;
  /**
   * What the node at an address accepts, from the caller's membership view (`off` for a
   * member that advertises nothing), or undefined for an address not in the view (a seed).
   */
  peerTlsMode?: ((address: string) => TlsMode | undefined) | undefined;
}

const TIMEOUT_CODES = new Set(['UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT', 'UND_ERR_CONNECT_TIMEOUT', 'ETIMEDOUT']);

/** The real transport: HTTP/1.1 keep-alive through one undici Pool per node. */
export class HttpTransport implements Transport {
  /** One pool per node and protocol: a node moving to TLS gets a new pool beside the old one. */
  private readonly pools = new Map<string, Pool>();
  private readonly opts: Required<Omit<HttpTransportOptions, 'tls' | 'peerTlsMode' | 'localAddress' | 'token'>> & { localAddress: string | undefined };
  /** The request headers besides the content type: protocol version, accept, authorization. */
  private readonly baseHeaders: Record<string, string>;
  private readonly tls: TransportTls | undefined;
  private peerTlsMode: (address: string) => TlsMode | undefined;
  private closed = false;

  constructor(opts: HttpTransportOptions = {}) {
    this.opts = {
      connectionsPerNode: opts.connectionsPerNode ?? 8,
      connectTimeoutMs: opts.connectTimeoutMs ?? 1000,
      keepAliveTimeoutMs: opts.keepAliveTimeoutMs ?? 30_000,
      localAddress: opts.localAddress,
    };
    this.tls = opts.tls;
    this.peerTlsMode = opts.peerTlsMode ?? (() => undefined);
    this.baseHeaders = { accept: MSGPACK_CONTENT_TYPE, [PROTOCOL_HEADER]: String(PROTOCOL_VERSION) };
    if (opts.token !== undefined) {
      if (typeof opts.token !== 'string' || !/^[\x21-\x7e]{1,256}$/.test(opts.token)) throw new InvalidArgumentError('token must be 1-256 printable ASCII characters');
      this.baseHeaders.authorization = `Bearer ${opts.token}`;
    }
  }

  /** Where this transport learns what each node accepts (its owner's membership view). */
  setPeerTlsMode(lookup: (address: string) => TlsMode | undefined): void {
    this.peerTlsMode = lookup;
  }

  /** The protocol this transport uses for `address` now. */
  schemeFor(address: string): 'http' | 'https' {
    return this.tls ? schemeFor(this.tls.policy, this.peerTlsMode(address)) : 'http';
  }

  private pool(scheme: 'http' | 'https', address: string): Pool {
    const origin = `${scheme}://${address}`;
    let p = this.pools.get(origin);
    if (!p) {
      const t = this.tls;
      p = new Pool(origin, {
        connections: this.opts.connectionsPerNode,
        connect:
          scheme === 'https' && t
            ? {
                timeout: this.opts.connectTimeoutMs,
                ca: t.ca,
                ...(t.cert !== undefined ? { cert: t.cert, key: t.key } : {}),
                ...(t.servername ? { servername: t.servername } : {}),
                checkServerIdentity: checkNodeServerIdentity(t.servername),
                rejectUnauthorized: true,
              }
            : { timeout: this.opts.connectTimeoutMs },
        keepAliveTimeout: this.opts.keepAliveTimeoutMs,
        pipelining: 1,
        ...(this.opts.localAddress ? { localAddress: this.opts.localAddress } : {}),
      });
      this.pools.set(origin, p);
    }
    return p;
  }

  async call<T>(address: string, path: string, body: unknown, opts: CallOptions): Promise<T> {
    if (this.closed) throw new NodeUnavailableError(address, 'transport closed');
    const payload = body === undefined ? undefined : encodeMessage(body);
    const scheme = this.schemeFor(address);
    try {
      return await this.send<T>(scheme, address, path, payload, opts);
    } catch (err) {
      // A transitional sender spoke plain to a node that takes TLS only (a seed, or a view
      // older than the node's restart): the node refused before doing anything; say it again over TLS.
      if (scheme === 'http' && this.tls && (err as RingkvError).code === 'TLS_REQUIRED') {
        return this.send<T>('https', address, path, payload, opts);
      }
      throw err;
    }
  }

  private async send<T>(scheme: 'http' | 'https', address: string, path: string, payload: Buffer | undefined, opts: CallOptions): Promise<T> {
    let res;
    try {
      res = await this.pool(scheme, address).request({
        path,
        method: opts.method ?? (payload ? 'POST' : 'GET'),
        headers: payload ? { 'content-type': MSGPACK_CONTENT_TYPE, ...this.baseHeaders } : this.baseHeaders,
        body: payload,
        headersTimeout: opts.timeoutMs,
        bodyTimeout: opts.timeoutMs,
      });
    } catch (err) {
      throw mapError(address, path, opts.timeoutMs, err);
    }
    let buf: Buffer;
    try {
      buf = Buffer.from(await res.body.arrayBuffer());
    } catch (err) {
      throw mapError(address, path, opts.timeoutMs, err);
    }
    if (res.statusCode >= 400) throw answerError(address, path, res.statusCode, res.headers, buf);
    return decodeMessage<T>(buf);
  }

  async stream(address: string, path: string, body: unknown, opts: StreamOptions): Promise<void> {
    if (this.closed) throw new NodeUnavailableError(address, 'transport closed');
    const scheme = this.schemeFor(address);
    try {
      return await this.streamOver(scheme, address, path, body, opts);
    } catch (err) {
      // As in call(): a node that takes TLS only refused a plain stream before sending anything.
      if (scheme === 'http' && this.tls && (err as RingkvError).code === 'TLS_REQUIRED') {
        return this.streamOver('https', address, path, body, opts);
      }
      throw err;
    }
  }

  private async streamOver(scheme: 'http' | 'https', address: string, path: string, body: unknown, opts: StreamOptions): Promise<void> {
    let res;
    try {
      res = await this.pool(scheme, address).request({
        path,
        method: 'POST',
        headers: { 'content-type': MSGPACK_CONTENT_TYPE, ...this.baseHeaders },
        body: encodeMessage(body),
        signal: opts.signal,
        headersTimeout: opts.idleTimeoutMs,
        bodyTimeout: opts.idleTimeoutMs,
      });
    } catch (err) {
      if (opts.signal.aborted) return;
      throw mapError(address, path, opts.idleTimeoutMs, err);
    }
    try {
      if (res.statusCode >= 400) throw answerError(address, path, res.statusCode, res.headers, Buffer.from(await res.body.arrayBuffer()));
      const frames = new FrameDecoder();
      for await (const chunk of res.body) for (const m of frames.push(chunk as Buffer)) opts.onMessage(m);
    } catch (err) {
      if (opts.signal.aborted) return;
      if (err instanceof RingkvErrorClass) throw err;
      throw mapError(address, path, opts.idleTimeoutMs, err);
    } finally {
      if (!res.body.destroyed) res.body.destroy();
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    const pools = [...this.pools.values()];
    this.pools.clear();
    await Promise.all(pools.map((p) => p.destroy().catch(() => undefined)));
  }
}

/** The typed error of an HTTP error answer (a coded msgpack or JSON body; Retry-After as details). */
function answerError(address: string, path: string, statusCode: number, headers: Record<string, string | string[] | undefined>, buf: Buffer): RingkvError {
  let e: WireError | undefined;
  const ct = String(headers['content-type'] ?? '');
  try {
    e = ct.includes('json') ? (JSON.parse(buf.toString('utf8')) as WireError) : decodeMessage<WireError>(buf);
  } catch {
    e = undefined;
  }
  let details = (e as { details?: unknown } | undefined)?.details;
  // A node shedding load says when to come back (Retry-After), also in a bare 503.
  const retryAfter = Number(headers['retry-after']);
  if (details === undefined && Number.isFinite(retryAfter)) details = { retryAfterSec: retryAfter };
  return errorFromWire(e?.code, e?.message ?? `HTTP ${statusCode} from ${address}${path}`, details);
}

function mapError(address: string, path: string, timeoutMs: number, err: unknown): RingkvError {
  const code = (err as { code?: string })?.code ?? '';
  if (TIMEOUT_CODES.has(code)) return new TimeoutError(`request to ${address}${path}`, timeoutMs, { node: address });
  return new NodeUnavailableError(address, `${code || 'error'}: ${(err as Error)?.message ?? String(err)}`, err);
}

/** What a FaultyTransport does to calls to one node. */
export interface Fault {
  /** Fail at once with NodeUnavailableError (a partition the caller sees). */
  drop?: boolean;
  /** Never answer: hang until the call's timeout (a paused node). */
  blackhole?: boolean;
  /** Answer after this extra delay, which counts against the call's timeout (TimeoutError when it exceeds it). */
  delayMs?: number;
  /** Streams to the node stay open but deliver nothing: their messages are dropped (a stalled stream). */
  blockStream?: boolean;
}

/** Wraps a transport and injects faults per destination address. */
export class FaultyTransport implements Transport {
  private readonly faults = new Map<string, Fault>();
  /** Calls made per address (for tests that count requests). */
  readonly calls = new Map<string, number>();
  /** Streams open per address, to cut them. */
  private readonly streams = new Map<string, Set<AbortController>>();

  constructor(private readonly inner: Transport) {}

  set(address: string, fault: Fault | undefined): void {
    if (fault) this.faults.set(address, fault);
    else this.faults.delete(address);
  }

  heal(): void {
    this.faults.clear();
  }

  async call<T>(address: string, path: string, body: unknown, opts: CallOptions): Promise<T> {
    this.calls.set(address, (this.calls.get(address) ?? 0) + 1);
    const f = this.faults.get(address);
    if (f?.drop) throw new NodeUnavailableError(address, 'partitioned (injected fault)');
    if (f?.blackhole) {
      await new Promise((r) => setTimeout(r, opts.timeoutMs));
      throw new TimeoutError(`request to ${address}${path}`, opts.timeoutMs, { node: address });
    }
    if (f?.delayMs) {
      // A slow link or server: the delay counts against the call's timeout.
      const waitMs = Math.min(f.delayMs, opts.timeoutMs);
      await new Promise((r) => setTimeout(r, waitMs));
      if (f.delayMs >= opts.timeoutMs) throw new TimeoutError(`request to ${address}${path}`, opts.timeoutMs, { node: address });
      return this.inner.call<T>(address, path, body, { ...opts, timeoutMs: opts.timeoutMs - f.delayMs });
    }
    return this.inner.call<T>(address, path, body, opts);
  }

  async stream(address: string, path: string, body: unknown, opts: StreamOptions): Promise<void> {
    this.calls.set(address, (this.calls.get(address) ?? 0) + 1);
    const f = this.faults.get(address);
    if (f?.drop) throw new NodeUnavailableError(address, 'partitioned (injected fault)');
    if (!this.inner.stream) throw new NodeUnavailableError(address, 'the wrapped transport cannot stream');
    const cut = new AbortController();
    const onAbort = () => cut.abort();
    opts.signal.addEventListener('abort', onAbort, { once: true });
    let set = this.streams.get(address);
    if (!set) this.streams.set(address, (set = new Set()));
    set.add(cut);
    try {
      await this.inner.stream(address, path, body, {
        ...opts,
        signal: cut.signal,
        onMessage: (m) => {
          if (!this.faults.get(address)?.blockStream) opts.onMessage(m);
        },
      });
    } finally {
      set.delete(cut);
      opts.signal.removeEventListener('abort', onAbort);
    }
    if (cut.signal.aborted && !opts.signal.aborted) throw new NodeUnavailableError(address, 'stream cut (injected fault)');
  }

  /** Cuts every stream open to `address` (they fail with NodeUnavailableError). */
  cutStreams(address: string): number {
    const set = this.streams.get(address);
    if (!set) return 0;
    for (const c of set) c.abort();
    return set.size;
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}
