// The layout of a node's data directory (documented in ./data-format.md): one engine for
// the replica data, one for hints, one for the cross-DC replication queue, the ACTOR file (the node's vector-clock epoch and dot
// counter lease, ./dot-counter.ts), NODE-STATE (./node-state.ts: when the node was last
// alive, and whether it is recovering), AUTH (./auth/auth-table.ts: this node's copy of the
// user table), and a FORMAT file naming the layout version so that
// a node never reads a directory written in another layout as if it were its own. The only
// place the directory's names are made.

import fs from 'node:fs';
import path from 'node:path';
import { CorruptionError } from '../sdk/errors.js';

export const DATA_FORMAT = 'ringkv-node-data 1';

export interface DataDirLayout {
  engineDir: string;
  hintsDir: string;
  /** The cross-DC replication queue (replication/repl-queue.ts; created only in a cluster of several data centers). */
  replDir: string;
  /** The node's vector-clock epoch and dot counter lease. */
  actorFile: string;
  /** Where a new ACTOR file is written before it is renamed over the old one. */
  actorTempFile: string;
  /** The node's last-alive time and recovery (node-state.ts). */
  nodeStateFile: string;
  /** Where a new NODE-STATE is written before it is renamed over the old one. */
  nodeStateTempFile: string;
  /** This node's copy of the user table (auth/auth-table.ts). */
  authFile: string;
  /** Where a new AUTH is written before it is renamed over the old one. */
  authTempFile: string;
}

/** Creates the directory or checks its FORMAT; returns where each part lives. */
export function prepareDataDir(dataDir: string): DataDirLayout {
  const layout = {
    engineDir: path.join(dataDir, 'engine'),
    hintsDir: path.join(dataDir, 'hints'),
    replDir: path.join(dataDir, 'repl'),
    actorFile: path.join(dataDir, 'ACTOR'),
    actorTempFile: path.join(dataDir, 'ACTOR.tmp'),
    nodeStateFile: path.join(dataDir, 'NODE-STATE'),
    nodeStateTempFile: path.join(dataDir, 'NODE-STATE.tmp'),
    authFile: path.join(dataDir, 'AUTH'),
    authTempFile: path.join(dataDir, 'AUTH.tmp'),
  };
  const formatFile = path.join(dataDir, 'FORMAT');
  fs.mkdirSync(dataDir, { recursive: true });
  if (fs.existsSync(formatFile)) {
    const text = fs.readFileSync(formatFile, 'utf8').trim();
    if (text !== DATA_FORMAT) {
      throw new CorruptionError(`data directory has layout "${text}", this ringkv reads "${DATA_FORMAT}"`, { file: formatFile });
    }
    return layout;
  }
  const entries = fs.readdirSync(dataDir);
  if (entries.length > 0) {
    throw new CorruptionError(`data directory holds files (${entries.slice(0, 5).join(', ')}) but no FORMAT: not a ringkv node directory`, {
      file: formatFile,
    });
  }
  const tmp = `${formatFile}.tmp`;
  fs.writeFileSync(tmp, `${DATA_FORMAT}\n`);
  fs.renameSync(tmp, formatFile);
  return layout;
}
