// Tests of the stored-object codec and helpers: exact round trips (fast-check), the record
// aggregates (tombstone, expiry, which sibling the record carries), corruption detection,
// a pinned encoding, live siblings, merge dispatch and context tokens. Prints its seed;
// rerun with RINGKV_SEED=<seed>.

import { isDeepStrictEqual } from 'node:util';
import fc from 'fast-check';
import { pack } from 'msgpackr';
import t from 'tap';
import { ErrorCodes } from '../../../sdk/errors.js';
import { hlcToWallMs } from '../../../sdk/hlc.js';
import {
  decodeContextToken,
  dvvUpdate,
  encodeContextToken,
  fromRecordFields,
  liveSiblings,
  maxTs,
  mergeObjects,
  toRecordFields,
  versionString,
} from '../../../sdk/versioning/index.js';
import type { Dot, RecordFields, Sibling, StoredObject, VersionVector } from '../../../sdk/versioning/index.js';
import { testSeed } from '../seeded-random.js';
import { lwwObject, sib, siblingArb } from './arbitraries.js';

const seed = testSeed();
t.comment(`seed ${seed} (rerun with RINGKV_SEED=${seed})`);
const fcOpts = { seed, numRuns: 400 };

const v = (s: string) => Buffer.from(s);
const T = 1_700_000_000_000_000;

/** What the engine would hand back: fresh copies, nothing shared with the encoder. */
function throughEngine(f: RecordFields): RecordFields {
  return { ...f, value: Buffer.from(f.value), version: Buffer.from(f.version) };
}

const nodeArb = fc.constantFrom('A', 'B', 'node-3', 'ü-node');

const contextArb: fc.Arbitrary<VersionVector> = fc.dictionary(nodeArb, fc.oneof(fc.integer({ min: 1, max: 20 }), fc.maxSafeNat()), { maxKeys: 4 });

const lwwArb: fc.Arbitrary<StoredObject> = siblingArb.map(lwwObject);

/** A dvv object: 1..5 siblings with distinct dots, in canonical order, covered by the context. */
const dvvArb: fc.Arbitrary<StoredObject> = fc
  .tuple(
    fc.uniqueArray(fc.tuple(nodeArb, fc.integer({ min: 1, max: 20 })), { minLength: 1, maxLength: 5, selector: ([n, c]) => `${n}#${c}` }),
    fc.array(siblingArb, { minLength: 5, maxLength: 5 }),
    contextArb,
  )
  .map(([dotList, sibs, extra]) => {
    const sorted = [...dotList].sort((a, b) => (a[0] !== b[0] ? (a[0] < b[0] ? -1 : 1) : a[1] - b[1]));
    const context: Record<string, number> = { ...extra };
    const siblings = sorted.map((d, i): Sibling => {
      context[d[0]] = Math.max(context[d[0]] ?? 0, d[1]);
      return { ...sibs[i]!, dot: d as Dot };
    });
    return { mode: 'dvv' as const, siblings, context };
  });

const objectArb = fc.oneof(lwwArb, dvvArb);

t.test('round trip through the record fields is exact', async (t) => {
  fc.assert(
    fc.property(objectArb, (obj) => {
      const back = fromRecordFields(throughEngine(toRecordFields(obj)));
      if (!isDeepStrictEqual(back, obj)) throw new Error(`round trip changed the object:\n${JSON.stringify(obj)}\n${JSON.stringify(back)}`);
      return back.siblings.every((s) => Buffer.isBuffer(s.value));
    }),
    fcOpts,
  );
  t.pass('exact');
});

t.test('decoding restores the canonical sibling order', async (t) => {
  const obj = dvvUpdate(dvvUpdate(dvvUpdate(undefined, {}, 'B', { ...sib({ ts: T + 1 }), tombstone: true }), {}, 'A', sib({ ts: T + 2, value: v('a') })), {}, 'C', sib({ ts: T + 3, value: v('c') }));
  t.same(obj.siblings.map((s) => s.dot), [['A', 1], ['B', 1], ['C', 1]]);
  const f = toRecordFields(obj);
  t.same(f.value, v('c'), 'the record carries the newest live sibling');
  const back = fromRecordFields(f);
  t.same(back.siblings.map((s) => s.dot), [['A', 1], ['B', 1], ['C', 1]]);
  t.ok(isDeepStrictEqual(back, obj));
});

