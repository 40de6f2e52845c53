// Folding a removed node into a survivor: the value does not change, and merging the folded
// state with stale copies (states any replica held at any point before, the removed node's
// among them) gives the value the unfolded state gives — no double counting, nothing lost.
// The survivor has merged every copy first, as foldActor requires. Prints its seed; rerun
// with RINGKV_SEED=<seed>.

import { isDeepStrictEqual } from 'node:util';
import t from 'tap';
import type { CrdtState, CrdtType } from '../../../sdk/crdt/index.js';
import { crdtApply, crdtMerge, crdtSettle, crdtValue, foldActor } from '../../../sdk/crdt/index.js';
import { ErrorCodes } from '../../../sdk/errors.js';
import { SeededRandom, testSeed } from '../seeded-random.js';
import { History } from './history.js';

const seed = testSeed();
t.comment(`seed ${seed} (rerun with RINGKV_SEED=${seed})`);

/** The counter entries of `node` anywhere in the state. */
function entriesOf(s: CrdtState, node: string): number {
  let n = 0;
  const walk = (st: CrdtState['store']): void => {
    if (st.kind === 'counter') n += st.entries.filter((e) => e.dot[0] === node).length;
    else if (st.kind === 'map') for (const f of st.fields.values()) walk(f.store);
  };
  walk(s.store);
  return n;
}

for (const type of ['counter', 'map'] as const satisfies readonly CrdtType[]) {
  t.test(`${type}: fold, then merge stale copies in any order: the value of not folding`, async (t) => {
    let folds = 0;
    let moved = 0;
    let kept = 0;
    for (let run = 0; run < 60; run++) {
      const rnd = new SeededRandom((seed + run * 104729) >>> 0);
      const W = { opWindowMs: 40, maxOpIds: 6 };
      const h = new History(rnd, { type, replicas: 4, crdt: W, retryChance: 0.15, maxStepMs: 12 });
      for (let s = 0; s < 60 + rnd.int(80); s++) h.step();
      // D leaves: it updates and settles no more; the others go on for a while, merging its state now and then.
      const D = 3;
      h.retired.add(D);
      for (let s = 0; s < rnd.int(40); s++) h.step();
      // The survivor merges every copy (D's last state pushed when it left, the repair round).
      const A = rnd.int(3);
      for (let i = 0; i < 4; i++) if (i !== A) h.merge(A, i);
      if (h.states[A] === undefined) continue;
      h.advance(rnd.int(2) === 0 ? 0 : 100); // sometimes past the window: everything of D is foldable
      const before = crdtSettle(h.states[A]!, h.names[A]!, h.nowMs, W);
      const folded = foldActor(before, 'D', h.names[A]!);
      if (folded === before) continue;
      folds++;
      if (entriesOf(folded, 'D') < entriesOf(before, 'D')) moved++;
      if (entriesOf(folded, 'D') > 0) kept++;
      if (!isDeepStrictEqual(crdtValue(folded), crdtValue(before))) {
        t.fail(`run ${run}: folding changed the value: ${JSON.stringify(crdtValue(before))} -> ${JSON.stringify(crdtValue(folded))}`);
        return;
      }
      // Stale copies: earlier states of any replica (D's among them), in random order.
      const copies = [...h.states.filter((x): x is CrdtState => x !== undefined), ...Array.from({ length: 8 }, () => rnd.pick(h.snapshots))];
      for (let i = copies.length - 1; i > 0; i--) {
        const j = rnd.int(i + 1);
        [copies[i], copies[j]] = [copies[j]!, copies[i]!];
      }
      let f = folded;
      let u = before;
      for (const c of copies) {
        f = crdtMerge(f, c);
        u = crdtMerge(u, c);
        if (!isDeepStrictEqual(crdtValue(f), crdtValue(u))) {
          t.fail(`run ${run} (seed ${rnd.seed}): after merging a stale copy the folded state shows ${JSON.stringify(crdtValue(f))}, the unfolded ${JSON.stringify(crdtValue(u))}`);
          return;
        }
        // The other way round too: the stale copy merging the folded state.
        if (!isDeepStrictEqual(crdtValue(crdtMerge(c, folded)), crdtValue(crdtMerge(c, before)))) {
          t.fail(`run ${run} (seed ${rnd.seed}): a stale copy merging the folded state differs from merging the unfolded one`);
          return;
        }
      }
      if (entriesOf(f, 'D') > entriesOf(folded, 'D')) {
        t.fail(`run ${run}: entries of D came back after merging stale copies`);
        return;
      }
    }
    t.ok(folds >= 20, `${folds} folds checked (${moved} moved entries of D; ${kept} left some in the window for a later fold)`);
    t.ok(moved > 0 && kept > 0, 'both kinds of fold happened');
  });
}

t.test('a fold moves the removed node out of the counter and is recorded by the context, not by extra state', async (t) => {
  const W = { opWindowMs: 1000 };
  let a = crdtApply(undefined, { type: 'counter', increment: 2 }, 'A', Buffer.from([1]), 0, W);
  let d = crdtMerge(crdtApply(undefined, { type: 'counter', increment: 5 }, 'D', Buffer.from([2]), 0, W), a);
  d = crdtApply(d, { type: 'counter', increment: 3 }, 'D', Buffer.from([3]), 1, W);
  const staleD = d;
  a = crdtMerge(a, d);
  t.equal(crdtValue(a), 10);
  t.equal(foldActor(a, 'D', 'A'), a, "D's operations are still in the window: nothing to fold yet");
  a = crdtSettle(a, 'A', 5000, W);
  const f = foldActor(a, 'D', 'A');
  t.equal(crdtValue(f), 10);
  t.equal(entriesOf(f, 'D'), 0, 'no entry of D is left');
  t.equal(foldActor(f, 'D', 'A'), f, 'folding again does nothing');
  t.equal(crdtValue(crdtMerge(f, staleD)), 10, "D's stale entries merge back and are dropped: the fold's context has seen them");
  t.equal(crdtValue(crdtMerge(staleD, f)), 10);
  t.throws(() => foldActor(f, 'A', 'A'), { code: ErrorCodes.INVALID_ARGUMENT });
});

t.test('a fold in a map keeps the field through a remove that did not see the fold (as a concurrent update would)', async (t) => {
  const W = { opWindowMs: 10 };
  const op = (n: number) => ({ type: 'map' as const, updates: [{ name: 'n', op: { type: 'counter' as const, increment: n } }] });
  const d = crdtApply(undefined, op(4), 'D', Buffer.from([1]), 0, W);
  const a = crdtSettle(crdtMerge(crdtApply(undefined, op(1), 'A', Buffer.from([2]), 0, W), d), 'A', 100, W);
  const read = a.context; // a client reads before the fold
  const folded = foldActor(a, 'D', 'A');
  t.same(crdtValue(folded), { n_counter: 5 });
  const removed = crdtApply(a, { type: 'map', removes: [{ name: 'n', type: 'counter' }], context: read }, 'B', Buffer.from([3]), 100, W);
  t.same(crdtValue(crdtMerge(removed, folded)), { n_counter: 4 }, "D's folded 4 stays, like an increment concurrent with the remove");
  const removedAfter = crdtApply(folded, { type: 'map', removes: [{ name: 'n', type: 'counter' }] }, 'B', Buffer.from([4]), 100, W);
  t.same(crdtValue(crdtMerge(removedAfter, d)), {}, 'a remove that saw the fold removes the field for good');
});
