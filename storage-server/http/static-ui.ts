// The dashboard's static files (storage-server/ui), served at /ui and /ui/<file>: no backend
// of their own, they read the status and metrics endpoints of every node. Stateless; safe
// for concurrent requests.

import fs from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { RingkvError } from '../../sdk/errors.js';
import type { Route } from './router.js';

const HERE = path.dirname(fileURLToPath(import.meta.url));
// Beside the sources (tsx runs storage-server/http/); from dist/storage-server/http/ the sources are three levels up.
const UI_DIR = [path.resolve(HERE, '../ui'), path.resolve(HERE, '../../../storage-server/ui')].find((d) => fs.existsSync(path.join(d, 'index.html'))) ?? path.resolve(HERE, '../ui');
const UI_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
};

/** The dashboard's route: /ui and /ui/<file>, read-only. */
export function uiRoute(): Route {
  return { name: 'ui', path: '/ui', prefix: '/ui/', methods: ['GET', 'HEAD'], handle: ({ req, res, path }) => serveUi(req, res, path) };
}

/** Serves the dashboard file at path `p` (/ui, /ui/ and /ui/index.html are the page). */
async function serveUi(req: IncomingMessage, res: ServerResponse, p: string): Promise<void> {
  const rel = p === '/ui' || p === '/ui/' ? 'index.html' : p.slice('/ui/'.length);
  if (!/^[A-Za-z0-9._-]+$/.test(rel) || rel.startsWith('.')) throw new RingkvError('ROUTE_NOT_FOUND', `no dashboard file ${rel}`);
  let body: Buffer;
  try {
    body = await fs.promises.readFile(path.join(UI_DIR, rel));
  } catch {
    throw new RingkvError('ROUTE_NOT_FOUND', `no dashboard file ${rel}`);
  }
  res.writeHead(200, { 'content-type': UI_TYPES[path.extname(rel)] ?? 'application/octet-stream', 'content-length': body.length, 'cache-control': 'no-cache' });
  res.end(req.method === 'HEAD' ? undefined : body);
}
