// Direct tests of the replica store's data-type rules (no servers): a DtUpdate is applied as
// the node's actor and a retry of its operation id is not applied again; merges join states
// (a retry applied at two replicas counts once) and keep no write for a merge that adds
// nothing, however much time passed; a key holds one data type (plain writes and other types
// are WRONG_TYPE, a plain value is replaced by a data type, two types converge on one); a
// malformed state from the wire is INVALID_ARGUMENT and stores nothing; a purge of a key
// holding the actor's dots retires the actor; foldGone moves a gone node's entries.

import t from 'tap';
import { ManualClock } from '../../sdk/clock.js';
import { ErrorCodes } from '../../sdk/errors.js';
import type { CrdtOp, CrdtState } from '../../sdk/crdt/index.js';
import { crdtValue, decodeCrdt } from '../../sdk/crdt/index.js';
import { crdtToObject } from '../../sdk/crdt/crdt-object.js';
import type { StoredObject } from '../../sdk/versioning/index.js';
import type { WireResult } from '../../sdk/wire/protocol.js';
import { OpType } from '../../sdk/wire/protocol.js';
import { Engine, MemoryFileSystem } from '../../storage-server/engine/index.js';
import { DotCounter } from '../../storage-server/dot-counter.js';
import { ReplicaStore, engineKeyOf } from '../../storage-server/replica-store.js';
import { nodeOfActor } from '../../storage-server/anti-entropy/fold-pass.js';

const T0 = 1_700_000_000_000;

async function store(clock: ManualClock, id: string, opWindowMs = 600_000): Promise<{ s: ReplicaStore; e: Engine; dots: DotCounter; hints: StoredObject[] }> {
  const fs = new MemoryFileSystem();
  await fs.mkdirp('/db');
  const e = await Engine.open('/db', { fs, clock, maxKeyBytes: 260 });
  const dots = await DotCounter.open('/ACTOR', '/ACTOR.tmp', id, { fs });
  const hints: StoredObject[] = [];
  const sink = async (_target: string, _key: Buffer, obj: StoredObject) => void hints.push(obj);
  return { s: new ReplicaStore(e, id, clock, sink, { dots, crdt: { opWindowMs } }), e, dots, hints };
}

function ok(r: WireResult): Extract<WireResult, { ok: true }> {
  if (!r.ok) throw new Error(`${r.code}: ${r.msg}`);
  return r;
}

function stateOf(obj: StoredObject | null | undefined): CrdtState {
  if (!obj || obj.mode !== 'crdt') throw new Error(`not a data type: ${obj?.mode}`);
  return decodeCrdt(obj.siblings[0]!.value);
}

async function update(s: ReplicaStore, key: Buffer, op: CrdtOp, id: string): Promise<WireResult> {
  return s.apply({ t: OpType.DtUpdate, key, op, id: Buffer.from(id) });
}

const k = Buffer.from('likes');
const inc = (n: number): CrdtOp => ({ type: 'counter', increment: n });

t.test('a DtUpdate is applied as the node\'s actor; the same operation id again is not applied', async (t) => {
  const clock = new ManualClock(T0);
  const { s, dots } = await store(clock, 'n1');
  const r1 = ok(await update(s, k, inc(5), 'op-1'));
  t.equal(r1.created, true);
  t.equal(crdtValue(stateOf(r1.obj)), 5);
  t.same(Object.keys(stateOf(r1.obj).context), [dots.actor], 'the event is the node\'s actor\'s (`<id>#<epoch>`), not the client\'s');
  clock.advance(1000);
  const r2 = ok(await update(s, k, inc(5), 'op-1'));
  t.equal(crdtValue(stateOf(r2.obj)), 5, 'a retry with the same id: applied once');
  t.equal(s.counters.dtRetries, 1);
  ok(await update(s, k, inc(2), 'op-2'));
  t.equal(crdtValue(stateOf(await s.get(k))), 7);
});

t.test('a retry that reached two replicas counts once once their states meet, and stays so after the window', async (t) => {
  const clock = new ManualClock(T0);
  const { s: a } = await store(clock, 'n1', 60_000);
  const { s: b } = await store(clock, 'n2', 60_000);
  ok(await update(a, k, inc(3), 'x'));
  clock.advance(10);
  ok(await update(b, k, inc(3), 'x')); // the same operation, retried at another coordinator
  ok(await a.apply({ t: OpType.Merge, key: k, obj: (await b.get(k))! }));
  t.equal(crdtValue(stateOf(await a.get(k))), 3, 'merged: the duplicate does not count');
  clock.advance(120_000); // both records leave the window
  ok(await update(a, k, inc(1), 'y'));
  ok(await b.apply({ t: OpType.Merge, key: k, obj: (await a.get(k))! }));
  t.equal(crdtValue(stateOf(await a.get(k))), 4, 'after the window the duplicate stays dropped');
  t.equal(crdtValue(stateOf(await b.get(k))), 4);
});

