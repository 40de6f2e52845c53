// Idempotent operations: an operation id applied again at the same replica, or at another
// replica and then merged, counts once while the applied-op window remembers it; past the
// window it counts again (documented in sdk/crdt/README.md). Also the window's bound and its
// cost in bytes. Prints its seed; rerun with RINGKV_SEED=<seed>.

import fc from 'fast-check';
import t from 'tap';
import type { CrdtOp, CrdtOptions, CrdtState } from '../../../sdk/crdt/index.js';
import { DEFAULT_MAX_OP_IDS, crdtApply, crdtEncodedSize, crdtHasApplied, crdtMerge, crdtSettle, crdtValue } from '../../../sdk/crdt/index.js';
import { testSeed } from '../seeded-random.js';

const seed = testSeed();
t.comment(`seed ${seed} (rerun with RINGKV_SEED=${seed})`);

const WINDOW: CrdtOptions = { opWindowMs: 60_000 };
const T0 = 1_700_000_000_000;
const inc = (n: number): CrdtOp => ({ type: 'counter', increment: n });
const opId = (n: number): Buffer => {
  const b = Buffer.alloc(16);
  b.writeUInt32BE(n, 12);
  return b;
};

t.test('a retry at the same replica within the window is not applied again', async (t) => {
  const s1 = crdtApply(undefined, inc(5), 'A', opId(1), T0, WINDOW);
  const s2 = crdtApply(s1, inc(5), 'A', opId(1), T0 + 59_000, WINDOW);
  t.equal(s2, s1, 'the state itself comes back: nothing to write');
  t.equal(crdtValue(s2), 5);
  t.ok(crdtHasApplied(s1, opId(1)));
  t.notOk(crdtHasApplied(s1, opId(2)));
  const m = crdtApply(undefined, { type: 'map', updates: [{ name: 's', op: { type: 'set', add: ['x'] } }] }, 'A', opId(1), T0, WINDOW);
  t.equal(crdtApply(m, { type: 'map', updates: [{ name: 's', op: { type: 'set', add: ['x'] } }] }, 'A', opId(1), T0 + 1, WINDOW), m, 'maps too');
});

t.test('a retry at a replica that has merged the first application is not applied again', async (t) => {
  const a = crdtApply(undefined, inc(5), 'A', opId(1), T0, WINDOW);
  const b = crdtMerge(crdtApply(undefined, inc(1), 'B', opId(2), T0, WINDOW), a);
  const b2 = crdtApply(b, inc(5), 'B', opId(1), T0 + 10, WINDOW);
  t.equal(b2, b);
  t.equal(crdtValue(b2), 6);
});

t.test('applied at two replicas, then merged: counts once, and stays once after the window once settled', async (t) => {
  const a = crdtApply(undefined, inc(5), 'A', opId(1), T0, WINDOW);
  const b = crdtApply(undefined, inc(5), 'B', opId(1), T0 + 2_000, WINDOW); // the client's retry reached B, which had not seen A's
  t.equal(crdtValue(a), 5);
  t.equal(crdtValue(b), 5);
  const m = crdtMerge(a, b);
  t.equal(crdtValue(m), 5, 'the second application does not count');
  t.equal(crdtValue(crdtMerge(b, a)), 5);
  // Any replica holding both settles the duplicate away (crdtSettle, or before its next update).
  const settled = crdtSettle(m, 'C', T0 + 3_000, WINDOW);
  t.not(settled, m);
  t.equal(settled.store.kind === 'counter' && settled.store.entries.length, 1, "B's duplicate entry is gone");
  const later = T0 + 10 * 60_000;
  const forgotten = crdtSettle(settled, 'C', later, WINDOW);
  t.equal(forgotten.applied.length, 0, 'the window has forgotten both');
  t.equal(crdtValue(forgotten), 5, 'still once');
  t.equal(crdtValue(crdtMerge(crdtSettle(b, 'B', later, WINDOW), forgotten)), 5, "B's stale state, forgotten too, merges back: still once");
  const viaUpdate = crdtApply(m, inc(1), 'A', opId(9), later, WINDOW);
  t.equal(crdtValue(viaUpdate), 6, 'an update settles before it forgets, as crdtSettle does');
});

