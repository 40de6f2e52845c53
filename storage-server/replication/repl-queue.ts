// The cross-DC replication queue: per destination data center, the objects this node must
// ship there, durable in their own engine under <dataDir>/repl (format: ./README.md). Oldest
// first; one entry per key — a newer write of a queued key merges into its entry, which
// keeps its place — so a hot key costs one entry. Bounded per destination in bytes (a write
// that does not fit is not queued: counted as dropped, left to the full sync) and in age (an
// entry not shipped within maxAgeMs expires: counted as dropped too). An entry leaves once
// the destination acknowledged it; when a newer write merged into it meanwhile, it moves to
// the tail instead. Per-(destination, key) operations are serialized; the rest may overlap.

import { InvalidArgumentError } from '../../sdk/errors.js';
import type { Clock } from '../../sdk/clock.js';
import type { StoredObject } from '../../sdk/versioning/index.js';
import { objectsEqual, toRecordFields } from '../../sdk/versioning/index.js';
import { TOPOLOGY_NAME } from '../../sdk/ring.js';
import type { EngineRecord, FileSystem, SyncPolicy } from '../engine/index.js';
import type { Logger } from '../logger.js';
import { Engine } from '../engine/index.js';
import { PendingHints } from '../handoff/pending-hints.js';
import { mergeAcrossModes, toObject } from '../replica-store.js';

export interface ReplQueueOptions {
  /** Most bytes of live entries per destination (engine key, value, version, content type). */
  maxBytesPerDc: number;
  /** An entry not shipped this long after it was queued expires (the lag bound). */
  maxAgeMs: number;
  sync: SyncPolicy;
  clock: Clock;
  log: Logger;
  fs?: FileSystem;
}

/** One queued object, as handed to the shipper. */
export interface QueuedObject {
  dc: string;
  /** Its place in the queue (queued time in ms × 1024, plus a counter). */
  seq: number;
  key: Buffer;
  obj: StoredObject;
}

/** What enqueue did: stored a new entry, merged into the key's entry, or dropped the write (over the bound). */
export type EnqueueOutcome = 'queued' | 'merged' | 'dropped';

/** Sequence numbers: ms × SEQ_PER_MS + a counter, so that a seq says when it was queued. */
const SEQ_PER_MS = 1024;

/** The time (ms since the epoch) an entry of sequence number `seq` was queued. */
export function queuedAtMs(seq: number): number {
  return Math.floor(seq / SEQ_PER_MS);
}

/** Engine key: dcLen u8, dc, seq u64 big-endian, user key. */
function entryKey(dc: string, seq: number, key: Buffer): Buffer {
  const d = Buffer.from(dc, 'utf8');
  const out = Buffer.allocUnsafe(1 + d.length + 8 + key.length);
  out[0] = d.length;
  d.copy(out, 1);
  out.writeUInt32BE(Math.floor(seq / 2 ** 32), 1 + d.length);
  out.writeUInt32BE(seq % 2 ** 32, 5 + d.length);
  key.copy(out, 9 + d.length);
  return out;
}

function parseEntryKey(k: Buffer): { dc: string; seq: number; key: Buffer } {
  const n = k[0]!;
  const dc = k.toString('utf8', 1, 1 + n);
  const seq = k.readUInt32BE(1 + n) * 2 ** 32 + k.readUInt32BE(5 + n);
  return { dc, seq, key: Buffer.from(k.subarray(9 + n)) };
}

/** The key range of one destination's entries, from sequence number `afterSeq` + 1 on. */
function dcRange(dc: string, afterSeq = -1): { gte: Buffer; lt: Buffer } {
  const d = Buffer.from(dc, 'utf8');
  const prefix = Buffer.concat([Buffer.from([d.length]), d]);
  const lt = Buffer.from(prefix);
  lt[lt.length - 1]!++;
  if (afterSeq < 0) return { gte: prefix, lt };
  const from = afterSeq + 1;
  const gte = Buffer.allocUnsafe(prefix.length + 8);
  prefix.copy(gte, 0);
  gte.writeUInt32BE(Math.floor(from / 2 ** 32), prefix.length);
  gte.writeUInt32BE(from % 2 ** 32, prefix.length + 4);
  return { gte, lt };
}

function entryBytes(r: Pick<EngineRecord, 'key' | 'value' | 'version' | 'contentType'>): number {
  return r.key.length + r.value.length + r.version.length + r.contentType.length;
}

/** Where a key's live entry is: its sequence number, expiry and bytes. */
interface Slot {
  seq: number;
  expiresAtMs: number;
  bytes: number;
}

