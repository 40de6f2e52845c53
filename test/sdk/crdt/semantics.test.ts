// The semantics of each data type on small hand-made histories: add-wins removes with and
// without a context, deferred removes, map fields and flags, the LWW register, the value
// views, WRONG_TYPE, validation, and that inputs are never mutated. Deterministic.

import t from 'tap';
import { ErrorCodes, isNotAppliedCode, httpStatusForCode } from '../../../sdk/errors.js';
import type { CrdtOp, CrdtState, VersionVector } from '../../../sdk/crdt/index.js';
import {
  crdtApply,
  crdtMerge,
  crdtValue,
  crdtView,
  decodeCrdtContext,
  emptyCrdt,
  encodeCrdt,
} from '../../../sdk/crdt/index.js';

let nextId = 1;
/** Applies `op` at `node` as a fresh operation id. */
function at(state: CrdtState | undefined, node: string, op: CrdtOp, nowMs = 1000): CrdtState {
  const id = Buffer.alloc(4);
  id.writeUInt32BE(nextId++);
  return crdtApply(state, op, node, id, nowMs);
}
const merge = (...states: CrdtState[]): CrdtState => states.reduce((a, b) => crdtMerge(a, b));
const ctxOf = (s: CrdtState): VersionVector => decodeCrdtContext(crdtView(s).context).context;

t.test('set: a remove whose context saw the add removes it, on every replica', async (t) => {
  const a = at(undefined, 'A', { type: 'set', add: ['x', 'y'] });
  const b = merge(emptyCrdt('set'), a);
  const read = ctxOf(a);
  const b2 = at(b, 'B', { type: 'set', remove: ['x'], context: read });
  t.same(crdtValue(b2), ['y']);
  t.same(crdtValue(merge(a, b2)), ['y'], 'the stale replica A merges the remove: x stays removed');
  t.same(crdtValue(merge(b2, a)), ['y']);
});

t.test('set: an add concurrent with a remove survives it (add wins)', async (t) => {
  const a = at(undefined, 'A', { type: 'set', add: ['x'] });
  const read = ctxOf(a);
  const c = at(merge(emptyCrdt('set'), a), 'C', { type: 'set', add: ['x'] }); // C adds x again, unseen by the read
  const a2 = at(a, 'A', { type: 'set', remove: ['x'], context: read });
  t.same(crdtValue(a2), []);
  t.same(crdtValue(merge(a2, c)), ['x'], 'the concurrent add survives');
  t.same(crdtValue(merge(c, a2)), ['x']);
  // A remove whose context saw both adds removes x for good.
  const all = merge(a2, c);
  const gone = at(all, 'B', { type: 'set', remove: ['x'], context: ctxOf(all) });
  t.same(crdtValue(merge(gone, a, c, a2)), []);
});

t.test('set: a remove without context removes what the coordinator has seen, and only that', async (t) => {
  const a = at(undefined, 'A', { type: 'set', add: ['x'] });
  const c = at(undefined, 'C', { type: 'set', add: ['x'] }); // an add A has not seen yet
  const a2 = at(a, 'A', { type: 'set', remove: ['x'] });
  t.same(crdtValue(a2), []);
  t.same(crdtValue(merge(a2, c)), ['x'], "C's add, unseen by the coordinator, comes back: the caveat of removes without context");
  const both = merge(a, c);
  t.same(crdtValue(at(both, 'A', { type: 'set', remove: ['x'] })), [], 'a coordinator that has seen both adds removes both');
  const noop = at(a, 'A', { type: 'set', remove: ['absent'] });
  t.same(crdtValue(noop), ['x'], 'removing an absent member is a no-op, not an error');
});

