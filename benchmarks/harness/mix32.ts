// murmur3's 32-bit finalizer, the one integer mixer the benchmarks and tests derive keys,
// values and seeds with (the engine's bloom filter and the dashboard keep their own
// murmur3: the engine imports nothing outside its folder, the browser nothing from Node).
// Pure.

/** murmur3's finalizer (fmix32): a 32-bit unsigned mix of a 32-bit integer. */
export function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}
