// Merkle anti-entropy: repair rounds that make the replicas of every range agree, within
// this node's data center (other data centers are reached by full sync: ../replication/).
//
// A round covers the ranges this node is the first live replica of (so that, cluster-wide,
// each range is repaired once per interval), or every range it replicates on demand. For
// each range it compares span hashes with every other live replica, top-down: the whole
// range first, then — only where they differ — its children (up to 16 per level, cut on
// leaf boundaries), down to single leaves, whose (key, digest) lists are exchanged. Each
// key that differs anywhere is read from every replica, merged by the version rules
// (last-write-wins or vector-clock sync) and written back to the replicas that lacked the
// result, so all replicas of the range converge in one round. Costs (hashes compared,
// keys exchanged) are counted per round. One round at a time.
//
// A recovering node (back from an outage longer than the tombstone grace period) takes part
// in no normal round — others skip it, and it runs none — but runs pull-only rounds
// (pullRepair): the same comparison against every other replica of each of its ranges, where
// only this node's data changes and a key that no other replica holds any more is dropped
// when this node's version of it is older than the outage (its delete was collected
// elsewhere). The rule and why it is safe: ../membership/README.md.
//
// Suspect ranges (a quarantined corrupt block of this node: README "Corrupt blocks") are
// always in this node's rounds. Their hashes are poisoned, so the round reaches their
// leaves; a key whose local copy is unreadable is written from the merge of the others
// (or purged here when no replica holds it); a replica that answers SUSPECT_RANGE counts
// as lacking the key and is written to. A round that compared and reconciled a suspect
// range with every replica, without an error, marks it repaired (the engine's next
// compaction then drops the block).

import type { Ring } from '../../sdk/ring.js';
import { Ring as RingClass } from '../../sdk/ring.js';
import { UnavailableError } from '../../sdk/errors.js';
import { hlcToWallMs } from '../../sdk/hlc.js';
import type { Transport } from '../../sdk/transport.js';
import type { StoredObject } from '../../sdk/versioning/index.js';
import { maxTs, objectsEqual } from '../../sdk/versioning/index.js';
import type { BatchRequest, BatchResponse, MerkleKeysRequest, MerkleKeysResponse, MerkleRequest, MerkleResponse } from '../../sdk/wire/protocol.js';
import { MESSAGE_VERSION, OpType, Routes } from '../../sdk/wire/protocol.js';
import type { Logger } from '../logger.js';
import type { Membership } from '../membership/membership.js';
import type { ReplicaStore } from '../replica-store.js';
import { mergeAcrossModes, toObject } from '../replica-store.js';
import type { SpanHasher } from './span-hasher.js';
import type { Span, TokenRange } from './token-ranges.js';
import { dcRanges, splitSpan, withinOneLeaf } from './token-ranges.js';
import { chunks, groupBy } from '../collections.js';

export interface RepairStats {
  startedAt: string;
  durationMs: number;
  scope: 'primary' | 'all';
  ranges: number;
  rangesDiffering: number;
  hashesCompared: number;
  leavesCompared: number;
  keysCompared: number;
  /** Keys that differed between replicas (and were reconciled). */
  keysExchanged: number;
  /** Objects written back to replicas that lacked the merged version. */
  objectsWritten: number;
  /** Pull-only rounds of a recovering node: keys dropped because no other replica holds them any more. */
  keysDropped?: number;
  peersSkipped: string[];
  errors: number;
  /** Quarantined (suspect) ranges of this node when the round started, and those it repaired. */
  suspectRanges: number;
  suspectRangesRepaired: number;
  /** Keys of a suspect range that no replica held, purged here. */
  suspectKeysPurged: number;
  /** While the round runs: what it is doing. */
  phase?: 'comparing hashes' | 'comparing keys' | 'reconciling' | 'done';
}

export interface AntiEntropyOptions {
  /** Time between automatic rounds; 0 = none. */
  intervalMs: number;
  requestTimeoutMs: number;
  /** Spans per hash request. */
  spansPerRequest: number;
  /** Keys reconciled per batch. */
  keysPerBatch: number;
}

