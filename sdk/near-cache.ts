// The SDK's near cache (opt-in: connect({ cache })): objects read at R = 1, kept in an LRU
// (lru-cache) by key, each with the node that served it, and served again for at most ttlMs
// after the read that fetched them began. Kept correct by the nodes' invalidations
// (storage-server/invalidation-hub.ts, sdk/invalidation-subscriber.ts): a key the node says
// changed is dropped; a node whose stream is lost has its entries flushed.
//
// The race of an invalidation with a read of the same key in flight: every read that may
// fill the cache takes a ticket (begin) holding the key's generation; an invalidation bumps
// the generation of keys with reads in flight; offer() stores the read's object only when the
// generation is still the ticket's. So an invalidation that arrives before the read's answer
// (a change after the node read it) leaves nothing cached, and one that arrives after it drops
// the entry. Single-threaded like the client that owns it; time comes from the injected
// monotonic clock.

import { LRUCache } from 'lru-cache';
import { InvalidArgumentError } from './errors.js';
import type { StoredObject } from './versioning/index.js';

export interface NearCacheOptions {
  /** Entries kept at most (the least recently used go first). Default 10,000. */
  maxEntries: number;
  /** Bytes kept at most (values, keys and ~100 bytes per entry). Default 64 MiB. */
  maxBytes: number;
  /**
   * The staleness bound: an entry is served for at most this long after the read that
   * fetched it began, invalidation or not (when a stream stalls without breaking). Default 5000 ms.
   */
  ttlMs: number;
  /** The heartbeat asked of every node's stream; a stream silent for 3 heartbeats + 1 s is lost. Default 1000 ms. */
  heartbeatMs: number;
}

export const nearCacheDefaults: NearCacheOptions = { maxEntries: 10_000, maxBytes: 64 * 1024 * 1024, ttlMs: 5000, heartbeatMs: 1000 };

/** Fills defaults and validates the `cache` option of connect(). */
export function resolveNearCacheOptions(o: Partial<NearCacheOptions>): NearCacheOptions {
  if (!o || typeof o !== 'object') throw new InvalidArgumentError('cache must be an object');
  const out = { ...nearCacheDefaults, ...o };
  if (!(Number.isInteger(out.maxEntries) && out.maxEntries >= 1)) throw new InvalidArgumentError('cache.maxEntries must be a positive integer');
  if (!(Number.isInteger(out.maxBytes) && out.maxBytes >= 1024)) throw new InvalidArgumentError('cache.maxBytes must be an integer of at least 1024');
  if (!(Number.isFinite(out.ttlMs) && out.ttlMs > 0)) throw new InvalidArgumentError('cache.ttlMs must be a positive number');
  if (!(Number.isFinite(out.heartbeatMs) && out.heartbeatMs >= 100 && out.heartbeatMs <= 60_000)) throw new InvalidArgumentError('cache.heartbeatMs must be 100..60000');
  return out;
}

export interface NearCacheEntry {
  /** The object read (null: the key was absent there). */
  obj: StoredObject | null;
  /** The node that served it (whose stream tracks it). */
  node: string;
  /** When the read that fetched it began (monotonic ms). */
  fetchedAtMs: number;
}

/** A read that may fill the cache: its key and the key's generation when it began. */
export interface ReadTicket {
  readonly key: string;
  readonly gen: number;
  readonly startedAtMs: number;
}

export interface NearCacheCounters {
  hits: number;
  misses: number;
  /** Reads stored. */
  inserts: number;
  /** Reads not stored because the key was invalidated while they were in flight. */
  raced: number;
  /** Reads not stored because no live stream of the serving node tracked the key. */
  untracked: number;
  /** Keys invalidated (by nodes or by this client's own writes). */
  invalidations: number;
  /** Entries dropped because their node's stream was lost. */
  flushed: number;
  /** Entries dropped past ttlMs. */
  expired: number;
}

export class NearCache {
  private readonly lru: LRUCache<string, NearCacheEntry>;
  /** Generations of keys with reads in flight. */
  private readonly inflight = new Map<string, { gen: number; readers: number }>();
  readonly counters: NearCacheCounters = { hits: 0, misses: 0, inserts: 0, raced: 0, untracked: 0, invalidations: 0, flushed: 0, expired: 0 };

  constructor(
    readonly options: NearCacheOptions,
    private readonly nowMs: () => number,
  ) {
    this.lru = new LRUCache<string, NearCacheEntry>({
      max: options.maxEntries,
      maxSize: options.maxBytes,
      sizeCalculation: (e, k) => {
        let n = k.length + 100;
        for (const s of e.obj?.siblings ?? []) n += s.value.length + s.contentType.length + s.writer.length + 48;
        return n;
      },
    });
  }

  get size(): number {
    return this.lru.size;
  }

  /** The entry of `key` when it is younger than ttlMs (a hit), else undefined (a miss). */
  get(key: Buffer): NearCacheEntry | undefined {
    const k = key.toString('latin1');
    const e = this.lru.get(k);
    if (e && this.nowMs() - e.fetchedAtMs >= this.options.ttlMs) {
      this.lru.delete(k);
      this.counters.expired++;
    } else if (e) {
      this.counters.hits++;
      return e;
    }
    this.counters.misses++;
    return undefined;
  }

  /** A read of `key` begins: its ticket. Call end() when it is over, whatever happened. */
  begin(key: Buffer): ReadTicket {
    const k = key.toString('latin1');
    let f = this.inflight.get(k);
    if (!f) this.inflight.set(k, (f = { gen: 0, readers: 0 }));
    f.readers++;
    return { key: k, gen: f.gen, startedAtMs: this.nowMs() };
  }

  /**
   * Stores what the read of `ticket` got from `node` — unless the key was invalidated since
   * the read began. True when stored.
   */
  offer(ticket: ReadTicket, obj: StoredObject | null, node: string): boolean {
    const f = this.inflight.get(ticket.key);
    if (!f || f.gen !== ticket.gen) {
      this.counters.raced++;
      return false;
    }
    this.lru.set(ticket.key, { obj, node, fetchedAtMs: ticket.startedAtMs });
    this.counters.inserts++;
    return true;
  }

  /** The read of `ticket` is over. */
  end(ticket: ReadTicket): void {
    const f = this.inflight.get(ticket.key);
    if (f && --f.readers === 0) this.inflight.delete(ticket.key);
  }

  /** Drops `key` (latin1 string or bytes); reads of it in flight will not be stored. */
  invalidate(key: Buffer | string): void {
    const k = typeof key === 'string' ? key : key.toString('latin1');
    this.counters.invalidations++;
    this.lru.delete(k);
    const f = this.inflight.get(k);
    if (f) f.gen++;
  }

  /** Drops every entry served by `node` (its stream was lost). */
  flushNode(node: string): number {
    let n = 0;
    for (const [k, e] of this.lru.entries()) {
      if (e.node !== node) continue;
      this.lru.delete(k);
      n++;
    }
    this.counters.flushed += n;
    return n;
  }

  /** The nodes entries came from, with counts (for tests and stats). */
  entriesByNode(): Map<string, number> {
    const m = new Map<string, number>();
    for (const e of this.lru.values()) m.set(e.node, (m.get(e.node) ?? 0) + 1);
    return m;
  }

  clear(): void {
    this.lru.clear();
  }
}
