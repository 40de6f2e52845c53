// The read path: a get asks R replicas of the key (more when some fail or answer late),
// merges their answers, and hands the result to read repair; reads at R = 1 may be served
// by the near cache. One per client; concurrent reads share only the client's core.

import { monotonicNowMs } from './batcher.js';
import type { CallCtx } from './call-context.js';
import { remaining } from './call-context.js';
import type { ClientCore } from './client-core.js';
import type { LevelPlan } from './consistency.js';
import type { RingkvError } from './errors.js';
import type { HedgeOptions, Hedging } from './hedging.js';
import type { InvalidationSubscriber } from './invalidation-subscriber.js';
import type { NearCache } from './near-cache.js';
import type { QuorumHedge, QuorumOutcome } from './quorum-call.js';
import { quorumCall } from './quorum-call.js';
import type { ReadRepair } from './read-repair.js';
import { routeAgain, ringRefused } from './ring-retry.js';
import type { StoredObject } from './versioning/index.js';
import { maxTs, mergeObjects } from './versioning/index.js';
import type { WireOp, WireResult } from './wire/protocol.js';
import { OpType } from './wire/protocol.js';

/** How one read runs (the parts a call may choose), and what it found out. */
export interface ReadOpts {
  hedge: HedgeOptions;
  /** The near cache: the invalidation stream a Get to `node` names (`track`), if any. */
  track?: (node: string) => string | undefined;
  /** Set by a read that met R with one answer: the node that gave it and whether it tracks the key. */
  served?: { node: string; tracked: boolean };
}

/** Replica answers that mean "my copy cannot be vouched for, ask another replica". */
export const SUSPECT_CODES: ReadonlySet<string> = new Set(['SUSPECT_RANGE']);

export class ReadPath {
  constructor(
    private readonly core: ClientCore,
    private readonly hedging: Hedging,
    private readonly readRepair: ReadRepair,
    private readonly nearCache: NearCache | undefined,
    private readonly subscriber: InvalidationSubscriber | undefined,
  ) {}

  /**
   * A read at R = 1 through the near cache: a fresh entry is the answer; else the read asks
   * a replica naming the live invalidation stream to it, and stores the answer only when
   * that replica tracked the key for a stream that is still live and the key was not
   * invalidated meanwhile (sdk/near-cache.ts).
   */
  async readCached(k: Buffer, plan: LevelPlan, call: CallCtx, read: ReadOpts): Promise<StoredObject | undefined> {
    const cache = this.nearCache!;
    const subscriber = this.subscriber!;
    const hit = cache.get(k);
    if (hit) return hit.obj ?? undefined;
    const ticket = cache.begin(k);
    const sent = new Map<string, string>();
    read.track = (node) => {
      const sid = subscriber.liveSid(node);
      if (sid !== undefined) sent.set(node, sid);
      return sid;
    };
    try {
      const obj = await this.readWithRetries(k, plan, call, read);
      const served = read.served;
      if (served && served.tracked && sent.get(served.node) !== undefined && subscriber.liveSid(served.node) === sent.get(served.node)) {
        cache.offer(ticket, obj ?? null, served.node);
      } else cache.counters.untracked++;
      return obj;
    } finally {
      cache.end(ticket);
    }
  }

  /** A read, routed again (bounded) when its write-back was refused for an older ring. */
  async readWithRetries(k: Buffer, plan: LevelPlan, call: CallCtx, read?: ReadOpts): Promise<StoredObject | undefined> {
    for (let tries = 0; ; tries++) {
      const routedOn = this.core.view.ringStamp;
      try {
        return await this.readObject(k, plan, call, read);
      } catch (err) {
        if (await routeAgain(this.core, call, tries, routedOn)) continue;
        throw ringRefused(err, call);
      }
    }
  }

  /**
   * The read path: asks R replicas (more when some fail), merges their answers, and — at
   * R >= 2 — returns the merged object only once a majority of the replicas holds it (ABD's
   * write-back: the answers that already hold it count, the others are repaired, and
   * replicas not asked yet are brought in when repairs fail), so that no later quorum read
   * can return anything older. Fails with QUORUM_NOT_MET or TIMEOUT when that cannot be
   * done. At R = 1, stale replicas are repaired in the background (`readRepair`). With
   * several data centers, R and the majority are the level's (LevelPlan): a local level asks
   * and repairs only the client's data center. Answers that are late bring in the next
   * replica (hedged reads, sdk/hedging.ts; of the late replica's data center); its answer
   * counts toward R like any other.
   */
  private async readObject(k: Buffer, plan: LevelPlan, call: CallCtx, read?: ReadOpts): Promise<StoredObject | undefined> {
    const core = this.core;
    const ring = core.view.ringStamp;
    const req = plan.read;
    const replicas = core.routing.readTargets(k, req);
    const op: WireOp = { t: OpType.Get, key: k };
    const askAll = core.settings.readFanout === 'all' || Math.random() < core.settings.readRepairChance;
    // A replica answering SUSPECT_RANGE (its copy is quarantined) brings in the next one;
    // above the level's majority it is excused once that majority answered (see QuorumExcuse).
    const excuse = { codes: SUSPECT_CODES, minAnswers: Math.min(req.total, plan.writeBack?.total ?? req.total) };
    const hedging = this.hedging;
    hedging.onRead();
    const hedgeOpts = read?.hedge ?? hedging.options;
    // Every answer's latency (and a timeout's wait) feeds the replica's latency estimate.
    const track = read?.track;
    const send = (node: string): Promise<WireResult> => {
      const t0 = monotonicNowMs();
      const sid = track?.(node);
      return core.send(node, sid === undefined ? op : { t: OpType.Get, key: k, track: sid }, call).then(
        (res) => {
          if (res.ok) hedging.record(node, monotonicNowMs() - t0);
          return res;
        },
        (err: unknown) => {
          if ((err as RingkvError)?.code === 'TIMEOUT') hedging.record(node, monotonicNowMs() - t0);
          throw err;
        },
      );
    };
    const hedge: QuorumHedge | undefined =
      hedgeOpts.enabled && !askAll && replicas.length > req.total
        ? { delayFor: (node) => hedging.delayFor(node, hedgeOpts), allow: (c, waitedMs) => hedging.decide(c, waitedMs) === 'hedge', nowMs: monotonicNowMs }
        : undefined;
    const out: QuorumOutcome = await quorumCall(
      'get',
      replicas,
      req.total,
      remaining(call),
      send,
      askAll ? replicas.length : req.total,
      core.routing.groupsOf(req),
      excuse,
      hedge,
    );
    if (out.hedgeWon) hedging.onWon();
    if (read && out.answers.length === 1) read.served = { node: out.answers[0]!.node, tracked: out.answers[0]!.result.tracked === true };
    let merged: StoredObject | undefined;
    for (const a of out.answers) if (a.obj) merged = merged ? mergeObjects(merged, a.obj) : a.obj;
    if (merged) core.hlc.observe(maxTs(merged));
    await this.readRepair.afterRead(k, merged, out, plan.writeBack, call, ring);
    return merged;
  }
}