export class ReplQueue {
  /** Per destination: live entries counted by expiry (expired ones leave the counts on their own). */
  private readonly pending = new Map<string, PendingHints>();
  /** Per destination: user key (latin1) -> its entry. May hold expired slots until swept. */
  private readonly index = new Map<string, Map<string, Slot>>();
  private readonly reserved = new Map<string, number>();
  private readonly overflow = new Map<string, number>();
  private readonly locks = new Map<string, Promise<unknown>>();
  private lastSeq = 0;
  readonly counters = { queued: 0, merged: 0, acked: 0, requeued: 0 };

  private constructor(
    readonly engine: Engine,
    private readonly o: ReplQueueOptions,
  ) {}

  static async open(dir: string, o: ReplQueueOptions): Promise<ReplQueue> {
    if (!(Number.isInteger(o.maxBytesPerDc) && o.maxBytesPerDc > 0)) throw new InvalidArgumentError('maxBytesPerDc must be a positive integer');
    if (!(o.maxAgeMs > 0)) throw new InvalidArgumentError('maxAgeMs must be positive');
    const engine = await Engine.open(dir, {
      sync: o.sync,
      clock: o.clock,
      logger: o.log,
      maxKeyBytes: 1 + 64 + 8 + 256,
      memtableSizeBytes: 4 * 1024 * 1024,
      blockCacheSizeBytes: 4 * 1024 * 1024,
      // Shipped entries are tombstones nobody replicates: drop them at the first compaction.
      tombstoneGraceMs: 0,
      ...(o.fs ? { fs: o.fs } : {}),
    });
    const q = new ReplQueue(engine, o);
    for await (const rec of engine.iterate()) {
      const e = parseEntryKey(rec.key);
      const bytes = entryBytes(rec);
      q.pendingOf(e.dc).add(e.dc, rec.expiresAtMs, bytes);
      q.indexOf(e.dc).set(e.key.toString('latin1'), { seq: e.seq, expiresAtMs: rec.expiresAtMs, bytes });
      if (e.seq > q.lastSeq) q.lastSeq = e.seq;
    }
    return q;
  }

  /** Live entries queued for `dc`. */
  pendingCount(dc: string): number {
    return this.pending.get(dc)?.total(this.o.clock.nowMs()) ?? 0;
  }

  /** Bytes of the live entries queued for `dc` (what maxBytesPerDc bounds). */
  pendingBytes(dc: string): number {
    return this.pending.get(dc)?.bytes(this.o.clock.nowMs()) ?? 0;
  }

  /** Writes for `dc` dropped since the queue was opened: over the byte bound, or expired unshipped. */
  dropped(dc: string): number {
    const p = this.pending.get(dc);
    if (p) p.total(this.o.clock.nowMs());
    return (this.overflow.get(dc) ?? 0) + (p?.expired ?? 0);
  }

  /**
   * Queues `obj` for `dc` (merged into the key's entry when it has one). Resolves once
   * durable, with what it did; 'dropped' (counted) when the destination's entries would go
   * past maxBytesPerDc.
   */
  enqueue(dc: string, key: Buffer, obj: StoredObject): Promise<EnqueueOutcome> {
    if (!TOPOLOGY_NAME.test(dc)) return Promise.reject(new InvalidArgumentError(`not a data center name: ${JSON.stringify(dc)}`));
    const k = key.toString('latin1');
    return this.withLock(dc, k, async () => {
      const now = this.o.clock.nowMs();
      const slot = this.indexOf(dc).get(k);
      let cur: EngineRecord | undefined;
      if (slot && slot.expiresAtMs > now) cur = await this.engine.get(entryKey(dc, slot.seq, key));
      const merged = cur ? mergeAcrossModes(toObject(cur), obj) : obj;
      if (cur && objectsEqual(merged, toObject(cur))) return 'merged';
      const seq = cur ? slot!.seq : this.nextSeq(now);
      const ek = entryKey(dc, seq, key);
      const f = toRecordFields(merged);
      const bytes = entryBytes({ key: ek, ...f });
      const replaced = cur ? slot!.bytes : 0;
      const pending = this.pendingOf(dc);
      const reserved = this.reserved.get(dc) ?? 0;
      if (pending.bytes(now) + reserved - replaced + bytes > this.o.maxBytesPerDc) {
        this.overflow.set(dc, (this.overflow.get(dc) ?? 0) + 1);
        return 'dropped';
      }
      const expiresAtMs = cur ? slot!.expiresAtMs : Math.ceil(now + this.o.maxAgeMs);
      this.reserved.set(dc, reserved + bytes);
      try {
        await this.engine.write([{ type: 'put', key: ek, value: f.value, version: f.version, contentType: f.contentType, flags: f.flags, expiresAtMs }]);
      } finally {
        this.reserved.set(dc, (this.reserved.get(dc) ?? bytes) - bytes);
      }
      if (cur) pending.remove(dc, slot!.expiresAtMs, slot!.bytes);
      pending.add(dc, expiresAtMs, bytes);
      this.indexOf(dc).set(k, { seq, expiresAtMs, bytes });
      if (cur) this.counters.merged++;
      else this.counters.queued++;
      return cur ? 'merged' : 'queued';
    });
  }