t.test('record aggregates', async (t) => {
  const cases: {
    name: string;
    obj: StoredObject;
    want: Omit<RecordFields, 'version'>;
  }[] = [
    {
      name: 'lww value',
      obj: lwwObject(sib({ ts: T, value: v('x'), contentType: 'text/plain', flags: 3, expiresAtMs: 500 })),
      want: { value: v('x'), tombstone: false, expiresAtMs: 500, contentType: 'text/plain', flags: 3 },
    },
    {
      name: 'lww tombstone: expiresAtMs is the deletion time',
      obj: lwwObject(sib({ ts: T + 999, tombstone: true })),
      want: { value: v(''), tombstone: true, expiresAtMs: hlcToWallMs(T + 999), contentType: '', flags: 0 },
    },
    {
      name: 'a live sibling is carried before a newer tombstone',
      obj: {
        mode: 'dvv',
        context: { A: 2 },
        siblings: [
          sib({ ts: T + 1, value: v('live'), flags: 9, dot: ['A', 1] }),
          sib({ ts: T + 5000, tombstone: true, dot: ['A', 2] }),
        ],
      },
      want: { value: v('live'), tombstone: false, expiresAtMs: 0, contentType: '', flags: 9 },
    },
    {
      name: 'the newest live sibling is carried; any never-expiring live sibling makes the record never expire',
      obj: {
        mode: 'dvv',
        context: { A: 1, B: 1, C: 1 },
        siblings: [
          sib({ ts: T + 1, value: v('old'), dot: ['A', 1] }),
          sib({ ts: T + 3, value: v('new'), expiresAtMs: 100, dot: ['B', 1] }),
          sib({ ts: T + 2, value: v('mid'), dot: ['C', 1] }),
        ],
      },
      want: { value: v('new'), tombstone: false, expiresAtMs: 0, contentType: '', flags: 0 },
    },
    {
      name: 'all live siblings expire: the latest expiry; tombstones do not count',
      obj: {
        mode: 'dvv',
        context: { A: 3 },
        siblings: [
          sib({ ts: T + 1, value: v('a'), expiresAtMs: 300, dot: ['A', 1] }),
          sib({ ts: T + 2, value: v('b'), expiresAtMs: 200, dot: ['A', 2] }),
          sib({ ts: T + 3, tombstone: true, expiresAtMs: 900, dot: ['A', 3] }),
        ],
      },
      want: { value: v('b'), tombstone: false, expiresAtMs: 300, contentType: '', flags: 0 },
    },
    {
      name: 'all tombstones: a tombstone record dated at the newest deletion',
      obj: {
        mode: 'dvv',
        context: { A: 1, B: 1 },
        siblings: [sib({ ts: 7_000_123, tombstone: true, dot: ['A', 1] }), sib({ ts: 5_000_999, tombstone: true, dot: ['B', 1] })],
      },
      want: { value: v(''), tombstone: true, expiresAtMs: 7_000, contentType: '', flags: 0 },
    },
  ];
  for (const c of cases) {
    const { version, ...rest } = toRecordFields(c.obj);
    t.same(rest, c.want, c.name);
    t.ok(Buffer.isBuffer(version) && version.length > 0);
    t.ok(isDeepStrictEqual(fromRecordFields({ ...rest, version }), c.obj), `${c.name}: round trip`);
  }
});

t.test('the aggregates never hide a live sibling (property)', async (t) => {
  fc.assert(
    fc.property(objectArb, (obj) => {
      const f = toRecordFields(obj);
      const live = obj.siblings.filter((s) => !s.tombstone);
      if (f.tombstone !== (live.length === 0)) return false;
      if (live.length === 0) return f.expiresAtMs === hlcToWallMs(maxTs(obj));
      if (!live.some((s) => s.value.equals(f.value) && s.flags === f.flags && s.contentType === f.contentType)) return false;
      return live.every((s) => f.expiresAtMs === 0 || (s.expiresAtMs !== 0 && s.expiresAtMs <= f.expiresAtMs));
    }),
    fcOpts,
  );
  t.pass('holds');
});

t.test('the version encoding is pinned (format 1)', async (t) => {
  // If this breaks, stored data no longer decodes the same way: bump VERSION_FORMAT instead.
  const lww = lwwObject(sib({ ts: 1_700_000_000_000_123, writer: 'c1', value: v('hi'), expiresAtMs: 5 }));
  t.equal(toRecordFields(lww).version.toString('hex'), '98010090cb43182890607901eca26331c205c0');
  const dvv: StoredObject = {
    mode: 'dvv',
    context: { B: 2, A: 1 },
    siblings: [
      sib({ ts: 10, writer: 'w', tombstone: true, dot: ['A', 1] }),
      sib({ ts: 11, writer: 'x', value: v('v'), contentType: 't', flags: 7, expiresAtMs: 99, dot: ['B', 2] }),
    ],
  };
  const f = toRecordFields(dvv);
  t.equal(f.value.toString(), 'v');
  t.equal(f.version.toString('hex'), '99010194a14101a142020ba178c26392a1420298c400c300a0000aa17792a14101');
  t.ok(isDeepStrictEqual(fromRecordFields(f), dvv));
});

