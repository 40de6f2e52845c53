// Small helpers to answer HTTP requests: JSON, msgpack and error bodies. Every error
// answer carries a stable code ({"code", "message"}) with the status of that code.

import type { IncomingMessage, ServerResponse } from 'node:http';
import type { ErrorCode } from '../../sdk/errors.js';
import { RingkvError, httpStatusForCode } from '../../sdk/errors.js';
import { encodeMessage, MSGPACK_CONTENT_TYPE } from '../../sdk/wire/protocol.js';
import { DISCARD_LIMIT_BYTES, DISCARD_LIMIT_EVENT, discardBody } from './read-body.js';
import { asRingkvError } from '../engine-error-map.js';

/** Longest wait for the rest of a refused body before answering anyway. */
const ANSWER_WAIT_MS = 1000;

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

/** Answers 200 in msgpack when the request accepts it, else JSON (the endpoints the CLI and the dashboard read). */
export function sendMsgpackOrJson(req: IncomingMessage, res: ServerResponse, body: unknown): void {
  const accept = req.headers.accept ?? '';
  if (accept.includes('msgpack')) sendMsgpack(res, 200, body);
  else sendJson(res, 200, body);
}

export function sendEmpty(res: ServerResponse, status: number, headers: Record<string, string> = {}): void {
  res.writeHead(status, headers);
  res.end();
}


/**
 * Answers with the error's status and a JSON (or msgpack) body {code, message}. A request
 * whose body was refused part way (too large, malformed) is answered once the rest of its
 * body has been read and thrown away (discardBody): answering while the client is still
 * sending and then closing would leave unread bytes in the socket, and the kernel resets
 * such a connection, which can drop the answer before the client reads it. A body that
 * will not end soon — declared larger than what is ever discarded, still arriving after
 * ANSWER_WAIT_MS, or past a discard limit — is answered at once while the rest is still
 * read and dropped until the connection is cut.
 */
export function sendError(res: ServerResponse, err: unknown, format: 'json' | 'msgpack' = 'json'): RingkvError {
  const e = asRingkvError(err);
  const status = httpStatusForCode[e.code as ErrorCode] ?? 500;
  if (res.headersSent) {
    res.destroy();
    return e;
  }
  const body = e.toJSON();
  const retryAfterSec = e.details?.retryAfterSec;
  if (typeof retryAfterSec === 'number') res.setHeader('retry-after', String(Math.max(1, Math.ceil(retryAfterSec))));
  const send = (): void => {
    if (res.destroyed || res.headersSent) return;
    if (format === 'msgpack') sendMsgpack(res, status, body);
    else sendJson(res, status, body);
  };
  const req = res.req;
  if (req && !req.complete && !req.destroyed) {
    discardBody(req);
    const declared = Number(req.headers['content-length']);
    if (Number.isFinite(declared) && declared > DISCARD_LIMIT_BYTES) {
      send();
      return e;
    }
    let sent = false;
    const once = (): void => {
      if (sent) return;
      sent = true;
      clearTimeout(timer);
      send();
    };
    const timer = setTimeout(once, ANSWER_WAIT_MS);
    timer.unref();
    req.once('end', once);
    req.once('close', once);
    req.once(DISCARD_LIMIT_EVENT, once);
  } else send();
  return e;
}
