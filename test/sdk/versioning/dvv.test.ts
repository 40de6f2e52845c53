// Tests of dotted version vectors: the scenario table in dvv-cases.json, the context
// helpers, the semilattice laws of dvvSync (fast-check), dvvDescends, and a simulation of
// concurrent writers against 3 replicas that bounds the number of siblings. Prints its seed;
// rerun with RINGKV_SEED=<seed>.

import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import t from 'tap';
import { ErrorCodes } from '../../../sdk/errors.js';
import {
  compareDots,
  contextCovers,
  contextsEqual,
  dvvDescends,
  dvvSync,
  dvvUpdate,
  joinContext,
  mergeObjects,
  objectsEqual,
} from '../../../sdk/versioning/index.js';
import type { Dot, Sibling, StoredObject, VersionVector } from '../../../sdk/versioning/index.js';
import { SeededRandom, testSeed } from '../seeded-random.js';
import { dots, sib } from './arbitraries.js';

const seed = testSeed();
t.comment(`seed ${seed} (rerun with RINGKV_SEED=${seed})`);

/** The payload of a write in the scenario table and the simulation. */
function write(value: string | null, writer = 'client', ts = 1): Omit<Sibling, 'dot'> {
  return value === null
    ? { value: Buffer.alloc(0), tombstone: true, expiresAtMs: 0, contentType: '', flags: 0, ts, writer }
    : { value: Buffer.from(value), tombstone: false, expiresAtMs: 0, contentType: '', flags: 0, ts, writer };
}

// ---- the scenario table -------------------------------------------------------------

type SiblingSpec = [node: string, counter: number, value: string | null];
type Step =
  | { op: 'put'; at: string; actor?: string; floor?: number; context: VersionVector | string; value: string }
  | { op: 'delete'; at: string; actor?: string; floor?: number; context: VersionVector | string }
  | { op: 'drop'; replica: string }
  | { op: 'read'; as: string; from: string[] }
  | { op: 'sync'; into: string; from: string }
  | { op: 'set'; replica: string; context: VersionVector; siblings: SiblingSpec[] }
  | { op: 'expect'; replica: string; siblings: SiblingSpec[]; context: VersionVector };

function describe(obj: StoredObject | undefined): string {
  if (obj === undefined) return '(absent)';
  const sibs = obj.siblings.map((s) => `${s.dot![0]}${s.dot![1]}=${s.tombstone ? '(tombstone)' : s.value.toString()}`);
  return `[${sibs.join(' ')}] ${JSON.stringify(obj.context)}`;
}

t.test('scenario table (dvv-cases.json)', async (t) => {
  const cases = JSON.parse(readFileSync(new URL('./dvv-cases.json', import.meta.url), 'utf8')) as { name: string; steps: Step[] }[];
  t.ok(cases.length >= 10);
  for (const c of cases) {
    const replicas = new Map<string, StoredObject>();
    const contexts = new Map<string, VersionVector>();
    const ctxOf = (x: VersionVector | string): VersionVector => {
      if (typeof x !== 'string') return x;
      const found = contexts.get(x);
      if (found === undefined) throw new Error(`${c.name}: no read named ${x}`);
      return found;
    };
    let ts = 1;
    for (const [i, step] of c.steps.entries()) {
      const where = `${c.name} / step ${i} (${step.op})`;
      switch (step.op) {
        case 'put':
        case 'delete':
          // The coordinating actor defaults to the replica's name; floor: its node counter + 1.
          replicas.set(
            step.at,
            dvvUpdate(replicas.get(step.at), ctxOf(step.context), step.actor ?? step.at, write(step.op === 'put' ? step.value : null, 'client', ts++), step.floor ?? 1),
          );
          break;
        case 'drop': // the replica lost its copy: purged, tombstone collected, or an empty disk
          replicas.delete(step.replica);
          break;
        case 'read': {
          let merged: StoredObject | undefined;
          for (const r of step.from) {
            const obj = replicas.get(r);
            if (obj !== undefined) merged = mergeObjects(merged, obj);
          }
          contexts.set(step.as, merged?.context ?? {});
          break;
        }
        case 'sync':
          replicas.set(step.into, mergeObjects(replicas.get(step.into), replicas.get(step.from)!));
          break;
        case 'set':
          replicas.set(step.replica, {
            mode: 'dvv',
            context: step.context,
            siblings: step.siblings.map(([n, k, v]) => ({ ...write(v, 'client', ts++), dot: [n, k] as Dot })),
          });
          break;
        case 'expect': {
          const obj = replicas.get(step.replica);
          const got = obj?.siblings.map((s): SiblingSpec => [s.dot![0], s.dot![1], s.tombstone ? null : s.value.toString()]);
          t.same(got, step.siblings, `${where}: siblings of ${step.replica} are ${describe(obj)}`);
          t.ok(obj !== undefined && contextsEqual(obj.context, step.context), `${where}: context of ${step.replica} ${JSON.stringify(obj?.context)}`);
          break;
        }
        default:
          throw new Error(`${where}: unknown op`);
      }
    }
  }
});

