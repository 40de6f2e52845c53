// Framed msgpack streams: a long-lived HTTP answer carrying many messages, each a 4-byte
// big-endian length then one msgpack message (wire-format.md, "Invalidations"). The encoder
// and the decoder; a FrameDecoder belongs to one stream.

import { MalformedRequestError } from '../errors.js';
import { decodeMessage, encodeMessage } from './protocol.js';

/** Content type of a framed answer. */
export const FRAMES_CONTENT_TYPE = 'application/x-ringkv-frames';

/** Largest frame either side accepts. */
export const MAX_FRAME_BYTES = 16 * 1024 * 1024;

export function encodeFrame(msg: unknown): Buffer {
  const body = encodeMessage(msg);
  const out = Buffer.allocUnsafe(4 + body.length);
  out.writeUInt32BE(body.length, 0);
  body.copy(out, 4);
  return out;
}

/** Splits a byte stream into messages; throws MalformedRequestError on a frame too large or undecodable. */
export class FrameDecoder {
  private buf: Buffer = Buffer.alloc(0);

  /** Adds received bytes; returns the messages they complete. */
  push(chunk: Uint8Array): unknown[] {
    this.buf = this.buf.length === 0 ? Buffer.from(chunk) : Buffer.concat([this.buf, chunk]);
    const out: unknown[] = [];
    let at = 0;
    while (this.buf.length - at >= 4) {
      const len = this.buf.readUInt32BE(at);
      if (len > MAX_FRAME_BYTES) throw new MalformedRequestError(`frame of ${len} bytes (at most ${MAX_FRAME_BYTES})`);
      if (this.buf.length - at - 4 < len) break;
      out.push(decodeMessage<unknown>(this.buf.subarray(at + 4, at + 4 + len)));
      at += 4 + len;
    }
    this.buf = at === this.buf.length ? Buffer.alloc(0) : this.buf.subarray(at);
    return out;
  }
}
