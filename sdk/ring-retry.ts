// Routing again after a ring change: a replica that refuses a write routed on an older ring
// (RING_CHANGED, with its view) makes the attempt route afresh, bounded by the call's time
// and maxRingRetries; a write acknowledged anyway is resent to the new ring's replicas that
// refused it. Stateless; each call's state is in its CallCtx.

import type { CallCtx } from './call-context.js';
import { remaining, withTimeout } from './call-context.js';
import type { ClientCore } from './client-core.js';
import type { RingkvError } from './errors.js';
import { QuorumNotMetError, RingChangedError } from './errors.js';
import type { QuorumOutcome } from './quorum-call.js';
import type { RingStamp } from './ring-epoch.js';
import { hintHolders, writeReplica } from './sloppy-quorum.js';
import type { StoredObject } from './versioning/index.js';

/**
 * Whether an attempt that failed after a RING_CHANGED refusal routes again: within the
 * call's time and maxRingRetries. Before it does, the view must have moved past the stamp
 * the attempt routed on (the refusal's view was applied already; else it is refreshed).
 */
export async function routeAgain(core: ClientCore, call: CallCtx, tries: number, routedOn: RingStamp): Promise<boolean> {
  const view = core.view;
  if (!call.ringChanged || tries >= core.settings.maxRingRetries || remaining(call) <= 0 || core.closed) return false;
  call.ringChanged = false;
  core.counters.ringRetries++;
  const same = () => view.ringStamp.epoch === routedOn.epoch && view.ringStamp.digest === routedOn.digest;
  if (same()) await withTimeout(view.refresh(), Math.max(1, remaining(call))).catch(() => undefined);
  // The replica may not have heard the cluster since it started: give gossip a moment.
  if (same()) await new Promise((r) => setTimeout(r, Math.min(50 * 2 ** tries, Math.max(1, remaining(call) / 2))));
  return remaining(call) > 0;
}

/**
 * The error of a call whose last attempt fell short because replicas refused its writes for
 * their ring (retries spent): RING_CHANGED rather than the quorum failure it caused.
 */
export function ringRefused(err: unknown, call: CallCtx): unknown {
  if (!call.ringChanged || !(err instanceof QuorumNotMetError)) return err;
  return new RingChangedError(`${err.message}: replicas refused writes routed on an older ring, and routing again did not settle it`, err.details);
}

/**
 * A write acknowledged by W replicas while others refused it for its ring (a fence in
 * progress: some replicas know the new ring, some not yet) is sent again, in the
 * background, to the replicas of the new ring that do not hold it yet — else a replica
 * that refused it would lack it until anti-entropy came by.
 */
export function resendRefused(core: ClientCore, k: Buffer, obj: StoredObject, out: QuorumOutcome, dcs: readonly string[], also?: string): void {
  core.track(
    out.settled.then(async ({ answers, failures }) => {
      if (!failures.some((f) => (f.error as RingkvError).code === 'RING_CHANGED')) return;
      const holding = new Set(answers.map((a) => a.node));
      if (also) holding.add(also);
      const ring = core.view.ringStamp;
      const replicas = core.routing.replicaTargets(k, dcs);
      const targets = [...replicas, ...core.routing.pendingTargets(k, replicas, dcs)].filter((x) => !holding.has(x));
      const holders = hintHolders(core, k);
      const bg = core.backgroundCtx();
      await Promise.allSettled(targets.map((node) => writeReplica(core, node, k, obj, holders, true, { maybeApplied: false }, bg, ring)));
    }),
  );
}