// ---- context helpers ----------------------------------------------------------------

t.test('contextCovers, joinContext, contextsEqual, compareDots', async (t) => {
  const covers: [VersionVector, Dot, boolean][] = [
    [{}, ['A', 1], false],
    [{ A: 1 }, ['A', 1], true],
    [{ A: 3 }, ['A', 2], true],
    [{ A: 1 }, ['A', 2], false],
    [{ B: 5 }, ['A', 1], false],
    [{ A: 0 }, ['A', 1], false],
    [{}, ['constructor', 1], false],
    [{}, ['__proto__', 1], false],
  ];
  for (const [ctx, dot, want] of covers) t.equal(contextCovers(ctx, dot), want, `${JSON.stringify(ctx)} covers ${dot}`);

  const joins: [VersionVector, VersionVector, VersionVector][] = [
    [{}, {}, {}],
    [{ A: 1 }, {}, { A: 1 }],
    [{ A: 1, C: 4 }, { A: 3, B: 2 }, { A: 3, B: 2, C: 4 }],
    [{ B: 2, A: 9 }, { A: 3, C: 1 }, { A: 9, B: 2, C: 1 }],
  ];
  for (const [a, b, want] of joins) {
    const j = joinContext(a, b);
    t.same(j, want, `join ${JSON.stringify(a)} ${JSON.stringify(b)}`);
    t.same(joinContext(b, a), want, 'commutative');
    if (contextsEqual(j, a)) t.equal(j, a, 'returns a itself when a covers b');
  }
  const j = joinContext({ A: 1, C: 4 }, { B: 2, A: 3 });
  t.same(Object.keys(j), ['A', 'B', 'C'], 'a new join has sorted keys');
  const odd = joinContext({ ['__proto__']: 2 } as VersionVector, { A: 1 });
  t.equal(Object.getPrototypeOf(odd), Object.prototype, 'a node named __proto__ is stored, not a prototype');
  t.ok(contextCovers(odd, ['__proto__', 2]));

  t.ok(contextsEqual({ A: 1, B: 0 }, { A: 1 }), 'zero entries count as absent');
  t.notOk(contextsEqual({ A: 1 }, { A: 2 }));
  t.notOk(contextsEqual({ A: 1 }, { B: 1 }));

  const sorted: Dot[] = [['A', 2], ['B', 1], ['A', 10], ['AA', 1], ['B', 3]];
  sorted.sort(compareDots);
  t.same(sorted, [['A', 2], ['A', 10], ['AA', 1], ['B', 1], ['B', 3]]);
});

t.test('dvvUpdate and dvvSync reject what is not dvv', async (t) => {
  const lww: StoredObject = { mode: 'lww', siblings: [sib({ ts: 1 })], context: {} };
  const ok = dvvUpdate(undefined, {}, 'A', write('x'));
  const dotless: StoredObject = { mode: 'dvv', siblings: [sib({ ts: 1 })], context: { A: 1 } };
  t.throws(() => dvvUpdate(lww, {}, 'A', write('x')), { code: ErrorCodes.INVALID_ARGUMENT });
  t.throws(() => dvvUpdate(ok, {}, '', write('x')), { code: ErrorCodes.INVALID_ARGUMENT });
  t.throws(() => dvvSync(ok, lww), { code: ErrorCodes.INVALID_ARGUMENT });
  t.throws(() => dvvSync(lww, ok), { code: ErrorCodes.INVALID_ARGUMENT });
  t.throws(() => dvvSync(ok, dotless), { code: ErrorCodes.INVALID_ARGUMENT });
  t.throws(() => mergeObjects(ok, lww), { code: ErrorCodes.INVALID_ARGUMENT });
});

