// Reads a request body with a hard byte limit: a body announced (Content-Length) or found
// (while streaming) to be larger than the limit is refused with PayloadTooLarge before
// it is buffered. The caller decides which error to answer with.

import type { IncomingMessage } from 'node:http';
import { MalformedRequestError, PayloadTooLargeError } from '../../sdk/errors.js';

/** Most bytes of a refused body read and thrown away before the connection is cut. */
export const DISCARD_LIMIT_BYTES = 16 * 1024 * 1024;
/** Longest time spent discarding a refused body before the connection is cut. */
const DISCARD_LIMIT_MS = 10_000;
/** Time the answer gets to reach the client between a discard limit and the cut. */
const LINGER_MS = 1000;
/** Emitted on a request whose discarded body passed a limit: answer now, the cut follows. */
export const DISCARD_LIMIT_EVENT = 'ringkv:discard-limit';

/**
 * Discards the rest of a request body that will not be used, so that the answer reaches a
 * client that is still sending and the connection stays usable. A client that keeps
 * sending past DISCARD_LIMIT_BYTES or DISCARD_LIMIT_MS gets DISCARD_LIMIT_EVENT emitted on
 * its request (sendError answers then) and its connection cut LINGER_MS later, while what
 * it still sends is read and dropped (a lingering close: closing with unread bytes would
 * make the kernel reset the connection and could lose the answer).
 */
export function discardBody(req: IncomingMessage): void {
  if (req.complete || (req as { discarding?: boolean }).discarding) return;
  (req as { discarding?: boolean }).discarding = true;
  let seen = 0;
  let cutting = false;
  const cut = () => {
    if (cutting) return;
    cutting = true;
    req.emit(DISCARD_LIMIT_EVENT);
    setTimeout(() => req.socket.destroy(), LINGER_MS).unref();
  };
  const timer = setTimeout(cut, DISCARD_LIMIT_MS);
  timer.unref();
  req.on('data', (c: Buffer) => {
    seen += c.length;
    if (seen > DISCARD_LIMIT_BYTES) cut();
  });
  req.once('end', () => clearTimeout(timer));
  req.once('close', () => clearTimeout(timer));
  req.resume();
}

/**
 * Resolves with the whole body, or rejects with PayloadTooLargeError as soon as more than
 * `limitBytes` arrived (the rest is discarded, and sendError answers once it is).
 */
export function readBody(req: IncomingMessage, limitBytes: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const declared = req.headers['content-length'];
    if (declared !== undefined) {
      const n = Number(declared);
      if (!Number.isFinite(n) || n < 0) {
        reject(new MalformedRequestError('bad Content-Length'));
        discardBody(req);
        return;
      }
      if (n > limitBytes) {
        reject(new PayloadTooLargeError(limitBytes));
        discardBody(req);
        return;
      }
    }
    const chunks: Buffer[] = [];
    let size = 0;
    let done = false;
    req.on('data', (c: Buffer) => {
      if (done) return;
      size += c.length;
      if (size > limitBytes) {
        done = true;
        chunks.length = 0;
        reject(new PayloadTooLargeError(limitBytes));
        discardBody(req);
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => {
      if (done) return;
      done = true;
      resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size));
    });
    req.on('error', (err) => {
      if (done) return;
      done = true;
      reject(new MalformedRequestError(`request body failed: ${err.message}`));
    });
  });
}

/**
 * A batch endpoint's body (batch, repl-apply): too large is PAYLOAD_TOO_LARGE, any other
 * failure to read it MALFORMED_REQUEST.
 */
export function readBatchBody(req: IncomingMessage, limitBytes: number): Promise<Buffer> {
  return readBody(req, limitBytes).catch((err) => {
    throw err instanceof PayloadTooLargeError ? err : new MalformedRequestError((err as Error).message);
  });
}
