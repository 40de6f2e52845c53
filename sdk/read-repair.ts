// Read repair: after a read merged its replicas' answers, the replicas that answered with
// something older (or nothing) are sent the merged object — before the read returns when
// the level writes back to a majority (ABD), in the background otherwise — and so are the
// replicas that answer late. One per client; repairs of concurrent reads run independently.

import type { CallCtx } from './call-context.js';
import { remaining, withTimeout } from './call-context.js';
import type { ClientCore } from './client-core.js';
import type { Requirement } from './consistency.js';
import { TimeoutError, errorFromWire } from './errors.js';
import type { QuorumOutcome, ReplicaAnswer } from './quorum-call.js';
import { quorumCall } from './quorum-call.js';
import type { RingStamp } from './ring-epoch.js';
import type { StoredObject } from './versioning/index.js';
import { mergeObjects, objectsEqual } from './versioning/index.js';
import type { WireResult } from './wire/protocol.js';
import { OpType } from './wire/protocol.js';

export class ReadRepair {
  constructor(private readonly core: ClientCore) {}

  /**
   * Repairs what a read of `k` found (`merged`, from `out`): with `writeBack` (the level's
   * majority), waits until that many replicas hold it (writeBack()); else, with read repair
   * on, repairs the stale answers in the background. With read repair on, replicas excused
   * for a quarantined copy and replicas that answer after the quorum are repaired too.
   */
  async afterRead(k: Buffer, merged: StoredObject | undefined, out: QuorumOutcome, writeBack: Requirement | undefined, call: CallCtx, ring: RingStamp): Promise<void> {
    const core = this.core;
    const readRepair = core.settings.readRepair;
    const repaired = new Set<string>();
    if (merged && writeBack) {
      await this.writeBack(k, merged, out.answers, call, ring, writeBack);
      for (const a of out.answers) if (!a.obj || !objectsEqual(a.obj, merged)) repaired.add(a.node);
    } else if (merged && readRepair) {
      const stale = out.answers.filter((a) => !a.obj || !objectsEqual(a.obj, merged));
      for (const a of stale) repaired.add(a.node);
      const bg = core.backgroundCtx(call);
      if (stale.length > 0) core.track(Promise.allSettled(stale.map((a) => this.repair(a.node, k, merged, bg, ring))));
    }
    if (merged && readRepair && out.excused.length > 0) {
      // A replica whose copy is quarantined takes the merged object (its repair, early).
      const bg = core.backgroundCtx(call);
      const target = merged;
      core.track(Promise.allSettled(out.excused.map((node) => this.repair(node, k, target, bg, ring))));
    }
    if (readRepair) {
      // Replicas that answer after the quorum are compared too, and repaired in the background.
      core.track(
        out.settled.then(({ answers }) => {
          let all = merged;
          for (const a of answers) if (a.obj) all = all ? mergeObjects(all, a.obj) : a.obj;
          if (!all) return;
          const target = all;
          const stale = answers.filter(
            (a) => (!a.obj || !objectsEqual(a.obj, target)) && !(target === merged && repaired.has(a.node)),
          );
          const bg = core.backgroundCtx(call);
          return Promise.allSettled(stale.map((a) => this.repair(a.node, k, target, bg, ring)));
        }),
      );
    }
  }

  /**
   * Makes sure a majority of the replicas of `k` holds `obj` (or something newer): repairs
   * every stale replica that answered (waiting for those repairs, as blocking read repair
   * does), counts the replicas that hold it, and brings in replicas not asked yet while that
   * is short of a majority. Throws QuorumNotMetError or TimeoutError when it stays short.
   * The majority is `need` (the level's write-back: of the client's data center, of each, or
   * of every replica).
   */
  private async writeBack(k: Buffer, obj: StoredObject, answers: readonly ReplicaAnswer[], call: CallCtx, ring: RingStamp, need: Requirement): Promise<void> {
    const { routing, counters } = this.core;
    const holders = new Set(answers.filter((a) => a.obj && objectsEqual(a.obj, obj)).map((a) => a.node));
    const stale = answers.filter((a) => !a.obj || !objectsEqual(a.obj, obj)).map((a) => a.node);
    if (stale.length === 0 && routing.shortOf(need, holders) === undefined) return;
    counters.writeBacks++;
    let left = remaining(call);
    if (left <= 0) throw new TimeoutError('get (writing the value back to a quorum)', call.timeoutMs);
    const results = await withTimeout(Promise.allSettled(stale.map((node) => this.repairResult(node, k, obj, call, ring))), left).catch(() => []);
    results.forEach((r, i) => {
      if (r.status === 'fulfilled' && r.value.ok) holders.add(stale[i]!);
    });
    const short = routing.shortOf(need, holders);
    if (short === undefined) return;
    const asked = new Set(answers.map((a) => a.node));
    const candidates = routing.usableFirst(routing.replicaTargets(k, need.dcs).filter((x) => !asked.has(x)));
    left = remaining(call);
    if (left <= 0) throw new TimeoutError('get (writing the value back to a quorum)', call.timeoutMs);
    await quorumCall('get (write-back)', candidates, short.total, left, (node) => this.repairResult(node, k, obj, call, ring), short.total, routing.groupsOf(short));
  }

  private async repair(node: string, key: Buffer, obj: StoredObject, call: CallCtx, ring: RingStamp): Promise<void> {
    const res = await this.repairResult(node, key, obj, call, ring);
    if (!res.ok) throw errorFromWire(res.code, res.msg);
  }

  private async repairResult(node: string, key: Buffer, obj: StoredObject, call: CallCtx, ring: RingStamp): Promise<WireResult> {
    const counters = this.core.counters;
    counters.readRepairs++;
    call.stats.repairs++;
    try {
      const res = await this.core.send(node, { t: OpType.Merge, key, obj }, call, ring);
      if (!res.ok) counters.readRepairFailures++;
      return res;
    } catch (err) {
      counters.readRepairFailures++;
      throw err;
    }
  }
}
