// Reads a request body with a hard byte limit: a body announced (Content-Length) or found
// (while streaming) to be larger than the limit is refused with PayloadTooLarge before
// it is buffered. The caller decides which error to answer with.

import type { IncomingMessage } from 'node:http';
import { MalformedRequestError, PayloadTooLargeError } from '../../sdk/errors.js';

/**
 * Resolves with the whole body, or rejects with PayloadTooLargeError as soon as more than
 * `limitBytes` arrived (the rest is not read; the connection is closed by the answer).
 */
export function readBody(req: IncomingMessage, limitBytes: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const declared = req.headers['content-length'];
    if (declared !== undefined) {
      const n = Number(declared);
      if (!Number.isFinite(n) || n < 0) {
        reject(new MalformedRequestError('bad Content-Length'));
        req.resume();
        return;
      }
      if (n > limitBytes) {
        reject(new PayloadTooLargeError(limitBytes));
        req.resume();
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
        req.resume();
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