t.test('a merge that adds nothing writes nothing, however much time passed since the state was made', async (t) => {
  const clock = new ManualClock(T0);
  const { s: a } = await store(clock, 'n1');
  const { s: b } = await store(clock, 'n2');
  ok(await update(a, k, inc(1), 'x'));
  ok(await b.apply({ t: OpType.Merge, key: k, obj: (await a.get(k))! }));
  const held = (await b.get(k))!;
  clock.advance(30_000);
  const before = b.counters.unchangedMerges;
  ok(await b.apply({ t: OpType.Merge, key: k, obj: (await a.get(k))! }));
  t.equal(b.counters.unchangedMerges, before + 1, 'the same state again: nothing written');
  t.ok((await b.get(k))!.siblings[0]!.value.equals(held.siblings[0]!.value), 'the replicas hold the same bytes (anti-entropy sees them equal)');
  t.ok((await a.get(k))!.siblings[0]!.value.equals(held.siblings[0]!.value));
});

t.test('a key holds one data type: plain writes and other types are WRONG_TYPE; a plain value is replaced', async (t) => {
  const clock = new ManualClock(T0);
  const { s } = await store(clock, 'n1');
  ok(await update(s, k, inc(1), 'a'));
  const plain: StoredObject = {
    mode: 'lww',
    siblings: [{ value: Buffer.from('v'), tombstone: false, expiresAtMs: 0, contentType: '', flags: 0, ts: (T0 + 5) * 1000, writer: 'c' }],
    context: {},
  };
  let r = await s.apply({ t: OpType.Put, key: k, obj: plain });
  t.match(r, { ok: false, code: ErrorCodes.WRONG_TYPE }, 'a plain put on a counter');
  r = await s.apply({ t: OpType.CoordinatedPut, key: k, ctx: {}, sib: { ...plain.siblings[0]! } });
  t.match(r, { ok: false, code: ErrorCodes.WRONG_TYPE }, 'a vector-clock put on a counter');
  r = await update(s, k, { type: 'set', add: ['x'] }, 'b');
  t.match(r, { ok: false, code: ErrorCodes.WRONG_TYPE }, 'a set update on a counter');
  ok(await s.apply({ t: OpType.Merge, key: k, obj: plain }));
  t.equal(stateOf(await s.get(k)).type, 'counter', 'a plain version merged in (a repair) loses to the data type');

  const p = Buffer.from('plain');
  ok(await s.apply({ t: OpType.Put, key: p, obj: plain }));
  t.match(await update(s, p, inc(1), 'c'), { ok: false, code: ErrorCodes.WRONG_TYPE }, 'an update of a key holding a live plain value');
  const other = await store(clock, 'n2');
  ok(await other.s.apply({ t: OpType.DtUpdate, key: p, op: inc(2), id: Buffer.from('d') }));
  ok(await s.apply({ t: OpType.Merge, key: p, obj: (await other.s.get(p))! }));
  t.equal(crdtValue(stateOf(await s.get(p))), 2, 'a data type created elsewhere replaces the plain value here');

  const d = Buffer.from('deleted');
  ok(await s.apply({ t: OpType.Put, key: d, obj: { ...plain, siblings: [{ ...plain.siblings[0]!, tombstone: true, value: Buffer.alloc(0) }] } }));
  ok(await update(s, d, inc(4), 'e'));
  t.equal(crdtValue(stateOf(await s.get(d))), 4, 'a deleted plain key can become a data type');
});

t.test('two types created concurrently converge on the greater type code; the loser learns it lost', async (t) => {
  const clock = new ManualClock(T0);
  const { s: a } = await store(clock, 'n1');
  const { s: b } = await store(clock, 'n2');
  ok(await update(a, k, inc(1), 'a'));
  ok(await update(b, k, { type: 'set', add: ['x'] }, 'b'));
  const counter = (await a.get(k))!;
  const set = (await b.get(k))!;
  const lost = ok(await b.apply({ t: OpType.Merge, key: k, obj: counter }));
  t.equal(lost.won, false, 'the counter loses to the set (type code 0 < 1): its update does not take effect there');
  t.equal(stateOf(await b.get(k)).type, 'set');
  const won = ok(await a.apply({ t: OpType.Merge, key: k, obj: set }));
  t.not(won.won, false);
  t.equal(stateOf(await a.get(k)).type, 'set', 'both replicas hold the set');
});