interface Item {
  range: TokenRange;
  peer: string;
  span: Span;
}

export class AntiEntropy {
  private timer: NodeJS.Timeout | undefined;
  private soonTimer: NodeJS.Timeout | undefined;
  private running: Promise<RepairStats> | undefined;
  last: RepairStats | undefined;
  /** The round in progress (updated in place while it runs). */
  current: RepairStats | undefined;
  readonly totals = { rounds: 0, hashesCompared: 0, keysExchanged: 0, suspectRangesRepaired: 0 };

  constructor(
    private readonly store: ReplicaStore,
    private readonly hasher: SpanHasher,
    private readonly membership: Membership,
    /** The ring to repair on, and this node's data center (only its replicas are compared). */
    private readonly ring: () => { ring: Ring; dc: string },
    private readonly transport: Transport,
    private readonly log: Logger,
    private readonly o: AntiEntropyOptions,
  ) {}

  start(): void {
    if (this.o.intervalMs <= 0) return;
    const schedule = () => {
      // Jitter so that the nodes' rounds spread out.
      const delay = this.o.intervalMs * (0.75 + Math.random() * 0.5);
      this.timer = setTimeout(() => {
        // A recovering node runs no normal round (it is repaired by its own pull-only rounds).
        if (this.membership.self.state === 'recovering') return schedule();
        this.repair('primary')
          .catch((err) => this.log.warn({ err: (err as Error).message }, 'scheduled repair failed'))
          .finally(schedule);
      }, delay);
      this.timer.unref();
    };
    schedule();
  }

  stop(): void {
    if (this.timer) clearTimeout(this.timer);
    if (this.soonTimer) clearTimeout(this.soonTimer);
    this.soonTimer = undefined;
    this.stopped = true;
  }

  private stopped = false;

  /**
   * Runs a round soon (after `delayMs`, once the leaf hashes are built) when this node has
   * suspect ranges: a corrupt block was just found. Runs again, backing off to a minute,
   * while suspect ranges remain (a replica was down, say). Not when automatic rounds are
   * off (intervalMs 0): then an operator's `ringkv repair` does it.
   */
  repairSoon(delayMs = 1000): void {
    // repairIntervalMs 0 turns automatic repair off, this prompt one included.
    if (this.soonTimer || this.stopped || this.o.intervalMs <= 0) return;
    this.soonTimer = setTimeout(() => {
      this.soonTimer = undefined;
      if (this.stopped || this.store.suspects().length === 0) return;
      const next = Math.min(60_000, delayMs * 2);
      if (!this.hasher.ready) return this.repairSoon(delayMs);
      this.repair('primary')
        .catch((err) => this.log.warn({ err: (err as Error).message }, 'repair of suspect ranges failed'))
        .finally(() => {
          if (this.store.suspects().length > 0) this.repairSoon(next);
        });
    }, delayMs);
    this.soonTimer.unref();
  }

  /** Runs a round now (or waits for the one running, then runs). */
  async repair(scope: 'primary' | 'all', ranges?: TokenRange[]): Promise<RepairStats> {
    while (this.running) await this.running.catch(() => undefined);
    this.running = this.round(scope, ranges).finally(() => {
      this.running = undefined;
      this.current = undefined;
    });
    return this.running;
  }

  /**
   * A recovering node's pull-only round over every range it replicates, against the other
   * replicas of each that are up (a range with a replica down or suspect, without one up, or
   * with one failing to answer fails the round, which the caller retries later; recovering
   * replicas are left out). Only this node's data changes:
   * each differing key is merged from the other replicas' versions, deletes winning by the
   * version rules; a key no other replica holds is dropped when this node's version of it
   * is older than `cutoffMs` (wall ms: the outage start plus the largest clock lead a write
   * may have).
   */
  async pullRepair(cutoffMs: number): Promise<RepairStats> {
    while (this.running) await this.running.catch(() => undefined);
    this.running = this.round('all', undefined, cutoffMs).finally(() => {
      this.running = undefined;
      this.current = undefined;
    });
    return this.running;
  }

