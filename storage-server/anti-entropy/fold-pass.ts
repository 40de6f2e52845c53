// The fold pass: after a node has left the cluster (decommissioned, or removed by an
// operator), the counter entries its actors made are folded into one survivor per key, so
// counters do not keep one entry per node that ever existed (sdk/crdt/README.md, "Folding a
// removed node"). The survivor of a key is the first node of its preference list; before it
// folds, it merges the copies of every other replica (all must answer), so it has seen the
// leaving node's last state, which the decommission streamed to the new owners or the
// replicas got with its updates. Then it folds as its own actor, stores the result and
// pushes it to the other replicas. One pass at a time; the server runs one once the ring
// has been stable for cleanupDelayMs, and again while entries remain (those still in the
// applied-op window are folded by a later pass).

import type { Ring } from '../../sdk/ring.js';
import { dcOf } from '../../sdk/membership.js';
import { UnavailableError } from '../../sdk/errors.js';
import type { Transport } from '../../sdk/transport.js';
import type { StoredObject } from '../../sdk/versioning/index.js';
import type { BatchRequest, BatchResponse } from '../../sdk/wire/protocol.js';
import { MESSAGE_VERSION, OpType, Routes } from '../../sdk/wire/protocol.js';
import { decodeCrdt } from '../../sdk/crdt/index.js';
import { forEachCounter } from '../../sdk/crdt/store.js';
import type { Logger } from '../logger.js';
import type { Membership } from '../membership/membership.js';
import type { ReplicaStore } from '../replica-store.js';
import { toObject } from '../replica-store.js';

export interface FoldStats {
  startedAt: string;
  durationMs: number;
  /** The nodes whose entries this pass folds (members in state `left`). */
  gone: string[];
  /** Data-type keys this node is the survivor of. */
  keysScanned: number;
  /** Keys holding counter entries of gone nodes. */
  candidates: number;
  /** Keys folded (stored here and pushed to the other replicas). */
  folded: number;
  /** Keys left for a later pass: a replica did not answer, or entries are still in the applied-op window. */
  remaining: number;
}

export interface FoldPassDeps {
  store: ReplicaStore;
  membership: Membership;
  transport: Transport;
  /**
   * The ring, and this node's data center: a pass folds only the actors of nodes that left
   * this data center, over this data center's replicas. Each data center folds its own
   * gone nodes once; the folded state reaches the others by cross-DC replication, where
   * the fold's context drops the gone node's entries (two data centers folding the same
   * node would each count its entries under their own actor).
   */
  ring: () => { ring: Ring; dc: string };
  log: Logger;
  requestTimeoutMs: number;
  /** Keys handled per batch of requests. Default 200. */
  keysPerBatch?: number;
}

/** The node id of an actor (`<node id>#<epoch>`, or a plain node id). */
export function nodeOfActor(actor: string): string {
  const i = actor.lastIndexOf('#');
  return i < 0 ? actor : actor.slice(0, i);
}

export class FoldPass {
  last: FoldStats | undefined;
  private running: Promise<FoldStats> | undefined;

  constructor(private readonly d: FoldPassDeps) {}

  /** Runs a pass (or waits for the one running). Throws UnavailableError when the cluster is not in a state to fold. */
  run(): Promise<FoldStats> {
    this.running ??= this.pass().finally(() => (this.running = undefined));
    return this.running;
  }

  private async pass(): Promise<FoldStats> {
    const started = Date.now();
    const self = this.d.membership.selfId;
    const members = this.d.membership.members();
    const { ring, dc } = this.d.ring();
    const gone = new Set(members.filter((m) => m.state === 'left' && dcOf(m) === dc).map((m) => m.id));
    const stats: FoldStats = { startedAt: new Date(started).toISOString(), durationMs: 0, gone: [...gone], keysScanned: 0, candidates: 0, folded: 0, remaining: 0 };
    if (gone.size === 0) return this.done(stats, started);
    // One survivor per key, and the survivor must reach every replica: only while every
    // member but those gone is up, so that all nodes agree on the preference lists and no
    // replica (nor a hint waiting for one) holds entries the survivor cannot see.
    const notUp = members.filter((m) => m.state !== 'up' && m.state !== 'left' && dcOf(m) === dc);
    if (notUp.length > 0) throw new UnavailableError(`fold pass: waiting for ${notUp.map((m) => `${m.id} (${m.state})`).join(', ')}`);
    const isGone = (actor: string) => gone.has(nodeOfActor(actor));
    let batch: { key: Buffer; replicas: string[] }[] = [];
    for await (const e of this.d.store.scan(0, 0xffffffff)) {
      let obj: StoredObject;
      try {
        obj = toObject(e.record);
      } catch {
        continue; // reported by reads and repair, not here
      }
      if (obj.mode !== 'crdt') continue;
      const replicas = [...ring.replicasInDc(e.key, dc)];
      if (replicas[0] !== self) continue;
      stats.keysScanned++;
      if (!holdsEntriesOf(obj, isGone)) continue;
      stats.candidates++;
      batch.push({ key: e.key, replicas });
      if (batch.length >= (this.d.keysPerBatch ?? 200)) {
        await this.foldBatch(batch, isGone, stats);
        batch = [];
      }
    }
    if (batch.length > 0) await this.foldBatch(batch, isGone, stats);
    return this.done(stats, started);
  }

