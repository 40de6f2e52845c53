// The internal routes that page through a replica's key ranges: stream (every object of the
// spans, for joins and decommissions: streaming/range-streaming.ts) and scan (the live keys
// of the spans, for listings and export: streaming/range-scan.ts; a user's page holds only
// the keys it may read). Handlers run concurrently; each page is bounded.

import { MalformedRequestError } from '../../sdk/errors.js';
import type { ScanRequest, StreamRequest } from '../../sdk/wire/protocol.js';
import { Routes } from '../../sdk/wire/protocol.js';
import type { NodeParts } from '../node-parts.js';
import { serveScan } from '../streaming/range-scan.js';
import { serveStream } from '../streaming/range-streaming.js';
import { sendMsgpack } from './respond.js';
import type { Route } from './router.js';
import { readSpanRequest } from './token-spans.js';

export function streamRoutes(n: Pick<NodeParts, 'store'>): Route[] {
  return [
    {
      name: 'stream',
      path: Routes.stream,
      handle: async ({ req, res }) => {
        const { msg, spans } = await readSpanRequest<StreamRequest>(req, 16 * 1024 * 1024);
        if (msg.after !== undefined && (!msg.after || !(msg.after.key instanceof Uint8Array) || !Number.isInteger(msg.after.span))) {
          throw new MalformedRequestError('after must be {span, key}');
        }
        sendMsgpack(res, 200, await serveStream(n.store, { ...msg, spans }));
      },
    },
    {
      // A page of a listing (sdk/listing.ts): one replica's live keys in token spans.
      name: 'scan',
      path: Routes.scan,
      handle: async ({ req, res, caller }) => {
        const { msg, spans } = await readSpanRequest<ScanRequest>(req, 1024 * 1024);
        // A user's page holds only the keys it may read (authentication on).
        const canRead = caller.kind === 'user' ? (key: Buffer) => caller.principal.can('read', key) : undefined;
        sendMsgpack(res, 200, await serveScan(n.store, { ...msg, spans }, canRead));
      },
    },
  ];
}