  /** A replica that takes part in repair: not down or suspect, and not recovering (whose data may hold forgotten deletes). */
  private isLive(id: string): boolean {
    const m = this.membership.get(id);
    return !!m && (m.state === 'up' || m.state === 'joining' || m.state === 'leaving');
  }

  private address(id: string): string {
    return this.membership.addressOf(this.membership.get(id)!);
  }

  /**
   * A round over `explicit` ranges (with the replicas to compare), or the ring's ranges this
   * node replicates (`all`) or is the first live replica of (`primary`).
   */
  private async round(scope: 'primary' | 'all', explicit?: TokenRange[], pullCutoffMs?: number): Promise<RepairStats> {
    const started = Date.now();
    const self = this.membership.selfId;
    const pull = pullCutoffMs !== undefined;
    if (!pull && this.membership.self.state === 'recovering') {
      throw new UnavailableError('this node is recovering from an outage longer than the tombstone grace period: it is repaired from its peers, not a source of repair');
    }
    const stats: RepairStats = {
      startedAt: new Date(started).toISOString(),
      durationMs: 0,
      scope,
      ranges: 0,
      rangesDiffering: 0,
      hashesCompared: 0,
      leavesCompared: 0,
      keysCompared: 0,
      keysExchanged: 0,
      objectsWritten: 0,
      peersSkipped: [],
      errors: 0,
      suspectRanges: 0,
      suspectRangesRepaired: 0,
      suspectKeysPurged: 0,
      phase: 'comparing hashes',
    };
    this.current = stats;
    if (!this.hasher.ready) throw new Error('leaf hashes are still being built');
    // This node's suspect ranges as the round starts: repaired by it if it covers them whole.
    const suspects = this.store.suspects();
    stats.suspectRanges = suspects.length;
    const overlapsSuspect = (r: TokenRange) => suspects.some((q) => r.spans.some((sp) => sp[0] <= q.tokens[1] && sp[1] >= q.tokens[0]));
    let ranges: TokenRange[];
    if (explicit) ranges = explicit;
    else {
      const { ring, dc } = this.ring();
      ranges = dcRanges(ring, dc).filter((r) => {
        if (!r.replicas.includes(self)) return false;
        if (scope === 'all' || overlapsSuspect(r)) return true;
        return r.replicas.find((x) => this.isLive(x)) === self;
      });
    }
    stats.ranges = ranges.length;
    const skipped = new Set<string>();
    // Pull-only: the witnesses of a range are its other replicas that are up (or leaving);
    // recovering ones are left out (they are repaired on their own); any other (down,
    // suspect) holds the recovery back, and so does a range without a witness.
    const witnesses = new Set<string>();
    if (pull) {
      stats.keysDropped = 0;
      for (const r of ranges) {
        let n = 0;
        for (const peer of r.replicas) {
          if (peer === self) continue;
          const m = this.membership.get(peer);
          if (m && (m.state === 'up' || m.state === 'leaving')) {
            witnesses.add(peer);
            n++;
          } else if (m?.state !== 'recovering') {
            throw new UnavailableError(`cannot recover yet: replica ${peer} is ${m?.state ?? 'unknown'} (the other replicas of this node's ranges must be up or recovering)`);
          }
        }
        if (n === 0) throw new UnavailableError(`cannot recover yet: range (${r.start}, ${r.end}] has no other replica up (a whole cluster restored from snapshots is restored with ringkv restore --whole-cluster: README "Backups")`);
      }
    }

    // Descend: compare span hashes level by level, only into differing spans.
    let frontier: Item[] = [];
    for (const range of ranges) {
      for (const peer of range.replicas) {
        if (peer === self) continue;
        if (pull && !witnesses.has(peer)) continue;
        if (!this.isLive(peer)) {
          skipped.add(peer);
          continue;
        }
        for (const span of range.spans) frontier.push({ range, peer, span });
      }
    }
    const differingRanges = new Set<TokenRange>();
    const leafItems: Item[] = [];
    const localHash = new Map<string, Promise<[number, number]>>();
    const hashLocal = (s: Span) => {
      const k = `${s[0]}:${s[1]}`;
      let p = localHash.get(k);
      if (!p) {
        p = this.hasher.spanHash(s) as Promise<[number, number]>;
        localHash.set(k, p);
      }
      return p;
    };
    while (frontier.length > 0) {
      const next: Item[] = [];
      for (const [peer, items] of groupBy(frontier, (i) => i.peer)) {
        for (const chunk of chunks(items, this.o.spansPerRequest)) {
          let remote: MerkleResponse;
          try {
            const req: MerkleRequest = { v: MESSAGE_VERSION.merkle, spans: chunk.map((i) => [i.span[0], i.span[1]]) };
            remote = await this.transport.call<MerkleResponse>(this.address(peer), Routes.merkle, req, { timeoutMs: this.o.requestTimeoutMs });
          } catch (err) {
            stats.errors++;
            skipped.add(peer);
            this.log.debug({ peer, err: (err as Error).message }, 'merkle request failed');
            continue;
          }
          if (!remote.ready) {
            skipped.add(peer);
            continue;
          }
          for (let i = 0; i < chunk.length; i++) {
            const it = chunk[i]!;
            const mine = await hashLocal(it.span);
            const theirs = remote.hashes[i]!;
            stats.hashesCompared++;
            if (mine[0] === theirs[0] && mine[1] === theirs[1]) continue;
            differingRanges.add(it.range);
            if (withinOneLeaf(it.span)) leafItems.push(it);
            else for (const child of splitSpan(it.span)) next.push({ ...it, span: child });
          }
        }
      }
      frontier = next;
    }
    stats.rangesDiffering = differingRanges.size;
    stats.phase = 'comparing keys';

    // Leaves: exchange (key, digest) lists; collect every key that differs on some replica.
    const differing = new Map<string, { key: Buffer; replicas: string[] }>();
    for (const [peer, items] of groupBy(leafItems, (i) => i.peer)) {
      for (const chunk of chunks(items, 64)) {
        let remote: MerkleKeysResponse;
        try {
          const req: MerkleKeysRequest = { v: MESSAGE_VERSION.merkleKeys, spans: chunk.map((i) => [i.span[0], i.span[1]]), limit: 1_000_000 };
          remote = await this.transport.call<MerkleKeysResponse>(this.address(peer), Routes.merkleKeys, req, { timeoutMs: this.o.requestTimeoutMs * 5 });
        } catch (err) {
          stats.errors++;
          skipped.add(peer);
          continue;
        }
        for (let i = 0; i < chunk.length; i++) {
          stats.leavesCompared++;
          const it = chunk[i]!;
          const mine = new Map<string, string>();
          for (const [k, hi, lo] of await this.hasher.spanKeys(it.span, 1_000_000)) mine.set(k.toString('latin1'), `${hi}:${lo}`);
          const theirs = new Map<string, string>();
          for (const [k, hi, lo] of remote.keys[i] ?? []) theirs.set(Buffer.from(k).toString('latin1'), `${hi}:${lo}`);
          stats.keysCompared += mine.size + theirs.size;
          for (const [k, d] of theirs) if (mine.get(k) !== d) differing.set(k, { key: Buffer.from(k, 'latin1'), replicas: it.range.replicas });
          for (const [k] of mine) if (!theirs.has(k)) differing.set(k, { key: Buffer.from(k, 'latin1'), replicas: it.range.replicas });
        }
      }
    }

    if (pull && (skipped.size > 0 || stats.errors > 0)) {
      throw new UnavailableError(`cannot recover yet: ${[...skipped].join(', ') || 'a replica'} did not answer the comparison`);
    }
    // Reconcile: read each differing key everywhere, merge, write back where it differs.
    stats.phase = 'reconciling';
    stats.keysExchanged = differing.size;
    for (const batch of chunks([...differing.values()], this.o.keysPerBatch)) {
      const written = pull ? await this.reconcilePull(batch, witnesses, stats, pullCutoffMs) : await this.reconcile(batch, skipped, stats);
      stats.objectsWritten += written;
    }
    if (pull && stats.errors > 0) throw new UnavailableError(`cannot recover yet: ${stats.errors} reads from other replicas failed`);
    stats.peersSkipped = [...skipped];
    // A suspect range is repaired when the round covered it (ring ranges, which always
    // include the suspect ones) with every replica of it reachable, and nothing failed.
    if (!explicit && suspects.length > 0) {
      for (const q of suspects) {
        const rs = ranges.filter((r) => r.spans.some((sp) => sp[0] <= q.tokens[1] && sp[1] >= q.tokens[0]));
        const clean = stats.errors === 0 && rs.every((r) => r.replicas.every((x) => x === self || !skipped.has(x)));
        if (!clean || !this.store.markRepaired(q.id)) continue;
        stats.suspectRangesRepaired++;
        await this.hasher.correctLeaves(q.tokens);
        this.log.warn({ block: q.id, file: q.file, tokens: q.tokens }, 'a suspect range was repaired from the other replicas');
      }
    }
    stats.phase = 'done';
    stats.durationMs = Date.now() - started;
    this.last = stats;
    this.totals.rounds++;
    this.totals.hashesCompared += stats.hashesCompared;
    this.totals.keysExchanged += stats.keysExchanged;
    this.totals.suspectRangesRepaired += stats.suspectRangesRepaired;
    this.log.info(
      {
        ranges: stats.ranges,
        rangesDiffering: stats.rangesDiffering,
        hashesCompared: stats.hashesCompared,
        keysExchanged: stats.keysExchanged,
        objectsWritten: stats.objectsWritten,
        ms: stats.durationMs,
      },
      'repair round done',
    );
    return stats;
  }

