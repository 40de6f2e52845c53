// A node's membership table and the gossip that spreads it: every round the node exchanges
// its whole view with one random peer (push-pull), so news reaches every node in
// O(log n) rounds. A member's record changes only to newer news (higher incarnation, or a
// more severe state at equal incarnation); only the member itself raises its incarnation,
// which is how it refutes a suspicion. Failure detection (failure-detector.ts) feeds
// suspect/down/up changes in through markState(). Each member also carries a ring version,
// raised by whoever changes its place in the ring; the table's ring stamp (sdk/ring-epoch.ts)
// and the floor below which this node refuses writes are kept up to date on every change.
// Single-threaded; all methods are sync except the network rounds.

import type { Clock } from '../../sdk/clock.js';
import type { ClusterSettings, MemberInfo, MembersView, MemberState } from '../../sdk/membership.js';
import { addressFrom, dcOf, MAX_MEMBER_COUNTER, MAX_MEMBER_WEIGHT, MEMBER_STATES } from '../../sdk/membership.js';
import { describeSettings, reachable, ringVersionOf, sameSettings, supersedes } from '../../sdk/membership.js';
import { SettingsMismatchError } from '../../sdk/errors.js';
import { TOPOLOGY_NAME } from '../../sdk/ring.js';
import type { ReplicaRing } from '../../sdk/ring-epoch.js';
import { changesRing, isFencingChange, ringStampOf } from '../../sdk/ring-epoch.js';
import type { Transport } from '../../sdk/transport.js';
import { MESSAGE_VERSION, Routes } from '../../sdk/wire/protocol.js';
import type { Logger } from '../logger.js';

/** A member plus what this node observed locally. */
export interface MemberEntry extends MemberInfo {
  /** When this node last heard from the member directly or learned newer news (ms). */
  lastHeardMs: number;
  /** When the member entered its current state, as seen here (ms). */
  stateSinceMs: number;
}

export interface GossipMessage {
  v: number;
  from: string;
  members: MemberInfo[];
  /** The sender's cluster-wide settings (protocol 5): a receiver with others refuses the gossip. */
  settings?: ClusterSettings;
}

export interface MembershipOptions {
  self: MemberInfo;
  settings: ClusterSettings;
  seeds: string[];
  transport: Transport;
  clock: Clock;
  log: Logger;
  gossipIntervalMs: number;
  requestTimeoutMs: number;
  /**
   * This node's last outage, from its previous life's last heartbeat to this start (ms,
   * this node's clock); undefined for a new node. A removal of this node is accepted only
   * when it was made within it (a removenode is made only while the member is down).
   */
  outage?: { fromMs: number; toMs: number } | undefined;
  /**
   * Accept any removal of this node gossiped by a peer (set when gossip travels only between
   * nodes authenticated by their certificates). Default false.
   */
  trustRemovals?: boolean;
  /** This node decommissioned itself before this start (its own NODE-STATE says so). */
  selfLeft?: boolean;
  /** Clock error allowed when placing a removal time within the outage. Default 5000 ms. */
  maxClockSkewMs?: number;
}

/** Most member records one gossip message may carry. */
export const MAX_GOSSIP_MEMBERS = 4096;
/** Most a member's ring version may rise in one piece of news (ring changes are rare). */
export const MAX_RING_VERSION_STEP = 1000;
/** Most a member's incarnation may rise in one piece of news beyond the one known or the current second. */
export const MAX_INCARNATION_STEP = 10_000_000;

export type MembershipListener = (m: MemberEntry, previous: MemberState | undefined) => void;

export class Membership {
  private readonly entries = new Map<string, MemberEntry>();
  private epochValue = 1;
  private timer: NodeJS.Timeout | undefined;
  private waiters: { since: number; resolve: () => void; timer: NodeJS.Timeout }[] = [];
  private readonly listeners: MembershipListener[] = [];
  private running = false;
  private roundInFlight = false;
  private ringValue: ReplicaRing;
  private syncedValue: boolean;
  /** Gossip rounds done and failed (for metrics). */
  readonly counters = { rounds: 0, roundFailures: 0, refutations: 0, settingsMismatches: 0 };

  constructor(private readonly o: MembershipOptions) {
    const now = o.clock.nowMs();
    this.entries.set(o.self.id, { ...o.self, ringVersion: Math.max(1, ringVersionOf(o.self)), lastHeardMs: now, stateSinceMs: now });
    const stamp = ringStampOf(this.entries.values());
    this.ringValue = { ...stamp, floor: stamp.epoch };
    // A node with no one to ask knows the whole cluster already (a new cluster's first node).
    this.syncedValue = o.seeds.filter((s) => s !== o.self.address).length === 0;
  }

