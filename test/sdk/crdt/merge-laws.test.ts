// The semilattice laws of crdtMerge for every data type — commutative, associative,
// idempotent — checked with fast-check on states that random histories produce (updates at
// random nodes, retries, removes with captured contexts, merges, settles, folds, a small
// applied-op window that keeps forgetting). Prints its seed; rerun with RINGKV_SEED=<seed>.

import fc from 'fast-check';
import t from 'tap';
import type { CrdtState, CrdtType } from '../../../sdk/crdt/index.js';
import { crdtEqual, crdtMerge, crdtValue, decodeCrdt, encodeCrdt } from '../../../sdk/crdt/index.js';
import { SeededRandom, testSeed } from '../seeded-random.js';
import { History } from './history.js';

const seed = testSeed();
t.comment(`seed ${seed} (rerun with RINGKV_SEED=${seed})`);

/** The states of one random history: 3-4 nodes, a small window, folds now and then. */
function runHistory(type: CrdtType, histSeed: number, steps: number, windowMs: number, maxOpIds: number): History {
  const rnd = new SeededRandom(histSeed);
  const h = new History(rnd, { type, replicas: 3 + rnd.int(2), crdt: { opWindowMs: windowMs, maxOpIds }, retryChance: 0.2, maxStepMs: 15 });
  for (let s = 0; s < steps; s++) {
    if (s === steps >> 1 && rnd.chance(0.5)) {
      const from = h.liveReplica();
      let into = h.liveReplica();
      while (into === from) into = h.liveReplica();
      h.retire(from, into);
    }
    h.step();
  }
  return h;
}

/** Equal states encode to equal bytes; checking both catches an equality that is too lax. */
function same(a: CrdtState, b: CrdtState): boolean {
  return crdtEqual(a, b) && encodeCrdt(a).equals(encodeCrdt(b));
}

const historyArb = fc.record({
  histSeed: fc.integer({ min: 0, max: 2 ** 32 - 1 }),
  steps: fc.integer({ min: 5, max: 120 }),
  windowMs: fc.integer({ min: 0, max: 60 }),
  maxOpIds: fc.integer({ min: 1, max: 8 }),
  picks: fc.array(fc.nat(), { minLength: 3, maxLength: 3 }),
});

for (const type of ['counter', 'set', 'register', 'map'] as const) {
  t.test(`${type}: crdtMerge is commutative, associative and idempotent on reachable states`, async (t) => {
    let checked = 0;
    fc.assert(
      fc.property(historyArb, ({ histSeed, steps, windowMs, maxOpIds, picks }) => {
        const states = runHistory(type, histSeed, steps, windowMs, maxOpIds).snapshots;
        if (states.length === 0) return true;
        const [a, b, c] = picks.map((p) => states[p % states.length]!) as [CrdtState, CrdtState, CrdtState];
        checked++;
        const ab = crdtMerge(a, b);
        const ba = crdtMerge(b, a);
        if (!same(ab, ba)) return false;
        if (JSON.stringify(crdtValue(ab)) !== JSON.stringify(crdtValue(ba))) return false;
        if (!same(crdtMerge(ab, c), crdtMerge(a, crdtMerge(b, c)))) return false;
        if (crdtMerge(a, a) !== a) return false;
        if (crdtMerge(a, decodeCrdt(encodeCrdt(a))) !== a) return false;
        // The merge has absorbed both sides: merging either again changes nothing.
        if (crdtMerge(ab, a) !== ab || crdtMerge(ab, b) !== ab) return false;
        return true;
      }),
      { seed, numRuns: 300 },
    );
    t.ok(checked > 250, `${checked} triples of reachable states checked`);
  });
}

t.test('the histories exercise what the laws are about', async (t) => {
  // Not a law: a guard that the generator reaches deferred removes, duplicates, forgetting and folds.
  let deferred = 0;
  let duplicates = 0;
  let forgotten = 0;
  let folded = 0;
  for (let i = 0; i < 40; i++) {
    const states = runHistory(i % 2 === 0 ? 'map' : 'set', (seed + i) >>> 0, 120, 30, 4).snapshots;
    for (const s of states) {
      if (s.deferred.length > 0) deferred++;
      const ids = s.applied.map((r) => r.id.toString('hex'));
      if (new Set(ids).size < ids.length) duplicates++;
      if (s.horizonMs > 0) forgotten++;
    }
  }
  for (let i = 0; i < 40; i++) {
    folded += runHistory(i % 2 === 0 ? 'counter' : 'map', (seed + 100 + i) >>> 0, 120, 30, 4).folds;
  }
  t.ok(deferred > 0, `states with deferred removes: ${deferred}`);
  t.ok(duplicates > 0, `states holding duplicate applications: ${duplicates}`);
  t.ok(forgotten > 0, `states whose window forgot records: ${forgotten}`);
  t.ok(folded > 0, `folds that moved counter entries: ${folded}`);
});
