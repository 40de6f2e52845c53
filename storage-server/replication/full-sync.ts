// Full sync with another data center: the safety net under the realtime queue (what it
// dropped, what never reached it). For every range this node replicates, its Merkle span
// hashes are compared with those of one replica of the range in the other data center — top
// down, only into differing spans, down to single leaves whose (key, digest) lists are
// exchanged (the descent of ../anti-entropy/, against one remote peer) — and only the keys
// that differ move: both versions are read, merged by the version rules (last-write-wins,
// vector-clock siblings, data-type merges; a newer delete wins), and the result is written
// where it was missing: into this data center's replicas (a local quorum, marked shipped)
// and through the remote peer into the other's (POST /internal/v1/repl/apply). A run that
// compared every range without a failure is "ok"; its start time is the horizon up to which
// this node's deletes are known to be in the other data center (tombstones before it may
// be collected). One run per destination at a time.

import { UnavailableError } from '../../sdk/errors.js';
import type { MemberInfo } from '../../sdk/membership.js';
import type { Ring } from '../../sdk/ring.js';
import type { Transport } from '../../sdk/transport.js';
import type { StoredObject } from '../../sdk/versioning/index.js';
import { objectsEqual } from '../../sdk/versioning/index.js';
import type {
  BatchRequest,
  BatchResponse,
  MerkleKeysRequest,
  MerkleKeysResponse,
  MerkleRequest,
  MerkleResponse,
  ReplApplyRequest,
  ReplApplyResponse,
} from '../../sdk/wire/protocol.js';
import { MESSAGE_VERSION, OpType, Routes } from '../../sdk/wire/protocol.js';
import type { SpanHasher } from '../anti-entropy/span-hasher.js';
import type { Span, TokenRange } from '../anti-entropy/token-ranges.js';
import { dcRanges, splitSpan, withinOneLeaf } from '../anti-entropy/token-ranges.js';
import type { Logger } from '../logger.js';
import type { ReplicaStore } from '../replica-store.js';
import { mergeAcrossModes } from '../replica-store.js';
import { chunks, groupBy } from '../collections.js';

export interface FullSyncStats {
  dc: string;
  startedAt: string;
  durationMs: number;
  /** Ranges this node replicates, and those compared with a replica in the other data center. */
  ranges: number;
  rangesCompared: number;
  rangesDiffering: number;
  hashesCompared: number;
  keysCompared: number;
  /** Keys that differed (and were reconciled). */
  keysDiffering: number;
  /** Merged objects written into this data center, and sent to the other. */
  keysToLocal: number;
  keysToRemote: number;
  errors: number;
  /** True when every range was compared and every difference reconciled. */
  ok: boolean;
  phase?: 'comparing hashes' | 'comparing keys' | 'reconciling' | 'done';
}

export interface FullSyncDeps {
  store: ReplicaStore;
  hasher: SpanHasher;
  selfId: string;
  selfDc: string;
  ring: () => Ring;
  members: () => readonly MemberInfo[];
  member: (id: string) => MemberInfo | undefined;
  addressOf: (m: MemberInfo) => string;
  transport: Transport;
  /** Writes a merged object into this data center's replicas (a local quorum; marked shipped). */
  mergeLocal: (key: Buffer, obj: StoredObject) => Promise<void>;
  log: Logger;
  requestTimeoutMs: number;
  /** Spans per hash request; keys per reconciliation batch. */
  spansPerRequest: number;
  keysPerBatch: number;
}

interface Item {
  range: TokenRange;
  peer: string;
  span: Span;
}

export class FullSync {
  private readonly running = new Map<string, Promise<FullSyncStats>>();
  /** The last run per destination, and the last ok one. */
  readonly last = new Map<string, FullSyncStats>();
  readonly lastOk = new Map<string, { startedAtMs: number; finishedAtMs: number }>();
  /** The run in progress per destination (updated in place). */
  readonly current = new Map<string, FullSyncStats>();

  constructor(private readonly d: FullSyncDeps) {}

  /** Runs a full sync with data center `dc` now, or joins the one running. */
  run(dc: string): Promise<FullSyncStats> {
    let r = this.running.get(dc);
    if (!r) {
      r = this.sync(dc).finally(() => {
        this.running.delete(dc);
        this.current.delete(dc);
      });
      this.running.set(dc, r);
    }
    return r;
  }

  isRunning(dc: string): boolean {
    return this.running.has(dc);
  }

  /**
   * A member worth asking: up, leaving, or only suspected (a suspicion under load or right
   * after a link heals is often wrong; a request that fails is retried, then counted).
   */
  private isLive(id: string): boolean {
    const m = this.d.member(id);
    return !!m && (m.state === 'up' || m.state === 'leaving' || m.state === 'suspect');
  }