t.test('set: a remove with a context the coordinator has not seen is deferred until it has', async (t) => {
  const a = at(undefined, 'A', { type: 'set', add: ['x', 'y'] });
  const read = ctxOf(a); // from replica A
  const b = at(undefined, 'B', { type: 'set', remove: ['x'], context: read }); // B has seen nothing of A
  t.equal(b.deferred.length, 1, 'kept as a deferred remove');
  t.same(crdtValue(b), []);
  const c = at(merge(emptyCrdt('set'), a), 'C', { type: 'set', add: ['x'] }); // concurrent with the remove
  const m1 = merge(b, a);
  t.same(crdtValue(m1), ['y'], "A's add of x arrives at B and is removed there");
  t.equal(m1.deferred.length, 0, "dropped once B's context covers the remove's");
  t.same(crdtValue(merge(a, b)), ['y']);
  t.same(crdtValue(merge(b, c, a)), ['x', 'y'], 'the concurrent add by C still wins');
  t.same(crdtValue(merge(a, c, b)), ['x', 'y']);
});

t.test('a deferred remove outlives merges that do not bring what it removes', async (t) => {
  const a = at(undefined, 'A', { type: 'set', add: ['x'] });
  const b = at(undefined, 'B', { type: 'set', remove: ['x'], context: ctxOf(a) });
  const c = at(undefined, 'C', { type: 'set', add: ['z'] });
  const bc = merge(b, c);
  t.equal(bc.deferred.length, 1, "still deferred: B has not seen A's add yet");
  t.same(crdtValue(merge(bc, a)), ['z'], "A's add arrives later and is removed then");
  t.same(crdtValue(merge(a, merge(c, b))), ['z']);
});

t.test('a remove with an old context, at a coordinator that has seen newer updates, keeps them', async (t) => {
  // The coordinator holds an update the client's context did not see: it must survive.
  const a = at(undefined, 'A', { type: 'set', add: ['x'] });
  const read = ctxOf(a);
  const a2 = at(a, 'A', { type: 'set', add: ['x'] });
  t.same(crdtValue(at(a2, 'A', { type: 'set', remove: ['x'], context: read })), ['x'], 'set member re-added after the read');

  const f = at(undefined, 'A', { type: 'map', updates: [{ name: 'f', op: { type: 'flag', enable: true } }, { name: 'n', op: { type: 'counter', increment: 1 } }] });
  const fRead = ctxOf(f);
  const f2 = at(f, 'B', { type: 'map', updates: [{ name: 'f', op: { type: 'flag', enable: true } }, { name: 'n', op: { type: 'counter', increment: 10 } }] });
  const off = at(f2, 'A', { type: 'map', updates: [{ name: 'f', op: { type: 'flag', enable: false } }], removes: [{ name: 'n', type: 'counter' }], context: fRead });
  t.same(crdtValue(off), { f_flag: true, n_counter: 10 }, 'the enable and the increment the read did not see survive');
});

t.test('set: members are strings, the view is sorted in code-unit order', async (t) => {
  const s = at(undefined, 'A', { type: 'set', add: ['b', 'é', 'a', '', '😀', 'Z'] });
  t.same(crdtValue(s), ['', 'Z', 'a', 'b', 'é', '😀']);
  const v = crdtView(s);
  t.equal(v.type, 'set');
  t.match(v.context, /^[A-Za-z0-9_-]+$/);
});

t.test('counter: increments and decrements from several nodes add up once merged', async (t) => {
  const a = at(at(undefined, 'A', { type: 'counter', increment: 5 }), 'A', { type: 'counter', increment: -2 });
  const b = at(undefined, 'B', { type: 'counter', increment: 10 });
  const c = at(merge(emptyCrdt('counter'), b), 'C', { type: 'counter', increment: -1 });
  t.equal(crdtValue(merge(a, b, c)), 12);
  t.equal(crdtValue(merge(c, a, b, a, c)), 12);
  t.equal(crdtValue(emptyCrdt('counter')), 0);
});

t.test('register: the highest timestamp wins whatever the order, the writer breaks ties', async (t) => {
  const r1 = at(undefined, 'A', { type: 'register', assign: 'old', ts: 100, writer: 'c1' });
  const r2 = at(undefined, 'B', { type: 'register', assign: 'new', ts: 200, writer: 'c0' });
  t.equal(crdtValue(merge(r1, r2)), 'new');
  t.equal(crdtValue(merge(r2, r1)), 'new');
  const late = at(merge(r1, r2), 'A', { type: 'register', assign: 'stale-clock', ts: 150, writer: 'c9' });
  t.equal(crdtValue(late), 'new', 'an assignment stamped below the current value loses, as in last-write-wins');
  const tie = at(undefined, 'C', { type: 'register', assign: 'tie', ts: 200, writer: 'c1' });
  t.equal(crdtValue(merge(r2, tie)), 'tie', 'same ts: the greater writer wins');
  t.equal(crdtValue(emptyCrdt('register')), null);
  const sup = at(merge(r1, r2), 'A', { type: 'register', assign: 'newest', ts: 300, writer: 'c0' });
  t.equal(sup.store.kind === 'register' && sup.store.entries.length, 1, 'an assignment that wins drops the entries it saw');
});

