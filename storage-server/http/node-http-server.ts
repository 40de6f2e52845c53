// A node's one HTTP port: the http.Server with its timeouts (keep-alive, headers, request
// receive), the front door that sorts plain HTTP from TLS, the connection cap, answers to
// requests Node's parser refused, binding (an ephemeral port is read back) and the closing
// sequence of a stop. Requests go to the router. Single-threaded.

import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type pino from 'pino';
import { InvalidArgumentError } from '../../sdk/errors.js';
import type { ServerConfig } from '../config.js';
import type { ServerMetrics } from '../metrics.js';
import type { NodeTlsMaterial } from '../tls/node-tls.js';
import type { ConnectionGuard } from './connection-guard.js';
import { FrontDoor } from './front-door.js';
import type { Router } from './router.js';
import { answerClientError } from './router.js';

export interface NodeHttpServerOptions {
  config: ServerConfig;
  router: Router;
  metrics: ServerMetrics;
  connections: ConnectionGuard;
  tlsMaterial: NodeTlsMaterial | undefined;
  log: pino.Logger;
}

export class NodeHttpServer {
  private readonly http: http.Server;
  /** Sorts new connections into plain HTTP and TLS (tls mode transitional, required). */
  private readonly frontDoor: FrontDoor;

  constructor(private readonly o: NodeHttpServerOptions) {
    const { config, metrics } = o;
    this.http = http.createServer(
      {
        keepAliveTimeout: config.keepAliveTimeoutMs,
        headersTimeout: config.headersTimeoutMs,
        requestTimeout: config.requestReceiveTimeoutMs,
        // How often Node checks the two timeouts above: a slow sender is cut within this of them.
        connectionsCheckingInterval: Math.min(1000, Math.max(50, Math.floor(config.headersTimeoutMs / 4))),
      },
      o.router.handle,
    );
    this.frontDoor = new FrontDoor(this.http, {
      mode: config.tls.mode,
      material: o.tlsMaterial,
      handshakeTimeoutMs: config.headersTimeoutMs,
      onConnection: (transport) => metrics.connectionsAccepted.inc({ transport }),
      onHandshakeFailure: (reason) => metrics.tlsHandshakeFailures.inc({ reason }),
    });
    o.connections.attach(this.http, config.id);
    // A request that was not received in time, or could not be parsed.
    this.http.on('clientError', (err: NodeJS.ErrnoException, socket) => answerClientError(err, socket, o.log));
  }

  /** Binds host:port (INVALID_ARGUMENT when it cannot); returns the port bound (port 0: the one the system chose). */
  async listen(host: string, port: number): Promise<number> {
    await new Promise<void>((resolve, reject) => {
      const onError = (err: Error) => reject(new InvalidArgumentError(`cannot listen on ${host}:${port}: ${err.message}`));
      this.http.once('error', onError);
      this.http.listen(port, host, () => {
        this.http.off('error', onError);
        resolve();
      });
    });
    return (this.http.address() as AddressInfo).port;
  }

  /** Stops accepting, closes idle connections, waits for the router's requests (at most graceMs), then cuts the rest. */
  async close(graceMs: number): Promise<void> {
    const closed = new Promise<void>((resolve) => this.http.close(() => resolve()));
    this.http.closeIdleConnections();
    await Promise.race([this.o.router.whenIdle(), new Promise<void>((resolve) => setTimeout(resolve, graceMs).unref())]);
    this.http.closeAllConnections();
    this.frontDoor.closePending();
    await closed;
  }
}
