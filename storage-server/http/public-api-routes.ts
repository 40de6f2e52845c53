// The routes of the public API: /api/v1/kv/{key} (public-api.ts) and /api/v1/dt/{key}
// (data-type-api.ts), coordinated through the node's embedded client. Each request is
// admitted by the load shedder first (budget: its X-Ringkv-Timeout-Ms, else
// requestTimeoutMs) and counted in flight until answered. Per-key permissions were checked
// by the router. Handlers run concurrently.

import type { IncomingMessage, ServerResponse } from 'node:http';
import type { RingkvClient } from '../../sdk/client.js';
import { ClosedError } from '../../sdk/errors.js';
import type { NodeParts } from '../node-parts.js';
import { DT_PREFIX, handleDataType } from './data-type-api.js';
import { handleKv, KV_PREFIX } from './public-api.js';
import type { Route } from './router.js';

type Handler = (req: IncomingMessage, res: ServerResponse, url: URL, o: { client: RingkvClient<Buffer>; maxJsonBodyBytes: number }) => Promise<void>;

export function publicApiRoutes(n: Pick<NodeParts, 'client' | 'admission' | 'shedder' | 'config'>): Route[] {
  const route = (name: string, prefix: string, handler: Handler): Route => ({
    name,
    prefix,
    handle: ({ req, res, url, arrivedAt }) => {
      const client = n.client;
      if (!client) throw new ClosedError('server');
      n.admission.admit(1, kvBudgetMs(req, n.config.requestTimeoutMs));
      n.shedder.enter(0);
      res.once('close', () => n.shedder.leave(0));
      res.on('finish', () => n.shedder.record(performance.now() - arrivedAt));
      return handler(req, res, url, { client, maxJsonBodyBytes: n.config.maxJsonBodyBytes });
    },
  });
  return [route('kv', KV_PREFIX, handleKv), route('dt', DT_PREFIX, handleDataType)];
}

/** The time a public API request's coordinator waits: its X-Ringkv-Timeout-Ms, else the node's default. */
function kvBudgetMs(req: IncomingMessage, defaultMs: number): number {
  const n = Number(req.headers['x-ringkv-timeout-ms']);
  return Number.isFinite(n) && n > 0 ? n : defaultMs;
}