t.test('map: fields by (name, type), the view, nested maps and flags', async (t) => {
  const m = at(undefined, 'A', {
    type: 'map',
    updates: [
      { name: 'visits', op: { type: 'counter', increment: 3 } },
      { name: 'visits', op: { type: 'set', add: ['home'] } },
      { name: 'name', op: { type: 'register', assign: 'Ada', ts: 5, writer: 'c' } },
      { name: 'admin', op: { type: 'flag', enable: true } },
      { name: 'address', op: { type: 'map', updates: [{ name: 'city', op: { type: 'register', assign: 'Paris', ts: 5, writer: 'c' } }] } },
    ],
  });
  t.same(crdtValue(m), {
    address_map: { city_register: 'Paris' },
    admin_flag: true,
    name_register: 'Ada',
    visits_counter: 3,
    visits_set: ['home'],
  });
  t.same(Object.keys(crdtValue(m) as object), ['address_map', 'admin_flag', 'name_register', 'visits_counter', 'visits_set'], 'fields in name, then type order');
  const proto = at(undefined, 'A', { type: 'map', updates: [{ name: '__proto__', op: { type: 'counter', increment: 1 } }] });
  t.same(Object.keys(crdtValue(proto) as object), ['__proto___counter'], 'a field named __proto__ is a plain property');
});

t.test('map: a field remove resets what its context saw; a concurrent update keeps the field', async (t) => {
  const a = at(undefined, 'A', { type: 'map', updates: [{ name: 'n', op: { type: 'counter', increment: 5 } }, { name: 's', op: { type: 'set', add: ['p'] } }] });
  const read = ctxOf(a);
  const b = at(merge(emptyCrdt('map'), a), 'B', {
    type: 'map',
    updates: [
      { name: 'n', op: { type: 'counter', increment: 2 } },
      { name: 's', op: { type: 'set', add: ['q'] } },
    ],
  });
  const a2 = at(a, 'A', { type: 'map', removes: [{ name: 'n', type: 'counter' }, { name: 's', type: 'set' }], context: read });
  t.same(crdtValue(a2), {});
  t.same(crdtValue(merge(a2, b)), { n_counter: 2, s_set: ['q'] }, 'the concurrent update survives: only what it added is left');
  t.same(crdtValue(merge(b, a2)), { n_counter: 2, s_set: ['q'] });
  const all = merge(a2, b);
  const gone = at(all, 'C', { type: 'map', removes: [{ name: 'n', type: 'counter' }, { name: 's', type: 'set' }], context: ctxOf(all) });
  t.same(crdtValue(merge(gone, a, b, a2)), {}, 'a remove that saw everything removes the fields for good');
  const readded = at(gone, 'C', { type: 'map', updates: [{ name: 'n', op: { type: 'counter', increment: 1 } }] });
  t.same(crdtValue(merge(readded, a, b)), { n_counter: 1 }, 'a field added again starts from zero');
});

t.test('map: removing a nested map removes what the context saw inside it', async (t) => {
  const a = at(undefined, 'A', {
    type: 'map',
    updates: [{ name: 'inner', op: { type: 'map', updates: [{ name: 'k', op: { type: 'counter', increment: 4 } }, { name: 'f', op: { type: 'flag', enable: true } }] } }],
  });
  const read = ctxOf(a);
  const b = at(merge(emptyCrdt('map'), a), 'B', { type: 'map', updates: [{ name: 'inner', op: { type: 'map', updates: [{ name: 'k', op: { type: 'counter', increment: 1 } }] } }] });
  const a2 = at(a, 'A', { type: 'map', removes: [{ name: 'inner', type: 'map' }], context: read });
  t.same(crdtValue(merge(a2, b)), { inner_map: { k_counter: 1 } }, "the flag and A's 4 are gone; B's concurrent 1 stays");
});

