// The routes operators, load balancers and the dashboard read: /health (200 or 503 with the
// engine's state), /metrics (Prometheus text), the node's status (the CLI's `status` and the
// dashboard), the ring as this node sees it, and its hot keys. Read-only views of the node's parts; handlers run
// concurrently.

import { MESSAGE_VERSION, Routes } from '../../sdk/wire/protocol.js';
import type { NodeParts } from '../node-parts.js';
import { sendJson, sendMsgpackOrJson } from './respond.js';
import { ringAnswer } from './ring-api.js';
import type { Route } from './router.js';

type Parts = Pick<
  NodeParts,
  | 'id'
  | 'address'
  | 'config'
  | 'clock'
  | 'startedAtMs'
  | 'engine'
  | 'store'
  | 'dots'
  | 'membership'
  | 'hints'
  | 'hasher'
  | 'antiEntropy'
  | 'foldPass'
  | 'replication'
  | 'changes'
  | 'recovery'
  | 'batches'
  | 'metrics'
  | 'hotKeys'
  | 'auth'
  | 'client'
  | 'stopping'
>;

export function statusRoutes(n: Parts): Route[] {
  return [
    { name: 'status', path: Routes.status, handle: ({ req, res }) => sendMsgpackOrJson(req, res, nodeStatus(n)) },
    // The ring the dashboard draws (ring-api.ts), from the embedded client's view.
    { name: 'ring', path: Routes.ring, handle: ({ req, res, url }) => sendMsgpackOrJson(req, res, ringAnswer(n.client?.cluster, n.id, url.searchParams)) },
    {
      name: 'hot-keys',
      path: Routes.hotKeys,
      handle: ({ req, res, url }) => {
        const k = Math.min(Math.max(1, Math.floor(Number(url.searchParams.get('k') ?? '20')) || 20), n.hotKeys.options.capacity);
        sendMsgpackOrJson(req, res, { v: MESSAGE_VERSION.hotKeys, node: n.id, ...n.hotKeys.top(k) });
      },
    },
    {
      name: 'health',
      path: '/health',
      handle: ({ res }) => {
        const { status, body } = nodeHealth(n);
        sendJson(res, status, body);
      },
    },
    {
      name: 'metrics',
      path: '/metrics',
      handle: ({ res }) =>
        n.metrics.text().then((text) => {
          res.writeHead(200, { 'content-type': n.metrics.contentType });
          res.end(text);
        }),
    },
  ];
}

/**
 * GET /health: 200 while the node serves reads and writes — `status: "degraded"` when
 * its engine retries something in the background but still takes writes (a failing
 * flush or compaction) or holds quarantined blocks; 503 when it refuses writes (a full
 * disk, no descriptors, a recovery in progress: `writes-refused`; the engine gave up:
 * `failed`) or is stopping. A load balancer then sends the public API elsewhere; the
 * smart client goes around the node by itself either way.
 */
export function nodeHealth(n: Parts): { status: number; body: Record<string, unknown> } {
  const h = n.engine.health();
  const suspect = n.store.suspects().length;
  const status = n.stopping ? 'stopping' : h.state === 'failed' ? 'failed' : h.writesRefused ? 'writes-refused' : h.state !== 'ok' || suspect > 0 ? 'degraded' : 'ok';
  return {
    status: status === 'ok' || status === 'degraded' ? 200 : 503,
    body: {
      status,
      id: n.id,
      uptimeSec: uptimeSec(n),
      engine: h.state,
      writesRefused: h.writesRefused,
      ...(h.state !== 'ok' ? { engineSinceMs: h.sinceMs, engineRetries: h.retries, engineRetrying: h.retrying, engineLastError: h.lastError } : {}),
      suspectRanges: suspect,
    },
  };
}

/** This node's status (the CLI's `status` and the dashboard read it). */
export function nodeStatus(n: Parts): Record<string, unknown> {
  const s = n.engine.stats();
  return {
    id: n.id,
    address: n.address,
    state: n.membership.self.state,
    dc: n.config.dc,
    rack: n.config.rack || null,
    replication: n.config.replication,
    repl: n.replication.status(),
    actor: n.dots.actor,
    uptimeSec: uptimeSec(n),
    startedAt: new Date(n.startedAtMs).toISOString(),
    keys: s.approximateEntries,
    tableBytes: s.tableBytes,
    memtableBytes: s.memtableBytes,
    tables: s.tableCount,
    compactions: s.compactions,
    hintsPending: n.hints.totalPending,
    lastRepair: n.antiEntropy.last ?? null,
    repairing: n.antiEntropy.current ?? null,
    lastBootstrap: n.changes.moves.bootstrap ?? null,
    lastDecommission: n.changes.moves.decommission ?? null,
    lastCleanup: n.changes.moves.cleanup ?? null,
    lastFold: n.foldPass.last ?? null,
    recovery: n.recovery.status ?? null,
    ring: { ...n.membership.ring, refusals: n.batches.ringRefusals },
    moving: n.changes.inProgress,
    merkleReady: n.hasher.ready,
    engine: n.engine.health(),
    quarantine: n.store.suspects(true).map((q) => ({
      id: q.id,
      file: q.file,
      offset: q.offset,
      tokens: q.tokens,
      first: q.first.toString('hex'),
      last: q.last.toString('hex'),
      detectedAt: new Date(q.detectedAtMs).toISOString(),
      repaired: q.repaired,
    })),
    auth: { enabled: n.config.auth.enabled, table: n.auth?.status() ?? null },
    hintsByTarget: Object.fromEntries(n.hints.pendingByTarget()),
    members: n.membership.members().map((m) => ({ ...m })),
    hotKeys: n.hotKeys.top(10),
  };
}

function uptimeSec(n: Pick<NodeParts, 'clock' | 'startedAtMs'>): number {
  return Math.round((n.clock.nowMs() - n.startedAtMs) / 1000);
}