t.test('dvvUpdate keeps the payload and does not mutate its inputs', async (t) => {
  const first = dvvUpdate(undefined, {}, 'A', { ...write('v1', 'client-7', 42), expiresAtMs: 99, contentType: 'text/plain', flags: 5 });
  t.same(first.siblings, [
    { value: Buffer.from('v1'), tombstone: false, expiresAtMs: 99, contentType: 'text/plain', flags: 5, ts: 42, writer: 'client-7', dot: ['A', 1] },
  ]);
  t.equal(first.mode, 'dvv');
  const snapshot = describe(first);
  const ctx = { A: 1 };
  const second = dvvUpdate(first, ctx, 'B', write('v2'));
  t.equal(describe(first), snapshot, 'local is unchanged');
  t.same(ctx, { A: 1 }, 'client context is unchanged');
  t.same(dots(second), [['B', 1]]);
  t.same(second.context, { A: 1, B: 1 });
});

// ---- a coordinator that lost a key's history ------------------------------------------

/** The live values an object holds, sorted. */
function values(obj: StoredObject): string[] {
  return obj.siblings.filter((s) => !s.tombstone).map((s) => s.value.toString()).sort();
}

t.test('an acknowledged write survives its coordinator losing the key (node counter floor, new actor)', async (t) => {
  // A coordinates five overwrites of a key; B (another replica) merges each one.
  let a: StoredObject | undefined;
  for (let i = 1; i <= 5; i++) a = dvvUpdate(a, a?.context ?? {}, 'A', write(`v${i}`));
  const b = a!;
  t.same(dots(b), [['A', 5]]);
  t.same(b.context, { A: 5 });

  // Today's rule (counter = max(local, client) + 1) after A lost its copy: the blind write
  // gets [A, 1], which B's context {A: 5} already covers, so sync drops it everywhere.
  const reissued = dvvUpdate(undefined, {}, 'A', write('blind'));
  t.same(dots(reissued), [['A', 1]], 'without a floor the lost history makes A reissue [A, 1]');

  // The node-wide counter (say it stands at 5: the floor of A's next dot is 6) gives a dot
  // that no context has seen: the blind write survives.
  const floored = dvvUpdate(undefined, {}, 'A', write('blind'), 6);
  t.same(dots(floored), [['A', 6]], 'the floor lifts the counter above every dot A issued');
  t.same(values(dvvSync(b, floored)), ['blind'], 'the blind write is kept by sync (it was lost with [A, 1])');
  t.same(values(dvvSync(floored, b)), ['blind'], 'in either direction');
  // ...but its context {A: 6} claims A's earlier dots of this key, which it never saw: a
  // live value at [A, 5] is dropped. This is why a node whose copy held its current
  // actor's dots takes a new actor (a new epoch) before it forgets them (purge).

  // A new actor (the node's next epoch, or a node id back with an empty disk) has issued
  // nothing, so counter 1 is fresh and its context claims nothing about A's old dots: the
  // blind write and the value it did not see are both kept, as siblings.
  const fresh = dvvUpdate(undefined, {}, 'A#2', write('blind'), 1);
  t.same(dots(fresh), [['A#2', 1]]);
  for (const m of [dvvSync(b, fresh), dvvSync(fresh, b)]) {
    t.same(values(m), ['blind', 'v5'], 'both acknowledged writes are siblings');
    t.same(m.context, { A: 5, 'A#2': 1 });
  }
  // A client that read both replaces both, through either actor's coordinator.
  const both = dvvSync(b, fresh);
  t.same(values(dvvUpdate(both, both.context, 'A#2', write('merged'), 7)), ['merged']);
  t.same(dots(dvvUpdate(both, both.context, 'A#2', write('merged'), 7)), [['A#2', 7]]);

  // A tombstone collected on A (everything A's copy held was dead) only needs the floor:
  // what its context then claims was dead or superseded anyway.
  const deleted = dvvUpdate(b, b.context, 'A', write(null));
  const after = dvvUpdate(undefined, {}, 'A', write('again'), 7);
  t.same(values(dvvSync(deleted, after)), ['again'], 'the write after the collected tombstone is kept');
  t.same(values(dvvSync(deleted, dvvUpdate(undefined, {}, 'A', write('again')))), [], 'and lost without the floor');
});