t.test('map flags: enable wins over a concurrent disable; a disable that saw every enable wins', async (t) => {
  const on = (s: CrdtState | undefined, node: string) => at(s, node, { type: 'map', updates: [{ name: 'f', op: { type: 'flag', enable: true } }] });
  const a = on(undefined, 'A');
  const read = ctxOf(a);
  const c = on(merge(emptyCrdt('map'), a), 'C');
  const off = at(a, 'A', { type: 'map', updates: [{ name: 'f', op: { type: 'flag', enable: false } }], context: read });
  t.same(crdtValue(off), { f_flag: false }, 'disabled: the field stays, with false');
  t.same(crdtValue(merge(off, c)), { f_flag: true }, 'the concurrent enable wins');
  const both = merge(off, c);
  const off2 = at(both, 'B', { type: 'map', updates: [{ name: 'f', op: { type: 'flag', enable: false } }] });
  t.same(crdtValue(merge(off2, a, c)), { f_flag: false });
});

t.test('map: a deferred field remove removes the field when its events arrive', async (t) => {
  const a = at(undefined, 'A', { type: 'map', updates: [{ name: 'n', op: { type: 'counter', increment: 7 } }, { name: 'keep', op: { type: 'counter', increment: 1 } }] });
  const b = at(undefined, 'B', { type: 'map', removes: [{ name: 'n', type: 'counter' }], context: ctxOf(a) });
  t.equal(b.deferred.length, 1);
  t.same(crdtValue(merge(b, a)), { keep_counter: 1 });
  t.same(crdtValue(merge(a, b)), { keep_counter: 1 });
  t.equal(merge(a, b).deferred.length, 0);
});

t.test('WRONG_TYPE: an operation or a merge across types is refused with 409', async (t) => {
  const counter = at(undefined, 'A', { type: 'counter', increment: 1 });
  const set = at(undefined, 'A', { type: 'set', add: ['x'] });
  const before = encodeCrdt(counter);
  t.throws(() => at(counter, 'A', { type: 'set', add: ['x'] }), { code: ErrorCodes.WRONG_TYPE, details: { expected: 'counter', got: 'set' } });
  t.ok(encodeCrdt(counter).equals(before), 'nothing changed');
  t.throws(() => crdtMerge(counter, set), { code: ErrorCodes.WRONG_TYPE });
  t.throws(() => decodeCrdtContext(crdtView(set).context, 'map'), { code: ErrorCodes.WRONG_TYPE });
  t.equal(httpStatusForCode.WRONG_TYPE, 409);
  t.ok(isNotAppliedCode(ErrorCodes.WRONG_TYPE), 'a replica that refuses with WRONG_TYPE applied nothing');
});

