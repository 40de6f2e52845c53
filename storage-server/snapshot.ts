// Snapshots of a node's data and their restore. A snapshot is `<data>/snapshots/<name>/`:
// the replica engine's tables hard-linked (no copy: tables are immutable) with a manifest
// naming exactly them, taken between two manifest changes after a flush, so it is the
// node's data at one point (consistent per node); FORMAT, NODE-STATE and AUTH (the user
// table) copied; never ACTOR (a restored node must be a new vector-clock actor,
// data-format.md) nor hints. A restore
// copies a snapshot into an empty data directory; the node then catches up on what it
// missed since from its peers (hints, read repair, and anti-entropy: `ringkv repair`), or,
// when every node is restored (`wholeCluster`), starts without recovering from them.
// One snapshot at a time per name; the directory appears only once complete (a rename).

import fs from 'node:fs';
import path from 'node:path';
import { InvalidArgumentError } from '../sdk/errors.js';
import type { Engine } from './engine/index.js';
import { NodeFileSystem } from './engine/index.js';
import { writeManifest } from './engine/manifest.js';
import { DATA_FORMAT, prepareDataDir } from './data-dir.js';
import { readNodeState, writeNodeState } from './node-state.js';

export const SNAPSHOTS_DIR = 'snapshots';
const NAME_RE = /^[A-Za-z0-9._-]{1,64}$/;

export interface SnapshotInfo {
  name: string;
  /** The snapshot's directory (on the node's host). */
  dir: string;
  tables: number;
  bytes: number;
}

/** Takes snapshot `name` of the node whose data directory is `dataDir`. */
export async function takeSnapshot(dataDir: string, engine: Engine, name: unknown): Promise<SnapshotInfo> {
  if (typeof name !== 'string' || !NAME_RE.test(name) || name.startsWith('.')) {
    throw new InvalidArgumentError('a snapshot name is 1 to 64 letters, digits, ".", "_" or "-", not starting with "."');
  }
  const root = path.join(dataDir, SNAPSHOTS_DIR);
  const dir = path.join(root, name);
  if (fs.existsSync(dir)) throw new InvalidArgumentError(`snapshot ${name} exists already (${dir})`);
  const tmp = path.join(root, `.${name}.tmp`);
  fs.rmSync(tmp, { recursive: true, force: true });
  const layout = prepareDataDir(dataDir);
  const engineDir = path.join(tmp, path.relative(dataDir, layout.engineDir));
  fs.mkdirSync(engineDir, { recursive: true });
  let bytes = 0;
  const tables = await engine.checkpoint(async (files, manifest) => {
    for (const f of files) {
      fs.linkSync(f, path.join(engineDir, path.basename(f)));
      bytes += fs.statSync(f).size;
    }
    await writeManifest(new NodeFileSystem(), engineDir, manifest);
    return files.length;
  });
  fs.copyFileSync(path.join(dataDir, 'FORMAT'), path.join(tmp, 'FORMAT'));
  if (fs.existsSync(layout.nodeStateFile)) fs.copyFileSync(layout.nodeStateFile, path.join(tmp, path.basename(layout.nodeStateFile)));
  // The user table is replaced by renames: a copy is one whole version of it. A node restored
  // alone merges it with its peers' (their removals win; a snapshot older than the removals'
  // retention is dropped by the recovery); a whole cluster restored has only these copies.
  if (fs.existsSync(layout.authFile)) fs.copyFileSync(layout.authFile, path.join(tmp, path.basename(layout.authFile)));
  fs.renameSync(tmp, dir);
  return { name, dir, tables, bytes };
}

export interface RestoreOptions {
  /**
   * Every node of the cluster is restored from snapshots of one name: the restored
   * NODE-STATE is marked (`wholeClusterRestoreMs`) so that the node's next start does not
   * recover from its peers, which hold the same point in time (all of them would otherwise
   * wait, `recovering`, for a peer that is up, when the snapshots are older than
   * tombstoneGraceMs). Never for one node restored among running peers: they may have
   * collected deletes it missed since its snapshot.
   */
  wholeCluster?: boolean;
  /** The restore's time (ms since the epoch). Default now. */
  nowMs?: number;
}

/**
 * Restores a snapshot directory (or a copy of one) into `dataDir`, which must be missing
 * or empty: the node must be stopped. Returns the files copied.
 */
export async function restoreSnapshot(snapshotDir: string, dataDir: string, o: RestoreOptions = {}): Promise<number> {
  const format = path.join(snapshotDir, 'FORMAT');
  if (!fs.existsSync(format) || fs.readFileSync(format, 'utf8').trim() !== DATA_FORMAT) {
    throw new InvalidArgumentError(`${snapshotDir} is not a ringkv snapshot (no FORMAT "${DATA_FORMAT}")`);
  }
  if (fs.existsSync(path.join(snapshotDir, 'ACTOR'))) throw new InvalidArgumentError(`${snapshotDir} holds an ACTOR file: delete it first (never restore ACTOR, see data-format.md)`);
  if (fs.existsSync(dataDir) && fs.readdirSync(dataDir).length > 0) throw new InvalidArgumentError(`${dataDir} is not empty: stop the node and move its data away first`);
  fs.mkdirSync(dataDir, { recursive: true });
  let files = 0;
  fs.cpSync(snapshotDir, dataDir, { recursive: true, filter: () => (files++, true) });
  if (o.wholeCluster) {
    const layout = prepareDataDir(dataDir);
    // A snapshot without NODE-STATE (an older ringkv) starts as not recovering anyway.
    const state = readNodeState(layout.nodeStateFile);
    if (state) await writeNodeState(layout.nodeStateFile, layout.nodeStateTempFile, { ...state, wholeClusterRestoreMs: o.nowMs ?? Date.now() });
  }
  return files;
}