  private address(id: string): string {
    return this.d.addressOf(this.d.member(id)!);
  }

  private async sync(dc: string): Promise<FullSyncStats> {
    const started = Date.now();
    const d = this.d;
    const stats: FullSyncStats = {
      dc,
      startedAt: new Date(started).toISOString(),
      durationMs: 0,
      ranges: 0,
      rangesCompared: 0,
      rangesDiffering: 0,
      hashesCompared: 0,
      keysCompared: 0,
      keysDiffering: 0,
      keysToLocal: 0,
      keysToRemote: 0,
      errors: 0,
      ok: false,
      phase: 'comparing hashes',
    };
    this.current.set(dc, stats);
    if (dc === d.selfDc) throw new UnavailableError(`${dc} is this node's own data center`);
    if (!d.hasher.ready) throw new UnavailableError('leaf hashes are still being built');
    const ring = d.ring();
    if (!ring.dataCenters.includes(dc)) throw new UnavailableError(`data center ${dc} holds no replicas (replication: ${ring.dataCenters.join(', ')})`);
    const ranges = dcRanges(ring, d.selfDc).filter((r) => r.replicas.includes(d.selfId));
    stats.ranges = ranges.length;

    // One peer per range: a live replica there, spread by this node's place among the
    // range's local replicas (each local replica of a range compares with another peer).
    let frontier: Item[] = [];
    const compared = new Set<TokenRange>();
    for (const range of ranges) {
      const remote = ring.replicasInDcForToken(range.end, dc).filter((x) => this.isLive(x));
      if (remote.length === 0) {
        stats.errors++;
        continue;
      }
      const peer = remote[Math.max(0, range.replicas.indexOf(d.selfId)) % remote.length]!;
      compared.add(range);
      for (const span of range.spans) frontier.push({ range, peer, span });
    }
    const differing = new Set<TokenRange>();
    const leafItems: Item[] = [];
    const failedRanges = new Set<TokenRange>();
    while (frontier.length > 0) {
      const next: Item[] = [];
      for (const [peer, items] of groupBy(frontier, (i) => i.peer)) {
        for (const chunk of chunks(items, d.spansPerRequest)) {
          let remote: MerkleResponse;
          try {
            const req: MerkleRequest = { v: MESSAGE_VERSION.merkle, spans: chunk.map((i) => [i.span[0], i.span[1]]) };
            remote = await this.callPeer<MerkleResponse>(peer, Routes.merkle, req, { timeoutMs: d.requestTimeoutMs });
            if (!remote.ready) throw new UnavailableError(`${peer} is still building its leaf hashes`);
          } catch (err) {
            stats.errors++;
            for (const i of chunk) failedRanges.add(i.range);
            d.log.debug({ peer, err: (err as Error).message }, 'full sync: merkle request failed');
            continue;
          }
          for (let i = 0; i < chunk.length; i++) {
            const it = chunk[i]!;
            const mine = await d.hasher.spanHash(it.span);
            const theirs = remote.hashes[i]!;
            stats.hashesCompared++;
            if (mine[0] === theirs[0] && mine[1] === theirs[1]) continue;
            differing.add(it.range);
            if (withinOneLeaf(it.span)) leafItems.push(it);
            else for (const child of splitSpan(it.span)) next.push({ ...it, span: child });
          }
        }
      }
      frontier = next;
    }
    stats.rangesDiffering = differing.size;
    stats.phase = 'comparing keys';

    // Leaves: exchange (key, digest) lists; collect the keys that differ, per peer.
    const keys = new Map<string, Map<string, Buffer>>(); // peer -> latin1 key -> key
    for (const [peer, items] of groupBy(leafItems, (i) => i.peer)) {
      for (const chunk of chunks(items, 64)) {
        let remote: MerkleKeysResponse;
        try {
          const req: MerkleKeysRequest = { v: MESSAGE_VERSION.merkleKeys, spans: chunk.map((i) => [i.span[0], i.span[1]]), limit: 1_000_000 };
          remote = await this.callPeer<MerkleKeysResponse>(peer, Routes.merkleKeys, req, { timeoutMs: d.requestTimeoutMs * 5 });
        } catch (err) {
          stats.errors++;
          for (const i of chunk) failedRanges.add(i.range);
          continue;
        }
        let forPeer = keys.get(peer);
        if (!forPeer) keys.set(peer, (forPeer = new Map()));
        for (let i = 0; i < chunk.length; i++) {
          const it = chunk[i]!;
          const mine = new Map<string, string>();
          for (const [k, hi, lo] of await d.hasher.spanKeys(it.span, 1_000_000)) mine.set(k.toString('latin1'), `${hi}:${lo}`);
          const theirs = new Map<string, string>();
          for (const [k, hi, lo] of remote.keys[i] ?? []) theirs.set(Buffer.from(k).toString('latin1'), `${hi}:${lo}`);
          stats.keysCompared += mine.size + theirs.size;
          for (const [k, dg] of theirs) if (mine.get(k) !== dg) forPeer.set(k, Buffer.from(k, 'latin1'));
          for (const [k] of mine) if (!theirs.has(k)) forPeer.set(k, Buffer.from(k, 'latin1'));
        }
      }
    }

    // Reconcile: read both sides, merge, write where it differs.
    stats.phase = 'reconciling';
    for (const [peer, list] of keys) {
      stats.keysDiffering += list.size;
      for (const batch of chunks([...list.values()], d.keysPerBatch)) {
        try {
          await this.reconcile(peer, batch, stats);
        } catch (err) {
          stats.errors++;
          d.log.debug({ peer, err: (err as Error).message }, 'full sync: reconciling a batch failed');
        }
      }
    }
    stats.rangesCompared = [...compared].filter((r) => !failedRanges.has(r)).length;
    stats.ok = stats.errors === 0 && stats.rangesCompared === stats.ranges;
    stats.phase = 'done';
    stats.durationMs = Date.now() - started;
    this.last.set(dc, stats);
    if (stats.ok) this.lastOk.set(dc, { startedAtMs: started, finishedAtMs: Date.now() });
    d.log.info(
      { dc, ranges: stats.ranges, rangesDiffering: stats.rangesDiffering, keysDiffering: stats.keysDiffering, keysToLocal: stats.keysToLocal, keysToRemote: stats.keysToRemote, errors: stats.errors, ms: stats.durationMs },
      stats.ok ? 'full sync done' : 'full sync incomplete',
    );
    return stats;
  }

