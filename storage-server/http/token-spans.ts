// The requests that name token spans (merkle, merkle-keys, stream, scan): read, their
// protocol version checked, and their spans checked before any work — at most
// MAX_SPANS_PER_REQUEST of them, each [from, to] with 0 <= from <= to < 2^32. Stateless.

import type { IncomingMessage } from 'node:http';
import { MalformedRequestError } from '../../sdk/errors.js';
import { checkProtocolVersion, decodeMessage } from '../../sdk/wire/protocol.js';
import { readBody } from './read-body.js';

/** Most token spans in one merkle, merkle-keys, stream or scan request. */
export const MAX_SPANS_PER_REQUEST = 4096;

/** The request's spans, or MALFORMED_REQUEST. */
export function checkSpans(spans: unknown): [number, number][] {
  if (!Array.isArray(spans) || spans.length > MAX_SPANS_PER_REQUEST) {
    throw new MalformedRequestError(`spans must be an array of at most ${MAX_SPANS_PER_REQUEST} [from, to]`);
  }
  for (const s of spans) {
    if (!Array.isArray(s) || s.length !== 2 || !isToken(s[0]) || !isToken(s[1]) || s[0] > s[1]) {
      throw new MalformedRequestError('a span is [from, to] with 0 <= from <= to < 2^32');
    }
  }
  return spans as [number, number][];
}

/** Reads a msgpack request of at most `limitBytes` that names spans; MALFORMED_REQUEST or an unsupported version when it is not one. */
export async function readSpanRequest<T extends { v: number; spans: unknown }>(req: IncomingMessage, limitBytes: number): Promise<{ msg: T; spans: [number, number][] }> {
  const msg = decodeMessage<T>(await readBody(req, limitBytes));
  checkProtocolVersion(msg?.v);
  return { msg, spans: checkSpans(msg.spans) };
}

function isToken(n: unknown): n is number {
  return typeof n === 'number' && Number.isInteger(n) && n >= 0 && n <= 0xffffffff;
}