t.test('a damaged version is reported as corruption', async (t) => {
  const good = toRecordFields(lwwObject(sib({ ts: T, value: v('x') })));
  const fields = (version: Buffer): RecordFields => ({ ...good, version });
  const cases: [string, Buffer][] = [
    ['empty', Buffer.alloc(0)],
    ['garbage', Buffer.from([0xc1, 0xff, 0x00])],
    ['truncated', good.version.subarray(0, good.version.length - 3)],
    ['not an array', pack({ a: 1 })],
    ['unknown format', pack([2, 0, [], T, 'w', false, 0, null])],
    ['unknown mode', pack([1, 7, [], T, 'w', false, 0, null])],
    ['short array', pack([1, 0, [], T])],
    ['odd context', pack([1, 1, ['A'], T, 'w', false, 0, ['A', 1]])],
    ['negative counter', pack([1, 1, ['A', -1], T, 'w', false, 0, ['A', 1]])],
    ['string ts', pack([1, 0, [], 'T', 'w', false, 0, null])],
    ['fractional expiry', pack([1, 0, [], T, 'w', false, 0.5, null])],
    ['non-boolean tombstone', pack([1, 0, [], T, 'w', 0, 0, null])],
    ['bad dot', pack([1, 1, ['A', 1], T, 'w', false, 0, ['A']])],
    ['dvv sibling without a dot', pack([1, 1, ['A', 1], T, 'w', false, 0, null])],
    ['lww with two siblings', pack([1, 0, [], T, 'w', false, 0, null, [v('y'), false, 0, '', 0, T, 'w', null]])],
    ['sibling with a string value', pack([1, 0, [], T, 'w', false, 0, null, ['y', false, 0, '', 0, T, 'w', null]])],
    ['short sibling', pack([1, 1, ['A', 2], T, 'w', false, 0, ['A', 1], [v('y'), false]])],
  ];
  for (const [name, version] of cases) t.throws(() => fromRecordFields(fields(version)), { code: ErrorCodes.CORRUPTION }, name);
});

t.test('objects the codec cannot encode', async (t) => {
  t.throws(() => toRecordFields({ mode: 'dvv', siblings: [], context: {} }), { code: ErrorCodes.INVALID_ARGUMENT });
  t.throws(() => toRecordFields({ mode: 'lww', siblings: [sib({ ts: 1 }), sib({ ts: 2 })], context: {} }), { code: ErrorCodes.INVALID_ARGUMENT });
  t.throws(() => toRecordFields({ mode: 'x' as 'lww', siblings: [sib({ ts: 1 })], context: {} }), { code: ErrorCodes.INVALID_ARGUMENT });
});

t.test('liveSiblings', async (t) => {
  const now = 1000;
  const obj: StoredObject = {
    mode: 'dvv',
    context: { A: 5 },
    siblings: [
      sib({ ts: 1, value: v('forever'), dot: ['A', 1] }),
      sib({ ts: 2, value: v('expired'), expiresAtMs: 999, dot: ['A', 2] }),
      sib({ ts: 3, value: v('expires-now'), expiresAtMs: 1000, dot: ['A', 3] }),
      sib({ ts: 4, value: v('later'), expiresAtMs: 1001, dot: ['A', 4] }),
      sib({ ts: 5, tombstone: true, dot: ['A', 5] }),
    ],
  };
  t.same(
    liveSiblings(obj, now).map((s) => s.value.toString()),
    ['forever', 'later'],
  );
  t.same(liveSiblings(obj, 0).map((s) => s.value.toString()), ['forever', 'expired', 'expires-now', 'later']);
  t.same(liveSiblings(lwwObject(sib({ ts: 1, tombstone: true })), now), []);
});

t.test('mergeObjects dispatches by mode', async (t) => {
  const a = lwwObject(sib({ ts: 2, value: v('a') }));
  const b = lwwObject(sib({ ts: 1, value: v('b') }));
  t.equal(mergeObjects(undefined, b), b);
  t.equal(mergeObjects(a, b), a);
  t.equal(mergeObjects(b, a), a);
  const d1 = dvvUpdate(undefined, {}, 'A', sib({ ts: 1, value: v('x') }));
  const d2 = dvvUpdate(undefined, {}, 'B', sib({ ts: 2, value: v('y') }));
  const m = mergeObjects(d1, d2);
  t.same(m.siblings.map((s) => s.dot), [['A', 1], ['B', 1]]);
  t.equal(mergeObjects(m, d1), m, 'nothing new: the local object itself');
  t.throws(() => mergeObjects(a, d1), { code: ErrorCodes.INVALID_ARGUMENT });
  t.throws(() => mergeObjects(d1, a), { code: ErrorCodes.INVALID_ARGUMENT });
});

