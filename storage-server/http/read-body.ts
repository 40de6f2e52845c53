// Reads a request body with a hard byte limit: a body announced (Content-Length) or found
// (while streaming) to be larger than the limit is refused with PayloadTooLarge before
// it is buffered. The caller decides which error to answer with.

import type { IncomingMessage } from 'node:http';
import { MalformedRequestError, PayloadTooLargeError } from '../../sdk/errors.js';

/** Most bytes of a refused body read and thrown away before the connection is cut. */
const DISCARD_LIMIT_BYTES = 16 * 1024 * 1024;
/** Longest time spent discarding a refused body before the connection is cut. */
const DISCARD_LIMIT_MS = 10_000;

/**
 * Discards the rest of a request body that will not be used, so that the answer reaches a
 * client that is still sending and the connection stays usable; a client that keeps
 * sending past DISCARD_LIMIT_BYTES or DISCARD_LIMIT_MS has its connection cut (what web
 * servers call a lingering close).
 */
export function discardBody(req: IncomingMessage): void {
  if (req.complete || (req as { discarding?: boolean }).discarding) return;
  (req as { discarding?: boolean }).discarding = true;
  let seen = 0;
  const timer = setTimeout(() => req.socket.destroy(), DISCARD_LIMIT_MS);
  timer.unref();
  req.on('data', (c: Buffer) => {
    seen += c.length;
    if (seen > DISCARD_LIMIT_BYTES) req.socket.destroy();
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
