// MurmurHash3, x86 32-bit variant, of a string's UTF-8 bytes: the hash the ring places
// vnodes and keys with (sdk/ring.ts uses the `murmurhash` package's v3; the test
// test/ui/ring-math.test.ts checks the two agree). Pure; runs in browsers and in Node.

const C1 = 0xcc9e2d51;
const C2 = 0x1b873593;
const encoder = new TextEncoder();

function rotl32(x, r) {
  return (x << r) | (x >>> (32 - r));
}

/** Mixes one 4-byte block into the hash state. */
function mixK(k) {
  return Math.imul(rotl32(Math.imul(k, C1), 15), C2);
}

/**
 * The unsigned 32-bit MurmurHash3 of `input` (a string is hashed as UTF-8) with `seed`.
 * @param {string | Uint8Array} input
 * @param {number} [seed]
 * @returns {number}
 */
export function murmur3(input, seed = 0) {
  const bytes = typeof input === 'string' ? encoder.encode(input) : input;
  const len = bytes.length;
  const tail = len & ~3;
  let h = seed | 0;
  for (let i = 0; i < tail; i += 4) {
    const k = bytes[i] | (bytes[i + 1] << 8) | (bytes[i + 2] << 16) | (bytes[i + 3] << 24);
    h ^= mixK(k);
    h = rotl32(h, 13);
    h = (Math.imul(h, 5) + 0xe6546b64) | 0;
  }
  // The 1..3 bytes left over, little-endian.
  let k = 0;
  for (let i = len - 1; i >= tail; i--) k = (k << 8) | bytes[i];
  if (len & 3) h ^= mixK(k);
  // Finalization: force all bits of the state to avalanche.
  h ^= len;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}
