// Cluster membership as the SDK and the storage servers see it: members, their states, and
// the rule for which of two reports about a member is newer. The storage servers gossip
// these records (storage-server/membership/); the SDK reads them from any live server.
// Pure data and functions.

/** A member's state. `joining`/`leaving` are used while data moves; `left` members are out of the ring. */
export type MemberState = 'up' | 'suspect' | 'down' | 'joining' | 'leaving' | 'left';

export const MEMBER_STATES: readonly MemberState[] = ['up', 'suspect', 'down', 'joining', 'leaving', 'left'];

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
}

/** Cluster-wide settings every member and client must agree on. */
export interface ClusterSettings {
  /** Virtual nodes per member at weight 1. */
  vnodesPerNode: number;
  /** Replicas per key (N). */
  replicationFactor: number;
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
}

// Precedence of states at equal incarnation: the more severe news wins, so that a
// suspicion spreads until the member itself refutes it with a higher incarnation.
const STATE_RANK: Record<MemberState, number> = { up: 0, joining: 1, leaving: 2, suspect: 3, down: 4, left: 5 };

/** True when `b` is newer news about a member than `a`. */
export function supersedes(b: MemberInfo, a: MemberInfo): boolean {
  if (b.incarnation !== a.incarnation) return b.incarnation > a.incarnation;
  return STATE_RANK[b.state] > STATE_RANK[a.state];
}

/** True when the member belongs in the ring (holds or will hold data). */
export function inRing(m: MemberInfo): boolean {
  return m.state !== 'left' && m.state !== 'joining';
}

/** True when requests may be sent to the member. */
export function reachable(m: MemberInfo): boolean {
  return m.state === 'up' || m.state === 'joining' || m.state === 'leaving' || m.state === 'suspect';
}
