// Convergence: 3-5 replicas apply random updates (with retries of the same operation at other
// replicas) and send their states to each other; messages are delivered in random order, some
// twice. After the last delivery and one full exchange every replica holds the same state, and
// its value is the one an oracle computes from the update events alone (./oracle.ts). Prints
// its seed; rerun with RINGKV_SEED=<seed>.

import { isDeepStrictEqual } from 'node:util';
import t from 'tap';
import type { CrdtState, CrdtType } from '../../../sdk/crdt/index.js';
import { crdtEqual, crdtMerge, crdtValue, encodeCrdt } from '../../../sdk/crdt/index.js';
import { SeededRandom, testSeed } from '../seeded-random.js';
import { History } from './history.js';
import { expectedValue } from './oracle.js';

const seed = testSeed();
t.comment(`seed ${seed} (rerun with RINGKV_SEED=${seed})`);

const RUNS = 20;
const STEPS = 160;
/** A window that forgets nothing within a run, so every duplicate is seen. */
const NO_FORGETTING = { opWindowMs: 2 ** 40, maxOpIds: 1_000_000 };

interface Outcome {
  ok: boolean;
  message: string;
  updates: number;
  retried: number;
  deliveries: number;
  duplicates: number;
}

function run(type: CrdtType, replicas: number, runSeed: number, forgetting = false): Outcome {
  const rnd = new SeededRandom(runSeed);
  // Forgetting: a short window, so nodes sum their old counter entries and retries past the
  // window count again (the oracle counts them then too). Counters get no retries there: whether
  // two applications met within the window is what decides, and the oracle cannot know it.
  const h = forgetting
    ? new History(rnd, { type, replicas, crdt: { opWindowMs: 30, maxOpIds: 8 }, retryChance: type === 'counter' ? 0 : 0.15 })
    : new History(rnd, { type, replicas, crdt: NO_FORGETTING, retryChance: 0.15 });
  const queue: { to: number; state: CrdtState }[] = [];
  let deliveries = 0;
  let duplicates = 0;
  const deliver = (k: number, keep: boolean): void => {
    const m = queue[k]!;
    h.set(m.to, h.states[m.to] === undefined ? m.state : crdtMerge(h.states[m.to]!, m.state));
    deliveries++;
    if (keep) duplicates++;
    else queue.splice(k, 1);
  };
  for (let step = 0; step < STEPS; step++) {
    const r = rnd.next();
    if (r < 0.4) {
      const i = h.liveReplica();
      const s = h.update(i);
      if (s !== undefined) {
        for (let k = 0; k < 1 + rnd.int(2); k++) {
          const to = (i + 1 + rnd.int(replicas - 1)) % replicas;
          queue.push({ to, state: s });
        }
      }
    } else if (r < 0.75) {
      if (queue.length > 0) deliver(rnd.int(queue.length), rnd.chance(0.25));
    } else if (r < 0.85) {
      h.read(rnd.int(replicas));
    } else if (r < 0.92) {
      h.settle(h.liveReplica());
    } else {
      h.advance(rnd.int(50));
    }
  }
  while (queue.length > 0) deliver(rnd.int(queue.length), false);
  h.syncAll();

  const retried = h.events.length - new Set(h.events.map((e) => e.id)).size;
  const base = { updates: h.events.length, retried, deliveries, duplicates };
  const first = h.states[0]!;
  for (let i = 1; i < replicas; i++) {
    const s = h.states[i]!;
    if (!crdtEqual(first, s) || !encodeCrdt(first).equals(encodeCrdt(s))) {
      return { ok: false, message: `replica ${h.names[i]} differs from ${h.names[0]} after the full exchange`, ...base };
    }
  }
  const want = expectedValue(type, forgetting ? h.events.map((e, k) => ({ ...e, id: `${e.id}#${k}` })) : h.events);
  for (let i = 0; i < replicas; i++) {
    const got = crdtValue(h.states[i]!);
    if (!isDeepStrictEqual(got, want)) {
      return { ok: false, message: `replica ${h.names[i]} shows ${JSON.stringify(got)}; the oracle says ${JSON.stringify(want)}`, ...base };
    }
  }
  return { ok: true, message: '', ...base };
}

for (const type of ['counter', 'set', 'register', 'map'] as const) {
  t.test(`${type}: replicas converge to the oracle's value`, async (t) => {
    const summary: string[] = [];
    for (const replicas of [3, 4, 5]) {
      let updates = 0;
      let retried = 0;
      let deliveries = 0;
      let duplicates = 0;
      for (let i = 0; i < RUNS; i++) {
        const runSeed = (seed + replicas * 7919 + i) >>> 0;
        const o = run(type, replicas, runSeed);
        if (!o.ok) {
          t.fail(`${type}, ${replicas} replicas, run seed ${runSeed}: ${o.message}`);
          return;
        }
        updates += o.updates;
        retried += o.retried;
        deliveries += o.deliveries;
        duplicates += o.duplicates;
      }
      summary.push(`${replicas} replicas: ${RUNS} runs, ${updates} updates (${retried} retries applied again elsewhere), ${deliveries} deliveries (${duplicates} duplicated)`);
      t.ok(retried > 0 && duplicates > 0, `${replicas} replicas: retries and duplicate deliveries happened`);
    }
    t.comment(summary.join('\n'));
  });
}

// With a window that forgets, a retry applied again counts again, so every application is an
// operation of its own for the oracle. Maps are left out: a field remove whose context is older
// than the window may leave part of a summed counter (README.md, "Counters in maps").
for (const type of ['counter', 'set', 'register'] as const) {
  t.test(`${type}: replicas converge to the oracle's value while the window forgets and nodes sum old entries`, async (t) => {
    let updates = 0;
    for (let i = 0; i < RUNS; i++) {
      const runSeed = (seed + 31337 + i) >>> 0;
      const o = run(type, 3 + (i % 3), runSeed, true);
      if (!o.ok) {
        t.fail(`${type}, run seed ${runSeed}: ${o.message}`);
        return;
      }
      updates += o.updates;
    }
    t.ok(updates > 0, `${RUNS} runs, ${updates} updates`);
  });
}