  /**
   * This node's ring stamp and floor (cached; recomputed on each change of the table):
   * writes routed on an epoch below the floor are refused (sdk/ring-epoch.ts).
   */
  get ring(): ReplicaRing {
    return this.ringValue;
  }

  /**
   * False from start until this node has merged a member table from a peer: until then its
   * ring may be older than any client's, so it does not take routed writes.
   */
  get synced(): boolean {
    return this.syncedValue;
  }

  get selfId(): string {
    return this.o.self.id;
  }

  get self(): MemberEntry {
    return this.entries.get(this.o.self.id)!;
  }

  get epoch(): number {
    return this.epochValue;
  }

  get settings(): ClusterSettings {
    return this.o.settings;
  }

  /** This node's data center. */
  get selfDc(): string {
    return dcOf(this.o.self);
  }

  /**
   * The address this node reaches member `m` at: its address within this node's data
   * center, its remoteAddress (when it has one) from another.
   */
  addressOf(m: Pick<MemberInfo, 'dc' | 'address' | 'remoteAddress'>): string {
    return addressFrom(m, this.selfDc);
  }

  members(): MemberEntry[] {
    return [...this.entries.values()];
  }

  get(id: string): MemberEntry | undefined {
    return this.entries.get(id);
  }

  onChange(l: MembershipListener): void {
    this.listeners.push(l);
  }

  /** The view served to clients and peers. */
  view(): MembersView {
    return {
      v: MESSAGE_VERSION.members,
      self: this.selfId,
      settings: this.o.settings,
      members: this.members().map(publicInfo),
      epoch: this.epochValue,
      ringEpoch: this.ringValue.epoch,
      ringDigest: this.ringValue.digest,
      ringFloor: this.ringValue.floor,
    };
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.timer = setInterval(() => void this.round(), this.o.gossipIntervalMs);
    this.timer.unref();
    void this.round();
  }

  stop(): void {
    this.running = false;
    if (this.timer) clearInterval(this.timer);
    for (const w of this.waiters) {
      clearTimeout(w.timer);
      w.resolve();
    }
    this.waiters = [];
  }

  /** Merges gossip received from a peer; answers with this node's view (push-pull). */
  handleGossip(msg: GossipMessage): GossipMessage {
    this.checkSettings(msg);
    this.mergeList(msg.members, msg.from);
    this.syncedValue = true;
    return this.gossipMessage();
  }

  /** What this node gossips: its member table and its settings. */
  gossipMessage(): GossipMessage {
    return { v: MESSAGE_VERSION.gossip, from: this.selfId, members: this.members().map(publicInfo), settings: this.o.settings };
  }

  /** Merges the answer of a gossip this node sent (refused when the peer's settings differ). */
  takeGossipReply(reply: GossipMessage): void {
    this.checkSettings(reply);
    this.mergeList(reply.members ?? [], reply.from);
    this.syncedValue = true;
  }

  /**
   * Throws SETTINGS_MISMATCH when a peer's gossip carries other cluster-wide settings than
   * this node's: the two would place keys differently, so neither takes the other's table
   * (gossip from nodes of protocol 4 or earlier carries none and is not checked).
   */
  private checkSettings(msg: GossipMessage): void {
    const s = msg.settings;
    if (s === undefined || s === null || sameSettings(s, this.o.settings)) return;
    this.counters.settingsMismatches++;
    throw new SettingsMismatchError(
      `node ${String(msg.from)} has other cluster settings (${describeSettings(s)}) than ${this.selfId} (${describeSettings(this.o.settings)}): they must be the same on every node`,
      { from: msg.from, theirs: s, ours: this.o.settings },
    );
  }

  /** Records that `id` was heard from directly (a ping answered, a request served). */
  heardFrom(id: string): void {
    const e = this.entries.get(id);
    if (e) e.lastHeardMs = this.o.clock.nowMs();
  }

  /**
   * Sets the state of another member as this node's own judgement (failure detection).
   * Uses the member's current incarnation, so the member can refute it with a higher one.
   */
  markState(id: string, state: MemberState): boolean {
    const e = this.entries.get(id);
    if (!e || id === this.selfId || e.state === state) return false;
    const next: MemberInfo = { ...publicInfo(e), state };
    // A removal says when it was made, so the member can tell it from a forged one.
    if (state === 'left') next.removedAtMs = this.o.clock.nowMs();
    // Suspecting a joining or leaving member, or removing one, changes the rings: whoever
    // makes that change raises the member's ring version.
    if (changesRing(e, next)) next.ringVersion = ringVersionOf(e) + 1;
    return this.applyNews(next, true);
  }