  /** Up to `limit` live entries for `dc` after sequence number `afterSeq` (-1: from the oldest), oldest first. */
  async peek(dc: string, limit: number, afterSeq = -1): Promise<QueuedObject[]> {
    const out: QueuedObject[] = [];
    if (!this.pending.has(dc)) return out;
    for await (const rec of this.engine.iterate({ ...dcRange(dc, afterSeq), limit })) {
      const e = parseEntryKey(rec.key);
      out.push({ dc, seq: e.seq, key: e.key, obj: toObject(rec) });
    }
    return out;
  }

  /**
   * The destination acknowledged `e`: its entry leaves the queue — unless a newer write
   * merged into it since it was read, which moves it to the tail (queued now) instead.
   */
  ack(e: QueuedObject): Promise<void> {
    const k = e.key.toString('latin1');
    return this.withLock(e.dc, k, async () => {
      const idx = this.indexOf(e.dc);
      const slot = idx.get(k);
      if (!slot || slot.seq !== e.seq) return;
      const ek = entryKey(e.dc, e.seq, e.key);
      const cur = await this.engine.get(ek);
      const pending = this.pendingOf(e.dc);
      if (!cur) {
        idx.delete(k); // expired meanwhile (already out of the counts)
        return;
      }
      if (objectsEqual(toObject(cur), e.obj)) {
        await this.engine.write([{ type: 'del', key: ek }]);
        pending.remove(e.dc, slot.expiresAtMs, slot.bytes);
        idx.delete(k);
        this.counters.acked++;
        return;
      }
      // A newer write is in the entry: what is left to ship was queued now.
      const now = this.o.clock.nowMs();
      const seq = this.nextSeq(now);
      const nk = entryKey(e.dc, seq, e.key);
      const expiresAtMs = Math.ceil(now + this.o.maxAgeMs);
      const bytes = slot.bytes - ek.length + nk.length;
      await this.engine.write([
        { type: 'del', key: ek },
        { type: 'put', key: nk, value: cur.value, version: cur.version, contentType: cur.contentType, flags: cur.flags, expiresAtMs },
      ]);
      pending.remove(e.dc, slot.expiresAtMs, slot.bytes);
      pending.add(e.dc, expiresAtMs, bytes);
      idx.set(k, { seq, expiresAtMs, bytes });
      this.counters.requeued++;
    });
  }

  /** Forgets index slots whose entries expired (memory only; the engine dropped them already). */
  sweep(): void {
    const now = this.o.clock.nowMs();
    for (const idx of this.index.values()) for (const [k, s] of idx) if (s.expiresAtMs <= now) idx.delete(k);
  }

  close(): Promise<void> {
    return this.engine.close();
  }

  private nextSeq(nowMs: number): number {
    this.lastSeq = Math.max(this.lastSeq + 1, Math.floor(nowMs) * SEQ_PER_MS);
    return this.lastSeq;
  }

  private pendingOf(dc: string): PendingHints {
    let p = this.pending.get(dc);
    if (!p) this.pending.set(dc, (p = new PendingHints()));
    return p;
  }

  private indexOf(dc: string): Map<string, Slot> {
    let m = this.index.get(dc);
    if (!m) this.index.set(dc, (m = new Map()));
    return m;
  }

  private async withLock<T>(dc: string, key: string, fn: () => Promise<T>): Promise<T> {
    const k = `${dc}\u0000${key}`;
    const prev = this.locks.get(k);
    const run = prev ? prev.then(fn, fn) : fn();
    const tail = run.catch(() => undefined);
    this.locks.set(k, tail);
    try {
      return await run;
    } finally {
      if (this.locks.get(k) === tail) this.locks.delete(k);
    }
  }
}
