// Range streaming: moving the data of token ranges between nodes when the ring changes.
// - serveStream: answers a page of a range's data (the engine's range iterator, token
//   order) to a node that pulls it.
// - bootstrap (`--join`): a joining node pulls every range it will replicate from a live
//   current replica, rate-limited, then reconciles those ranges with all their replicas
//   (anti-entropy) before it announces itself up.
// - decommission: a leaving node pushes each range it replicates to the nodes that take it
//   over, waits for its hints to drain, then announces itself left.
// - cleanup: drops (locally, no tombstones) the keys of ranges this node no longer owns.
// While a join or leave runs, clients write to both the current and the future replicas
// (sdk/write-path.ts, pendingTargets in sdk/routing.ts), so writes made during the move are not lost; the server fences the ring
// before any data moves (server.ts awaitRingFence), so from then on no replica takes a write
// routed on the ring from before the move. A decommission's pushes carry the ring they were
// routed on: a receiver that knows a newer one refuses them and the decommission fails
// instead of handing ranges to the wrong owners. Bootstrap pulls are reads: not checked.

import type { Ring } from '../../sdk/ring.js';
import type { RingStamp } from '../../sdk/ring-epoch.js';
import type { Transport } from '../../sdk/transport.js';
import type { BatchRequest, BatchResponse, StreamRequest, StreamResponse } from '../../sdk/wire/protocol.js';
import { MESSAGE_VERSION, OpType, Routes } from '../../sdk/wire/protocol.js';
import { UnavailableError } from '../../sdk/errors.js';
import type { StoredObject } from '../../sdk/versioning/index.js';
import type { Logger } from '../logger.js';
import { RateLimiter } from '../engine/rate-limiter.js';
import type { Membership } from '../membership/membership.js';
import type { ReplicaStore } from '../replica-store.js';
import { toObject } from '../replica-store.js';
import type { AntiEntropy } from '../anti-entropy/anti-entropy.js';
import type { Span, TokenRange } from '../anti-entropy/token-ranges.js';
import { dcRanges, ringRanges } from '../anti-entropy/token-ranges.js';

export interface StreamStats {
  ranges: number;
  keys: number;
  bytes: number;
  durationMs: number;
  /** Keys the final reconciliation still had to fix. */
  repairedKeys: number;
}

export interface StreamingDeps {
  store: ReplicaStore;
  membership: Membership;
  transport: Transport;
  antiEntropy: AntiEntropy;
  /** The current ring and the one to come, this node's data center, and the stamp of the table they come from. */
  rings: () => { current: Ring; pending: Ring; dc: string; stamp: RingStamp };
  log: Logger;
  rateBytesPerSec: number;
  requestTimeoutMs: number;
  /** Receives the stats object at the start; it is updated in place as data moves. */
  onStart?: (op: 'bootstrap' | 'decommission', stats: StreamStats) => void;
}

const PAGE_ENTRIES = 1000;
const PAGE_BYTES = 2 * 1024 * 1024;

/** One page of the data of `req.spans`, in token order. */
export async function serveStream(store: ReplicaStore, req: StreamRequest): Promise<StreamResponse> {
  const limit = Math.min(Math.max(1, req.limit || PAGE_ENTRIES), 10_000);
  const entries: { key: Buffer; obj: StoredObject }[] = [];
  let bytes = 0;
  let spanIndex = req.after?.span ?? 0;
  let after = req.after?.key;
  for (; spanIndex < req.spans.length; spanIndex++) {
    const [from, to] = req.spans[spanIndex]!;
    for await (const e of store.scan(from, to, after ? { afterKey: Buffer.from(after) } : {})) {
      entries.push({ key: e.key, obj: toObject(e.record) });
      bytes += e.key.length + e.record.value.length + e.version.length;
      if (entries.length >= limit || bytes >= PAGE_BYTES) {
        return { v: MESSAGE_VERSION.stream, entries, next: { span: spanIndex, key: e.key }, bytes };
      }
    }
    after = undefined;
  }
  return { v: MESSAGE_VERSION.stream, entries, bytes };
}