t.test('dvvUpdate: the counter floor and plain node ids beside actors', async (t) => {
  const local = dvvUpdate(undefined, { A: 3 }, 'A', write('x'));
  t.same(dots(local), [['A', 4]], 'client context above local');
  t.same(dots(dvvUpdate(local, {}, 'A', write('y'), 2)).at(-1), ['A', 5], 'a floor below local + 1 does not lower the counter');
  t.same(dots(dvvUpdate(local, { A: 9 }, 'A', write('y'), 7)).at(-1), ['A', 10], 'nor below client + 1');
  t.same(dots(dvvUpdate(local, {}, 'A', write('y'), 40)).at(-1), ['A', 40], 'the floor is the counter when it is highest');
  // A context of the old scheme (plain node ids) is just another actor's entries.
  const old: StoredObject = { mode: 'dvv', context: { n1: 3 }, siblings: [eventSibling('n1', 3)] };
  const next = dvvUpdate(old, { n1: 3 }, 'n1#3f9a2c1b', write('new'), 12);
  t.same(dots(next), [['n1#3f9a2c1b', 12]], 'the old sibling the client saw is replaced');
  t.same(next.context, { n1: 3, 'n1#3f9a2c1b': 12 });
  const blind = dvvUpdate(old, {}, 'n1#3f9a2c1b', write('new'), 1);
  t.same(dots(blind), [['n1', 3], ['n1#3f9a2c1b', 1]], 'a blind write beside an old-scheme sibling');
  for (const bad of [0, -1, 1.5, Number.NaN, Number.MAX_SAFE_INTEGER + 1]) {
    t.throws(() => dvvUpdate(undefined, {}, 'A', write('x'), bad), { code: ErrorCodes.INVALID_ARGUMENT }, `floor ${bad}`);
  }
  t.throws(() => dvvUpdate(undefined, { A: Number.MAX_SAFE_INTEGER }, 'A', write('x')), { code: ErrorCodes.INVALID_ARGUMENT }, 'no counter past the safe integers');
});

// ---- the semilattice laws of dvvSync ---------------------------------------------------

const NODES = ['A', 'B', 'C'] as const;
const MAX_COUNTER = 4;

/** The one sibling an event (dot) stands for: equal dots always carry equal data. */
function eventSibling(node: string, counter: number): Sibling {
  return { ...write(counter % 3 === 0 ? null : `${node}${counter}`, `w${counter % 2}`, counter * 10 + node.charCodeAt(0)), dot: [node, counter] };
}

/** A random well-formed state: any context, and siblings among the events it covers. */
const stateArb: fc.Arbitrary<StoredObject> = fc
  .tuple(fc.tuple(...NODES.map(() => fc.integer({ min: 0, max: MAX_COUNTER }))), fc.array(fc.boolean(), { minLength: NODES.length * MAX_COUNTER, maxLength: NODES.length * MAX_COUNTER }))
  .map(([counters, picks]) => {
    const context: Record<string, number> = {};
    const siblings: Sibling[] = [];
    NODES.forEach((n, i) => {
      if (counters[i]! > 0) context[n] = counters[i]!;
      for (let k = 1; k <= counters[i]!; k++) if (picks[i * MAX_COUNTER + k - 1]) siblings.push(eventSibling(n, k));
    });
    return { mode: 'dvv' as const, siblings, context };
  });

t.test('dvvSync is commutative, associative and idempotent', async (t) => {
  const opts = { seed, numRuns: 500 };
  fc.assert(
    fc.property(stateArb, stateArb, (a, b) => objectsEqual(dvvSync(a, b), dvvSync(b, a))),
    opts,
  );
  fc.assert(
    fc.property(stateArb, stateArb, stateArb, (a, b, c) => objectsEqual(dvvSync(dvvSync(a, b), c), dvvSync(a, dvvSync(b, c)))),
    opts,
  );
  fc.assert(
    fc.property(stateArb, (a) => dvvSync(a, a) === a && dvvSync(a, { ...a, siblings: [...a.siblings] }) === a),
    opts,
  );
  fc.assert(
    fc.property(stateArb, stateArb, (a, b) => {
      const m = dvvSync(a, b);
      // The merge has seen both sides, merging either side in again changes nothing, and the
      // context is the join.
      return dvvDescends(m, a) && dvvDescends(m, b) && dvvSync(m, a) === m && contextsEqual(m.context, joinContext(a.context, b.context));
    }),
    opts,
  );
  t.pass('laws hold');
});

