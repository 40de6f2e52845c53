// Tests of last-write-wins: a table of comparisons, the total-order laws as fast-check
// properties, and lwwMerge's identity return. Prints its seed; rerun with RINGKV_SEED=<seed>.

import fc from 'fast-check';
import t from 'tap';
import { ErrorCodes } from '../../../sdk/errors.js';
import { lwwCompare, lwwMerge } from '../../../sdk/versioning/index.js';
import type { Sibling, StoredObject } from '../../../sdk/versioning/index.js';
import { testSeed } from '../seeded-random.js';
import { lwwObject, sib, siblingArb } from './arbitraries.js';

const seed = testSeed();
t.comment(`seed ${seed} (rerun with RINGKV_SEED=${seed})`);
const fcOpts = { seed, numRuns: 300 };

const v = (s: string) => Buffer.from(s);

t.test('comparison table: which sibling wins', async (t) => {
  const cases: { name: string; a: Sibling; b: Sibling; winner: 'a' | 'b' | 'tie' }[] = [
    { name: 'higher ts wins', a: sib({ ts: 2, writer: 'a' }), b: sib({ ts: 1, writer: 'z' }), winner: 'a' },
    { name: 'higher ts wins even as a tombstone', a: sib({ ts: 1, value: v('x') }), b: sib({ ts: 5, tombstone: true }), winner: 'b' },
    { name: 'ts compares as one number across the ms boundary', a: sib({ ts: 1_000_999 }), b: sib({ ts: 1_001_000 }), winner: 'b' },
    { name: 'same ts: greater writer wins', a: sib({ ts: 7, writer: 'client-b' }), b: sib({ ts: 7, writer: 'client-a' }), winner: 'a' },
    { name: 'writer order is code-unit order, not locale order', a: sib({ ts: 7, writer: 'Z' }), b: sib({ ts: 7, writer: 'a' }), winner: 'b' },
    { name: 'same ts and writer: a tombstone wins over a value', a: sib({ ts: 7, value: v('zzz') }), b: sib({ ts: 7, tombstone: true }), winner: 'b' },
    { name: 'then the greater value bytes', a: sib({ ts: 7, value: v('abd') }), b: sib({ ts: 7, value: v('abc') }), winner: 'a' },
    { name: 'a longer value with an equal prefix is greater', a: sib({ ts: 7, value: v('ab') }), b: sib({ ts: 7, value: v('abc') }), winner: 'b' },
    { name: 'binary bytes compare unsigned', a: sib({ ts: 7, value: Buffer.from([0xff]) }), b: sib({ ts: 7, value: Buffer.from([0x01, 0x00]) }), winner: 'a' },
    { name: 'then never-expiring beats expiring', a: sib({ ts: 7, expiresAtMs: 0 }), b: sib({ ts: 7, expiresAtMs: 99 }), winner: 'a' },
    { name: 'then the later expiry', a: sib({ ts: 7, expiresAtMs: 98 }), b: sib({ ts: 7, expiresAtMs: 99 }), winner: 'b' },
    { name: 'then the content type', a: sib({ ts: 7, contentType: 'text/plain' }), b: sib({ ts: 7, contentType: 'application/json' }), winner: 'a' },
    { name: 'then the flags', a: sib({ ts: 7, flags: 1 }), b: sib({ ts: 7, flags: 2 }), winner: 'b' },
    { name: 'identical siblings tie', a: sib({ ts: 7, value: v('x'), flags: 3 }), b: sib({ ts: 7, value: v('x'), flags: 3 }), winner: 'tie' },
  ];
  for (const c of cases) {
    const ab = Math.sign(lwwCompare(c.a, c.b));
    const ba = Math.sign(lwwCompare(c.b, c.a));
    const want = c.winner === 'a' ? 1 : c.winner === 'b' ? -1 : 0;
    t.equal(ab, want, `${c.name} (a vs b)`);
    t.equal(ba, -want || 0, `${c.name} (b vs a)`);
    const A = lwwObject(c.a);
    const B = lwwObject(c.b);
    t.equal(lwwMerge(A, B), c.winner === 'b' ? B : A, `${c.name}: lwwMerge(a, b)`);
    t.equal(lwwMerge(B, A), c.winner === 'a' ? A : B, `${c.name}: lwwMerge(b, a)`);
  }
});

