// Durable hints: writes this node accepted on behalf of a replica that was down or did not
// answer ("this belongs to node C"). Kept in a separate engine under <dataDir>/hints, so
// they survive a restart; keyed by (target node, key) so that several hints for the same
// key merge into one (the newest version wins, siblings merge). Each hint expires
// `maxHintAgeMs` after its last write (engine expiry), and the store refuses a hint that
// would take its live hints past `maxHintBytes`. A hint is removed only after its target
// acknowledged it, and only if no newer hint for that key arrived meanwhile.
// Per-(target, key) writes are serialized.
// The pending counts follow every way a hint leaves (pending-hints.ts); the format is in
// ./README.md.

import { InvalidArgumentError, UnavailableError } from '../../sdk/errors.js';
import { checkNodeId } from '../../sdk/limits.js';
import type { Clock } from '../../sdk/clock.js';
import type { StoredObject } from '../../sdk/versioning/index.js';
import { objectsEqual, toRecordFields } from '../../sdk/versioning/index.js';
import type { FileSystem, SyncPolicy } from '../engine/index.js';
import type { Logger } from '../logger.js';
import type { EngineRecord } from '../engine/index.js';
import { Engine } from '../engine/index.js';
import { mergeAcrossModes, toObject } from '../replica-store.js';
import { PendingHints } from './pending-hints.js';
import { KeyLock } from '../key-lock.js';

export interface HintStoreOptions {
  /**
   * Largest total size of the live hints (engine key, value, version and content type of
   * each; delivered and expired ones do not count). Default 256 MiB.
   */
  maxHintBytes: number;
  /** A hint not delivered within this time after its last write is dropped. Default 3 h. */
  maxHintAgeMs: number;
  sync: SyncPolicy;
  clock: Clock;
  log: Logger;
  fs?: FileSystem;
}

/** Longest age limit a hint may have: 10 years (expiry times stay exact integers). */
export const MAX_HINT_AGE_MS = 10 * 365 * 24 * 3600 * 1000;

/**
 * Throws InvalidArgumentError unless 0 < maxHintAgeMs <= MAX_HINT_AGE_MS and maxHintBytes >= 0.
 * HintStore.open checks its options with it; the server's config resolver too, before the
 * data directory is touched.
 */
export function checkHintStoreLimits(o: Pick<HintStoreOptions, 'maxHintBytes' | 'maxHintAgeMs'>): void {
  if (!(typeof o.maxHintAgeMs === 'number' && o.maxHintAgeMs > 0 && o.maxHintAgeMs <= MAX_HINT_AGE_MS)) {
    throw new InvalidArgumentError(`maxHintAgeMs must be more than 0 and at most ${MAX_HINT_AGE_MS} ms, got ${String(o.maxHintAgeMs)}`);
  }
  if (!(typeof o.maxHintBytes === 'number' && o.maxHintBytes >= 0 && Number.isFinite(o.maxHintBytes))) {
    throw new InvalidArgumentError(`maxHintBytes must be a non-negative number, got ${String(o.maxHintBytes)}`);
  }
}

export interface Hint {
  target: string;
  key: Buffer;
  obj: StoredObject;
}

/** Hint keys: u8 target length, target id, then the user key. REQUIRES: checkNodeId(target). */
function hintKey(target: string, key: Buffer): Buffer {
  const t = Buffer.from(target, 'utf8');
  const out = Buffer.allocUnsafe(1 + t.length + key.length);
  out[0] = t.length;
  t.copy(out, 1);
  key.copy(out, 1 + t.length);
  return out;
}

/** The key range of every hint for `target`. REQUIRES: checkNodeId(target). */
function targetPrefix(target: string): { gte: Buffer; lt: Buffer } {
  const t = Buffer.from(target, 'utf8');
  const gte = Buffer.concat([Buffer.from([t.length]), t]);
  const lt = Buffer.from(gte);
  // The next prefix: increment the last byte (ids are UTF-8, never 0xff, so this never carries).
  lt[lt.length - 1]!++;
  return { gte, lt };
}

function parseHintKey(k: Buffer): { target: string; key: Buffer } {
  const n = k[0]!;
  return { target: k.toString('utf8', 1, 1 + n), key: Buffer.from(k.subarray(1 + n)) };
}

/** The bytes a hint holds: its engine key, value, version and content type. */
function hintBytes(r: Pick<EngineRecord, 'key' | 'value' | 'version' | 'contentType'>): number {
  return r.key.length + r.value.length + r.version.length + r.contentType.length;
}

export class HintStore {
  private readonly pending = new PendingHints();
  /** Bytes of the hints being written now, counted against the budget before they land. */
  private reservedBytes = 0;
  private readonly locks = new KeyLock();
  readonly counters = { stored: 0, delivered: 0, refused: 0, superseded: 0 };

  private constructor(
    readonly engine: Engine,
    private readonly o: HintStoreOptions,
  ) {}

