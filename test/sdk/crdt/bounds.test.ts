// The 1 MiB bound: an update that would make a state encode to more than the limit is refused
// with VALUE_TOO_LARGE (413) naming the type and size, before the state passes it, and nothing
// changes; merges never refuse, and updates that shrink an oversized state still pass.
// Deterministic.

import t from 'tap';
import type { CrdtState } from '../../../sdk/crdt/index.js';
import { crdtApply, crdtEncodedSize, crdtHasApplied, crdtMerge, crdtValue, encodeCrdt } from '../../../sdk/crdt/index.js';
import { ErrorCodes, RingkvError } from '../../../sdk/errors.js';
import { MAX_VALUE_BYTES } from '../../../sdk/limits.js';

let n = 0;
const nextId = (): Buffer => {
  const b = Buffer.alloc(16);
  b.writeUInt32BE(++n, 12);
  return b;
};
const member = (i: number): string => `${String(i).padStart(8, '0')}-${'m'.repeat(1000)}`;

t.test('a set grows to the limit; the update that would pass it is refused and changes nothing', async (t) => {
  let s: CrdtState | undefined;
  let i = 0;
  let refused: RingkvError | undefined;
  let largest = 0;
  while (refused === undefined) {
    const batch = crdtEncodedSize(s ?? crdtApply(undefined, { type: 'set', add: ['x'] }, 'A', nextId(), 1)) < MAX_VALUE_BYTES - 64 * 1024 ? 50 : 1;
    const add = Array.from({ length: batch }, () => member(i++));
    const id = nextId();
    try {
      s = crdtApply(s, { type: 'set', add }, 'A', id, 1);
      largest = Math.max(largest, crdtEncodedSize(s));
      if (largest > MAX_VALUE_BYTES) t.fail(`a state of ${largest} bytes was accepted`);
    } catch (err) {
      refused = err as RingkvError;
      const before = encodeCrdt(s!);
      t.equal(refused.code, ErrorCodes.VALUE_TOO_LARGE);
      t.equal(refused.httpStatus, 413);
      t.match(refused.details, { type: 'set', limitBytes: MAX_VALUE_BYTES });
      t.ok((refused.details!.sizeBytes as number) > MAX_VALUE_BYTES, `the refused state would be ${String(refused.details!.sizeBytes)} bytes`);
      t.match(refused.message, /the set would be \d+ bytes encoded; the limit is 1048576/);
      t.notOk(crdtHasApplied(s!, id), 'the refused operation is not in the window: a retry is judged again');
      t.ok(encodeCrdt(s!).equals(before), 'the state is unchanged');
    }
  }
  t.ok(largest > MAX_VALUE_BYTES - 2048, `the largest accepted state, ${largest} bytes, came within one member of the limit`);
  t.equal((crdtValue(s!) as string[]).length, i - 1);
  // Removing still works, and then adding again.
  const smaller = crdtApply(s, { type: 'set', remove: [member(0), member(1)] }, 'A', nextId(), 2);
  t.ok(crdtEncodedSize(smaller) < crdtEncodedSize(s!));
  t.doesNotThrow(() => crdtApply(smaller, { type: 'set', add: [member(i + 1)] }, 'A', nextId(), 3));
});

t.test('a map and a register are bounded too; the option lowers the bound', async (t) => {
  const big = 'v'.repeat(600 * 1024);
  const m = crdtApply(undefined, { type: 'map', updates: [{ name: 'a', op: { type: 'register', assign: big, ts: 1, writer: 'w' } }] }, 'A', nextId(), 1);
  t.throws(() => crdtApply(m, { type: 'map', updates: [{ name: 'b', op: { type: 'register', assign: big, ts: 1, writer: 'w' } }] }, 'A', nextId(), 1), {
    code: ErrorCodes.VALUE_TOO_LARGE,
    details: { type: 'map' },
  });
  t.throws(() => crdtApply(undefined, { type: 'register', assign: 'x'.repeat(MAX_VALUE_BYTES), ts: 1, writer: 'w' }, 'A', nextId(), 1), {
    code: ErrorCodes.VALUE_TOO_LARGE,
    details: { type: 'register' },
  });
  t.throws(() => crdtApply(undefined, { type: 'set', add: ['y'.repeat(200)] }, 'A', nextId(), 1, { maxStateBytes: 100 }), {
    code: ErrorCodes.VALUE_TOO_LARGE,
    details: { limitBytes: 100 },
  });
});

t.test('merges never refuse; an oversized state accepts updates that do not grow it', async (t) => {
  const half = (node: string, tag: string) =>
    crdtApply(undefined, { type: 'set', add: Array.from({ length: 600 }, (_, i) => `${tag}${member(i)}`) }, node, nextId(), 1);
  const m = crdtMerge(half('A', 'a'), half('B', 'b'));
  t.ok(crdtEncodedSize(m) > MAX_VALUE_BYTES, `two concurrent updates merged: ${crdtEncodedSize(m)} bytes`);
  t.throws(() => crdtApply(m, { type: 'set', add: ['more'] }, 'C', nextId(), 2), { code: ErrorCodes.VALUE_TOO_LARGE });
  const shrunk = crdtApply(m, { type: 'set', remove: [`a${member(0)}`] }, 'C', nextId(), 2);
  t.ok(crdtEncodedSize(shrunk) < crdtEncodedSize(m), 'a remove passes');
  t.equal(crdtEncodedSize(m), encodeCrdt(m).length, 'crdtEncodedSize is the length of the encoding');
});