t.test('lwwCompare is a total order (properties)', async (t) => {
  fc.assert(
    fc.property(siblingArb, siblingArb, (a, b) => Math.sign(lwwCompare(a, b)) === -Math.sign(lwwCompare(b, a))),
    fcOpts,
  );
  fc.assert(
    fc.property(siblingArb, (a) => lwwCompare(a, { ...a, value: Buffer.from(a.value) }) === 0),
    fcOpts,
  );
  fc.assert(
    fc.property(siblingArb, siblingArb, siblingArb, (a, b, c) => {
      if (lwwCompare(a, b) >= 0 && lwwCompare(b, c) >= 0) return lwwCompare(a, c) >= 0;
      return true;
    }),
    fcOpts,
  );
  // 0 only for siblings equal in every compared field.
  fc.assert(
    fc.property(siblingArb, siblingArb, (a, b) => {
      if (lwwCompare(a, b) !== 0) return true;
      return (
        a.ts === b.ts &&
        a.writer === b.writer &&
        a.tombstone === b.tombstone &&
        a.value.equals(b.value) &&
        a.expiresAtMs === b.expiresAtMs &&
        a.contentType === b.contentType &&
        a.flags === b.flags
      );
    }),
    fcOpts,
  );
  t.pass('antisymmetric, reflexive, transitive, 0 only for equal content');
});

t.test('lwwMerge returns one of its inputs; the winner is the same in any order', async (t) => {
  fc.assert(
    fc.property(siblingArb, siblingArb, siblingArb, (x, y, z) => {
      const [a, b, c] = [lwwObject(x), lwwObject(y), lwwObject(z)];
      const ab = lwwMerge(a, b);
      if (ab !== a && ab !== b) return false;
      if (lwwCompare(lwwMerge(a, b).siblings[0]!, lwwMerge(b, a).siblings[0]!) !== 0) return false;
      const left = lwwMerge(lwwMerge(a, b), c).siblings[0]!;
      const right = lwwMerge(a, lwwMerge(b, c)).siblings[0]!;
      const max = [x, y, z].reduce((m, s) => (lwwCompare(s, m) > 0 ? s : m));
      return lwwCompare(left, right) === 0 && lwwCompare(left, max) === 0 && lwwMerge(a, a) === a;
    }),
    fcOpts,
  );
  t.pass('identity, commutative winner, associative, picks the maximum');
});

t.test('lwwMerge: nothing changed is detectable with ===', async (t) => {
  const local = lwwObject(sib({ ts: 10, value: v('new') }));
  const stale = lwwObject(sib({ ts: 9, value: v('old') }));
  const copy: StoredObject = lwwObject({ ...local.siblings[0]! });
  t.equal(lwwMerge(local, stale), local);
  t.equal(lwwMerge(local, copy), local, 'a tie keeps the local object');
  t.equal(lwwMerge(stale, local), local);
});

t.test('lwwMerge rejects objects that are not lww with one sibling', async (t) => {
  const ok = lwwObject(sib({ ts: 1 }));
  const dvv: StoredObject = { mode: 'dvv', siblings: [sib({ ts: 1, dot: ['n', 1] })], context: { n: 1 } };
  const two: StoredObject = { mode: 'lww', siblings: [sib({ ts: 1 }), sib({ ts: 2 })], context: {} };
  const none: StoredObject = { mode: 'lww', siblings: [], context: {} };
  for (const [name, bad] of [['dvv', dvv], ['two siblings', two], ['no sibling', none]] as const) {
    t.throws(() => lwwMerge(ok, bad), { code: ErrorCodes.INVALID_ARGUMENT }, `${name} as b`);
    t.throws(() => lwwMerge(bad, ok), { code: ErrorCodes.INVALID_ARGUMENT }, `${name} as a`);
  }
});
