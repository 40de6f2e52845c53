// The front door of a node's port: sorts each new connection into plain HTTP or TLS and
// hands it to the one http.Server that serves both. In `transitional` and `required` mode
// it waits for the connection's first byte: 0x16 (a TLS handshake record, the ClientHello)
// goes through the TLS handshake first, anything else is plain HTTP (which a `required`
// node then refuses request by request with 426 TLS_REQUIRED: access-policy.ts). In `off`
// mode connections go straight through, as if there were no door. Installed once on the
// server before it listens; single-threaded like the server.

import type http from 'node:http';
import type net from 'node:net';
import tls from 'node:tls';
import type { TlsMode } from '../../sdk/transport-security.js';
import type { NodeTlsMaterial } from '../tls/node-tls.js';

/** First byte of a TLS record carrying a handshake message (RFC 8446 §5.1: ContentType handshake). */
const TLS_HANDSHAKE_RECORD = 0x16;

export interface FrontDoorOptions {
  mode: TlsMode;
  /** The node's CA, certificate and key (needed unless the mode is off). */
  material?: NodeTlsMaterial | undefined;
  /** Time a new connection has to send its first byte, and a TLS client to finish its handshake. */
  handshakeTimeoutMs: number;
  /** Told each connection that reaches HTTP, by protocol. */
  onConnection?: (transport: 'tls' | 'plain') => void;
  /**
   * Told each connection refused at the TLS level or that cannot be served as it came, by
   * reason: a TLS error code (ERR_SSL_..., ERR_TLS_HANDSHAKE_TIMEOUT, ECONNRESET), a client
   * certificate check that failed (CERT_HAS_EXPIRED, UNABLE_TO_VERIFY_LEAF_SIGNATURE, ...),
   * or `plain_http` (plain HTTP to a node that requires TLS).
   */
  onHandshakeFailure?: (reason: string) => void;
}

export class FrontDoor {
  /** Raw sockets still waiting for their first byte. */
  private readonly sniffing = new Set<net.Socket>();
  /** Sockets already sorted: their 'connection' event goes to the HTTP server as is. */
  private readonly sorted = new WeakSet<net.Socket>();
  private readonly tlsServer: tls.Server | undefined;

  constructor(
    server: http.Server,
    private readonly o: FrontDoorOptions,
  ) {
    if (o.mode === 'off') {
      server.prependListener('connection', () => o.onConnection?.('plain'));
      return;
    }
    const m = o.material;
    if (!m) throw new Error('front door: TLS material is needed in mode ' + o.mode);
    // Never listens: it only runs handshakes on the sockets handed to it.
    this.tlsServer = tls.createServer({
      ca: m.ca,
      cert: m.cert,
      key: m.key,
      // Ask every client for a certificate but let the handshake finish without one (or
      // with one that fails its check): the access policy decides per endpoint, and can say why.
      requestCert: true,
      rejectUnauthorized: false,
      minVersion: 'TLSv1.2',
      handshakeTimeout: o.handshakeTimeoutMs,
    });
    this.tlsServer.on('secureConnection', (socket: tls.TLSSocket) => {
      const peer = socket.getPeerCertificate();
      if (peer && peer.raw && !socket.authorized) o.onHandshakeFailure?.(reasonCode(socket.authorizationError));
      this.handOver(socket, 'tls');
    });
    this.tlsServer.on('tlsClientError', (err: NodeJS.ErrnoException, socket: tls.TLSSocket) => {
      o.onHandshakeFailure?.(reasonCode(err.code ?? err.message));
      socket.destroy();
    });
    // Every 'connection' the listening socket emits comes through sort() first.
    const emit = server.emit.bind(server) as (event: string | symbol, ...args: unknown[]) => boolean;
    this.emitToHttp = emit;
    server.emit = ((event: string | symbol, ...args: unknown[]): boolean => {
      if (event === 'connection' && !this.sorted.has(args[0] as net.Socket)) {
        this.sort(args[0] as net.Socket);
        return true;
      }
      return emit(event, ...args);
    }) as typeof server.emit;
  }

  private emitToHttp: ((event: string | symbol, ...args: unknown[]) => boolean) | undefined;

  /** Waits for the first byte of `raw` and sends it on to TLS or plain HTTP. */
  private sort(raw: net.Socket): void {
    this.sniffing.add(raw);
    const timer = setTimeout(() => raw.destroy(), this.o.handshakeTimeoutMs);
    const done = () => {
      clearTimeout(timer);
      this.sniffing.delete(raw);
      raw.off('readable', onReadable);
      raw.off('end', onEnd);
      raw.off('error', onError);
      raw.off('close', done);
    };
    const onEnd = () => {
      done();
      raw.destroy();
    };
    const onError = () => {
      done();
      raw.destroy();
    };
    const onReadable = () => {
      const first = raw.read(1) as Buffer | null;
      if (first === null) return; // nothing yet (or the end, which onEnd handles)
      done();
      // Put the byte back: the TLS socket or the HTTP parser reads it from the buffer first.
      raw.unshift(first);
      if (first[0] === TLS_HANDSHAKE_RECORD) this.tlsServer!.emit('connection', raw);
      else {
        if (this.o.mode === 'required') this.o.onHandshakeFailure?.('plain_http');
        this.handOver(raw, 'plain');
      }
    };
    raw.on('readable', onReadable);
    raw.once('end', onEnd);
    raw.once('error', onError);
    raw.once('close', done);
  }

  private handOver(socket: net.Socket, transport: 'tls' | 'plain'): void {
    this.sorted.add(socket);
    this.o.onConnection?.(transport);
    this.emitToHttp!('connection', socket);
  }

  /** Closes the connections that have not reached HTTP yet (at shutdown). */
  closePending(): void {
    for (const s of this.sniffing) s.destroy();
    this.sniffing.clear();
  }
}

/** A bounded metric label out of a TLS or verification error code. */
function reasonCode(x: unknown): string {
  const s = typeof x === 'string' ? x : x instanceof Error ? ((x as NodeJS.ErrnoException).code ?? x.message) : String(x);
  return /^[A-Za-z0-9_]{1,64}$/.test(s) ? s : 'other';
}
