// The data-type stored object (mode 'crdt'): its record round-trips with a version that names
// the state (a digest, so Merkle leaves see two states differ), and mergeObjects dispatches:
// two states of one type merge, a data type wins over a plain value in either order, two
// types converge on the greater type code in either order, equal bytes return the local one.

import t from 'tap';
import type { CrdtState } from '../../../sdk/crdt/index.js';
import { crdtApply, crdtValue } from '../../../sdk/crdt/index.js';
import { crdtStateOf, crdtToObject, crdtTypeOf, mergeCrdtObjects } from '../../../sdk/crdt/crdt-object.js';
import type { StoredObject } from '../../../sdk/versioning/index.js';
import { fromRecordFields, mergeObjects, objectsEqual, toRecordFields, versionString } from '../../../sdk/versioning/index.js';

const T0 = 1_700_000_000_000;
const id = (s: string) => Buffer.from(s);

function counter(actor: string, n: number, op: string, base?: CrdtState): CrdtState {
  return crdtApply(base, { type: 'counter', increment: n }, actor, id(op), T0);
}

const plain: StoredObject = {
  mode: 'lww',
  siblings: [{ value: Buffer.from('v'), tombstone: false, expiresAtMs: 0, contentType: 'text/plain', flags: 0, ts: (T0 + 9_999_999) * 1000, writer: 'zz' }],
  context: {},
};

t.test('the record of a data type: the state is the value, the version a digest of it', async (t) => {
  const a = crdtToObject(counter('n1#00000001', 5, 'a'));
  const b = crdtToObject(counter('n1#00000001', 6, 'a'));
  const fa = toRecordFields(a);
  t.same(fa.value, a.siblings[0]!.value);
  t.equal(fa.tombstone, false);
  t.equal(fa.expiresAtMs, 0);
  const back = fromRecordFields(fa);
  t.equal(back.mode, 'crdt');
  t.ok(objectsEqual(back, a), 'round trip');
  t.equal(crdtValue(crdtStateOf(back)), 5);
  t.notSame(toRecordFields(b).version, fa.version, 'two states, two versions (what the Merkle leaf hashes cover)');
  t.same(toRecordFields(crdtToObject(crdtStateOf(a))).version, fa.version, 'equal states, equal versions');
  t.equal(versionString(a), versionString(back));
  t.throws(() => fromRecordFields({ ...fa, version: Buffer.from([0x93, 1, 2, 0xc0]) }), { code: 'CORRUPTION' });
  t.equal(crdtTypeOf(fa.value), 'counter');
});

t.test('mergeObjects of data types', async (t) => {
  const a = crdtToObject(counter('n1#00000001', 5, 'a'));
  const b = crdtToObject(counter('n2#00000002', 2, 'b'));
  const ab = mergeObjects(a, b);
  t.equal(crdtValue(crdtStateOf(ab)), 7, 'two counters merge');
  t.ok(objectsEqual(ab, mergeObjects(b, a)), 'commutative');
  t.equal(mergeObjects(ab, a), ab, 'merging what it has seen returns the local object');
  t.equal(mergeObjects(a, crdtToObject(crdtStateOf(a))), a, 'equal bytes: the local object');
  t.equal(mergeObjects(a, plain), a, 'a data type wins over a newer plain value');
  t.equal(mergeObjects(plain, a), a, 'in either order');
  const set = crdtToObject(crdtApply(undefined, { type: 'set', add: ['x'] }, 'n3#00000003', id('c'), T0));
  t.equal(mergeCrdtObjects(a, set), set, 'a set wins over a counter');
  t.equal(mergeCrdtObjects(set, a), set, 'in either order');
  const map = crdtToObject(crdtApply(undefined, { type: 'map', updates: [{ name: 'f', op: { type: 'flag', enable: true } }] }, 'n3#00000003', id('d'), T0));
  t.equal(mergeObjects(mergeObjects(a, set), map), map);
  t.equal(mergeObjects(a, mergeObjects(set, map)), map, 'associative');
});
