// Ring epochs: which ring (current + pending) a request was routed on, comparable so that a
// replica can tell that a sender's ring is older than the one it knows. Each member record
// carries a ring version, raised by whoever changes the member's place in the ring; the ring
// epoch of a member table is the sum of its members' ring versions (left members stay in the
// table, so the sum never goes down), and its digest tells two tables of equal epoch apart.
// The rules and why they are sound: storage-server/membership/README.md. Pure functions.

import type { MemberInfo } from './membership.js';
import { inPendingRing, inRing, ringVersionOf } from './membership.js';

/** The ring a table describes: its epoch and a digest of the members' ring classes, weights and places (data center, rack). */
export interface RingStamp {
  epoch: number;
  digest: number;
}

/** What a replica knows: its own stamp and the floor below which it refuses writes. */
export interface ReplicaRing extends RingStamp {
  floor: number;
}

/** How a member counts in the rings: joining, member (up/suspect/down/recovering), leaving, left. */
export type RingClass = 'j' | 'm' | 'l' | 'x';

export function ringClassOf(m: Pick<MemberInfo, 'state'>): RingClass {
  switch (m.state) {
    case 'joining':
      return 'j';
    case 'leaving':
      return 'l';
    case 'left':
      return 'x';
    default:
      return 'm';
  }
}

/** What decides a member's share of the ring besides its class: weight, data center, rack. */
type Placed = Pick<MemberInfo, 'state' | 'weight' | 'dc' | 'rack'>;

/** True when the two records place the member differently (weight, data center or rack). */
function movesPlacement(prev: Placed, next: Placed): boolean {
  return prev.weight !== next.weight || (prev.dc ?? '') !== (next.dc ?? '') || (prev.rack ?? '') !== (next.rack ?? '');
}

/**
 * True when going from `prev` to `next` changes where the member stands in the ring (its
 * class, its weight, its data center or rack): whoever makes such a change raises the
 * member's ring version.
 */
export function changesRing(prev: Placed | undefined, next: Placed): boolean {
  if (!prev) return true;
  return ringClassOf(prev) !== ringClassOf(next) || movesPlacement(prev, next);
}

/**
 * True when the change moves data ownership without a pending phase for writes routed on the
 * previous ring: the member enters or leaves the pending ring (join, leave, removenode, a
 * weight change). The flips joining → up and leaving → left do not: writes routed on the
 * ring before them already went to the new owners too. A node raises its floor to its ring
 * epoch after learning such a change.
 */
export function isFencingChange(prev: Placed | undefined, next: Placed): boolean {
  if (!prev) return inPendingRing(next) || inRing(next);
  return inPendingRing(prev) !== inPendingRing(next) || (movesPlacement(prev, next) && ringClassOf(next) !== 'x');
}

/** The stamp of a member table. O(members); callers cache it per change of the table. */
export function ringStampOf(members: Iterable<MemberInfo>): RingStamp {
  let epoch = 0;
  const parts: string[] = [];
  for (const m of members) {
    epoch += ringVersionOf(m);
    // A member's data center and rack enter the digest only when set, so that the stamps of
    // single-data-center tables are what they were before data centers existed.
    let part = `${m.id}\u0000${ringClassOf(m)}\u0000${m.weight}`;
    if (m.dc !== undefined || m.rack !== undefined) part += `\u0000${m.dc ?? ''}\u0000${m.rack ?? ''}`;
    parts.push(part);
  }
  parts.sort();
  // FNV-1a, 32 bits, over the sorted (id, class, weight) entries.
  let h = 0x811c9dc5;
  for (const p of parts) {
    for (let i = 0; i < p.length; i++) {
      h ^= p.charCodeAt(i) & 0xff;
      h = Math.imul(h, 0x01000193);
      h ^= p.charCodeAt(i) >>> 8;
      h = Math.imul(h, 0x01000193);
    }
    h ^= 0x0a;
    h = Math.imul(h, 0x01000193);
  }
  return { epoch, digest: h >>> 0 };
}

/**
 * Whether a replica takes a write routed on `sender`:
 * - `older`: the sender's epoch is below the replica's floor — it routed on a ring from before
 *   a change that moved ownership, and the replica refuses the write (RING_CHANGED);
 * - `diverged`: the same epoch as the replica's but another ring (two changes made
 *   concurrently, each known to one side) — refused too, so the sender merges the
 *   replica's view and routes on a ring that has both;
 * - `ok`: the same ring, a ring between the floor and the replica's, or a newer ring than the
 *   replica knows (the replica catches up through gossip).
 */
export function checkRouted(sender: RingStamp, replica: ReplicaRing): 'ok' | 'older' | 'diverged' {
  if (sender.epoch < replica.floor) return 'older';
  if (sender.epoch === replica.epoch && sender.digest !== replica.digest) return 'diverged';
  return 'ok';
}

/** True when `a` is valid wire data for a stamp. */
export function isRingStamp(a: unknown): a is RingStamp {
  const x = a as RingStamp;
  return !!x && typeof x === 'object' && Number.isSafeInteger(x.epoch) && x.epoch >= 0 && Number.isInteger(x.digest) && x.digest >= 0 && x.digest <= 0xffffffff;
}
