// The write path: put and delete (last-write-wins, re-stamped above a newer version; or
// coordinated by a replica with vector clocks), and the merge of objects shipped from another
// data center. One per client; concurrent writes share only the client's core.

import type { CallCtx } from './call-context.js';
import { remaining } from './call-context.js';
import type { ClientCore } from './client-core.js';
import type { DeleteOptions, PutResult, WriteCallOptions } from './client-types.js';
import type { Consistency, LevelPlan } from './consistency.js';
import { writeVectorClock } from './coordinated-write.js';
import { QuorumNotMetError, TimeoutError } from './errors.js';
import { hlcToWallMs } from './hlc.js';
import type { NearCache } from './near-cache.js';
import { quorumCall } from './quorum-call.js';
import type { ReadPath } from './read-path.js';
import { resendRefused, ringRefused, routeAgain } from './ring-retry.js';
import { hintHolders, writeReplica } from './sloppy-quorum.js';
import type { Sibling, StoredObject } from './versioning/index.js';
import { encodeContextToken, maxTs, versionString } from './versioning/index.js';
import { OpType } from './wire/protocol.js';
import type { WriteEffects } from './write-outcome.js';
import { markOutcome, typedCause } from './write-outcome.js';

/** What a put or delete writes (the version — timestamp, writer, expiry — is the write path's). */
export type WriteContent = Pick<Sibling, 'value' | 'tombstone' | 'contentType' | 'flags'>;

const EMPTY = Buffer.alloc(0);

export class WritePath {
  constructor(
    private readonly core: ClientCore,
    private readonly reads: ReadPath,
    private readonly nearCache: NearCache | undefined,
  ) {}

  /** A delete: a tombstone (with vector clocks, over the context it is given or reads first). */
  async delete(k: Buffer, level: Consistency, opts: DeleteOptions, call: CallCtx): Promise<PutResult> {
    let context = opts.context;
    if (this.core.settings.conflictMode === 'vector-clock' && context === undefined) {
      // A delete without context would only add a tombstone sibling: read the context first.
      let obj: StoredObject | undefined;
      try {
        obj = await this.reads.readWithRetries(k, this.core.planOf(level), call);
      } catch (err) {
        throw markOutcome(err, { maybeApplied: false });
      }
      context = obj ? encodeContextToken(obj.context) : undefined;
    }
    return this.write(k, { value: EMPTY, tombstone: true, contentType: '', flags: 0 }, 0, { ...opts, context }, call);
  }

  /** A put (or a delete's tombstone) at the call's level, in the client's conflict mode. */
  async write(k: Buffer, content: WriteContent, ttlMs: number, opts: WriteCallOptions & { context?: string | undefined }, call: CallCtx): Promise<PutResult> {
    const core = this.core;
    const level = core.levelOf(opts.consistency);
    const plan = core.planOf(level);
    const countHints = opts.hintsCountTowardW ?? core.settings.hintsCountTowardW ?? plan.write.total === 1;
    // This client's own write drops its cached entry at once, and again when it is done (a
    // read in flight meanwhile may have fetched the value it replaces).
    this.nearCache?.invalidate(k);
    try {
      if (core.settings.conflictMode === 'lww') return await this.writeLww(k, content, ttlMs, level, plan, call, countHints);
      const ts = core.hlc.now();
      const expiresAtMs = ttlMs > 0 ? hlcToWallMs(ts) + ttlMs : 0;
      return await writeVectorClock(core, k, { ...content, expiresAtMs }, ts, opts.context, plan.write, call, countHints);
    } finally {
      this.nearCache?.invalidate(k);
    }
  }