  /** Sets this node's advertised address (known only after binding an ephemeral port). */
  setSelfAddress(address: string): void {
    const s = this.self;
    if (s.address !== address) this.applyNews({ ...publicInfo(s), address, incarnation: s.incarnation + 1 }, true);
  }

  /** Changes this node's own state (joining → up, up → leaving ...), with a new incarnation. */
  setSelfState(state: MemberState): void {
    const s = this.self;
    const next: MemberInfo = { ...publicInfo(s), state, incarnation: s.incarnation + 1 };
    if (changesRing(s, next)) next.ringVersion = ringVersionOf(s) + 1;
    this.applyNews(next, true);
  }

  /** Merges a list of member records; returns true when anything changed. */
  mergeList(list: readonly MemberInfo[], from?: string): boolean {
    let changed = false;
    if (from) this.heardFrom(from);
    for (const m of list) {
      if (!validMember(m) || !this.plausible(m)) continue;
      if (m.id === this.selfId) {
        changed = this.considerNewsAboutSelf(m) || changed;
        continue;
      }
      changed = this.applyNews(m, false) || changed;
    }
    return changed;
  }

  /**
   * News about this node from elsewhere. Anything at our incarnation or above that differs
   * from our own record is refuted by raising our incarnation above it: a suspicion (suspect
   * or down at our incarnation), or the record of this node's previous life, which may be
   * newer than this life's start incarnation when that life raised it past the restart's
   * wall-clock second (address change, join, refutations) or the clock stepped back. News
   * with a higher ring version is taken (one above it when this node re-asserts another
   * place in the ring), except `left`: an operator removed this node, and unless it is
   * joining afresh it takes `left` and stays out of the ring.
   */
  private considerNewsAboutSelf(m: MemberInfo): boolean {
    const s = this.self;
    if (s.state === 'left') return false;
    if (ringVersionOf(m) > ringVersionOf(s) || (ringVersionOf(m) === ringVersionOf(s) && changesRing(m, s) && supersedes(m, s))) {
      // News about this node that others will prefer to ours (a removenode, a suspicion of a
      // joining or leaving node, our own record from before a restart).
      if (m.state === 'left' && s.state !== 'joining' && this.acceptsRemoval(m)) {
        // Removed by an operator (or decommissioned before a restart): stay out of the ring.
        // Coming back takes a wiped data directory and --join.
        this.o.log.error({ ringVersion: m.ringVersion }, 'this node was removed from the ring: it stays out (wipe its data directory and start it with --join to bring it back)');
        return this.applyNews({ ...publicInfo(s), state: 'left', ringVersion: ringVersionOf(m), incarnation: Math.max(s.incarnation, m.incarnation) }, true);
      }
      if (m.incarnation >= Number.MAX_SAFE_INTEGER) {
        this.o.log.error({ claimedState: m.state, incarnation: m.incarnation }, 'cannot refute news about this node: no incarnation left above it');
        return false;
      }
      // Take their ring version (above it when we re-assert another place in the ring) and
      // an incarnation above theirs, so that our record wins everywhere.
      const ringVersion = ringVersionOf(m) + (changesRing(m, s) ? 1 : 0);
      this.counters.refutations++;
      this.o.log.info({ claimedState: m.state, ringVersion }, 'taking the ring version others hold for this node');
      return this.applyNews({ ...publicInfo(s), ringVersion, incarnation: Math.max(s.incarnation, m.incarnation + 1) }, true);
    }
    if (ringVersionOf(m) < ringVersionOf(s)) return false;
    if (m.state === 'left' || m.incarnation < s.incarnation) return false;
    if (m.incarnation === s.incarnation && m.state === s.state && samePlace(m, s)) return false;
    if (m.incarnation >= Number.MAX_SAFE_INTEGER) {
      this.o.log.error({ claimedState: m.state, incarnation: m.incarnation }, 'cannot refute news about this node: no incarnation left above it');
      return false;
    }
    this.counters.refutations++;
    this.o.log.info({ claimedState: m.state, incarnation: m.incarnation }, 'refuting news about this node');
    return this.applyNews({ ...publicInfo(s), incarnation: m.incarnation + 1 }, true);
  }

