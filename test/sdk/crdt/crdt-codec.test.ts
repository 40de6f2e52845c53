// The encoding of data-type states and context tokens: exact round trips of states random
// histories produce, a pinned encoding that matches crdt-format.md, corrupted and unknown
// encodings reported as CORRUPTION, and malformed tokens refused. Prints its seed; rerun with
// RINGKV_SEED=<seed>.

import fc from 'fast-check';
import { pack, unpack } from 'msgpackr';
import t from 'tap';
import type { CrdtState, CrdtType } from '../../../sdk/crdt/index.js';
import {
  CRDT_FORMAT,
  crdtApply,
  crdtEqual,
  crdtValue,
  crdtView,
  decodeCrdt,
  decodeCrdtContext,
  encodeCrdt,
  encodeCrdtContext,
} from '../../../sdk/crdt/index.js';
import { ErrorCodes, RingkvError } from '../../../sdk/errors.js';
import { SeededRandom, testSeed } from '../seeded-random.js';
import { History } from './history.js';

const seed = testSeed();
t.comment(`seed ${seed} (rerun with RINGKV_SEED=${seed})`);

function statesOf(type: CrdtType, s: number): CrdtState[] {
  const rnd = new SeededRandom(s);
  const h = new History(rnd, { type, replicas: 3, crdt: { opWindowMs: 30, maxOpIds: 5 }, retryChance: 0.2 });
  for (let i = 0; i < 80; i++) h.step();
  return h.snapshots;
}

t.test('every state a history produces round-trips exactly', async (t) => {
  let count = 0;
  fc.assert(
    fc.property(fc.constantFrom<CrdtType>('counter', 'set', 'register', 'map'), fc.integer({ min: 0, max: 2 ** 32 - 1 }), (type, s) => {
      for (const st of statesOf(type, s)) {
        const bytes = encodeCrdt(st);
        const back = decodeCrdt(Buffer.from(bytes));
        count++;
        if (!crdtEqual(back, st) || !encodeCrdt(back).equals(bytes)) return false;
        if (JSON.stringify(crdtValue(back)) !== JSON.stringify(crdtValue(st))) return false;
      }
      return true;
    }),
    { seed, numRuns: 60 },
  );
  t.ok(count > 1000, `${count} states round-tripped`);
});

t.test('a pinned encoding, as crdt-format.md draws it', async (t) => {
  const s1 = crdtApply(undefined, { type: 'map', updates: [{ name: 'n', op: { type: 'counter', increment: -3 } }, { name: 'f', op: { type: 'flag', enable: true } }] }, 'B', Buffer.from([0xaa]), 1000);
  const s2 = crdtApply(s1, { type: 'map', updates: [{ name: 's', op: { type: 'set', add: ['x'] } }], removes: [{ name: 'f', type: 'flag' }], context: { B: 1, C: 4 } }, 'A', Buffer.from([0xbb]), 1001);
  const bytes = encodeCrdt(s2);
  t.same(unpack(bytes), [
    1, // format
    3, // map
    ['A', 'B', 'C'], // actors
    [1, 1, 0], // context: A 1, B 1 (C is named only by the deferred remove)
    0, // horizonMs
    [Buffer.from([0xaa]), 1, 1, 1000, Buffer.from([0xbb]), 0, 1, 1001], // applied: id, actor, counter, atMs
    [[[1, 1, 2, 4], ['f', 4], 1, null]], // deferred: context {B: 1, C: 4}, path f (flag), remove field
    ['n', 0, [1, 1], [1, 1, 0, 3], 's', 1, [0, 1], ['x', [0, 1]]], // fields: n (counter) and s (set); f is removed
  ]);
  // Pinned: a change here is a format change (bump CRDT_FORMAT and keep a reader for 1).
  t.equal(
    bytes.toString('hex'),
    '98010393a141a142a143930101000098c401aa0101cd03e8c401bb0001cd03e99194940101020492a1660401c098a16e009201019401010003a1730192000192a178920001',
  );
  t.same(crdtValue(decodeCrdt(bytes)), { n_counter: -3, s_set: ['x'] });
});

/** Packs a raw version array so single fields can be broken. */
const raw = (s: CrdtState): unknown[] => unpack(encodeCrdt(s)) as unknown[];

