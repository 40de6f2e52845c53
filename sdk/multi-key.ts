// Multi-key operations: getMany, putMany and deleteMany. Every key is its own operation
// (its own quorum, retries and typed error), and all of them are submitted at once, so the
// client's per-node batcher (sdk/batcher.ts) carries the keys bound for one node in a few
// batch requests. One key failing never fails the others. Stateless; safe for concurrent use.

import { InternalError, InvalidArgumentError, RingkvError } from './errors.js';

type Key = string | Uint8Array;

/** The outcome of one key of a multi-key call: its result, or its typed error. */
export type KeyOutcome<R> =
  | {
      key: Key;
      ok: true;
      /** The single-key call's result (for getMany: undefined when the key is missing). */
      result: R;
    }
  | {
      key: Key;
      ok: false;
      /** Why this key failed: match on `error.code`, as for single-key calls. */
      error: RingkvError;
    };

/** One entry of putMany: the key, its value, and the options put() takes per key. */
export interface PutEntry<T, O> {
  key: Key;
  value: T;
  /** Per-key options (ttl, context, contentType, flags) over the call's. */
  options?: O;
}

/** Largest number of keys one multi-key call takes (split larger sets into several calls). */
export const MAX_KEYS_PER_CALL = 10_000;

/**
 * Runs `one` for every item at once and collects the outcomes in input order. A thrown
 * non-ringkv error becomes INTERNAL for its key.
 */
export async function forEachKey<I, R>(what: string, items: readonly I[], keyOf: (item: I) => Key, one: (item: I) => Promise<R>): Promise<KeyOutcome<R>[]> {
  if (!Array.isArray(items)) throw new InvalidArgumentError(`${what} takes an array`);
  if (items.length > MAX_KEYS_PER_CALL) throw new InvalidArgumentError(`${what} takes at most ${MAX_KEYS_PER_CALL} keys per call; got ${items.length}`);
  const settled = await Promise.allSettled(
    items.map((item) => {
      try {
        return one(item);
      } catch (err) {
        return Promise.reject(err);
      }
    }),
  );
  return settled.map((s, i) => {
    const key = keyOf(items[i]!);
    if (s.status === 'fulfilled') return { key, ok: true as const, result: s.value };
    const err = s.reason as unknown;
    const typed = err instanceof RingkvError ? err : new InternalError(`${what}: ${(err as Error)?.message ?? String(err)}`, err);
    return { key, ok: false as const, error: typed };
  });
}
