// Small helpers to answer HTTP requests: JSON, msgpack and error bodies. Every error
// answer carries a stable code ({"code", "message"}) with the status of that code.

import type { ServerResponse } from 'node:http';
import type { ErrorCode } from '../../sdk/errors.js';
import { InternalError, RingkvError, httpStatusForCode } from '../../sdk/errors.js';
import { encodeMessage, MSGPACK_CONTENT_TYPE } from '../../sdk/wire/protocol.js';
import { discardBody } from './read-body.js';

export function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text), ...headers });
  res.end(text);
}

export function sendMsgpack(res: ServerResponse, status: number, body: unknown): void {
  const buf = encodeMessage(body);
  res.writeHead(status, { 'content-type': MSGPACK_CONTENT_TYPE, 'content-length': buf.length });
  res.end(buf);
}

export function sendEmpty(res: ServerResponse, status: number, headers: Record<string, string> = {}): void {
  res.writeHead(status, headers);
  res.end();
}

/** Normalizes anything thrown into a RingkvError (unknown errors become INTERNAL). */
export function asRingkvError(err: unknown): RingkvError {
  if (err instanceof RingkvError) return err;
  return new InternalError((err as Error)?.message ?? String(err), err);
}

/**
 * Answers with the error's status and a JSON (or msgpack) body {code, message}. A request
 * whose body was refused part way (too large, malformed) is answered once the rest of its
 * body has been read and thrown away (discardBody, bounded): answering while the client is
 * still sending and then closing would leave unread bytes in the socket, and the kernel
 * resets such a connection, which can drop the answer before the client reads it.
 */
export function sendError(res: ServerResponse, err: unknown, format: 'json' | 'msgpack' = 'json'): RingkvError {
  const e = asRingkvError(err);
  const status = httpStatusForCode[e.code as ErrorCode] ?? 500;
  if (res.headersSent) {
    res.destroy();
    return e;
  }
  const body = e.toJSON();
  const send = (): void => {
    if (res.destroyed || res.headersSent) return;
    if (format === 'msgpack') sendMsgpack(res, status, body);
    else sendJson(res, status, body);
  };
  const req = res.req;
  if (req && !req.complete && !req.destroyed) {
    discardBody(req);
    let sent = false;
    const once = (): void => {
      if (sent) return;
      sent = true;
      send();
    };
    req.once('end', once);
    req.once('close', once);
  } else send();
  return e;
}