  /** Merges each key's objects from every live replica and writes the result where it is missing. */
  private async reconcile(batch: { key: Buffer; replicas: string[] }[], skipped: Set<string>, stats: RepairStats): Promise<number> {
    const self = this.membership.selfId;
    const peers = new Set<string>();
    for (const b of batch) for (const r of b.replicas) if (r !== self && this.isLive(r) && !skipped.has(r)) peers.add(r);
    // Fetch every replica's object.
    const objs = new Map<string, Map<string, StoredObject | null>>(); // peer -> key -> obj
    await Promise.all(
      [...peers].map(async (peer) => {
        const keys = batch.filter((b) => b.replicas.includes(peer));
        const req: BatchRequest = { v: MESSAGE_VERSION.batch, from: self, ops: keys.map((b) => ({ t: OpType.Get, key: b.key })) };
        try {
          const res = await this.transport.call<BatchResponse>(this.address(peer), Routes.batch, req, { timeoutMs: this.o.requestTimeoutMs });
          const m = new Map<string, StoredObject | null>();
          keys.forEach((b, i) => {
            const r = res.results[i];
            if (r?.ok) m.set(b.key.toString('latin1'), r.obj);
            // A replica whose copy is unreadable (quarantined) lacks the key: it is written to.
            else if (r?.code === 'SUSPECT_RANGE') m.set(b.key.toString('latin1'), null);
          });
          objs.set(peer, m);
        } catch {
          stats.errors++;
        }
      }),
    );
    let written = 0;
    const pushes = new Map<string, { key: Buffer; obj: StoredObject }[]>();
    for (const b of batch) {
      const k = b.key.toString('latin1');
      let local: StoredObject | null;
      let suspect = false;
      try {
        local = await this.store.get(b.key);
      } catch (err) {
        if ((err as { code?: string }).code !== 'SUSPECT_RANGE') throw err;
        // This node's copy is unreadable: it takes the merge of the others.
        local = null;
        suspect = true;
      }
      let merged: StoredObject | undefined = local ?? undefined;
      for (const [, m] of objs) {
        const o = m.get(k);
        if (o) merged = merged ? mergeAcrossModes(merged, o) : o;
      }
      if (!merged) {
        // No replica holds the key: purge the unreadable copy here — only when every
        // replica answered, so that no older version it shadowed can come back.
        const allAnswered = b.replicas.every((r) => r === self || objs.get(r)?.has(k) === true);
        if (suspect && allAnswered && b.replicas.includes(self) && (await this.store.resolveSuspect(b.key))) stats.suspectKeysPurged++;
        continue;
      }
      if (b.replicas.includes(self) && (suspect || !local || !objectsEqual(local, merged))) {
        await this.store.merge(b.key, merged);
        written++;
      }
      for (const [peer, m] of objs) {
        if (!b.replicas.includes(peer) || !m.has(k)) continue;
        const o = m.get(k);
        if (!o || !objectsEqual(o, merged)) {
          let list = pushes.get(peer);
          if (!list) pushes.set(peer, (list = []));
          list.push({ key: b.key, obj: merged });
        }
      }
    }
    await Promise.all(
      [...pushes].map(async ([peer, list]) => {
        const req: BatchRequest = { v: MESSAGE_VERSION.batch, from: self, ops: list.map((x) => ({ t: OpType.Merge, key: x.key, obj: x.obj })) };
        try {
          const res = await this.transport.call<BatchResponse>(this.address(peer), Routes.batch, req, { timeoutMs: this.o.requestTimeoutMs });
          written += res.results.filter((r) => r.ok).length;
        } catch {
          stats.errors++;
        }
      }),
    );
    return written;
  }