  /**
   * A last-write-wins write. It is acknowledged only once its version is the one held by W
   * replicas: a replica that holds a newer version says so (`won: false` with that
   * version's timestamp), and the write is re-stamped above it and sent again, within the
   * call's timeout — a client whose clock lags can never be acknowledged for a write that
   * an earlier acknowledged one hides. At `linearizable` (ABD), the write first reads the
   * newest timestamp a majority holds and stamps above it; a replica that holds something
   * newer still then counts as an acknowledgement (the write is ordered just before that
   * newer one). A failure says whether the write may have been applied (`notApplied`).
   */
  private async writeLww(k: Buffer, content: WriteContent, ttlMs: number, level: Consistency, plan: LevelPlan, call: CallCtx, countHints: boolean): Promise<PutResult> {
    const core = this.core;
    const { routing, hlc } = core;
    const opName = content.tombstone ? 'delete' : 'put';
    const linearizable = level === 'linearizable';
    const effects: WriteEffects = { maybeApplied: false };
    const need = plan.write;
    try {
      let ts: number;
      if (call.pinnedTs !== undefined) {
        // A retried attempt (sdk/retry.ts): the same version again, a no-op where it landed.
        ts = call.pinnedTs;
      } else if (linearizable) {
        // ABD phase 1: the newest version a majority of the replicas holds.
        const read = await quorumCall(
          `${opName} (reading versions)`,
          routing.readTargets(k, plan.read),
          plan.read.total,
          remaining(call),
          (node) => core.send(node, { t: OpType.Get, key: k }, call),
          plan.read.total,
          routing.groupsOf(plan.read),
        );
        let floor = 0;
        for (const a of read.answers) if (a.obj) floor = Math.max(floor, maxTs(a.obj));
        ts = floor > 0 ? hlc.nowAbove(floor) : hlc.now();
      } else {
        ts = hlc.now();
      }
      let ringTries = 0;
      for (let round = 1; ; round++) {
        call.pinnedTs = ts;
        const sib: Sibling = { ...content, expiresAtMs: ttlMs > 0 ? hlcToWallMs(ts) + ttlMs : 0, ts, writer: core.clientId };
        const obj: StoredObject = { mode: 'lww', siblings: [sib], context: {} };
        let newer = 0;
        const left = remaining(call);
        if (left <= 0) throw new TimeoutError(opName, call.timeoutMs);
        // Routed afresh each round: a round after a RING_CHANGED refusal uses the new ring.
        const ring = core.view.ringStamp;
        const replicas = routing.replicaTargets(k, need.dcs);
        // Replicas that are about to take over the key (a join or leave in progress) must
        // acknowledge too, so that no write is lost when ownership moves (as Cassandra does).
        const pending = routing.pendingTargets(k, replicas, need.dcs);
        const targets = [...replicas, ...pending];
        const holders = hintHolders(core, k);
        const groups = routing.groupsOf(need, routing.countByDc(pending));
        try {
          const out = await quorumCall(opName, targets, need.total + pending.length, left, async (node) => {
            const res = await writeReplica(core, node, k, obj, holders, countHints || pending.includes(node), effects, call, ring);
            if (res.ok && res.won === false) {
              // The replica holds a newer version (timestamp res.ts): this version is not the one it serves.
              if (typeof res.ts === 'number' && res.ts > newer) newer = res.ts;
              if (!linearizable) return { ok: false, code: 'QUORUM_NOT_MET', msg: `${node} holds a newer version (ts ${res.ts})` };
            }
            return res;
          }, targets.length, groups);
          for (const a of out.answers) if (a.result.ts) hlc.observe(a.result.ts);
          resendRefused(core, k, obj, out, need.dcs);
          const v = versionString(obj);
          return { version: v, context: v, created: out.answers.every((a) => a.result.created === true) };
        } catch (err) {
          // The same version again on the ring a replica said is newer (idempotent where it landed).
          if (await routeAgain(core, call, ringTries++, ring)) {
            round--;
            continue;
          }
          if (newer > 0 && round < core.settings.maxWriteRounds && err instanceof QuorumNotMetError && remaining(call) > 0) {
            core.counters.restampedWrites++;
            ts = hlc.nowAbove(newer);
            continue;
          }
          throw ringRefused(err, call);
        }
      }
    } catch (err) {
      throw markOutcome(typedCause(err), effects);
    }
  }

  /**
   * Merges `obj`, shipped from another data center, into the replicas of this client's data
   * center (RingkvClient.mergeShipped): a quorum of them (a hint within the data center
   * counts), routed again after a ring change. Never re-stamps.
   */
  async mergeShipped(key: Buffer, obj: StoredObject, call: CallCtx): Promise<void> {
    const core = this.core;
    const need = core.planOf('localQuorum').write;
    for (let ringTries = 0; ; ringTries++) {
      const ring = core.view.ringStamp;
      const replicas = core.routing.replicaTargets(key, need.dcs);
      const pending = core.routing.pendingTargets(key, replicas, need.dcs);
      const targets = [...replicas, ...pending];
      const holders = hintHolders(core, key);
      const effects: WriteEffects = { maybeApplied: false };
      try {
        await quorumCall('replicate', targets, need.total + pending.length, Math.max(1, remaining(call)), (node) =>
          writeReplica(core, node, key, obj, holders, true, effects, call, ring, true),
        );
        return;
      } catch (err) {
        if (await routeAgain(core, call, ringTries, ring)) continue;
        throw ringRefused(err, call);
      }
    }
  }
}