t.test('dvvSync returns an input itself when it adds nothing to it', async (t) => {
  const a = dvvUpdate(undefined, {}, 'A', write('v1'));
  const b = dvvUpdate(a, a.context, 'A', write('v2'));
  t.equal(dvvSync(b, a), b, 'a newer replica merging an older one: unchanged');
  t.equal(dvvSync(a, b), b, 'an older replica merging a newer one gets the newer object');
  const c = dvvUpdate(undefined, {}, 'B', write('v3'));
  const m = dvvSync(b, c);
  t.not(m, b);
  t.not(m, c);
  t.same(dots(m), [['A', 2], ['B', 1]]);
});

t.test('dvvDescends and objectsEqual', async (t) => {
  const a1 = dvvUpdate(undefined, {}, 'A', write('v1'));
  const a2 = dvvUpdate(a1, a1.context, 'A', write('v2'));
  const b1 = dvvUpdate(a1, {}, 'B', write('x'));
  t.ok(dvvDescends(a2, a1), 'a2 saw a1');
  t.notOk(dvvDescends(a1, a2), 'a1 did not see a2');
  t.ok(dvvDescends(a1, a1));
  t.notOk(dvvDescends(a2, b1), 'concurrent: neither descends');
  t.notOk(dvvDescends(b1, a2));
  const m = dvvSync(a2, b1);
  t.ok(dvvDescends(m, a2) && dvvDescends(m, b1));
  // Same context, different siblings: the side that dropped A1 has seen more than the side still holding it.
  const both: StoredObject = { mode: 'dvv', context: { A: 2 }, siblings: [eventSibling('A', 1), eventSibling('A', 2)] };
  const one: StoredObject = { mode: 'dvv', context: { A: 2 }, siblings: [eventSibling('A', 2)] };
  t.ok(dvvDescends(one, both), 'one has dropped A1, which both still holds: one is newer');
  t.notOk(dvvDescends(both, one));

  t.ok(objectsEqual(m, { ...m, siblings: m.siblings.map((s) => ({ ...s })), context: { ...m.context } }));
  t.notOk(objectsEqual(both, one));
  t.notOk(objectsEqual(one, { ...one, context: { A: 3 } }));
  t.notOk(objectsEqual(one, { ...one, siblings: [{ ...eventSibling('A', 2), dot: ['B', 2] }] }));
  const l1: StoredObject = { mode: 'lww', siblings: [sib({ ts: 5, writer: 'w', value: Buffer.from('x') })], context: {} };
  t.ok(objectsEqual(l1, { mode: 'lww', siblings: [sib({ ts: 5, writer: 'w', value: Buffer.from('x') })], context: {} }));
  t.notOk(objectsEqual(l1, { mode: 'lww', siblings: [sib({ ts: 5, writer: 'w', value: Buffer.from('y') })], context: {} }));
  t.notOk(objectsEqual(l1, { mode: 'lww', siblings: [sib({ ts: 6, writer: 'w', value: Buffer.from('x') })], context: {} }));
  t.notOk(objectsEqual(l1, { ...one, mode: 'dvv' }));
});

// ---- the sibling bound: concurrent writers against 3 replicas ---------------------------

interface WriteEvent {
  dot: Dot;
  writer: number;
  seq: number;
  clientContext: VersionVector;
}

/** The part of a tap test the simulation reports through. */
interface Tap {
  fail(message: string): unknown;
}

interface SimResult {
  maxSiblings: number;
  maxLive: number;
  writes: number;
}

/**
 * W writers each loop read (R=2 replicas, merged) -> write (coordinator + 1 more replica,
 * so R + W > N and every writer reads its own last write); rounds of different writers
 * interleave, and anti-entropy syncs random pairs. Checks, at every step, that no replica
 * holds more than one sibling per writer, and, at checkpoints, that the join of all replicas
 * holds exactly the writes no other write's context has seen — the oracle — each the latest
 * of its writer.
 */