/**
 * The ranges `node` replicates in `pending` but not in `current`, with their current
 * replicas in data center `dc` (node's own: placement is per data center, so a join takes
 * its ranges from replicas of its own data center only).
 */
export function gainedRanges(current: Ring, pending: Ring, dc: string, node: string): { range: TokenRange; sources: string[] }[] {
  const out: { range: TokenRange; sources: string[] }[] = [];
  const cur = dcRanges(current, dc);
  // Ranges of the pending ring can straddle current ranges; split every pending range at
  // the current ring's tokens by intersecting the two range lists.
  for (const pr of dcRanges(pending, dc)) {
    if (!pr.replicas.includes(node)) continue;
    for (const cr of cur) {
      if (cr.replicas.includes(node)) continue;
      const spans = intersect(pr.spans, cr.spans);
      if (spans.length === 0) continue;
      out.push({ range: { start: cr.start, end: cr.end, spans, replicas: pr.replicas }, sources: cr.replicas });
    }
  }
  return out;
}

function intersect(a: Span[], b: Span[]): Span[] {
  const out: Span[] = [];
  for (const x of a) {
    for (const y of b) {
      const from = Math.max(x[0], y[0]);
      const to = Math.min(x[1], y[1]);
      if (from <= to) out.push([from, to]);
    }
  }
  return out;
}

function isLive(membership: Membership, id: string): boolean {
  const m = membership.get(id);
  return !!m && (m.state === 'up' || m.state === 'leaving');
}

/** Pulls every range this (joining) node will replicate; resolves with what moved. */
export async function bootstrap(d: StreamingDeps): Promise<StreamStats> {
  const started = Date.now();
  const self = d.membership.selfId;
  const { current, pending, dc } = d.rings();
  const gained = gainedRanges(current, pending, dc, self);
  const limiter = new RateLimiter(d.rateBytesPerSec);
  const stats: StreamStats = { ranges: gained.length, keys: 0, bytes: 0, durationMs: 0, repairedKeys: 0 };
  d.onStart?.('bootstrap', stats);
  d.log.info({ ranges: gained.length }, 'bootstrap: streaming the ranges this node will own');
  for (const g of gained) {
    const sources = g.sources.filter((s) => s !== self && isLive(d.membership, s));
    if (sources.length === 0) throw new UnavailableError(`no live replica to stream range (${g.range.start}, ${g.range.end}] from`);
    let done = false;
    for (const source of sources) {
      try {
        await pull(d, source, g.range.spans, limiter, stats);
        done = true;
        break;
      } catch (err) {
        d.log.warn({ source, err: (err as Error).message }, 'streaming from a replica failed; trying another');
      }
    }
    if (!done) throw new UnavailableError(`could not stream range (${g.range.start}, ${g.range.end}] from any replica`);
  }
  // Whatever the source lacked (a write it missed) comes from the other replicas now.
  const repair = await d.antiEntropy.repair('all', gained.map((g) => g.range));
  stats.repairedKeys = repair.keysExchanged;
  stats.durationMs = Date.now() - started;
  d.log.info({ ...stats }, 'bootstrap: streaming done');
  return stats;
}

async function pull(d: StreamingDeps, source: string, spans: Span[], limiter: RateLimiter, stats: StreamStats): Promise<void> {
  const address = d.membership.addressOf(d.membership.get(source)!);
  let after: StreamRequest['after'];
  for (;;) {
    const req: StreamRequest = { v: MESSAGE_VERSION.stream, spans: spans.map((s) => [s[0], s[1]]), limit: PAGE_ENTRIES, ...(after ? { after } : {}) };
    const page = await d.transport.call<StreamResponse>(address, Routes.stream, req, { timeoutMs: d.requestTimeoutMs * 5 });
    await limiter.consume(page.bytes);
    // Data moving within a data center: not queued for the others again.
    await Promise.all(page.entries.map((e) => d.store.merge(Buffer.from(e.key), e.obj, undefined, { shipped: true })));
    stats.keys += page.entries.length;
    stats.bytes += page.bytes;
    if (!page.next) return;
    after = page.next;
  }
}