t.test('past the window a retry is applied again (documented)', async (t) => {
  const s1 = crdtApply(undefined, inc(5), 'A', opId(1), T0, WINDOW);
  const s2 = crdtApply(s1, inc(5), 'A', opId(1), T0 + 60_001, WINDOW);
  t.not(s2, s1);
  t.equal(crdtValue(s2), 10, 'a retry after 60 s with a 60 s window counts twice');

  // The same past the count bound: maxOpIds later operations push the id out.
  let s: CrdtState = crdtApply(undefined, inc(1), 'A', opId(1), T0, { maxOpIds: 4 });
  for (let i = 0; i < 4; i++) s = crdtApply(s, inc(1), 'A', opId(100 + i), T0 + 1 + i, { maxOpIds: 4 });
  t.equal(s.applied.length, 4);
  t.equal(crdtValue(crdtApply(s, inc(1), 'A', opId(1), T0 + 10, { maxOpIds: 4 })), 6, 'the fifth operation since pushed it out: applied again');

  // Two applications at different replicas whose states meet only after both forgot them.
  const a = crdtApply(undefined, inc(5), 'A', opId(7), T0, WINDOW);
  const b = crdtApply(undefined, inc(5), 'B', opId(7), T0 + 1, WINDOW);
  const late = T0 + 5 * 60_000;
  t.equal(crdtValue(crdtMerge(crdtSettle(a, 'A', late, WINDOW), crdtSettle(b, 'B', late, WINDOW))), 10, 'they met too late: counted twice');
});

t.test('an operation applied at random replicas any number of times counts once (fast-check)', async (t) => {
  const nodes = ['A', 'B', 'C'];
  fc.assert(
    fc.property(
      fc.array(fc.record({ node: fc.integer({ min: 0, max: 2 }), op: fc.integer({ min: 0, max: 5 }), merge: fc.integer({ min: -1, max: 2 }) }), { minLength: 1, maxLength: 40 }),
      fc.array(fc.integer({ min: -4, max: 9 }), { minLength: 6, maxLength: 6 }),
      (steps, amounts) => {
        const states: (CrdtState | undefined)[] = [undefined, undefined, undefined];
        const applied = new Set<number>();
        steps.forEach((st, k) => {
          const now = T0 + k;
          states[st.node] = crdtApply(states[st.node], inc(amounts[st.op]!), nodes[st.node]!, opId(st.op), now, WINDOW);
          applied.add(st.op);
          if (st.merge >= 0 && states[st.merge] !== undefined) states[st.node] = crdtMerge(states[st.node]!, states[st.merge]!);
          if (k % 7 === 3) states[st.node] = crdtSettle(states[st.node]!, nodes[st.node]!, now, WINDOW);
        });
        let all: CrdtState | undefined;
        for (const s of states) if (s !== undefined) all = all === undefined ? s : crdtMerge(all, s);
        const want = [...applied].reduce((sum, i) => sum + amounts[i]!, 0);
        return crdtValue(all!) === want;
      },
    ),
    { seed, numRuns: 400 },
  );
  t.pass('each operation id counted once');
});

t.test('the window holds at most maxOpIds ids; its cost in bytes', async (t) => {
  let s: CrdtState | undefined;
  for (let i = 0; i < 1000; i++) s = crdtApply(s, inc(1), 'node-1', opId(i), T0 + i);
  t.equal(s!.applied.length, DEFAULT_MAX_OP_IDS, `at most ${DEFAULT_MAX_OP_IDS} ids with the defaults`);
  t.equal(crdtValue(s!), 1000);
  const full = crdtEncodedSize(s!);
  const empty = crdtEncodedSize(crdtSettle(s!, 'node-1', T0 + 10 ** 9));
  const perOp = (full - empty) / DEFAULT_MAX_OP_IDS;
  t.comment(`a counter with a full window: ${full} bytes, ${empty} without it: ${perOp.toFixed(1)} bytes per remembered operation (16-byte ids)`);
  t.ok(perOp <= 40, 'about 35 bytes per operation, as the README says (16-byte id, node id, counter, time, and the entry kept apart)');
  t.ok(full <= 12 * 1024, 'a busy counter stays under 12 KiB');

  // Records of one millisecond are kept or dropped together; the newest is never dropped.
  let burst: CrdtState | undefined;
  for (let i = 0; i < 10; i++) burst = crdtApply(burst, inc(1), 'A', opId(i), T0, { maxOpIds: 4 });
  t.ok(crdtHasApplied(burst!, opId(9)), 'the operation just applied is remembered');
});
