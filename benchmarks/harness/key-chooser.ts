// Which record an operation touches: a seeded random source, the uniform chooser and the
// zipfian chooser of YCSB (Gray et al., "Quickly generating billion-record synthetic
// databases", SIGMOD 1994: constant time per draw after an O(n) zeta sum at construction).
// Choosers are single-threaded objects: one per load-generator loop.

import { fmix32 } from './mix32.js';

/** A seeded 32-bit generator (splitmix-style mixing of a Weyl sequence); next() is in [0, 1). */
export class SeededRandom {
  private state: number;
  constructor(seed: number) {
    this.state = seed >>> 0;
  }

  /** The next 32-bit unsigned integer. */
  nextUint32(): number {
    this.state = (this.state + 0x9e3779b9) >>> 0;
    return fmix32(this.state);
  }

  /** Uniform in [0, 1) with 53 bits of resolution. */
  next(): number {
    const hi = this.nextUint32() >>> 5; // 27 bits
    const lo = this.nextUint32() >>> 6; // 26 bits
    return (hi * 67108864 + lo) / 9007199254740992;
  }
}

export interface KeyChooser {
  /** Number of records the chooser picks from: results are in [0, count). */
  readonly count: number;
  /** The next record index. */
  next(): number;
}

/** Every record equally likely. */
export class UniformChooser implements KeyChooser {
  constructor(
    readonly count: number,
    private readonly rng: SeededRandom,
  ) {
    if (!Number.isSafeInteger(count) || count < 1) throw new RangeError(`record count must be a positive integer, got ${count}`);
  }

  next(): number {
    return Math.floor(this.rng.next() * this.count);
  }
}

/** YCSB's default skew. */
export const ZIPFIAN_CONSTANT = 0.99;

/** Sum of 1/i^theta for i = 1..n. */
export function zeta(n: number, theta: number): number {
  let sum = 0;
  for (let i = 1; i <= n; i++) sum += 1 / Math.pow(i, theta);
  return sum;
}

/**
 * Zipfian over ranks: rank r (0 = the most popular) is drawn with probability
 * (1 / (r + 1)^theta) / zeta(n, theta). Ranks are not record positions: the caller maps
 * them to records through a hash (see recordKey), so hot records are spread over the ring.
 */
export class ZipfianChooser implements KeyChooser {
  private readonly zetaN: number;
  private readonly alpha: number;
  private readonly eta: number;
  private readonly half: number;

  constructor(
    readonly count: number,
    private readonly rng: SeededRandom,
    readonly theta = ZIPFIAN_CONSTANT,
  ) {
    if (!Number.isSafeInteger(count) || count < 1) throw new RangeError(`record count must be a positive integer, got ${count}`);
    if (!(theta > 0 && theta < 1)) throw new RangeError(`zipfian constant must be in (0, 1), got ${theta}`);
    this.zetaN = zeta(count, theta);
    const zeta2 = zeta(2, theta);
    this.alpha = 1 / (1 - theta);
    this.eta = (1 - Math.pow(2 / count, 1 - theta)) / (1 - zeta2 / this.zetaN);
    this.half = 1 + Math.pow(0.5, theta);
  }

  /** Probability of rank `r` (for tests and reports). */
  probability(r: number): number {
    return 1 / Math.pow(r + 1, this.theta) / this.zetaN;
  }

  next(): number {
    const u = this.rng.next();
    const uz = u * this.zetaN;
    if (uz < 1) return 0;
    if (uz < this.half) return Math.min(1, this.count - 1);
    const r = Math.floor(this.count * Math.pow(this.eta * u - this.eta + 1, this.alpha));
    return r >= this.count ? this.count - 1 : r;
  }
}

export type Distribution = 'zipfian' | 'uniform';

export function makeChooser(distribution: Distribution, count: number, seed: number): KeyChooser {
  const rng = new SeededRandom(seed);
  return distribution === 'zipfian' ? new ZipfianChooser(count, rng) : new UniformChooser(count, rng);
}

/** FNV-1a of the decimal digits of `i`, as YCSB hashes record numbers into key names. */
function fnv1a32(i: number): number {
  let h = 0x811c9dc5;
  const s = String(i);
  for (let j = 0; j < s.length; j++) {
    h ^= s.charCodeAt(j);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/** The key of record `i` ("user" + a hash, then the index to keep keys distinct). */
export function recordKey(prefix: string, i: number): Buffer {
  return Buffer.from(`${prefix}user${fnv1a32(i).toString(16).padStart(8, '0')}${i}`, 'latin1');
}
