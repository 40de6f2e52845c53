// The internal route of operator actions (`ringkv repair`, `decommission`, `removenode`,
// `cleanup`, `fold`, `drop-hints`, `repl fullsync`, `compact`, `snapshot`...): a node
// certificate, or an admin's token. Each action runs on this node and answers when done;
// membership changes go through membership-changes.ts (one join or decommission at a time).

import { InvalidArgumentError } from '../../sdk/errors.js';
import type { AdminRequest } from '../../sdk/wire/protocol.js';
import { checkProtocolVersion, decodeMessage, MESSAGE_VERSION, Routes } from '../../sdk/wire/protocol.js';
import type { NodeParts } from '../node-parts.js';
import { takeSnapshot } from '../snapshot.js';
import { readBody } from './read-body.js';
import { sendMsgpackOrJson } from './respond.js';
import type { Route } from './router.js';

type Parts = Pick<NodeParts, 'id' | 'config' | 'log' | 'engine' | 'store' | 'hints' | 'antiEntropy' | 'foldPass' | 'changes' | 'replication'>;

export function adminRoutes(n: Parts): Route[] {
  return [
    {
      name: 'admin',
      path: Routes.admin,
      methods: ['POST'],
      handle: async ({ req, res }) => {
        const msg = decodeMessage<AdminRequest>(await readBody(req, 64 * 1024));
        checkProtocolVersion(msg?.v);
        sendMsgpackOrJson(req, res, { v: MESSAGE_VERSION.admin, node: n.id, ...(await runAction(n, msg)) });
      },
    },
  ];
}

/** Runs one admin action; what it answers besides v and node. */
async function runAction(n: Parts, msg: AdminRequest): Promise<Record<string, unknown>> {
  switch (msg.action) {
    case 'repair':
      return { repair: await n.antiEntropy.repair('all') };
    case 'decommission':
      return { decommission: await n.changes.decommission() };
    case 'removenode': {
      if (typeof msg.node !== 'string') throw new InvalidArgumentError('removenode needs a node id');
      await n.changes.removeNode(msg.node);
      return { removed: msg.node };
    }
    case 'cleanup':
      return { cleanup: await n.changes.cleanup() };
    case 'fold':
      return { fold: await n.foldPass.run() };
    case 'drop-hints': {
      // No node (absent or null): every target's hints.
      const dropped = await n.hints.drop(msg.node ?? undefined);
      n.log.warn({ dropped, target: msg.node ?? 'all' }, 'hints dropped by an operator');
      return { dropped };
    }
    case 'fullsync': {
      const { replication } = n;
      if (!replication.active) throw new InvalidArgumentError('this cluster has one data center: there is nothing to full-sync with');
      const dcs = msg.dc === undefined || msg.dc === null ? replication.remoteDcs : [String(msg.dc)];
      for (const dc of dcs) {
        if (!replication.remoteDcs.includes(dc)) {
          throw new InvalidArgumentError(`${JSON.stringify(dc)} is not another data center of this cluster (${replication.remoteDcs.join(', ')})`);
        }
      }
      const fullsync = [];
      for (const dc of dcs) fullsync.push(await replication.fullSync.run(dc));
      return { dc: n.config.dc, fullsync };
    }
    case 'rebuild-leaves':
      return { entries: await n.store.rebuildLeaves() };
    case 'compact': {
      // Flushes the memtable and compacts every table into one: tombstones and expired
      // values older than tombstoneGraceMs are dropped (tests and operators), and
      // quarantined blocks whose keys were repaired (refused with CORRUPTION while one is not).
      const before = n.engine.stats().tableCount;
      await n.engine.compact();
      const s = n.engine.stats();
      return { compacted: true, tablesBefore: before, tables: s.tableCount, corruptBlocksDropped: s.corruptBlocksDropped };
    }
    case 'snapshot':
      return { snapshot: await takeSnapshot(n.config.dataDir, n.engine, msg.name) };
    default:
      throw new InvalidArgumentError(`unknown admin action ${JSON.stringify(msg.action)}`);
  }
}