t.test('a malformed data-type state from the wire is INVALID_ARGUMENT and nothing is stored', async (t) => {
  const clock = new ManualClock(T0);
  const { s, hints } = await store(clock, 'n1');
  const bad: StoredObject = { mode: 'crdt', siblings: [{ value: Buffer.from([0x98, 1, 0, 1, 2]), tombstone: false, expiresAtMs: 0, contentType: '', flags: 0, ts: 0, writer: '' }], context: {} };
  t.match(await s.apply({ t: OpType.Merge, key: k, obj: bad }), { ok: false, code: ErrorCodes.INVALID_ARGUMENT });
  t.match(await s.apply({ t: OpType.Merge, key: k, obj: bad, hintFor: 'n9' }), { ok: false, code: ErrorCodes.INVALID_ARGUMENT }, 'not kept as a hint either');
  t.equal(hints.length, 0);
  t.equal(await s.get(k), null);
  t.match(await s.apply({ t: OpType.DtUpdate, key: k, op: inc(1), id: Buffer.alloc(0) }), { ok: false, code: ErrorCodes.INVALID_ARGUMENT }, 'an empty operation id');
  t.match(await s.apply({ t: OpType.DtUpdate, key: k, op: { type: 'counter', increment: 1.5 }, id: Buffer.from('z') }), { ok: false, code: ErrorCodes.INVALID_ARGUMENT });
  t.equal(await s.get(k), null);
});

t.test('a purge of a data-type key holding the actor\'s dots retires the actor; a later update starts a new actor', async (t) => {
  const clock = new ManualClock(T0);
  const { s, dots } = await store(clock, 'n1');
  const { s: peer } = await store(clock, 'n2');
  ok(await update(s, k, inc(1), 'a'));
  ok(await update(s, k, inc(1), 'b'));
  ok(await peer.apply({ t: OpType.Merge, key: k, obj: (await s.get(k))! }));
  const before = dots.actor;
  t.equal(await s.purge(k), true);
  t.not(dots.actor, before, 'the actor is retired');
  ok(await update(s, k, inc(10), 'c'));
  ok(await peer.apply({ t: OpType.Merge, key: k, obj: (await s.get(k))! }));
  t.equal(crdtValue(stateOf(await peer.get(k))), 12, 'the new update is not taken for one the peer has seen (with the old actor its dot would be :1 again, and lost)');
});

t.test('foldGone moves a gone node\'s out-of-window entries into this node; merging the stale copy back changes nothing', async (t) => {
  const clock = new ManualClock(T0);
  const { s: a, dots } = await store(clock, 'n1', 1000);
  const { s: gone } = await store(clock, 'n4', 1000);
  ok(await update(gone, k, inc(7), 'a'));
  ok(await update(gone, k, inc(3), 'b'));
  ok(await update(a, k, inc(1), 'c'));
  const stale = (await gone.get(k))!;
  ok(await a.apply({ t: OpType.Merge, key: k, obj: stale }));
  clock.advance(5000);
  const isGone = (actor: string) => nodeOfActor(actor) === 'n4';
  const folded = await a.foldGone(k, isGone);
  t.ok(folded, 'folded');
  const st = stateOf(folded);
  t.equal(crdtValue(st), 11, 'the value is unchanged');
  t.ok(st.store.kind === 'counter' && st.store.entries.every((e) => !isGone(e.dot[0])), 'no entry of n4 is left');
  t.ok(st.store.kind === 'counter' && st.store.entries.some((e) => e.dot[0] === dots.actor && e.p === 10), 'n4\'s 10 is now an entry of n1');
  ok(await a.apply({ t: OpType.Merge, key: k, obj: stale }));
  t.equal(crdtValue(stateOf(await a.get(k))), 11, 'the stale copy merged back does not count n4 twice');
  t.equal(await a.foldGone(k, isGone), null, 'nothing left to fold');
});