/** Pushes every range this (leaving) node replicates to the nodes that take it over. */
export async function decommission(d: StreamingDeps): Promise<StreamStats> {
  const started = Date.now();
  const self = d.membership.selfId;
  const { current, pending, dc, stamp } = d.rings();
  const limiter = new RateLimiter(d.rateBytesPerSec);
  const stats: StreamStats = { ranges: 0, keys: 0, bytes: 0, durationMs: 0, repairedKeys: 0 };
  d.onStart?.('decommission', stats);
  const handedOver: TokenRange[] = [];
  for (const r of dcRanges(current, dc)) {
    if (!r.replicas.includes(self)) continue;
    const newOwners = pending.replicasInDcForToken(r.end, dc).filter((x) => !r.replicas.includes(x));
    if (newOwners.length === 0) continue;
    stats.ranges++;
    handedOver.push({ ...r, replicas: [self, ...newOwners] });
    for (const target of newOwners) {
      const m = d.membership.get(target);
      if (!m) continue;
      const address = d.membership.addressOf(m);
      for (const span of r.spans) {
        let batch: { key: Buffer; obj: StoredObject }[] = [];
        let batchBytes = 0;
        const flush = async () => {
          if (batch.length === 0) return;
          await limiter.consume(batchBytes);
          const req: BatchRequest = { v: MESSAGE_VERSION.batch, from: self, ring: stamp, ops: batch.map((b) => ({ t: OpType.Merge, key: b.key, obj: b.obj, shipped: true })) };
          const res = await d.transport.call<BatchResponse>(address, Routes.batch, req, { timeoutMs: d.requestTimeoutMs * 5 });
          const failed = res.results.filter((x) => !x.ok).length;
          if (failed > 0) throw new UnavailableError(`${target} refused ${failed} streamed keys`);
          stats.keys += batch.length;
          stats.bytes += batchBytes;
          batch = [];
          batchBytes = 0;
        };
        for await (const e of d.store.scan(span[0], span[1])) {
          batch.push({ key: e.key, obj: toObject(e.record) });
          batchBytes += e.key.length + e.record.value.length + e.version.length;
          if (batch.length >= PAGE_ENTRIES || batchBytes >= PAGE_BYTES) await flush();
        }
        await flush();
      }
    }
  }
  // Writes that reached only this node while clients learned that it is leaving: a Merkle
  // pass between this node and the new owners picks them up.
  const repair = await d.antiEntropy.repair('all', handedOver);
  stats.repairedKeys = repair.keysExchanged;
  stats.durationMs = Date.now() - started;
  d.log.info({ ...stats }, 'decommission: ranges streamed to their new owners');
  return stats;
}

/**
 * Drops the keys this node does not replicate in `ring` (a stable ring: nobody joining or
 * leaving). Local purge only; nothing is sent anywhere. Resolves with the count dropped.
 */
export async function cleanup(store: ReplicaStore, ring: Ring, self: string): Promise<{ scanned: number; dropped: number }> {
  let scanned = 0;
  let dropped = 0;
  for (const r of ringRanges(ring)) {
    if (r.replicas.includes(self)) continue;
    for (const span of r.spans) {
      const victims: { key: Buffer; version: Buffer }[] = [];
      for await (const e of store.scan(span[0], span[1])) {
        scanned++;
        victims.push({ key: e.key, version: Buffer.from(e.version) });
      }
      for (const v of victims) if (await store.purge(v.key, v.version)) dropped++;
    }
  }
  return { scanned, dropped };
}
