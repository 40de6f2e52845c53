// A small seeded pseudo-random generator for the SDK's randomized tests, so a failing run
// can be replayed: each test prints its seed; set RINGKV_SEED=<seed> to rerun with it.
// Not cryptographic. One instance per test; not shared across concurrent tests.

/** The seed of this run: RINGKV_SEED when set, else a fresh random one. */
export function testSeed(): number {
  const env = process.env.RINGKV_SEED;
  if (env !== undefined && env !== '') {
    const n = Number(env);
    if (!Number.isSafeInteger(n)) throw new Error(`RINGKV_SEED must be an integer, got ${env}`);
    return n >>> 0;
  }
  return (Math.random() * 2 ** 32) >>> 0;
}

/** mulberry32: a 32-bit generator with a full period, good enough for test data. */
export class SeededRandom {
  #state: number;
  constructor(readonly seed: number) {
    this.#state = seed >>> 0;
  }
  /** A float in [0, 1). */
  next(): number {
    this.#state = (this.#state + 0x6d2b79f5) >>> 0;
    let t = this.#state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  /** An integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
  /** A uniformly random 32-bit unsigned integer. */
  uint32(): number {
    return Math.floor(this.next() * 4294967296) >>> 0;
  }
  /** One element of a non-empty array. */
  pick<T>(xs: readonly T[]): T {
    return xs[this.int(xs.length)]!;
  }
  /** `length` random bytes. */
  bytes(length: number): Buffer {
    const b = Buffer.allocUnsafe(length);
    for (let i = 0; i < length; i++) b[i] = this.int(256);
    return b;
  }
  /** True with probability p. */
  chance(p: number): boolean {
    return this.next() < p;
  }
}
