// The SDK's view of the cluster: the members (learned from the seeds, then kept fresh
// from any live storage server), their addresses and states, and the ring built from
// them, with the ring stamp (sdk/ring-epoch.ts) that writes routed on them carry. Rebuilt as
// a whole on change (the ring is immutable), so readers never see a half-updated view: the
// rings and the stamp read in one synchronous section belong together. One instance per
// client; methods are safe to call at any time.

import { NodeUnavailableError, UnavailableError } from './errors.js';
import type { ClusterSettings, MemberInfo, MembersView, ReplicationMap } from './membership.js';
import { addressFrom, dcOf, inPendingRing, inRing, reachable, replicationOf, ringVersionOf, supersedes } from './membership.js';
import type { RingStamp } from './ring-epoch.js';
import { ringStampOf } from './ring-epoch.js';
import { Ring } from './ring.js';
import type { Transport } from './transport.js';
import type { ServerClockSink } from './cluster-clock.js';
import type { TlsMode } from './transport-security.js';
import { Routes } from './wire/protocol.js';

export interface ClusterViewOptions {
  seeds: string[];
  transport: Transport;
  /** Timeout of one membership request. */
  requestTimeoutMs: number;
  /** How often the view is refreshed besides the subscription. */
  refreshIntervalMs: number;
  /** Long-poll wait of the membership subscription; 0 disables it. Default 10 s. */
  watchWaitMs?: number;
  onChange?: (view: ClusterView) => void;
  onError?: (err: unknown) => void;
  /** Told the clock reading of membership answers (the first ones at connect included). */
  serverClock?: ServerClockSink;
  /**
   * The data center the client is in: members of another data center are reached at their
   * remoteAddress (when they have one), and the membership subscription prefers members of
   * this one. Undefined: every member at its address.
   */
  localDc?: string;
}

export class ClusterView {
  private membersById = new Map<string, MemberInfo>();
  private ringValue: Ring | undefined;
  private pendingRingValue: Ring | undefined;
  private stampValue: RingStamp = { epoch: 0, digest: 0 };
  private readonly rings = new Map<string, Ring>();
  private settingsValue: ClusterSettings | undefined;
  private timer: NodeJS.Timeout | undefined;
  private closed = false;
  private refreshing: Promise<void> | undefined;
  /** address -> id, rebuilt lazily after each change. */
  private byAddress: Map<string, string> | undefined;

  constructor(private readonly o: ClusterViewOptions) {}

  /**
   * Fetches the first view — from every seed, merged, so that a client of a cluster that is
   * still forming sees all the members any seed knows — then subscribes to changes.
   * Rejects when no seed answers.
   */
  async start(): Promise<void> {
    const views = await Promise.allSettled(this.o.seeds.map((s) => this.fetchView(s, Routes.members, this.o.requestTimeoutMs)));
    for (const v of views) if (v.status === 'fulfilled') this.apply(v.value);
    if (!views.some((v) => v.status === 'fulfilled')) await this.refresh();
    this.timer = setInterval(() => {
      this.refresh().catch((err) => this.o.onError?.(err));
    }, this.o.refreshIntervalMs);
    this.timer.unref();
    if ((this.o.watchWaitMs ?? 10_000) > 0) void this.watch();
  }

  stop(): void {
    this.closed = true;
    if (this.timer) clearInterval(this.timer);
  }

  /**
   * The membership subscription: long-polls one live server for views newer than the last
   * one it sent; when that server fails (or stops answering), moves to another member or seed.
   */
  private async watch(): Promise<void> {
    const waitMs = this.o.watchWaitMs ?? 10_000;
    let address: string | undefined;
    /** Servers that failed since the last answer: tried again only when every other one has failed too. */
    const failed = new Set<string>();
    let since = 0;
    let failures = 0;
    while (!this.closed) {
      if (!address) {
        const up = this.members().filter((m) => m.state === 'up');
        const near = up.filter((m) => this.o.localDc === undefined || dcOf(m) === this.o.localDc);
        const live = (near.length > 0 ? near : up).map((m) => this.addressOfMember(m));
        const all = live.length > 0 ? live : this.o.seeds;
        // Not a server that just failed (the view may still say it is up) while there are others.
        let pool = all.filter((a) => !failed.has(a));
        if (pool.length === 0) {
          failed.clear();
          pool = all;
        }
        address = pool[Math.floor(Math.random() * pool.length)];
        since = 0;
      }
      try {
        // A long-poll's clock reading is taken when it answers, not when it was asked: not sampled.
        const view = await this.o.transport.call<MembersView>(
          address!,
          `${Routes.members}?since=${since}&waitMs=${waitMs}`,
          undefined,
          { timeoutMs: waitMs + 3000 },
        );
        if (this.closed) return;
        this.apply(view);
        since = view.epoch;
        failures = 0;
        failed.clear();
      } catch (err) {
        this.o.onError?.(err);
        failed.add(address!);
        address = undefined;
        failures++;
        await new Promise((r) => setTimeout(r, Math.min(2000, 100 * 2 ** Math.min(failures, 5))).unref());
      }
    }
  }

