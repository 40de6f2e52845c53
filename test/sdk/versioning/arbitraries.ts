// fast-check generators and small builders shared by the versioning tests. Each test file
// runs fast-check with the seed from testSeed() and prints it; rerun with RINGKV_SEED=<seed>.
// Pure helpers; no shared state.

import fc from 'fast-check';
import type { Dot, Sibling, StoredObject } from '../../../sdk/versioning/index.js';

const T0 = 1_700_000_000_000_000;

/** A small writer alphabet so that ties on ts and writer actually happen. */
export const writerArb = fc.constantFrom('client-a', 'client-b', 'node-1', '', 'ü');

/** Values: empty, short text, arbitrary binary. */
export const valueArb: fc.Arbitrary<Buffer> = fc.oneof(
  fc.constant(Buffer.alloc(0)),
  fc.constantFrom('x', 'y', 'hello').map((s) => Buffer.from(s)),
  fc.uint8Array({ maxLength: 64 }).map((u) => Buffer.from(u)),
);

/** A sibling without a dot; tombstones carry an empty value. */
export const siblingArb: fc.Arbitrary<Sibling> = fc
  .record({
    value: valueArb,
    tombstone: fc.boolean(),
    expiresAtMs: fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 2 ** 45 })),
    contentType: fc.constantFrom('', 'text/plain', 'application/octet-stream'),
    flags: fc.oneof(fc.constant(0), fc.nat(), fc.maxSafeNat()),
    ts: fc.oneof(fc.integer({ min: T0, max: T0 + 5 }), fc.maxSafeNat()),
    writer: writerArb,
  })
  // fc.record makes null-prototype objects; spread into plain ones like the codec returns.
  .map((s) => (s.tombstone ? { ...s, value: Buffer.alloc(0) } : { ...s }));

/** A sibling builder for table tests. */
export function sib(fields: Partial<Sibling> & { ts: number; writer?: string }): Sibling {
  return {
    value: Buffer.alloc(0),
    tombstone: false,
    expiresAtMs: 0,
    contentType: '',
    flags: 0,
    writer: 'w',
    ...fields,
  };
}

/** An 'lww' object holding one sibling. */
export function lwwObject(s: Sibling): StoredObject {
  return { mode: 'lww', siblings: [s], context: {} };
}

/** The dots of an object's siblings, in order. */
export function dots(obj: StoredObject): Dot[] {
  return obj.siblings.map((s) => s.dot!);
}