function simulate(t: Tap, rnd: SeededRandom, W: number, steps: number): SimResult | undefined {
  const replicas: (StoredObject | undefined)[] = [undefined, undefined, undefined];
  const names = ['A', 'B', 'C'];
  const pending: (VersionVector | undefined)[] = Array.from({ length: W }, () => undefined);
  const lastDot: (Dot | undefined)[] = Array.from({ length: W }, () => undefined);
  const events: WriteEvent[] = [];
  let seq = 0;
  let maxSiblings = 0;
  let maxLive = 0;
  const two = (): [number, number] => {
    const a = rnd.int(3);
    return [a, (a + 1 + rnd.int(2)) % 3];
  };
  const fail = (msg: string) => {
    t.fail(`${msg} (seed ${rnd.seed}, W=${W})`);
    return undefined;
  };
  for (let step = 0; step < steps; step++) {
    const r = rnd.next();
    if (r < 0.2) {
      const [a, b] = two();
      if (replicas[b] !== undefined) replicas[a] = mergeObjects(replicas[a], replicas[b]!);
    } else {
      const w = rnd.int(W);
      const ctx = pending[w];
      if (ctx === undefined) {
        const [a, b] = two();
        let merged: StoredObject | undefined;
        for (const i of [a, b]) if (replicas[i] !== undefined) merged = mergeObjects(merged, replicas[i]!);
        const readCtx = merged?.context ?? {};
        const mine = lastDot[w];
        if (mine !== undefined && !contextCovers(readCtx, mine)) return fail('simulation bug: a writer missed its own write');
        pending[w] = readCtx;
      } else {
        const [coord, other] = two();
        const payload = write(rnd.chance(0.15) ? null : `w${w}-${seq}`, `writer-${w}`, seq + 1);
        const obj = dvvUpdate(replicas[coord], ctx, names[coord]!, payload);
        replicas[coord] = obj;
        replicas[other] = mergeObjects(replicas[other], obj);
        const dot = obj.siblings.find((s) => s.ts === seq + 1)!.dot!;
        events.push({ dot, writer: w, seq: seq++, clientContext: ctx });
        lastDot[w] = dot;
        pending[w] = undefined;
      }
    }
    for (const obj of replicas) {
      if (obj === undefined) continue;
      const writers = new Set(obj.siblings.map((s) => s.writer));
      if (writers.size !== obj.siblings.length) return fail(`step ${step}: two siblings of one writer: ${describe(obj)}`);
      if (obj.siblings.length > W) return fail(`step ${step}: ${obj.siblings.length} siblings > ${W} writers`);
      if (obj.siblings.length === 0) return fail(`step ${step}: no siblings`);
      maxSiblings = Math.max(maxSiblings, obj.siblings.length);
    }
    if (step % 25 === 24 || step === steps - 1) {
      let all: StoredObject | undefined;
      for (const obj of replicas) if (obj !== undefined) all = mergeObjects(all, obj);
      if (all === undefined) continue;
      const live = events.filter((e) => !events.some((o) => contextCovers(o.clientContext, e.dot)));
      const want = live.map((e) => e.dot).sort(compareDots);
      if (JSON.stringify(dots(all)) !== JSON.stringify(want)) {
        return fail(`step ${step}: the joined state holds ${JSON.stringify(dots(all))}, the oracle says ${JSON.stringify(want)}`);
      }
      for (const e of live) {
        if (lastDot[e.writer] !== e.dot) return fail(`step ${step}: a live sibling is not its writer's latest write`);
      }
      maxLive = Math.max(maxLive, live.length);
    }
  }
  return { maxSiblings, maxLive, writes: events.length };
}

t.test('siblings stay bounded by the concurrent writers (3 replicas, W writers)', async (t) => {
  const summary: string[] = [];
  for (const W of [1, 2, 3, 5]) {
    let maxSiblings = 0;
    let maxLive = 0;
    let writes = 0;
    for (let run = 0; run < 12; run++) {
      const rnd = new SeededRandom((seed + W * 1000 + run) >>> 0);
      const res = simulate(t, rnd, W, 300);
      if (res === undefined) return;
      maxSiblings = Math.max(maxSiblings, res.maxSiblings);
      maxLive = Math.max(maxLive, res.maxLive);
      writes += res.writes;
    }
    summary.push(`W=${W}: ${writes} writes, at most ${maxSiblings} siblings on a replica, ${maxLive} after a full sync`);
    t.ok(maxSiblings <= W, `W=${W}: max ${maxSiblings} siblings`);
    if (W === 1) t.equal(maxSiblings, 1, 'a single writer never makes siblings');
    else t.ok(maxSiblings >= 2, `W=${W}: concurrency did produce siblings (${maxSiblings}), so the bound was exercised`);
  }
  t.comment(summary.join('\n'));
});