t.test('unknown formats and types, and broken structure, are CORRUPTION', async (t) => {
  const set = crdtApply(undefined, { type: 'set', add: ['a', 'b'] }, 'A', Buffer.from([1]), 5);
  const counter = crdtApply(undefined, { type: 'counter', increment: 2 }, 'A', Buffer.from([1]), 5);
  const base = raw(set);
  const cases: [string, unknown][] = [
    ['another format', [CRDT_FORMAT + 1, ...base.slice(1)]],
    ['an unknown type code', [base[0], 9, ...base.slice(2)]],
    ['too few fields', base.slice(0, 7)],
    ['not an array', { a: 1 }],
    ['an unsorted actor list', [1, 1, ['B', 'A'], [1, 1], 0, [], [], []]],
    ['an actor nothing names', [1, 1, ['A', 'B'], [1, 0], ...base.slice(4)]],
    ['a dot beyond the context', [...base.slice(0, 7), ['a', [0, 2]]]],
    ['an unknown actor index', [...base.slice(0, 7), ['a', [5, 1]]]],
    ['unsorted members', [...base.slice(0, 7), ['b', [0, 1], 'a', [0, 1]]]],
    ['a member without dots', [...base.slice(0, 7), ['a', []]]],
    ['a record below the horizon', [...base.slice(0, 4), 10, ...base.slice(5)]],
    ['a bad op id', [...base.slice(0, 5), ['id', 0, 1, 5], ...base.slice(6)]],
    ['a deferred remove in a set with a path', [...base.slice(0, 6), [[[0, 1], ['f', 1], 0, 'a']], base[7]]],
    ['an empty counter entry', [...raw(counter).slice(0, 7), [0, 1, 0, 0]]],
    ['a negative count', [...raw(counter).slice(0, 7), [0, 1, -1, 0]]],
    ['a map field of unknown type', [1, 3, ['A'], [1], 0, [], [], ['f', 7, [0, 1], []]]],
    ['a map field without presence', [1, 3, ['A'], [1], 0, [], [], ['f', 0, [], [0, 1, 1, 0]]]],
  ];
  for (const [what, v] of cases) t.throws(() => decodeCrdt(pack(v)), { code: ErrorCodes.CORRUPTION }, what);
  t.throws(() => decodeCrdt(encodeCrdt(set).subarray(0, 10)), { code: ErrorCodes.CORRUPTION }, 'truncated');
  t.throws(() => decodeCrdt(Buffer.alloc(0)), { code: ErrorCodes.CORRUPTION }, 'empty');
  t.throws(() => decodeCrdt(Buffer.from([0xc1])), { code: ErrorCodes.CORRUPTION }, 'not msgpack');
  let deep: unknown[] = [];
  for (let i = 0; i < 40; i++) deep = ['m', 3, [0, 1], deep];
  t.throws(() => decodeCrdt(pack([1, 3, ['A'], [1], 0, [], [], deep])), { code: ErrorCodes.CORRUPTION }, 'maps nested too deep');
});

t.test('random damage is reported as CORRUPTION or decodes to some valid state, nothing else', async (t) => {
  const states = [...statesOf('map', seed), ...statesOf('set', seed + 1)].slice(-40);
  const rnd = new SeededRandom(seed);
  let detected = 0;
  let tries = 0;
  for (const s of states) {
    const bytes = encodeCrdt(s);
    for (let k = 0; k < 25; k++) {
      const bad = Buffer.from(bytes);
      bad[rnd.int(bad.length)] ^= 1 << rnd.int(8);
      tries++;
      try {
        const d = decodeCrdt(bad);
        // Accepted: it must be a state the codec itself can write and read back.
        if (!crdtEqual(decodeCrdt(encodeCrdt(d)), d)) t.fail('a damaged encoding decoded to a state that does not round-trip');
      } catch (err) {
        if (!(err instanceof RingkvError) || err.code !== ErrorCodes.CORRUPTION) {
          t.fail(`damage raised ${String(err)}, not CORRUPTION`);
          return;
        }
        detected++;
      }
    }
  }
  t.ok(detected > tries / 3, `${detected} of ${tries} single-bit flips reported as CORRUPTION (the engine's checksums catch the rest)`);
});

t.test('context tokens: opaque, deterministic, typed; anything else is refused', async (t) => {
  const s = crdtApply(undefined, { type: 'set', add: ['a'] }, 'node-1', Buffer.from([1]), 5);
  const tok = crdtView(s).context;
  t.match(tok, /^[A-Za-z0-9_-]+$/);
  t.same(decodeCrdtContext(tok), { type: 'set', context: { 'node-1': 1 } });
  t.equal(encodeCrdtContext('set', { b: 2, a: 1, z: 0 }), encodeCrdtContext('set', { a: 1, b: 2 }), 'equal contexts, equal tokens');
  t.not(encodeCrdtContext('set', { a: 1 }), encodeCrdtContext('map', { a: 1 }), 'the type is in the token');
  t.same(decodeCrdtContext(encodeCrdtContext('map', {})), { type: 'map', context: {} });
  t.same(decodeCrdtContext(encodeCrdtContext('map', { __proto__: 3 } as unknown as Record<string, number>)).context, {});
  const odd = encodeCrdtContext('map', Object.fromEntries([['__proto__', 3]]));
  t.ok(Object.hasOwn(decodeCrdtContext(odd).context, '__proto__'), 'a node named __proto__ is an own entry');
  t.throws(() => decodeCrdtContext(tok, 'counter'), { code: ErrorCodes.WRONG_TYPE });
  const bad = [
    '',
    'a b',
    `${tok}=`,
    'x'.repeat(20_000),
    pack([2, 1, []]).toString('base64url'),
    pack([1, 9, []]).toString('base64url'),
    pack([1, 1, ['b', 1, 'a', 1]]).toString('base64url'),
    pack([1, 1, ['a', 0]]).toString('base64url'),
    pack([1, 1, ['a', -1]]).toString('base64url'),
    pack([1, 1, ['', 1]]).toString('base64url'),
    pack({ a: 1 }).toString('base64url'),
  ];
  for (const b of bad) t.throws(() => decodeCrdtContext(b), { code: ErrorCodes.INVALID_ARGUMENT }, JSON.stringify(b.slice(0, 30)));
  // A token whose base64url is not the canonical one for its bytes.
  const last = tok[tok.length - 1]!;
  const alt = tok.slice(0, -1) + String.fromCharCode(last.charCodeAt(0) + 1);
  if (Buffer.from(alt, 'base64url').toString('base64url') !== alt) t.throws(() => decodeCrdtContext(alt), { code: ErrorCodes.INVALID_ARGUMENT }, 'non-canonical base64url');
});
