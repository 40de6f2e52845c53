// Durable hints: writes this node accepted on behalf of a replica that was down or did not
// answer ("this belongs to node C"). Kept in a separate engine under <dataDir>/hints, so
// they survive a restart; keyed by (target node, key) so that several hints for the same
// key merge into one (the newest version wins, siblings merge). Each hint expires
// `maxHintAgeMs` after its last write (engine TTL), and the store refuses new hints once it
// holds `maxHintBytes`. A hint is removed only after its target acknowledged it, and only
// if no newer hint for that key arrived meanwhile. Per-(target, key) writes are serialized.

import { UnavailableError } from '../../sdk/errors.js';
import type { Clock } from '../../sdk/clock.js';
import type { StoredObject } from '../../sdk/versioning/index.js';
import { objectsEqual, toRecordFields } from '../../sdk/versioning/index.js';
import type { EngineLogger, FileSystem, SyncPolicy } from '../engine/index.js';
import { Engine } from '../engine/index.js';
import { mergeAcrossModes, toObject } from '../replica-store.js';

export interface HintStoreOptions {
  /** Largest total size of stored hints. Default 256 MiB. */
  maxHintBytes: number;
  /** A hint not delivered within this time after its last write is dropped. Default 3 h. */
  maxHintAgeMs: number;
  sync: SyncPolicy;
  clock: Clock;
  log: EngineLogger;
  fs?: FileSystem;
}

export interface Hint {
  target: string;
  key: Buffer;
  obj: StoredObject;
}

/** Hint keys: u8 target length, target id, then the user key. */
function hintKey(target: string, key: Buffer): Buffer {
  const t = Buffer.from(target, 'utf8');
  const out = Buffer.allocUnsafe(1 + t.length + key.length);
  out[0] = t.length;
  t.copy(out, 1);
  key.copy(out, 1 + t.length);
  return out;
}

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

export class HintStore {
  private readonly pending = new Map<string, number>();
  private readonly locks = new Map<string, Promise<unknown>>();
  readonly counters = { stored: 0, delivered: 0, refused: 0, superseded: 0 };

  private constructor(
    readonly engine: Engine,
    private readonly o: HintStoreOptions,
  ) {}

  static async open(dir: string, o: HintStoreOptions): Promise<HintStore> {
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
    for await (const rec of engine.iterate()) {
      const { target } = parseHintKey(rec.key);
      store.pending.set(target, (store.pending.get(target) ?? 0) + 1);
    }
    return store;
  }

  /** Pending hints per target node. */
  pendingByTarget(): Map<string, number> {
    return new Map([...this.pending].filter(([, n]) => n > 0));
  }

  get totalPending(): number {
    let n = 0;
    for (const v of this.pending.values()) n += v;
    return n;
  }

  /** Stores (or merges into) the hint for `target` and `key`. Resolves once durable. */
  add(target: string, key: Buffer, obj: StoredObject): Promise<void> {
    const hk = hintKey(target, key);
    return this.withLock(hk, async () => {
      const s = this.engine.stats();
      if (s.tableBytes + s.memtableBytes > this.o.maxHintBytes) {
        this.counters.refused++;
        throw new UnavailableError(`hint store is full (${this.o.maxHintBytes} bytes); not taking hints for ${target}`);
      }
      const cur = await this.engine.get(hk);
      const merged = cur ? mergeAcrossModes(toObject(cur), obj) : obj;
      // Every hint is stored as a live engine record (a delete too: the version says so) whose
      // engine TTL is the hint's age limit; the data's own expiry lives in the version.
      const f = toRecordFields(merged);
      await this.engine.write([
        { type: 'put', key: hk, value: f.value, version: f.version, contentType: f.contentType, flags: f.flags, ttlMs: this.o.maxHintAgeMs },
      ]);
      if (!cur) this.pending.set(target, (this.pending.get(target) ?? 0) + 1);
      this.counters.stored++;
    });
  }

  /** Up to `limit` hints for `target`, in key order. */
  async list(target: string, limit: number): Promise<Hint[]> {
    const out: Hint[] = [];
    for await (const rec of this.engine.iterate({ ...targetPrefix(target), limit })) {
      out.push({ target, key: parseHintKey(rec.key).key, obj: toObject(rec) });
    }
    return out;
  }

  /** Removes the hint once its target acknowledged `sent`, unless a newer hint replaced it meanwhile. */
  remove(target: string, key: Buffer, sent: StoredObject): Promise<void> {
    const hk = hintKey(target, key);
    return this.withLock(hk, async () => {
      const cur = await this.engine.get(hk);
      if (!cur) return;
      if (!objectsEqual(toObject(cur), sent)) {
        this.counters.superseded++;
        return;
      }
      await this.engine.delete(hk);
      this.counters.delivered++;
      const n = (this.pending.get(target) ?? 1) - 1;
      if (n > 0) this.pending.set(target, n);
      else this.pending.delete(target);
    });
  }

  /**
   * Deletes every hint (for one target, or all): the operator's `truncatehints`. The data
   * they held must then come back through anti-entropy. Resolves with the number dropped.
   */
  async drop(target?: string): Promise<number> {
    const range = target ? targetPrefix(target) : {};
    let n = 0;
    const keys: Buffer[] = [];
    for await (const rec of this.engine.iterate(range)) keys.push(Buffer.from(rec.key));
    for (const k of keys) {
      await this.withLock(k, () => this.engine.delete(k));
      n++;
    }
    await this.recount();
    return n;
  }

  /** Recounts pending hints (expired hints disappear from the count here). */
  async recount(): Promise<void> {
    const counts = new Map<string, number>();
    for await (const rec of this.engine.iterate()) {
      const { target } = parseHintKey(rec.key);
      counts.set(target, (counts.get(target) ?? 0) + 1);
    }
    this.pending.clear();
    for (const [k, v] of counts) this.pending.set(k, v);
  }

  close(): Promise<void> {
    return this.engine.close();
  }

  private async withLock<T>(hk: Buffer, fn: () => Promise<T>): Promise<T> {
    const k = hk.toString('latin1');
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
