// A sharded counter for write-hot counts (kv.counter(key, { shards: 16 })): one logical
// counter kept in `shards` data-type counters — shard 0 is the key itself, shard i > 0 the
// key followed by `#<i>` — each on its own place of the ring. An increment goes to one shard
// (random; chosen by its opId when it has one, so a retry with the same opId meets the
// replicas that remember it), and a read fetches every shard and sums them. Holds no state;
// safe to use concurrently.

import crypto from 'node:crypto';
import { InvalidArgumentError } from './errors.js';
import type { CallOptions } from './client.js';
import type { DataTypeClient, DataTypeUpdateOptions } from './data-types.js';
import { CounterHandle } from './data-types.js';

/** Options of kv.counter(key, opts). */
export interface CounterOptions {
  /**
   * Shards the counter is kept in (1..1024; default 1: the key itself, an ordinary counter).
   * A counter may move to more shards later and keeps its count (shard 0 is the key); it must
   * not move to fewer: what the dropped shards hold would no longer be read.
   */
  shards?: number;
}

export const MAX_COUNTER_SHARDS = 1024;

/** The key of shard `i` of the counter on `key`: the key itself for 0, else `key#i` (bytes: the key's bytes, then "#i" in ASCII). */
export function shardKey(key: string | Uint8Array, i: number): string | Uint8Array {
  if (i === 0) return key;
  if (typeof key === 'string') return `${key}#${i}`;
  return Buffer.concat([Buffer.from(key.buffer, key.byteOffset, key.byteLength), Buffer.from(`#${i}`, 'latin1')]);
}

/** Validates the shards option. */
export function shardsOf(o: CounterOptions | undefined): number {
  const n = o?.shards ?? 1;
  if (!Number.isInteger(n) || n < 1 || n > MAX_COUNTER_SHARDS) throw new InvalidArgumentError(`counter shards must be an integer 1..${MAX_COUNTER_SHARDS}, got ${String(n)}`);
  return n;
}

/** A counter spread over `shards` keys: increments to one of them, reads sum them all. */
export class ShardedCounterHandle {
  private readonly parts: CounterHandle[];

  constructor(
    kv: DataTypeClient,
    readonly key: string | Uint8Array,
    readonly shards: number,
  ) {
    this.parts = Array.from({ length: shards }, (_, i) => new CounterHandle(kv, shardKey(key, i)));
  }

  /**
   * Adds `by` (default 1; negative subtracts) to one shard: a random one, or the one its
   * `opId` names (so that a retry with the same opId is applied once). Resolves with the
   * shard it went to; the counter's value needs a read of every shard (value()).
   */
  async increment(by = 1, opts: DataTypeUpdateOptions = {}): Promise<{ shard: number }> {
    const shard = this.shardFor(opts.opId);
    await this.parts[shard]!.increment(by, opts);
    return { shard };
  }

  /** Subtracts `by` (default 1) from one shard. */
  decrement(by = 1, opts: DataTypeUpdateOptions = {}): Promise<{ shard: number }> {
    if (typeof by !== 'number' || !Number.isSafeInteger(by)) throw new InvalidArgumentError(`decrement must be a safe integer, got ${String(by)}`);
    return this.increment(-by, opts);
  }

  /** The sum of every shard (each read at the call's consistency, all at once). */
  async value(opts: CallOptions = {}): Promise<number> {
    const values = await Promise.all(this.parts.map((p) => p.value(opts)));
    let sum = 0;
    for (const v of values) sum += v;
    return sum;
  }

  /** Every shard's value, shard 0 first (to see how the writes spread). */
  shardValues(opts: CallOptions = {}): Promise<number[]> {
    return Promise.all(this.parts.map((p) => p.value(opts)));
  }

  private shardFor(opId: string | Uint8Array | undefined): number {
    if (this.shards === 1) return 0;
    if (opId === undefined) return crypto.randomInt(this.shards);
    const bytes = typeof opId === 'string' ? Buffer.from(opId, 'utf8') : Buffer.from(opId.buffer, opId.byteOffset, opId.byteLength);
    return crypto.createHash('sha256').update(bytes).digest().readUInt32BE(0) % this.shards;
  }
}