  /**
   * A request to the peer, sent again when it fails — at most 3 more times, after 250, 500
   * and 1000 ms: a link that just healed resets the connections that were held while it was
   * cut (each stale pooled connection fails one request), and a busy peer may time out once;
   * neither may fail a run of hours. Every request of a full sync is idempotent (reads, and
   * merges of the same object). The last error is thrown.
   */
  private async callPeer<T>(peer: string, route: string, body: unknown, opts: { timeoutMs: number }): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.d.transport.call<T>(this.address(peer), route, body, opts);
      } catch (err) {
        if (attempt >= 3) throw err;
        await new Promise((r) => setTimeout(r, 250 * 2 ** attempt));
      }
    }
  }

  /** Reads each key on both sides, merges, and writes the result where it was missing. */
  private async reconcile(peer: string, batch: Buffer[], stats: FullSyncStats): Promise<void> {
    const d = this.d;
    const get: BatchRequest = { v: MESSAGE_VERSION.batch, from: d.selfId, ops: batch.map((key) => ({ t: OpType.Get, key })) };
    const res = await this.callPeer<BatchResponse>(peer, Routes.batch, get, { timeoutMs: d.requestTimeoutMs });
    const toRemote: { key: Buffer; obj: StoredObject }[] = [];
    const toLocal: { key: Buffer; obj: StoredObject }[] = [];
    for (let i = 0; i < batch.length; i++) {
      const r = res.results[i];
      if (!r?.ok) {
        stats.errors++;
        continue;
      }
      const key = batch[i]!;
      const local = await d.store.get(key);
      const remote = r.obj;
      const merged = local && remote ? mergeAcrossModes(local, remote) : (local ?? remote);
      if (!merged) continue;
      if (!local || !objectsEqual(local, merged)) toLocal.push({ key, obj: merged });
      if (!remote || !objectsEqual(remote, merged)) toRemote.push({ key, obj: merged });
    }
    const writes = await Promise.allSettled(toLocal.map((x) => d.mergeLocal(x.key, x.obj)));
    for (const w of writes) {
      if (w.status === 'fulfilled') stats.keysToLocal++;
      else stats.errors++;
    }
    if (toRemote.length > 0) {
      const req: ReplApplyRequest = { v: MESSAGE_VERSION.replApply, from: d.selfId, fromDc: d.selfDc, ops: toRemote, timeoutMs: d.requestTimeoutMs * 5 };
      const ans = await this.callPeer<ReplApplyResponse>(peer, Routes.replApply, req, { timeoutMs: d.requestTimeoutMs * 5 + 1000 });
      for (let i = 0; i < toRemote.length; i++) {
        if (ans.results[i]?.ok) stats.keysToRemote++;
        else stats.errors++;
      }
    }
  }
}