  get ring(): Ring {
    if (!this.ringValue) throw new UnavailableError('cluster view not loaded yet');
    return this.ringValue;
  }

  /**
   * The ring as it will be once the members now joining or leaving are done: equal to
   * `ring` when nobody is. Writes go to the replicas of both.
   */
  get pendingRing(): Ring {
    return this.pendingRingValue ?? this.ring;
  }

  /** The stamp of the rings above (the epoch and digest of the member table they come from). */
  get ringStamp(): RingStamp {
    return this.stampValue;
  }

  /** A ring of `members` (weights, data centers and racks included); rebuilt only when those change. */
  private ringOf(members: MemberInfo[]): Ring {
    const vnodes = this.settingsValue!.vnodesPerNode;
    const replication = replicationOf(this.settingsValue!);
    const signature = `${vnodes}|${JSON.stringify(replication)}|${members
      .map((m) => `${m.id}:${m.weight}:${m.dc ?? ''}:${m.rack ?? ''}`)
      .sort()
      .join(',')}`;
    let r = this.rings.get(signature);
    if (!r) {
      r = new Ring(
        members.map((m) => {
          const x: { id: string; weight: number; dc?: string; rack?: string } = { id: m.id, weight: m.weight };
          if (m.dc !== undefined) x.dc = m.dc;
          if (m.rack !== undefined) x.rack = m.rack;
          return x;
        }),
        { vnodesPerNode: vnodes, replication },
      );
      if (this.rings.size > 8) this.rings.clear();
      this.rings.set(signature, r);
    }
    return r;
  }

  get settings(): ClusterSettings {
    if (!this.settingsValue) throw new UnavailableError('cluster view not loaded yet');
    return this.settingsValue;
  }

  /** Replicas per data center (one data center, `default`, for a cluster that names none). */
  get replication(): ReplicationMap {
    return replicationOf(this.settings);
  }

  /** The data center this view routes from (connect's localDc), if any. */
  get localDc(): string | undefined {
    return this.o.localDc;
  }

  /** The data center of a member (undefined for an unknown id). */
  dcOf(id: string): string | undefined {
    const m = this.membersById.get(id);
    return m ? dcOf(m) : undefined;
  }

  members(): MemberInfo[] {
    return [...this.membersById.values()];
  }

  member(id: string): MemberInfo | undefined {
    return this.membersById.get(id);
  }

  /**
   * The address of a member as this client reaches it (its remoteAddress when it is in
   * another data center than the client's); throws NodeUnavailableError for an unknown id.
   */
  addressOf(id: string): string {
    const m = this.membersById.get(id);
    if (!m) throw new NodeUnavailableError(id, 'not a member of the cluster');
    return this.addressOfMember(m);
  }

  private addressOfMember(m: MemberInfo): string {
    return addressFrom(m, this.o.localDc);
  }

  /** The id of the member at `address` (its address or its remoteAddress; undefined when none is). */
  nodeAt(address: string): string | undefined {
    if (this.byAddress === undefined) {
      this.byAddress = new Map();
      for (const m of this.membersById.values()) {
        this.byAddress.set(m.address, m.id);
        if (m.remoteAddress !== undefined) this.byAddress.set(m.remoteAddress, m.id);
      }
    }
    return this.byAddress.get(address);
  }

  /**
   * What the member at `address` accepts (`off` when it advertises nothing), or undefined
   * when no member is there (a seed not yet seen in a view).
   */
  tlsModeAt(address: string): TlsMode | undefined {
    const id = this.nodeAt(address);
    if (id === undefined) return undefined;
    return this.membersById.get(id)?.tls ?? 'off';
  }