  /**
   * Pull-only reconciliation (a recovering node): every other replica's object of each key
   * is read; when any holds one, this node merges theirs into its own; when none does (each
   * answered "absent"), this node's version is dropped if it is older than `cutoffMs`.
   */
  private async reconcilePull(batch: { key: Buffer; replicas: string[] }[], witnesses: Set<string>, stats: RepairStats, cutoffMs: number): Promise<number> {
    const self = this.membership.selfId;
    const peers = new Set<string>();
    for (const b of batch) for (const r of b.replicas) if (r !== self && witnesses.has(r)) peers.add(r);
    const objs = new Map<string, Map<string, StoredObject | null>>();
    await Promise.all(
      [...peers].map(async (peer) => {
        const keys = batch.filter((b) => b.replicas.includes(peer));
        const req: BatchRequest = { v: MESSAGE_VERSION.batch, from: self, ops: keys.map((b) => ({ t: OpType.Get, key: b.key })) };
        try {
          const res = await this.transport.call<BatchResponse>(this.address(peer), Routes.batch, req, { timeoutMs: this.o.requestTimeoutMs });
          const m = new Map<string, StoredObject | null>();
          keys.forEach((b, i) => {
            const r = res.results[i];
            if (r?.ok) m.set(b.key.toString('latin1'), r.obj);
          });
          objs.set(peer, m);
        } catch {
          stats.errors++;
        }
      }),
    );
    let written = 0;
    for (const b of batch) {
      const k = b.key.toString('latin1');
      let theirs: StoredObject | undefined;
      let allAnswered = true;
      for (const peer of b.replicas) {
        if (peer === self || !witnesses.has(peer)) continue;
        const m = objs.get(peer);
        if (!m || !m.has(k)) {
          allAnswered = false;
          continue;
        }
        const o = m.get(k);
        if (o) theirs = theirs ? mergeAcrossModes(theirs, o) : o;
      }
      if (theirs) {
        // Merged into this node's own version by the version rules: a delete or a newer write
        // made elsewhere wins; a write this node took after its return and theirs lack stays.
        const r = await this.store.merge(b.key, theirs);
        if (r.changed) written++;
        continue;
      }
      if (!allAnswered) {
        stats.errors++;
        continue;
      }
      // No other replica holds the key. Dropped when this node's version predates the
      // outage (its delete may have been collected everywhere else); kept when newer. A data
      // type is never deleted (so never collected elsewhere) and carries no timestamp: kept.
      const token = RingClass.tokenOf(b.key);
      for await (const e of this.store.scan(token, token)) {
        if (!e.key.equals(b.key)) continue;
        const obj = toObject(e.record);
        if (obj.mode !== 'crdt' && hlcToWallMs(maxTs(obj)) < cutoffMs && (await this.store.purge(b.key, Buffer.from(e.version)))) {
          stats.keysDropped = (stats.keysDropped ?? 0) + 1;
          written++;
        }
        break;
      }
    }
    return written;
  }
}
