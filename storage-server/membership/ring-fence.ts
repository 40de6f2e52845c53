// Ring fences (README.md "Ring epochs and fences"): before data moves for a join, a
// decommission or a removal, every live member must refuse writes routed on a ring from
// before the change. The node that changes the ring drives the fence (awaitRingFence);
// every node answers one (answerRingFence) once the write batches it admitted under older
// rings have finished (AdmittedWrites). Single-threaded, like the membership it reads.

import type { Transport } from '../../sdk/transport.js';
import { reachable } from '../../sdk/membership.js';
import { UnavailableError } from '../../sdk/errors.js';
import type { RingFenceRequest, RingFenceResponse } from '../../sdk/wire/protocol.js';
import { MESSAGE_VERSION, Routes } from '../../sdk/wire/protocol.js';
import type { Logger } from '../logger.js';
import type { Membership } from './membership.js';
import { publicInfo } from './membership.js';

/** The write batches being applied that were admitted under a ring stamp: a fence waits for the older ones. */
export class AdmittedWrites {
  private readonly writes = new Set<{ epoch: number; done: Promise<unknown> }>();

  /** Tracks a batch admitted under ring `epoch` until `done` settles; returns `done`'s outcome. */
  track<T>(epoch: number, done: Promise<T>): Promise<T> {
    const w = { epoch, done };
    this.writes.add(w);
    return done.finally(() => this.writes.delete(w));
  }

  /** Resolves when every batch admitted under an epoch below `floor` has settled, or after `maxWaitMs`. */
  async settleBelow(floor: number, maxWaitMs: number): Promise<void> {
    const older = [...this.writes].filter((w) => w.epoch < floor).map((w) => w.done.catch(() => undefined));
    if (older.length > 0) {
      await Promise.race([Promise.all(older), new Promise((r) => setTimeout(r, maxWaitMs).unref())]);
    }
  }
}

/**
 * A node that changes the ring hands over its member table: merge it, wait until the write
 * batches this node admitted under rings older than its floor have finished (bounded by
 * `maxWaitMs`, their deadlines), and answer with the ring this node now knows. From this
 * answer on, every write routed on an older ring is refused here.
 */
export async function answerRingFence(msg: RingFenceRequest, membership: Membership, admitted: AdmittedWrites, maxWaitMs: number): Promise<RingFenceResponse> {
  membership.handleGossip({ v: msg.v, from: msg.from, members: msg.members });
  await admitted.settleBelow(membership.ring.floor, maxWaitMs);
  const ring = membership.ring;
  return {
    v: MESSAGE_VERSION.ringFence,
    from: membership.self.id,
    members: membership.members().map(publicInfo),
    ringEpoch: ring.epoch,
    ringDigest: ring.digest,
    ringFloor: ring.floor,
  };
}

export interface RingFenceDriver {
  membership: Membership;
  transport: Transport;
  log: Logger;
  /** How long the fence waits for every live member (ringFenceTimeoutMs). */
  ringFenceTimeoutMs: number;
  requestTimeoutMs: number;
}

/**
 * Waits until every live member (up, joining, leaving, recovering or suspect; not down or
 * left) answers a ring fence with this node's ring or a newer one, and a floor at least this
 * node's: from then on no member takes a write routed on a ring from before this node's last
 * change. Members that are down are not waited for (they learn the ring on return, before
 * taking routed writes: see Membership.synced). Throws UnavailableError after
 * ringFenceTimeoutMs.
 */
export async function awaitRingFence(d: RingFenceDriver, what: string): Promise<void> {
  const self = d.membership.self.id;
  const started = Date.now();
  const deadline = started + d.ringFenceTimeoutMs;
  for (let round = 1; ; round++) {
    const target = d.membership.ring;
    const peers = d.membership.members().filter((m) => m.id !== self && reachable(m));
    const req: RingFenceRequest = { v: MESSAGE_VERSION.ringFence, from: self, members: d.membership.members().map(publicInfo) };
    const answers = await Promise.all(
      peers.map((m) =>
        d.transport
          .call<RingFenceResponse>(d.membership.addressOf(m), Routes.ringFence, req, { timeoutMs: Math.max(1000, d.requestTimeoutMs * 3) })
          .catch(() => undefined),
      ),
    );
    for (const a of answers) if (a && Array.isArray(a.members)) d.membership.mergeList(a.members, a.from);
    const behind = peers.filter((m, i) => {
      const a = answers[i];
      if (!a) return true;
      if (a.ringFloor < target.floor) return true;
      return a.ringEpoch < target.epoch || (a.ringEpoch === target.epoch && a.ringDigest !== target.digest);
    });
    if (behind.length === 0) {
      d.log.info({ what, ringEpoch: target.epoch, members: peers.length, rounds: round, ms: Date.now() - started }, 'ring fence: every live member refuses writes routed on older rings');
      return;
    }
    if (Date.now() >= deadline) {
      throw new UnavailableError(`${what}: ${behind.map((m) => m.id).join(', ')} did not acknowledge ring epoch ${target.epoch} within ${d.ringFenceTimeoutMs} ms`);
    }
    await new Promise((r) => setTimeout(r, Math.min(1000, 100 * round)));
  }
}
