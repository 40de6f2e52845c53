// Cluster membership as the SDK and the storage servers see it: members, their states, and
// the rule for which of two reports about a member is newer. The storage servers gossip
// these records (storage-server/membership/); the SDK reads them from any live server.
// Pure data and functions.

import type { TlsMode } from './transport-security.js';

/**
 * A member's state. `joining`/`leaving` are used while data moves; `left` members are out of
 * the ring. `recovering` (protocol 3): a member back from an outage longer than the tombstone
 * grace period, in the ring and taking writes but not read or repaired from until it has
 * been repaired from its peers (storage-server/membership/README.md).
 */
export type MemberState = 'up' | 'suspect' | 'down' | 'joining' | 'leaving' | 'left' | 'recovering';

export const MEMBER_STATES: readonly MemberState[] = ['up', 'suspect', 'down', 'joining', 'leaving', 'left', 'recovering'];

/** One member as gossiped. */
export interface MemberInfo {
  id: string;
  /** "host:port" of its HTTP endpoint. */
  address: string;
  /** Virtual-node weight (1 = the cluster's vnodesPerNode). */
  weight: number;
  state: MemberState;
  /**
   * Raised only by the member itself (to refute a suspicion, or to announce a change of its
   * own state); news with a higher incarnation always wins.
   */
  incarnation: number;
  /**
   * Raised by whoever changes the member's place in the ring (its ring class or weight; see
   * sdk/ring-epoch.ts): the member itself when it joins, becomes up, leaves or has left, an
   * operator's removenode, a failure detector that suspects a joining or leaving member.
   * News with a higher ring version wins over any incarnation (protocol 3; absent = 0).
   */
  ringVersion?: number;
  /**
   * Set on a `left` record made by an operator's removenode: when the member was removed
   * (the remover's clock, ms since the epoch). A member that returns accepts the removal
   * only when this falls within its own outage (storage-server/membership/README.md).
   */
  removedAtMs?: number;
  /**
   * What the member accepts on its port (storage-server/tls/README.md); absent means `off`.
   * Senders pick plain or TLS by it. Set by the member itself, with a new incarnation.
   */
  tls?: TlsMode;
  /**
   * The member's data center (protocol 5): absent means {@link DEFAULT_DC}, so records of a
   * single-data-center cluster look exactly as before. Part of its place in the ring.
   */
  dc?: string;
  /** The member's rack within its data center (protocol 5); absent: no rack (one shared rack). Part of its place in the ring. */
  rack?: string;
  /**
   * The address nodes and clients of *other* data centers use to reach it (protocol 5): a
   * public or NAT address, or a port of an inter-DC gateway. Absent: `address` for everyone.
   */
  remoteAddress?: string;
}

/** The data center of members that name none (single-data-center clusters). */
export const DEFAULT_DC = 'default';

/** Per data center, the number of replicas of every key it holds ({ "east": 3, "west": 3 }). */
export type ReplicationMap = Readonly<Record<string, number>>;

/** The data center of a member. */
export function dcOf(m: Pick<MemberInfo, 'dc'>): string {
  return m.dc ?? DEFAULT_DC;
}

/**
 * The address a node or client in data center `fromDc` uses to reach `m`: its own address
 * within its data center (and for a caller that names no data center), else its
 * remoteAddress when it has one.
 */
export function addressFrom(m: Pick<MemberInfo, 'dc' | 'address' | 'remoteAddress'>, fromDc: string | undefined): string {
  if (fromDc === undefined || m.remoteAddress === undefined || dcOf(m) === fromDc) return m.address;
  return m.remoteAddress;
}

/** The replication of a cluster's settings: its per-data-center map, or N in the default data center. */
export function replicationOf(s: ClusterSettings): ReplicationMap {
  return s.replication ?? { [DEFAULT_DC]: s.replicationFactor };
}

/** Largest virtual-node weight a member may have (vnodes = vnodesPerNode x weight). */
export const MAX_MEMBER_WEIGHT = 64;
/** Largest incarnation or ring version accepted: far below 2^53, so +1 always refutes. */
export const MAX_MEMBER_COUNTER = 2 ** 40;

/** Cluster-wide settings every member and client must agree on. */
export interface ClusterSettings {
  /** Virtual nodes per member at weight 1. */
  vnodesPerNode: number;
  /** Replicas per key (N): with several data centers, the sum of their replication factors. */
  replicationFactor: number;
  /**
   * Replicas per key in each data center (protocol 5). Absent: one data center,
   * {@link DEFAULT_DC}, holding `replicationFactor` replicas.
   */
  replication?: Record<string, number>;
}

/** The settings in one line, for messages: `vnodes 128, replication east:3,west:3`. */
export function describeSettings(s: ClusterSettings): string {
  const r = replicationOf(s);
  return `vnodes ${s.vnodesPerNode}, replication ${Object.keys(r)
    .sort()
    .map((dc) => `${dc}:${r[dc]}`)
    .join(',')}`;
}

/** True when two nodes' cluster-wide settings are the same (they must be on every node). */
export function sameSettings(a: ClusterSettings, b: ClusterSettings): boolean {
  return a.vnodesPerNode === b.vnodesPerNode && a.replicationFactor === b.replicationFactor && describeSettings(a) === describeSettings(b);
}

/** The answer of GET /internal/v1/members. */
export interface MembersView {
  v: number;
  /** The answering node. */
  self: string;
  settings: ClusterSettings;
  members: MemberInfo[];
  /** Rises whenever the answering node's view changes; long-polls wait for a newer one. */
  epoch: number;
  /** The answering server's clock (ms since the epoch) when it answered (protocol 2). */
  now?: number;
  /** The answering node's ring epoch: the sum of its members' ring versions (protocol 3). */
  ringEpoch?: number;
  /** A hash of the ring it describes, to tell two rings of equal epoch apart (protocol 3). */
  ringDigest?: number;
  /** Writes routed on a ring epoch below this are refused with RING_CHANGED (protocol 3). */
  ringFloor?: number;
}

// Precedence of states at equal ring version and incarnation: the more severe news wins, so
// that a suspicion spreads until the member itself refutes it with a higher incarnation.
const STATE_RANK: Record<MemberState, number> = { up: 0, recovering: 1, joining: 2, leaving: 3, suspect: 4, down: 5, left: 6 };

/** The ring version of a record (0 for peers that predate protocol 3). */
export function ringVersionOf(m: MemberInfo): number {
  return m.ringVersion ?? 0;
}

/**
 * True when `b` is newer news about a member than `a`: a higher ring version, else a higher
 * incarnation, else a more severe state.
 */
export function supersedes(b: MemberInfo, a: MemberInfo): boolean {
  const rb = ringVersionOf(b);
  const ra = ringVersionOf(a);
  if (rb !== ra) return rb > ra;
  if (b.incarnation !== a.incarnation) return b.incarnation > a.incarnation;
  return STATE_RANK[b.state] > STATE_RANK[a.state];
}

/** True when the member belongs in the ring (holds or will hold data). */
export function inRing(m: Pick<MemberInfo, 'state'>): boolean {
  return m.state !== 'left' && m.state !== 'joining';
}

/** True when the member belongs in the ring to come (the replicas writes also go to while data moves). */
export function inPendingRing(m: Pick<MemberInfo, 'state'>): boolean {
  return m.state !== 'left' && m.state !== 'leaving';
}

/** True when requests may be sent to the member. */
export function reachable(m: MemberInfo): boolean {
  return m.state === 'up' || m.state === 'joining' || m.state === 'leaving' || m.state === 'suspect' || m.state === 'recovering';
}