  /**
   * Whether news about a member is within what it could really have reached: its ring
   * version at most MAX_RING_VERSION_STEP above the one known, its incarnation at most
   * MAX_INCARNATION_STEP above the known one (or the current second, which a restart
   * takes). One forged record can then never push a member to counters nobody can refute
   * above; it takes millions of them to climb near the bound.
   */
  private plausible(m: MemberInfo): boolean {
    const cur = this.entries.get(m.id);
    const nowSec = Math.floor(this.o.clock.nowMs() / 1000);
    if (ringVersionOf(m) > (cur ? ringVersionOf(cur) : 0) + MAX_RING_VERSION_STEP) return false;
    return m.incarnation <= Math.max(cur?.incarnation ?? 0, nowSec) + MAX_INCARNATION_STEP;
  }

  /**
   * Whether a `left` record about this node, which this life did not make, is a removal
   * to accept: this node decommissioned itself before a restart (the record is its own,
   * without removedAtMs, from before this start), or an operator removed it while it was
   * down — removedAtMs within its last outage. Anything else (a "removal" of a node that
   * was running at the time) is refuted: nobody but the node itself may make a live node
   * leave. With trustRemovals (gossip only between authenticated nodes) every removal counts.
   */
  private acceptsRemoval(m: MemberInfo): boolean {
    if (this.o.trustRemovals) return true;
    if (m.removedAtMs === undefined) return this.o.selfLeft === true;
    const outage = this.o.outage;
    if (!outage) return false;
    const skew = this.o.maxClockSkewMs ?? 5000;
    const ok = m.removedAtMs >= outage.fromMs - skew && m.removedAtMs <= outage.toMs + skew;
    if (!ok) {
      this.o.log.warn(
        { removedAt: new Date(m.removedAtMs).toISOString(), outage: [new Date(outage.fromMs).toISOString(), new Date(outage.toMs).toISOString()] },
        'refusing a removal of this node made while it was running',
      );
    }
    return ok;
  }

  private applyNews(m: MemberInfo, force: boolean): boolean {
    const now = this.o.clock.nowMs();
    const cur = this.entries.get(m.id);
    if (cur && !force && !supersedes(m, cur) && samePlace(cur, m)) return false;
    if (cur && !force && !supersedes(m, cur)) {
      // Same news except address/weight (a restarted node on a new port): take it only with an incarnation as high.
      if (m.incarnation < cur.incarnation) return false;
    }
    if (cur && !force && ringVersionOf(m) < ringVersionOf(cur)) return false;
    const prev = cur?.state;
    const entry: MemberEntry = {
      ...publicInfo(m),
      lastHeardMs: cur ? Math.max(cur.lastHeardMs, now) : now,
      stateSinceMs: prev === m.state && cur ? cur.stateSinceMs : now,
    };
    this.entries.set(m.id, entry);
    const stamp = ringStampOf(this.entries.values());
    // After a change that moves ownership, writes routed on the rings before it are refused.
    const floor = isFencingChange(cur, entry) ? stamp.epoch : this.ringValue.floor;
    if (stamp.epoch !== this.ringValue.epoch || stamp.digest !== this.ringValue.digest || floor !== this.ringValue.floor) {
      this.ringValue = { ...stamp, floor: Math.max(floor, this.ringValue.floor) };
      if (floor > 0 && isFencingChange(cur, entry) && cur) {
        this.o.log.info({ member: m.id, ringEpoch: stamp.epoch }, 'the ring changed: writes routed on older rings are refused from now on');
      }
    }
    this.bumpEpoch();
    if (prev !== m.state) {
      this.o.log.info({ member: m.id, from: prev ?? 'unknown', to: m.state, incarnation: m.incarnation }, 'member state changed');
    }
    for (const l of this.listeners) l(entry, prev);
    return true;
  }

  private bumpEpoch(): void {
    this.epochValue++;
    const w = this.waiters;
    this.waiters = [];
    for (const x of w) {
      clearTimeout(x.timer);
      x.resolve();
    }
  }