t.test('malformed operations are refused with INVALID_ARGUMENT before anything changes', async (t) => {
  const id = Buffer.from([1]);
  const bad: [string, () => unknown][] = [
    ['a flag at key level', () => crdtApply(undefined, { type: 'flag', enable: true } as unknown as CrdtOp, 'A', id, 1)],
    ['an unknown type', () => crdtApply(undefined, { type: 'hll' } as unknown as CrdtOp, 'A', id, 1)],
    ['an empty set operation', () => crdtApply(undefined, { type: 'set' }, 'A', id, 1)],
    ['a member added and removed', () => crdtApply(undefined, { type: 'set', add: ['x'], remove: ['x'] }, 'A', id, 1)],
    ['a member that is not a string', () => crdtApply(undefined, { type: 'set', add: [1 as unknown as string] }, 'A', id, 1)],
    ['a lone surrogate', () => crdtApply(undefined, { type: 'set', add: ['\uD800'] }, 'A', id, 1)],
    ['a fractional increment', () => crdtApply(undefined, { type: 'counter', increment: 1.5 }, 'A', id, 1)],
    ['an unsafe increment', () => crdtApply(undefined, { type: 'counter', increment: 2 ** 53 }, 'A', id, 1)],
    ['a negative ts', () => crdtApply(undefined, { type: 'register', assign: 'x', ts: -1, writer: 'w' }, 'A', id, 1)],
    ['an empty map operation', () => crdtApply(undefined, { type: 'map' }, 'A', id, 1)],
    ['a field twice', () => crdtApply(undefined, { type: 'map', updates: [{ name: 'f', op: { type: 'counter', increment: 1 } }], removes: [{ name: 'f', type: 'counter' }] }, 'A', id, 1)],
    ['an empty field name', () => crdtApply(undefined, { type: 'map', updates: [{ name: '', op: { type: 'counter', increment: 1 } }] }, 'A', id, 1)],
    ['a context on a field', () => crdtApply(undefined, { type: 'map', updates: [{ name: 's', op: { type: 'set', add: ['x'], context: {} } }] }, 'A', id, 1)],
    ['a bad context', () => crdtApply(undefined, { type: 'set', remove: ['x'], context: { A: -1 } }, 'A', id, 1)],
    ['an empty op id', () => crdtApply(undefined, { type: 'counter', increment: 1 }, 'A', Buffer.alloc(0), 1)],
    ['a 65-byte op id', () => crdtApply(undefined, { type: 'counter', increment: 1 }, 'A', Buffer.alloc(65), 1)],
    ['an empty node id', () => crdtApply(undefined, { type: 'counter', increment: 1 }, '', id, 1)],
    ['a negative time', () => crdtApply(undefined, { type: 'counter', increment: 1 }, 'A', id, -1)],
    ['a bad window option', () => crdtApply(undefined, { type: 'counter', increment: 1 }, 'A', id, 1, { maxOpIds: 0 })],
  ];
  for (const [what, f] of bad) t.throws(f, { code: ErrorCodes.INVALID_ARGUMENT }, what);
  let deep: CrdtOp = { type: 'map', updates: [{ name: 'x', op: { type: 'counter', increment: 1 } }] };
  for (let i = 0; i < 40; i++) deep = { type: 'map', updates: [{ name: 'x', op: deep as CrdtOp & { type: 'map' } }] };
  t.throws(() => crdtApply(undefined, deep, 'A', id, 1), { code: ErrorCodes.INVALID_ARGUMENT }, 'maps nested too deep');

  const big = crdtApply(undefined, { type: 'counter', increment: Number.MAX_SAFE_INTEGER }, 'A', id, 1);
  const before = encodeCrdt(big);
  t.throws(() => crdtApply(big, { type: 'counter', increment: 1 }, 'A', Buffer.from([2]), 1), { code: ErrorCodes.INVALID_ARGUMENT }, 'a counter past 2^53 - 1');
  t.ok(encodeCrdt(big).equals(before), 'nothing changed');
  t.equal(crdtValue(crdtApply(big, { type: 'counter', increment: -5 }, 'A', Buffer.from([3]), 1)), Number.MAX_SAFE_INTEGER - 5, 'decrements are counted apart');
});

t.test('apply, merge and value never mutate their inputs', async (t) => {
  const a = at(undefined, 'A', { type: 'map', updates: [{ name: 's', op: { type: 'set', add: ['x'] } }, { name: 'n', op: { type: 'counter', increment: 1 } }] });
  const b = at(merge(emptyCrdt('map'), a), 'B', { type: 'map', removes: [{ name: 's', type: 'set' }], updates: [{ name: 'n', op: { type: 'counter', increment: 1 } }] });
  const ea = encodeCrdt(a);
  const eb = encodeCrdt(b);
  const op: CrdtOp = { type: 'map', updates: [{ name: 's', op: { type: 'set', add: ['y'] } }], context: { ...b.context } };
  const opJson = JSON.stringify(op);
  at(a, 'A', op);
  at(b, 'B', op);
  crdtMerge(a, b);
  crdtMerge(b, a);
  crdtValue(merge(a, b));
  t.ok(encodeCrdt(a).equals(ea) && encodeCrdt(b).equals(eb), 'states unchanged');
  t.equal(JSON.stringify(op), opJson, 'operation unchanged');
});
