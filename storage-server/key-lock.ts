// Per-key mutual exclusion for read-modify-write sequences on the event loop (the replica
// store's merges, the hint store's adds and removes): run(key, fn) starts fn once every
// earlier fn of the same key has settled, in call order; keys are independent. A rejected
// fn does not block the next one. Entries are dropped when a key's queue empties, so the
// map holds only keys with work in flight. Single-threaded (one event loop).

export class KeyLock {
  private readonly tails = new Map<string, Promise<unknown>>();

  /** Runs `fn` with the lock of `key` held; resolves or rejects as `fn` does. */
  async run<T>(key: Uint8Array, fn: () => Promise<T>): Promise<T> {
    const k = Buffer.from(key.buffer, key.byteOffset, key.byteLength).toString('latin1');
    const prev = this.tails.get(k);
    const result = prev ? prev.then(fn, fn) : fn();
    const tail = result.catch(() => undefined);
    this.tails.set(k, tail);
    try {
      return await result;
    } finally {
      if (this.tails.get(k) === tail) this.tails.delete(k);
    }
  }

  /** Keys with work queued or running. */
  get size(): number {
    return this.tails.size;
  }
}