t.test('maxTs', async (t) => {
  t.equal(maxTs(lwwObject(sib({ ts: 42 }))), 42);
  t.equal(maxTs({ mode: 'dvv', context: {}, siblings: [sib({ ts: 5, dot: ['A', 1] }), sib({ ts: 9, dot: ['A', 2] }), sib({ ts: 7, dot: ['B', 1] })] }), 9);
  t.equal(maxTs({ mode: 'dvv', context: {}, siblings: [] }), 0);
});

t.test('context tokens round-trip, are URL-safe and deterministic', async (t) => {
  fc.assert(
    fc.property(contextArb, (ctx) => {
      const tok = encodeContextToken(ctx);
      const want = Object.fromEntries(Object.entries(ctx).filter(([, c]) => c > 0)); // zero entries mean nothing
      return /^[A-Za-z0-9_-]+$/.test(tok) && isDeepStrictEqual({ ...decodeContextToken(tok) }, want);
    }),
    fcOpts,
  );
  t.equal(encodeContextToken({ B: 2, A: 1 }), encodeContextToken({ A: 1, B: 2 }), 'key order does not matter');
  t.equal(encodeContextToken({ A: 1, Z: 0 }), encodeContextToken({ A: 1 }), 'zero entries are dropped');
  t.same(decodeContextToken(encodeContextToken({})), {});
  t.same(decodeContextToken(encodeContextToken({ 'n-1': 7, 'n-2': 2 ** 40 })), { 'n-1': 7, 'n-2': 2 ** 40 });
  t.throws(() => encodeContextToken({ A: -1 }), { code: ErrorCodes.INVALID_ARGUMENT });
});

t.test('decodeContextToken rejects garbage with InvalidArgumentError', async (t) => {
  const good = encodeContextToken({ A: 1 });
  const tok = (x: unknown) => pack(x).toString('base64url');
  // A 7-byte token is 10 characters whose last one has 4 unused low bits: setting one gives
  // a string that decodes to the same bytes but is not what the encoder writes.
  const slack = encodeContextToken({ AB: 1 });
  t.equal(slack.length % 4, 2);
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
  const nonCanonical = slack.slice(0, -1) + alphabet[alphabet.indexOf(slack[slack.length - 1]!) | 1];
  t.same(Buffer.from(nonCanonical, 'base64url'), Buffer.from(slack, 'base64url'));
  const cases: [string, string][] = [
    ['empty', ''],
    ['not base64url', 'ab+/'],
    ['padding', `${good}=`],
    ['spaces', ` ${good}`],
    ['non-canonical trailing bits', nonCanonical],
    ['not msgpack', 'wf8A'],
    ['a map', tok({ A: 1 })],
    ['wrong format', tok([2, ['A', 1]])],
    ['extra element', tok([1, ['A', 1], 0])],
    ['odd entries', tok([1, ['A']])],
    ['zero counter', tok([1, ['A', 0]])],
    ['negative counter', tok([1, ['A', -3]])],
    ['fractional counter', tok([1, ['A', 1.5]])],
    ['numeric node', tok([1, [5, 1]])],
    ['empty node', tok([1, ['', 1]])],
    ['unsorted', tok([1, ['B', 1, 'A', 1]])],
    ['duplicate', tok([1, ['A', 1, 'A', 2]])],
    ['too long', 'A'.repeat(16 * 1024 + 4)],
  ];
  for (const [name, s] of cases) t.throws(() => decodeContextToken(s), { code: ErrorCodes.INVALID_ARGUMENT }, name);
  t.throws(() => decodeContextToken(5 as unknown as string), { code: ErrorCodes.INVALID_ARGUMENT }, 'not a string');
});

t.test('versionString', async (t) => {
  t.equal(versionString(lwwObject(sib({ ts: 1_700_000_000_000_001, writer: 'client-9' }))), '1700000000000001-client-9');
  const d = dvvUpdate(dvvUpdate(undefined, {}, 'A', sib({ ts: 1 })), {}, 'B', sib({ ts: 2 }));
  const s = versionString(d);
  t.equal(s, encodeContextToken(d.context));
  t.same(decodeContextToken(s), { A: 1, B: 1 });
});
