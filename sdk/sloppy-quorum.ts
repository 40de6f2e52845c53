// Sloppy quorum and hinted handoff, the client's side: a write whose replica is down (or
// unreachable, or shed it for load) is stored as a hint on the next healthy node beyond the
// key's preference list, in the replica's data center, which hands it over later. Stateless
// between calls.

import { monotonicNowMs } from './batcher.js';
import type { CallCtx } from './call-context.js';
import type { ClientCore } from './client-core.js';
import { QuorumNotMetError } from './errors.js';
import { isReachabilityFailure } from './node-health.js';
import type { RingStamp } from './ring-epoch.js';
import { isShed, retryAfterSecOf } from './shed-verdict.js';
import type { StoredObject } from './versioning/index.js';
import type { WireOp, WireResult } from './wire/protocol.js';
import { OpType } from './wire/protocol.js';
import type { WriteEffects } from './write-outcome.js';
import { noteEffect, noteFailure } from './write-outcome.js';

/**
 * Sends `obj` (a fresh write) to replica `node`; when the node is known down, or the write
 * fails for reachability or is shed for load, stores it as a hint on the next healthy node
 * beyond the preference list (sloppy quorum). A hinted write counts as an acknowledgement only when
 * `countHints`. Notes in `effects` whether the write may have been applied anywhere.
 */
export async function writeReplica(
  core: ClientCore,
  node: string,
  key: Buffer,
  obj: StoredObject,
  holders: (target: string) => string | undefined,
  countHints: boolean,
  effects: WriteEffects,
  call: CallCtx,
  ring: RingStamp,
  shipped = false,
): Promise<WireResult> {
  // A shipped object (from another data center) is merged: it may well be older than what
  // a replica holds, which is no failure.
  const op: WireOp = shipped
    ? { t: OpType.Merge, key, obj, shipped: true }
    : obj.mode === 'lww'
      ? { t: OpType.Put, key, obj }
      : { t: OpType.Merge, key, obj };
  // A write the replica (or the client's queue for it) shed for load is kept as a hint too.
  let shed: unknown;
  if (core.routing.isUsable(node)) {
    try {
      return noteEffect(effects, await core.send(node, op, call, ring));
    } catch (err) {
      noteFailure(effects, err);
      if (isShed(err)) shed = err;
      else if (!isReachabilityFailure(err)) throw err;
    }
  }
  const holder = holders(node);
  if (!holder) {
    if (shed !== undefined) throw shed;
    throw new QuorumNotMetError('hinted write', 1, 0, 1, new Error(`no healthy node can hold a hint for ${node}`));
  }
  // The hint gets at least the client's timeout from now: a request to a node that stopped
  // answering times out at the call's deadline, leaving the hint no time (it would expire
  // unsent, and the replica miss the write until anti-entropy). The call itself still ends
  // at its deadline; an abort still drops the hint while it is queued.
  const hintCall: CallCtx = { ...call, deadline: Math.max(call.deadline, monotonicNowMs() + core.settings.timeoutMs), ringChanged: false };
  let res: WireResult;
  try {
    res = noteEffect(effects, await core.send(holder, { ...op, hintFor: node } as WireOp, hintCall, ring));
    if (hintCall.ringChanged) call.ringChanged = true;
  } catch (err) {
    noteFailure(effects, err);
    throw err;
  }
  if (!res.ok) return res;
  core.counters.hintedWrites++;
  if (countHints) return res;
  // A replica that shed the write, or is avoided because it sheds load, is no down node:
  // the write fails there for load.
  const overloadedMs = core.routing.overloadedForMs(node);
  if (shed !== undefined || overloadedMs > 0) {
    const retryAfterSec = shed !== undefined ? retryAfterSecOf(shed) : overloadedMs / 1000;
    return { ok: false, code: 'OVERLOADED', msg: `${node} sheds load; the write is kept as a hint on ${holder}`, details: { retryAfterSec } };
  }
  return { ok: false, code: 'NODE_UNAVAILABLE', msg: `${node} is down; the write is kept as a hint on ${holder}` };
}

/**
 * Hint holders for `key`, in order: healthy nodes clockwise beyond the preference list,
 * then (in a cluster too small for that) healthy replicas themselves — never the node the
 * hint is for, which may still look healthy when its write has just failed. Each call
 * returns the next one, so that two down replicas get different holders when possible. A
 * hint stays in the data center of the replica it stands for: the holders of a target are
 * members of its data center.
 */
export function hintHolders(core: ClientCore, key: Buffer): (target: string) => string | undefined {
  const orders = new Map<string, { order: string[]; i: number }>();
  return (target) => {
    const dc = core.view.dcOf(target) ?? '';
    let o = orders.get(dc);
    if (!o) {
      const ring = core.view.ring;
      const placed = new Set(ring.replicasInDc(key, dc));
      const walk = [...ring.walkInDc(key, dc)];
      const beyond = walk.filter((x) => !placed.has(x) && core.routing.isUsable(x));
      const replicas = walk.filter((x) => placed.has(x) && core.routing.isUsable(x));
      orders.set(dc, (o = { order: [...beyond, ...replicas], i: 0 }));
    }
    const candidates = o.order.filter((x) => x !== target);
    if (candidates.length === 0) return undefined;
    return candidates[o.i++ % candidates.length];
  };
}
