// Caps the connections a node accepts, so that a flood of clients can never take the file
// descriptors its engine (WAL segments, tables) and its requests to peers need: a
// connection beyond the cap is answered `503 OVERLOADED` at once and closed. The cap is
// the configured maxConnections, lowered to fit the process's descriptor limit minus a
// reserve. Attach once to an http.Server; single-threaded like the server itself.

import fs from 'node:fs';
import type http from 'node:http';
import type { Socket } from 'node:net';

export interface ConnectionGuardOptions {
  /** Most connections open at once (configured). */
  maxConnections: number;
  /** Descriptors kept out of the connections' reach for the engine and outgoing requests. */
  fdReserve: number;
  /** The process's soft limit on open files (default: read from /proc/self/limits). */
  openFilesLimit?: number | undefined;
}

/** The soft limit on open files of this process, or undefined where /proc does not tell. */
export function openFilesSoftLimit(): number | undefined {
  try {
    const text = fs.readFileSync('/proc/self/limits', 'utf8');
    const m = /^Max open files\s+(\d+|unlimited)/m.exec(text);
    if (!m || m[1] === 'unlimited') return undefined;
    return Number(m[1]);
  } catch {
    return undefined;
  }
}

export class ConnectionGuard {
  /** The effective cap. */
  readonly limit: number;
  private open = 0;
  /** Connections refused since start. */
  refused = 0;

  constructor(o: ConnectionGuardOptions) {
    const fdLimit = o.openFilesLimit ?? openFilesSoftLimit();
    this.limit = fdLimit === undefined ? o.maxConnections : Math.max(16, Math.min(o.maxConnections, fdLimit - o.fdReserve));
  }

  get openConnections(): number {
    return this.open;
  }

  /** Starts counting and refusing on `server` (before its HTTP parser sees the connection). */
  attach(server: http.Server, nodeId: string): void {
    // A hard stop slightly above the cap: the kernel-level guard if answering ever lags.
    server.maxConnections = this.limit + 64;
    server.prependListener('connection', (socket: Socket) => {
      if (this.open >= this.limit) {
        this.refused++;
        const body = JSON.stringify({ code: 'OVERLOADED', message: `node ${nodeId} has ${this.open} connections open, its limit` });
        socket.on('error', () => undefined);
        socket.end(
          `HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\nretry-after: 1\r\nconnection: close\r\ncontent-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
        );
        // Whatever the client still sends is not read: cut the socket soon after the answer.
        setTimeout(() => socket.destroy(), 1000).unref();
        return;
      }
      this.open++;
      socket.once('close', () => this.open--);
    });
  }
}
