// The node's own record of its life, in the data directory (NODE-STATE, JSON; see
// data-format.md): when it was last alive (a heartbeat written every few seconds and at a
// clean stop) and, while it recovers, since when its data may miss collected deletes. A
// node that starts after an outage longer than the tombstone grace period recovers before
// it serves reads (membership/README.md). Writes are atomic (temp file, fsync, rename);
// one writer at a time (the server awaits each write before the next).

import fs from 'node:fs';
import path from 'node:path';
import { CorruptionError } from '../sdk/errors.js';

export const NODE_STATE_FORMAT = 1;

export interface NodeState {
  format: typeof NODE_STATE_FORMAT;
  /** The last time (this node's clock, ms since the epoch) the node was known alive. */
  lastAliveMs: number;
  /**
   * Set while the node recovers: the start of the outage it recovers from. Keys it holds
   * from before this time that no peer holds any more are dropped by the recovery.
   */
  recoveringSinceMs?: number;
  /** Set once this node decommissioned itself (left the ring): when. It stays out after a restart. */
  leftAtMs?: number;
  /**
   * The data center and rack the node's data was placed for (absent: the default data
   * center, no rack). A node does not start in another: its data would belong elsewhere.
   */
  dc?: string;
  rack?: string;
  /**
   * Set by `ringkv restore --whole-cluster` (snapshot.ts): when. Every node was restored to
   * snapshots of one time, so no peer holds data newer than this node's and none collected a
   * delete it missed: the next start does not recover however old `lastAliveMs` is. That
   * start writes the state afresh, without it (it counts once).
   */
  wholeClusterRestoreMs?: number;
  /** Start of the outage this life began after (the previous life's last heartbeat); not stored. */
  previousLastAliveMs?: number;
}

/** The node's state file, or undefined when there is none (a new node, or an older ringkv). */
export function readNodeState(file: string): NodeState | undefined {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  let v: NodeState;
  try {
    v = JSON.parse(text) as NodeState;
  } catch (err) {
    throw new CorruptionError(`node state is not JSON: ${(err as Error).message}`, { file });
  }
  if (
    !v ||
    v.format !== NODE_STATE_FORMAT ||
    !Number.isSafeInteger(v.lastAliveMs) ||
    (v.recoveringSinceMs !== undefined && !Number.isSafeInteger(v.recoveringSinceMs)) ||
    (v.leftAtMs !== undefined && !Number.isSafeInteger(v.leftAtMs)) ||
    (v.wholeClusterRestoreMs !== undefined && !Number.isSafeInteger(v.wholeClusterRestoreMs)) ||
    (v.dc !== undefined && typeof v.dc !== 'string') ||
    (v.rack !== undefined && typeof v.rack !== 'string')
  ) {
    throw new CorruptionError(`node state has an unknown shape: ${text.slice(0, 200)}`, { file });
  }
  return v;
}

/** Replaces the node's state file atomically (written to `tmp`, fsynced, renamed, directory fsynced). */
export async function writeNodeState(file: string, tmp: string, state: NodeState): Promise<void> {
  const fh = await fs.promises.open(tmp, 'w');
  try {
    const { previousLastAliveMs: _notStored, ...stored } = state;
    await fh.writeFile(`${JSON.stringify(stored)}\n`);
    await fh.datasync();
  } finally {
    await fh.close();
  }
  await fs.promises.rename(tmp, file);
  const dir = await fs.promises.open(path.dirname(file), 'r');
  try {
    await dir.sync();
  } finally {
    await dir.close();
  }
}
