// Coordinated writes (vector-clock puts and deletes, data-type updates): the first reachable
// replica of the key applies the operation as its own actor (it assigns the dot) and returns
// the object; the other replicas then merge that object. Stateless; per-call state in CallCtx.

import type { CallCtx } from './call-context.js';
import { remaining, withTimeout } from './call-context.js';
import type { ClientCore } from './client-core.js';
import type { PutResult } from './client-types.js';
import type { Requirement } from './consistency.js';
import { QuorumNotMetError, RingkvError, TimeoutError, errorFromWire } from './errors.js';
import { quorumCall } from './quorum-call.js';
import type { ReplicaFailure } from './quorum-call.js';
import { SUSPECT_CODES } from './read-path.js';
import { resendRefused, ringRefused, routeAgain } from './ring-retry.js';
import { overloadedIfShed } from './shed-verdict.js';
import { hintHolders, writeReplica } from './sloppy-quorum.js';
import type { Sibling, StoredObject, VersionVector } from './versioning/index.js';
import { decodeContextToken, encodeContextToken, maxTs } from './versioning/index.js';
import type { WireOp, WireResult } from './wire/protocol.js';
import { OpType } from './wire/protocol.js';
import type { WriteEffects } from './write-outcome.js';
import { markOutcome, noteEffect, noteFailure, typedCause } from './write-outcome.js';

/**
 * Vector-clock write: the first reachable replica of the preference list coordinates
 * (assigns the dot and applies the client's context); the others then merge its result.
 */
export async function writeVectorClock(
  core: ClientCore,
  k: Buffer,
  content: Pick<Sibling, 'value' | 'tombstone' | 'expiresAtMs' | 'contentType' | 'flags'>,
  ts: number,
  contextToken: string | undefined,
  need: Requirement,
  call: CallCtx,
  countHints: boolean,
): Promise<PutResult> {
  const opName = content.tombstone ? 'delete' : 'put';
  const ctx: VersionVector = contextToken ? decodeContextToken(contextToken) : {};
  const op: WireOp = { t: OpType.CoordinatedPut, key: k, ctx, sib: { ...content, ts, writer: core.clientId } };
  const { obj, created } = await coordinatedWrite(core, k, op, opName, need, call, countHints);
  const token = encodeContextToken(obj.context);
  return { version: token, context: token, created };
}

/**
 * A write coordinated by one replica (a vector-clock put, a data-type update): the first
 * reachable replica of the preference list applies `op` and returns the resulting object;
 * the other replicas (and those about to take the key over) then merge that object, W of
 * them counting with the coordinator. `answer` may turn a replica's merge answer into a
 * failure (a data type that lost there to another type). A failure says whether the write
 * may have been applied (`notApplied`).
 */
export async function coordinatedWrite(
  core: ClientCore,
  k: Buffer,
  op: WireOp,
  opName: string,
  need: Requirement,
  call: CallCtx,
  countHints: boolean,
  answer: (node: string, res: WireResult) => WireResult = (_node, res) => res,
): Promise<{ obj: StoredObject; created: boolean }> {
  const { routing, view } = core;
  const w = need.total;
  const effects: WriteEffects = { maybeApplied: false };
  let coordinator: string | undefined;
  let obj: StoredObject | undefined;
  let created = false;
  try {
    for (let ringTries = 0; ; ringTries++) {
      // Routed afresh after a RING_CHANGED refusal; a coordinated object is kept (its dot
      // is assigned once) and only merged into the replicas of the new ring.
      const ring = view.ringStamp;
      const replicas = routing.replicaTargets(k, need.dcs);
      try {
        if (!coordinator || !obj) {
          let failures = 0;
          let lastErr: unknown;
          const failed: ReplicaFailure[] = [];
          // Healthy replicas coordinate first; the others only when none of those answers.
          for (const node of routing.usableFirst(replicas)) {
            const left = remaining(call);
            if (left <= 0) break;
            let answered = false;
            try {
              const res = await withTimeout(core.send(node, op, call, ring), left);
              answered = true;
              noteEffect(effects, res);
              if (!res.ok) throw errorFromWire(res.code, res.msg, res.details);
              coordinator = node;
              obj = res.obj ?? undefined;
              created = res.created === true;
              break;
            } catch (err) {
              if (!answered) noteFailure(effects, err);
              if (err instanceof RingkvError && !isRetryable(err)) throw err;
              // A replica that only refused to coordinate (SUSPECT_RANGE: its copy is
              // quarantined) still merges the result and counts toward W.
              if (!(err instanceof RingkvError && SUSPECT_CODES.has(err.code))) {
                failures++;
                failed.push({ node, error: err as Error });
              }
              lastErr = err;
              if (replicas.length - failures < w) break;
            }
          }
          if (!coordinator || !obj) {
            // Short only because replicas shed load: OVERLOADED (sdk/shed-verdict.ts).
            const shed = overloadedIfShed(opName, w, 0, replicas.length - failures, failed);
            if (shed) throw shed;
            if (remaining(call) <= 0) throw new TimeoutError(opName, call.timeoutMs);
            throw new QuorumNotMetError(opName, w, 0, failures, lastErr);
          }
          core.hlc.observe(maxTs(obj));
        }
        const coordinated = obj;
        // The coordinator counts toward W only while it is a replica of the ring routed on.
        const counted = replicas.includes(coordinator) ? 1 : 0;
        const others = replicas.filter((r) => r !== coordinator);
        const pending = routing.pendingTargets(k, replicas, need.dcs).filter((r) => r !== coordinator);
        const holders = hintHolders(core, k);
        // Per data center: the coordinator's answer counts toward its own; pending replicas add to theirs.
        const extra = routing.countByDc(pending);
        if (counted) {
          const dc = view.dcOf(coordinator) ?? '';
          extra.set(dc, (extra.get(dc) ?? 0) - 1);
        }
        const groups = routing.groupsOf(need, extra);
        const groupsNeedMore = groups !== undefined && [...groups.need.values()].some((n) => n > 0);
        if (w > counted || pending.length > 0 || groupsNeedMore) {
          const targets = [...others, ...pending];
          const out = await quorumCall(
            opName,
            targets,
            Math.max(0, w - counted + pending.length),
            Math.max(1, remaining(call)),
            async (node) =>
              answer(node, await writeReplica(core, node, k, coordinated, holders, countHints || pending.includes(node), effects, call, ring)),
            targets.length,
            groups,
          );
          resendRefused(core, k, coordinated, out, need.dcs, coordinator);
        } else {
          const bg = core.backgroundCtx();
          for (const node of others) core.track(writeReplica(core, node, k, coordinated, holders, countHints, effects, bg, ring));
        }
        return { obj: coordinated, created };
      } catch (err) {
        if (await routeAgain(core, call, ringTries, ring)) continue;
        throw ringRefused(err, call);
      }
    }
  } catch (err) {
    throw markOutcome(typedCause(err), effects);
  }
}

/** Retry a coordinator on another replica only for failures of reachability. */
function isRetryable(err: RingkvError): boolean {
  return (
    err.code === 'NODE_UNAVAILABLE' ||
    err.code === 'TIMEOUT' ||
    err.code === 'UNAVAILABLE' ||
    err.code === 'CLOSED' ||
    err.code === 'INTERNAL' ||
    // The replica's engine refused (full disk, recovering) or its copy is quarantined: another coordinates.
    err.code === 'WRITE_REFUSED' ||
    // It (or the client's queue for it) shed the write for load: another coordinates.
    err.code === 'OVERLOADED' ||
    err.code === 'SUSPECT_RANGE'
  );
}