  /** Resolves when the epoch passes `since`, or after `timeoutMs` (long-poll). */
  waitForChange(since: number, timeoutMs: number): Promise<void> {
    if (this.epochValue > since || !this.running) return Promise.resolve();
    return new Promise((resolve) => {
      const entry = { since, resolve, timer: setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== entry);
        resolve();
      }, timeoutMs) };
      entry.timer.unref();
      this.waiters.push(entry);
    });
  }

  /** Peers gossip may go to: reachable members other than self, else the seeds. */
  private gossipTargets(): string[] {
    const peers = this.members()
      .filter((m) => m.id !== this.selfId && m.state !== 'left')
      .map((m) => this.addressOf(m));
    const self = this.self.address;
    const seeds = this.o.seeds.filter((s) => s !== self && !peers.includes(s));
    return [...peers, ...seeds];
  }

  /** One gossip round: push-pull with a random peer (preferring reachable members). */
  private async round(): Promise<void> {
    if (!this.running || this.roundInFlight) return;
    this.roundInFlight = true;
    try {
      const live = this.members().filter((m) => m.id !== this.selfId && reachable(m)).map((m) => this.addressOf(m));
      const all = this.gossipTargets();
      // Mostly live peers; now and then anyone (down members, seeds) so partitions heal.
      const pool = live.length > 0 && Math.random() < 0.8 ? live : all;
      if (pool.length === 0) return;
      const target = pool[Math.floor(Math.random() * pool.length)]!;
      const reply = await this.o.transport.call<GossipMessage>(target, Routes.gossip, this.gossipMessage(), { timeoutMs: this.o.requestTimeoutMs });
      this.takeGossipReply(reply);
      this.counters.rounds++;
    } catch (err) {
      this.counters.roundFailures++;
      // A misconfigured peer is an operator's problem to see, not a transient failure.
      if ((err as { code?: string }).code === 'SETTINGS_MISMATCH') this.o.log.error({ err: (err as Error).message }, 'gossip refused: cluster settings differ');
      else this.o.log.debug({ err: (err as Error).message }, 'gossip round failed');
    } finally {
      this.roundInFlight = false;
    }
  }
}

export function publicInfo(m: MemberInfo): MemberInfo {
  const out: MemberInfo = { id: m.id, address: m.address, weight: m.weight, state: m.state, incarnation: m.incarnation, ringVersion: ringVersionOf(m) };
  if (m.state === 'left' && m.removedAtMs !== undefined) out.removedAtMs = m.removedAtMs;
  // Additive: only members that accept TLS carry the field (absent = off).
  if (m.tls === 'transitional' || m.tls === 'required') out.tls = m.tls;
  if (m.dc !== undefined) out.dc = m.dc;
  if (m.rack !== undefined) out.rack = m.rack;
  if (m.remoteAddress !== undefined) out.remoteAddress = m.remoteAddress;
  return out;
}

/** True when two records of a member give it the same addresses, weight, data center and rack. */
function samePlace(a: MemberInfo, b: MemberInfo): boolean {
  return a.address === b.address && a.weight === b.weight && a.tls === b.tls && a.remoteAddress === b.remoteAddress && a.dc === b.dc && a.rack === b.rack;
}

/** A host:port of at most 261 characters with a port in 0..65535. */
function isHostPort(a: unknown): a is string {
  return typeof a === 'string' && a.length <= 261 && /^[^\s:/]{1,255}:(\d{1,5})$/.test(a) && Number(a.slice(a.lastIndexOf(':') + 1)) <= 65535;
}

/**
 * A member record this node accepts from gossip: an id like a configured one, host:port
 * addresses, a bounded weight (vnodes are built from it: 1e6 would make 128 million),
 * data center and rack names like configured ones (1-64 characters: they key maps and enter
 * the ring digest), and counters that stay exact integers with room to refute above them.
 */
export function validMember(m: unknown): m is MemberInfo {
  const x = m as MemberInfo;
  return (
    !!x &&
    typeof x.id === 'string' &&
    /^[A-Za-z0-9._-]{1,64}$/.test(x.id) &&
    isHostPort(x.address) &&
    (x.remoteAddress === undefined || isHostPort(x.remoteAddress)) &&
    (x.dc === undefined || (typeof x.dc === 'string' && TOPOLOGY_NAME.test(x.dc))) &&
    (x.rack === undefined || (typeof x.rack === 'string' && TOPOLOGY_NAME.test(x.rack))) &&
    typeof x.weight === 'number' &&
    Number.isFinite(x.weight) &&
    x.weight > 0 &&
    x.weight <= MAX_MEMBER_WEIGHT &&
    x.incarnation <= MAX_MEMBER_COUNTER &&
    (x.ringVersion === undefined || x.ringVersion <= MAX_MEMBER_COUNTER) &&
    (x.removedAtMs === undefined || (Number.isSafeInteger(x.removedAtMs) && x.removedAtMs >= 0)) &&
    // A safe non-negative integer: incarnation + 1 is then exact, so a refutation always
    // supersedes what it refutes (Infinity or 2^53 + 1 would equal the claim and lose to it).
    Number.isSafeInteger(x.incarnation) &&
    x.incarnation >= 0 &&
    (x.ringVersion === undefined || (Number.isSafeInteger(x.ringVersion) && x.ringVersion >= 0)) &&
    (MEMBER_STATES as readonly string[]).includes(x.state)
  );
}