  private done(stats: FoldStats, started: number): FoldStats {
    stats.durationMs = Date.now() - started;
    this.last = stats;
    if (stats.candidates > 0) this.d.log.info({ ...stats }, 'fold pass: counter entries of nodes that left folded into this node');
    return stats;
  }

  /** Merges every other replica's copy of each key, folds, and pushes the folded state. */
  private async foldBatch(batch: { key: Buffer; replicas: string[] }[], isGone: (actor: string) => boolean, stats: FoldStats): Promise<void> {
    const self = this.d.membership.selfId;
    const peers = new Set<string>();
    for (const b of batch) for (const r of b.replicas) if (r !== self) peers.add(r);
    const copies = new Map<string, Map<string, StoredObject | null>>(); // peer -> key -> obj
    await Promise.all(
      [...peers].map(async (peer) => {
        const keys = batch.filter((b) => b.replicas.includes(peer));
        try {
          const res = await this.call(peer, keys.map((b) => ({ t: OpType.Get, key: b.key })));
          const m = new Map<string, StoredObject | null>();
          keys.forEach((b, i) => {
            const r = res.results[i];
            if (r?.ok) m.set(b.key.toString('latin1'), r.obj);
          });
          copies.set(peer, m);
        } catch (err) {
          this.d.log.debug({ peer, err: (err as Error).message }, 'fold pass: a replica did not answer');
        }
      }),
    );
    const pushes = new Map<string, { key: Buffer; obj: StoredObject }[]>();
    for (const b of batch) {
      const k = b.key.toString('latin1');
      let complete = true;
      for (const peer of b.replicas) {
        if (peer === self) continue;
        const m = copies.get(peer);
        if (!m || !m.has(k)) {
          complete = false;
          break;
        }
      }
      if (!complete) {
        stats.remaining++;
        continue;
      }
      for (const peer of b.replicas) {
        const o = peer === self ? null : copies.get(peer)!.get(k);
        if (o) await this.d.store.merge(b.key, o);
      }
      const folded = await this.d.store.foldGone(b.key, isGone);
      const now = await this.d.store.get(b.key);
      if (now && holdsEntriesOf(now, isGone)) stats.remaining++; // entries still in the window
      if (!folded) continue;
      stats.folded++;
      for (const peer of b.replicas) {
        if (peer === self) continue;
        let list = pushes.get(peer);
        if (!list) pushes.set(peer, (list = []));
        list.push({ key: b.key, obj: folded });
      }
    }
    await Promise.all(
      [...pushes].map(async ([peer, list]) => {
        try {
          await this.call(peer, list.map((x) => ({ t: OpType.Merge, key: x.key, obj: x.obj })));
        } catch (err) {
          // The folded state reaches it through anti-entropy; the fold is already this node's state.
          this.d.log.debug({ peer, err: (err as Error).message }, 'fold pass: pushing the folded state failed');
        }
      }),
    );
  }

  private call(peer: string, ops: BatchRequest['ops']): Promise<BatchResponse> {
    const address = this.d.membership.get(peer)?.address;
    if (!address) return Promise.reject(new UnavailableError(`no address for ${peer}`));
    const req: BatchRequest = { v: MESSAGE_VERSION.batch, from: this.d.membership.selfId, ops };
    return this.d.transport.call<BatchResponse>(address, Routes.batch, req, { timeoutMs: this.d.requestTimeoutMs });
  }
}

/** True when a data-type object holds counter entries (at its top or in map fields) of an actor `isGone` names. */
export function holdsEntriesOf(obj: StoredObject, isGone: (actor: string) => boolean): boolean {
  if (obj.mode !== 'crdt') return false;
  let found = false;
  try {
    forEachCounter(decodeCrdt(obj.siblings[0]!.value).store, (c) => {
      for (const e of c.entries) if (isGone(e.dot[0])) found = true;
    });
  } catch {
    return false;
  }
  return found;
}