  /** True when requests may be sent to the member according to membership. */
  isReachable(id: string): boolean {
    const m = this.membersById.get(id);
    return m !== undefined && reachable(m);
  }

  /** Asks live members (then the seeds) for their view and applies the first answer. */
  refresh(): Promise<void> {
    this.refreshing ??= this.doRefresh().finally(() => {
      this.refreshing = undefined;
    });
    return this.refreshing;
  }

  private async doRefresh(): Promise<void> {
    // Members of the client's own data center (and the seeds) first: a client does not poll
    // membership across data centers while its own answers.
    const local = this.o.localDc;
    const live = this.members().filter(reachable);
    const near = [...live.filter((m) => local === undefined || dcOf(m) === local).map((m) => this.addressOfMember(m)), ...this.o.seeds];
    const far = live.filter((m) => local !== undefined && dcOf(m) !== local).map((m) => this.addressOfMember(m));
    // Start from a random one so that clients spread their polling.
    const start = Math.floor(Math.random() * Math.max(1, near.length));
    const candidates = [...near.slice(start), ...near.slice(0, start), ...far];
    const tried = new Set<string>();
    let lastErr: unknown;
    for (const address of candidates) {
      if (tried.has(address)) continue;
      tried.add(address);
      try {
        const view = await this.fetchView(address, Routes.members, this.o.requestTimeoutMs);
        this.apply(view);
        return;
      } catch (err) {
        lastErr = err;
      }
    }
    throw lastErr instanceof Error ? lastErr : new UnavailableError('no seed or member answered');
  }

  /** One membership request; its clock reading goes to the server-clock sink. */
  private async fetchView(address: string, route: string, timeoutMs: number): Promise<MembersView> {
    const sink = this.o.serverClock;
    const sentAtMs = sink?.localNowMs() ?? 0;
    const view = await this.o.transport.call<MembersView>(address, route, undefined, { timeoutMs });
    if (sink && view && view.now !== undefined) sink.onServerClock(address, view.now, sentAtMs, sink.localNowMs());
    return view;
  }

  /** Applies a view received from a server (also used by membership streams). */
  apply(view: MembersView): void {
    if (this.closed) return;
    let changed = false;
    const next = new Map(this.membersById);
    for (const m of view.members) {
      const cur = next.get(m.id);
      // A new place (address, weight, TLS mode, data center, rack, remote address: a node
      // restarted on another port) is taken only at a ring version and an incarnation as high
      // as the ones known, as the servers do: a server that has not heard of the restart yet
      // must not send the client back to the old address.
      const moved = cur !== undefined && !samePlace(cur, m) && ringVersionOf(m) >= ringVersionOf(cur) && m.incarnation >= cur.incarnation;
      if (!cur || supersedes(m, cur) || moved) {
        next.set(m.id, { ...m });
        changed = true;
      }
    }
    const s = view.settings;
    if (
      !this.settingsValue ||
      s.vnodesPerNode !== this.settingsValue.vnodesPerNode ||
      s.replicationFactor !== this.settingsValue.replicationFactor ||
      JSON.stringify(s.replication) !== JSON.stringify(this.settingsValue.replication)
    ) {
      this.settingsValue = s.replication ? { ...s, replication: { ...s.replication } } : { ...s };
      changed = true;
    }
    if (!changed && this.membersById.size > 0) return;
    this.membersById = next;
    this.byAddress = undefined;
    const all = [...next.values()];
    // No ring yet when every member known is still joining (a joining node that has not
    // heard from the cluster): operations fail with UNAVAILABLE until one is up.
    const current = all.filter(inRing);
    this.ringValue = current.length > 0 ? this.ringOf(current) : undefined;
    // While members join or leave, writes also go to the owners of the ring to come.
    const pending = all.filter(inPendingRing);
    this.pendingRingValue = pending.length > 0 ? this.ringOf(pending) : undefined;
    this.stampValue = ringStampOf(all);
    this.o.onChange?.(this);
  }
}

/** True when two records of a member give it the same addresses and place in the ring. */
function samePlace(a: MemberInfo, b: MemberInfo): boolean {
  return a.address === b.address && a.weight === b.weight && a.tls === b.tls && a.remoteAddress === b.remoteAddress && a.dc === b.dc && a.rack === b.rack;
}