t.test('crdtToObject and the record codec: the version names the state', async (t) => {
  const clock = new ManualClock(T0);
  const { s } = await store(clock, 'n1');
  ok(await update(s, k, inc(1), 'a'));
  const one = (await s.get(k))!;
  t.equal(one.mode, 'crdt');
  t.same(crdtToObject(stateOf(one)).siblings[0]!.value, one.siblings[0]!.value, 'canonical: re-encoding gives the same bytes');
});

t.test('a data-type key in a quarantined block: a DtUpdate is refused (SUSPECT_RANGE); writing over it retires the actor once per block, so no increment is masked', async (t) => {
  const clock = new ManualClock(T0);
  const fs = new MemoryFileSystem();
  await fs.mkdirp('/db');
  let e = await Engine.open('/db', { fs, clock, maxKeyBytes: 260, autoCompaction: false });
  const dots = await DotCounter.open('/ACTOR', '/ACTOR.tmp', 'n1', { fs });
  let n1 = new ReplicaStore(e, 'n1', clock, undefined, { dots });
  const { s: n2 } = await store(clock, 'n2');
  const { s: n3 } = await store(clock, 'n3');
  // n1 coordinates three increments of each key; n2 merges only the first, n3 all three.
  const keys = Array.from({ length: 300 }, (_, i) => Buffer.from(`dk-${i}`));
  for (const key of keys) {
    for (let i = 1; i <= 3; i++) {
      const r = ok(await update(n1, key, inc(1), `${key.toString()}-${i}`));
      if (i === 1) ok(await n2.apply({ t: OpType.Merge, key, obj: r.obj! }));
      ok(await n3.apply({ t: OpType.Merge, key, obj: r.obj! }));
    }
  }
  await e.close();
  const sst = (await fs.readdir('/db')).find((f) => f.endsWith('.sst'))!;
  const raw = Buffer.from(fs.rawFile(`/db/${sst}`));
  raw[50]! ^= 0xff;
  fs.setRawFile(`/db/${sst}`, raw);
  e = await Engine.open('/db', { fs, clock, maxKeyBytes: 260, autoCompaction: false });
  n1 = new ReplicaStore(e, 'n1', clock, undefined, { dots });
  await n1.rebuildLeaves();
  const suspects = n1.suspects();
  t.equal(suspects.length, 1, 'the scan quarantined the block');
  const inBlock = keys.filter((key) => {
    const ek = engineKeyOf(key);
    return Buffer.compare(ek, suspects[0]!.first) >= 0 && Buffer.compare(ek, suspects[0]!.last) <= 0;
  });
  t.ok(inBlock.length >= 3, `${inBlock.length} keys are in it`);
  const [a, b, c] = inBlock as [Buffer, Buffer, Buffer];
  const actor0 = dots.actor;

  // The unreadable copy held n1's events 1..3 of the key: numbering from an empty state
  // would reuse them, and n3 (which saw them) would read the new increment as known.
  const refused = await update(n1, a, inc(10), 'a-new');
  t.same(refused.ok ? 'ok' : refused.code, ErrorCodes.SUSPECT_RANGE, 'a DtUpdate on the suspect key is refused: another replica coordinates');
  t.equal(dots.actor, actor0, 'a refusal retires nothing');

  // Repair from a stale replica (n2 saw only the first increment), then an update here.
  ok(await n1.apply({ t: OpType.Merge, key: b, obj: (await n2.get(b))! }));
  t.not(dots.actor, actor0, 'writing over the unreadable copy retired the actor (the copy may have held its events)');
  const actor1 = dots.actor;
  const r = ok(await update(n1, b, inc(10), 'b-new'));
  t.ok(Object.keys(stateOf(r.obj).context).includes(actor1), 'the update is an event of the new actor');
  ok(await n3.apply({ t: OpType.Merge, key: b, obj: r.obj! }));
  t.equal(crdtValue(stateOf(await n3.get(b))), 13, 'n3: the three acknowledged increments and the new one');
  ok(await n1.apply({ t: OpType.Merge, key: b, obj: (await n3.get(b))! }));
  t.equal(crdtValue(stateOf(await n1.get(b))), 13, 'n1 too, once it merged n3');

  // Another key of the same block: the actor already retired since the block was lost.
  ok(await n1.apply({ t: OpType.Merge, key: c, obj: (await n3.get(c))! }));
  t.equal(dots.actor, actor1, 'one retirement per quarantined block');
  t.equal(crdtValue(stateOf(await n1.get(c))), 3);
  t.equal(n1.counters.suspectWrites, 2, 'both repairs counted as writes over a suspect key');
  await e.close();
});
