// The engine's bloom filter: its hash is exactly 32-bit murmur3 with the filter seed (the
// on-disk filters of every table depend on it), it has no false negatives, and its
// false-positive rate at 10 bits per key stays near 1%.

import fc from 'fast-check';
import murmurhash from 'murmurhash';
import t from 'tap';
import { bloomHash, bloomHashRange, bloomMayContain, buildBloomFilter } from '../../../storage-server/engine/bloom-filter.js';

t.test('bloomHashRange is murmur3 x86_32 (seed 0xbc9f1d34) of the byte range', async (t) => {
  t.equal(bloomHash(Buffer.alloc(0)), murmurhash.v3(new Uint8Array(0) as unknown as string, 0xbc9f1d34), 'empty');
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 300 }), fc.nat(8), fc.nat(8), (bytes, pre, post) => {
      const padded = Buffer.concat([Buffer.alloc(pre, 0xaa), bytes, Buffer.alloc(post, 0x55)]);
      const want = murmurhash.v3(bytes as unknown as string, 0xbc9f1d34);
      return bloomHash(bytes) === want && bloomHashRange(padded, pre, pre + bytes.length) === want;
    }),
    { numRuns: 2000 },
  );
});

t.test('no false negatives; about 1% false positives at 10 bits per key', async (t) => {
  const n = 20_000;
  const key = (set: number, i: number) => Buffer.from(`${set}:key-${i}`);
  const hashes = new Uint32Array(n);
  for (let i = 0; i < n; i++) hashes[i] = bloomHash(key(1, i));
  const filter = buildBloomFilter(hashes, n, 10);
  let misses = 0;
  for (let i = 0; i < n; i++) if (!bloomMayContain(filter, bloomHash(key(1, i)))) misses++;
  t.equal(misses, 0, 'every added key may be contained');
  let fps = 0;
  for (let i = 0; i < n; i++) if (bloomMayContain(filter, bloomHash(key(2, i)))) fps++;
  t.ok(fps / n < 0.02, `false-positive rate ${((100 * fps) / n).toFixed(2)}% < 2%`);
});
