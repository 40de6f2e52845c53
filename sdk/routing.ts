// Routing: which replicas an operation on a key goes to, from the client's view of the
// cluster (ring, pending ring, member states, data centers) and its failure detector. Reads
// the view afresh on every call, so each call routes on the ring of the moment; no state.

import type { ClusterView } from './cluster-view.js';
import type { Requirement } from './consistency.js';
import type { NodeHealth } from './node-health.js';
import type { QuorumGroups } from './quorum-call.js';

export class Routing {
  constructor(
    private readonly view: ClusterView,
    private readonly health: NodeHealth,
    private readonly localDc: string | undefined,
  ) {}

  /** True when requests should go to `node`: membership says up and it is not backing off. */
  isUsable(node: string): boolean {
    const m = this.view.member(node);
    if (!m || (m.state !== 'up' && m.state !== 'joining' && m.state !== 'leaving' && m.state !== 'recovering')) return false;
    return !this.health.isAvoided(node);
  }

  /**
   * The replicas an operation on `k` goes to: its preference list in data centers `dcs`
   * (default every one), the client's own first.
   */
  replicaTargets(k: Buffer, dcs?: readonly string[]): string[] {
    const ring = this.view.ring;
    const list = dcs ?? [...(this.localDc !== undefined ? [this.localDc] : []), ...ring.dataCenters.filter((d) => d !== this.localDc)];
    if (list.length === 1) return [...ring.replicasInDc(k, list[0]!)];
    const out: string[] = [];
    for (const dc of list) out.push(...ring.replicasInDc(k, dc));
    return out;
  }

  /** Replicas of `k` in data centers `dcs` in the ring to come (a join or leave in progress) that are not replicas now. */
  pendingTargets(k: Buffer, replicas: string[], dcs: readonly string[]): string[] {
    const pendingRing = this.view.pendingRing;
    if (pendingRing === this.view.ring) return [];
    const out: string[] = [];
    for (const dc of dcs) for (const x of pendingRing.replicasInDc(k, dc)) if (!replicas.includes(x)) out.push(x);
    return out;
  }

  /**
   * The replicas a read of `k` asks: the healthy ones; when fewer than `r` are healthy, the
   * doubtful ones (suspected, backing off) too. Replicas known down are skipped, so a read
   * that cannot meet R fails at once instead of waiting for timeouts.
   */
  readTargets(k: Buffer, req: Requirement): string[] {
    if (req.dcs.length === 1) return this.readTargetsIn(k, req.dcs[0]!, req.total);
    // Several data centers (the client's own first): per data center as above with its own
    // count; for a count over all of them (quorum), the doubtful ones only when the healthy
    // ones of every data center together fall short.
    if (req.perDc.size > 0) return req.dcs.flatMap((dc) => this.readTargetsIn(k, dc, req.perDc.get(dc) ?? 0));
    const all = req.dcs.map((dc) => this.readTargetsIn(k, dc, Infinity));
    const healthy = all.flatMap((l) => l.filter((x) => this.isUsable(x)));
    if (healthy.length >= req.total) return healthy;
    return [...healthy, ...all.flatMap((l) => l.filter((x) => !this.isUsable(x)))];
  }

  /** readTargets within data center `dc`, for `r` answers there. */
  private readTargetsIn(k: Buffer, dc: string, r: number): string[] {
    // A recovering replica (back from an outage longer than the tombstone grace period) is
    // never read until it has been repaired: it may hold keys whose deletes were forgotten.
    const replicas = this.replicaTargets(k, [dc]).filter((x) => this.view.member(x)?.state !== 'recovering');
    // Healthy replicas first, in random order so that reads spread over the replicas.
    const healthy = shuffle(replicas.filter((x) => this.isUsable(x)));
    if (healthy.length >= r) return healthy;
    const doubtful = replicas.filter((x) => !healthy.includes(x) && this.view.member(x)?.state !== 'down' && this.view.member(x)?.state !== 'left');
    return [...healthy, ...doubtful];
  }

  /** Milliseconds `node` still asked not to be sent to because it sheds load (0 when none). */
  overloadedForMs(node: string): number {
    return this.health.overloadedForMs(node);
  }

  /** `nodes`, the usable ones first (each part in its order). */
  usableFirst(nodes: readonly string[]): string[] {
    return [...nodes.filter((x) => this.isUsable(x)), ...nodes.filter((x) => !this.isUsable(x))];
  }

  /** The per-data-center part of a requirement for quorumCall (none in a cluster of one data center). */
  groupsOf(req: Requirement, extra?: ReadonlyMap<string, number>): QuorumGroups | undefined {
    if (req.perDc.size === 0 || Object.keys(this.view.replication).length < 2) return undefined;
    let need: ReadonlyMap<string, number> = req.perDc;
    if (extra && extra.size > 0) {
      const m = new Map(req.perDc);
      for (const [dc, n] of extra) if (m.has(dc)) m.set(dc, m.get(dc)! + n);
      need = m;
    }
    return { of: (node) => this.view.dcOf(node) ?? '', need };
  }

  /** Count per data center of `nodes`. */
  countByDc(nodes: readonly string[]): Map<string, number> {
    const m = new Map<string, number>();
    for (const x of nodes) {
      const dc = this.view.dcOf(x) ?? '';
      m.set(dc, (m.get(dc) ?? 0) + 1);
    }
    return m;
  }

  /**
   * What `holders` still lack of `need`: the answers missing in all and in each data center
   * (undefined when none are).
   */
  shortOf(need: Requirement, holders: ReadonlySet<string>): Requirement | undefined {
    const perDc = new Map<string, number>();
    let sum = 0;
    for (const [dc, n] of need.perDc) {
      let have = 0;
      for (const h of holders) if (this.view.dcOf(h) === dc) have++;
      if (have < n) {
        perDc.set(dc, n - have);
        sum += n - have;
      }
    }
    const total = Math.max(need.total - holders.size, sum);
    if (total <= 0) return undefined;
    return { dcs: need.dcs, perDc, total };
  }
}

function shuffle<T>(a: T[]): T[] {
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    const x = a[i]!;
    a[i] = a[j]!;
    a[j] = x;
  }
  return a;
}