  static async open(dir: string, o: HintStoreOptions): Promise<HintStore> {
    checkHintStoreLimits(o);
    const engine = await Engine.open(dir, {
      sync: o.sync,
      clock: o.clock,
      logger: o.log,
      maxKeyBytes: 1 + 255 + 256,
      memtableSizeBytes: 4 * 1024 * 1024,
      blockCacheSizeBytes: 4 * 1024 * 1024,
      // Delivered hints are tombstones that nobody replicates: drop them at the first compaction.
      tombstoneGraceMs: 0,
      ...(o.fs ? { fs: o.fs } : {}),
    });
    const store = new HintStore(engine, o);
    for await (const rec of engine.iterate()) store.pending.add(parseHintKey(rec.key).target, rec.expiresAtMs, hintBytes(rec));
    return store;
  }

  /** Pending (live: neither delivered, dropped nor expired) hints per target node; targets with none are left out. */
  pendingByTarget(): Map<string, number> {
    return this.pending.byTarget(this.o.clock.nowMs());
  }

  /** Pending hints for every target. */
  get totalPending(): number {
    return this.pending.total(this.o.clock.nowMs());
  }

  /** Bytes of the pending hints (what maxHintBytes limits). */
  get pendingBytes(): number {
    return this.pending.bytes(this.o.clock.nowMs());
  }

  /** Hints that expired (their age limit passed before delivery) since the store was opened. */
  get expired(): number {
    this.pending.total(this.o.clock.nowMs());
    return this.pending.expired;
  }

  /**
   * Stores (or merges into) the hint for `target` and `key`. Resolves once durable. Rejects
   * with InvalidArgumentError when `target` is not a node id of 1..255 UTF-8 bytes.
   */
  add(target: string, key: Buffer, obj: StoredObject): Promise<void> {
    try {
      checkNodeId(target, 'hint target');
    } catch (err) {
      return Promise.reject(err);
    }
    const hk = hintKey(target, key);
    return this.withLock(hk, async () => {
      const cur = await this.engine.get(hk);
      const merged = cur ? mergeAcrossModes(toObject(cur), obj) : obj;
      // Every hint is stored as a live engine record (a delete too: the version says so) whose
      // engine expiry is the hint's age limit; the data's own expiry lives in the version.
      const f = toRecordFields(merged);
      const bytes = hintBytes({ key: hk, ...f });
      const replaced = cur ? hintBytes(cur) : 0;
      if (this.pending.bytes(this.o.clock.nowMs()) + this.reservedBytes - replaced + bytes > this.o.maxHintBytes) {
        this.counters.refused++;
        throw new UnavailableError(`hint store is full (${this.o.maxHintBytes} bytes); not taking hints for ${target}`);
      }
      this.reservedBytes += bytes;
      const expiresAtMs = Math.ceil(this.o.clock.nowMs() + this.o.maxHintAgeMs);
      try {
        await this.engine.write([
          { type: 'put', key: hk, value: f.value, version: f.version, contentType: f.contentType, flags: f.flags, expiresAtMs },
        ]);
      } finally {
        this.reservedBytes -= bytes;
      }
      if (cur) this.pending.remove(target, cur.expiresAtMs, replaced);
      this.pending.add(target, expiresAtMs, bytes);
      this.counters.stored++;
    });
  }

  /** Up to `limit` hints for `target`, in key order. */
  async list(target: string, limit: number): Promise<Hint[]> {
    checkNodeId(target, 'hint target');
    const out: Hint[] = [];
    for await (const rec of this.engine.iterate({ ...targetPrefix(target), limit })) {
      out.push({ target, key: parseHintKey(rec.key).key, obj: toObject(rec) });
    }
    return out;
  }

  /** Removes the hint once its target acknowledged `sent`, unless a newer hint replaced it meanwhile. */
  remove(target: string, key: Buffer, sent: StoredObject): Promise<void> {
    try {
      checkNodeId(target, 'hint target');
    } catch (err) {
      return Promise.reject(err);
    }
    const hk = hintKey(target, key);
    return this.withLock(hk, async () => {
      const cur = await this.engine.get(hk);
      if (!cur) return;
      if (!objectsEqual(toObject(cur), sent)) {
        this.counters.superseded++;
        return;
      }
      await this.engine.delete(hk);
      this.pending.remove(target, cur.expiresAtMs, hintBytes(cur));
      this.counters.delivered++;
    });
  }

  /**
   * Deletes every hint (for one target, or all): the operator's `truncatehints`. The data
   * they held must then come back through anti-entropy. Resolves with the number dropped.
   */
  async drop(target?: string): Promise<number> {
    if (target !== undefined) checkNodeId(target, 'hint target');
    const range = target !== undefined ? targetPrefix(target) : {};
    let n = 0;
    const keys: Buffer[] = [];
    for await (const rec of this.engine.iterate(range)) keys.push(Buffer.from(rec.key));
    for (const k of keys) {
      await this.withLock(k, async () => {
        // Delivered or expired since the scan: not this drop's to count.
        const cur = await this.engine.get(k);
        if (!cur) return;
        await this.engine.delete(k);
        this.pending.remove(parseHintKey(k).target, cur.expiresAtMs, hintBytes(cur));
        n++;
      });
    }
    return n;
  }

  close(): Promise<void> {
    return this.engine.close();
  }

  private async withLock<T>(hk: Buffer, fn: () => Promise<T>): Promise<T> {
    return this.locks.run(hk, fn);
  }
}
