// Direct tests of the replica store's write rules (no servers): a fresh last-write-wins
// write (Put) says whether it is the version the replica now holds, and is refused with
// CLOCK_SKEW when stamped too far ahead of the replica's clock; Merge (repairs) is not
// bounded; a tombstone's grace counts from when this replica stored it, by its own clock.
// Operations with `hintFor`: the id is checked in UTF-8 bytes (what the hint key's one
// length byte holds) before anything is stored, and a valid hint reaches a real hint store
// and survives its reopen. Vector-clock writes take their dots from the node's actor and
// node-wide counter, and a purge of a key holding the actor's dots retires the actor first.
// A key in a quarantined (corrupt) block: SUSPECT_RANGE on Get, written over by Merge,
// refused for CoordinatedPut, purged (retiring the actor) when no replica holds it.

import t from 'tap';
import type { Test } from 'tap';
import { ManualClock } from '../../sdk/clock.js';
import { ErrorCodes } from '../../sdk/errors.js';
import type { Sibling, StoredObject } from '../../sdk/versioning/index.js';
import type { WireResult } from '../../sdk/wire/protocol.js';
import { OpType } from '../../sdk/wire/protocol.js';
import type { Logger } from '../../storage-server/logger.js';
import { Engine, MemoryFileSystem } from '../../storage-server/engine/index.js';
import { DotCounter } from '../../storage-server/dot-counter.js';
import { HintStore } from '../../storage-server/handoff/hint-store.js';
import { engineKeyOf, ReplicaStore } from '../../storage-server/replica-store.js';

const T0 = 1_700_000_000_000;

function lww(value: string | null, tsMs: number, writer = 'c1', logical = 0): StoredObject {
  return {
    mode: 'lww',
    siblings: [
      {
        value: Buffer.from(value ?? ''),
        tombstone: value === null,
        expiresAtMs: 0,
        contentType: '',
        flags: 0,
        ts: tsMs * 1000 + logical,
        writer,
      },
    ],
    context: {},
  };
}

async function store(clock: ManualClock, maxClockSkewMs?: number, id = 'n1'): Promise<{ s: ReplicaStore; e: Engine; dots: DotCounter }> {
  const fs = new MemoryFileSystem();
  await fs.mkdirp('/db');
  const e = await Engine.open('/db', { fs, clock, maxKeyBytes: 260 });
  const dots = await DotCounter.open('/ACTOR', '/ACTOR.tmp', id, { fs });
  return { s: new ReplicaStore(e, id, clock, undefined, maxClockSkewMs === undefined ? { dots } : { maxClockSkewMs, dots }), e, dots };
}

function ok(r: WireResult): Extract<WireResult, { ok: true }> {
  if (!r.ok) throw new Error(`${r.code}: ${r.msg}`);
  return r;
}

const key = Buffer.from('k');

t.test('Put answers won when its version is the one held, and the newer timestamp when it is not', async (t) => {
  const clock = new ManualClock(T0);
  const { s } = await store(clock);
  let r = ok(await s.apply({ t: OpType.Put, key, obj: lww('a', T0) }));
  t.equal(r.won, true, 'first write wins');
  t.equal(r.created, true);
  r = ok(await s.apply({ t: OpType.Put, key, obj: lww('b', T0 + 5) }));
  t.equal(r.won, true, 'a newer write wins');
  r = ok(await s.apply({ t: OpType.Put, key, obj: lww('old', T0 + 1) }));
  t.equal(r.won, false, 'an older write loses');
  t.equal(r.ts, (T0 + 5) * 1000, 'and learns the timestamp that beat it');
  r = ok(await s.apply({ t: OpType.Put, key, obj: lww('b', T0 + 5) }));
  t.equal(r.won, true, 'a retry of the held version counts as won (idempotent)');
  const held = await s.get(key);
  t.equal(held?.siblings[0]?.value.toString(), 'b');
  t.equal(s.counters.lostPuts, 1);
});

t.test('Put is refused with CLOCK_SKEW beyond maxClockSkewMs; Merge of the same version is not', async (t) => {
  const clock = new ManualClock(T0);
  const { s } = await store(clock, 5000);
  const r = await s.apply({ t: OpType.Put, key, obj: lww('future', T0 + 5001) });
  t.equal(r.ok, false);
  if (!r.ok) t.equal(r.code, ErrorCodes.CLOCK_SKEW, r.msg);
  t.equal(await s.get(key), null, 'nothing was stored');
  t.equal(ok(await s.apply({ t: OpType.Put, key, obj: lww('edge', T0 + 5000) })).won, true, 'exactly at the bound is accepted');
  t.ok(ok(await s.apply({ t: OpType.Merge, key, obj: lww('future', T0 + 60_000) })), 'a merge of a far-future version is kept (it exists elsewhere)');
  const vc = await s.apply({
    t: OpType.CoordinatedPut,
    key: Buffer.from('vc'),
    ctx: {},
    sib: { value: Buffer.from('x'), tombstone: false, expiresAtMs: 0, contentType: '', flags: 0, ts: (T0 + 9000) * 1000, writer: 'c' },
  });
  t.equal(vc.ok ? 'ok' : vc.code, ErrorCodes.CLOCK_SKEW, 'a vector-clock write is bounded too');
  const vcOk = await s.apply({ t: OpType.Put, key: Buffer.from('dvv-in-put'), obj: { ...lww('x', T0), mode: 'dvv' } as StoredObject });
  t.equal(vcOk.ok ? 'ok' : vcOk.code, ErrorCodes.INVALID_ARGUMENT, 'a Put carries a last-write-wins object only');
});

t.test('a tombstone is dated by the replica that stores it, not by the writer\'s timestamp', async (t) => {
  const clock = new ManualClock(T0);
  const { s, e } = await store(clock);
  // A writer whose clock was a day behind.
  ok(await s.apply({ t: OpType.Put, key, obj: lww(null, T0 - 24 * 3600_000) }));
  const rec = await e.getRaw(engineKeyOf(key));
  t.equal(rec?.tombstone, true);
  t.equal(rec?.expiresAtMs, T0, 'the grace period starts now, on this replica');
  // The same through a merge (repair) a minute later: dated when this replica got it.
  clock.advance(60_000);
  ok(await s.apply({ t: OpType.Merge, key: Buffer.from('k2'), obj: lww(null, T0 - 24 * 3600_000) }));
  t.equal((await e.getRaw(engineKeyOf(Buffer.from('k2'))))?.expiresAtMs, T0 + 60_000);
});

const quiet: Logger = { debug() {}, info() {}, warn() {}, error() {} };

/** A replica store 'n0' whose hints go to a real hint store, both on one in-memory file system. */
async function withHints(t: Test) {
  const fs = new MemoryFileSystem();
  const clock = new ManualClock(T0);
  const engine = await Engine.open('/data', { fs, clock, logger: quiet, maxKeyBytes: 260 });
  const hintOpts = { maxHintBytes: 1 << 20, maxHintAgeMs: 3600_000, sync: 'always' as const, clock, log: quiet, fs };
  const hints = await HintStore.open('/hints', hintOpts);
  const dots = await DotCounter.open('/ACTOR', '/ACTOR.tmp', 'n0', { fs });
  const s = new ReplicaStore(engine, 'n0', clock, (target, k, o) => hints.add(target, k, o), { dots });
  t.teardown(async () => {
    await engine.close();
    await hints.close();
  });
  return { s, hints, hintOpts };
}

t.test('hintFor longer than 255 UTF-8 bytes is INVALID_ARGUMENT, even when it has fewer UTF-16 units', async (t) => {
  const { s, hints } = await withHints(t);
  const id = '\u20ac'.repeat(100); // 100 units, 300 bytes
  for (const op of [OpType.Merge, OpType.Put] as const) {
    const r = await s.apply({ t: op, key, obj: lww('v', T0), hintFor: id });
    t.equal(r.ok ? 'ok' : r.code, ErrorCodes.INVALID_ARGUMENT, `${op === OpType.Merge ? 'Merge' : 'Put'} with a 300-byte hintFor`);
  }
  t.equal(hints.totalPending, 0, 'no hint stored');
  t.equal(s.counters.hints, 0);
  t.equal(await s.get(key), null, 'and not applied as a local write either');
});

t.test('a 255-byte hintFor is stored as a hint and comes back intact after the hint store reopens', async (t) => {
  const { s, hints, hintOpts } = await withHints(t);
  const id = '\u20ac'.repeat(85); // 255 bytes
  const r = ok(await s.apply({ t: OpType.Merge, key, obj: lww('v', T0), hintFor: id }));
  t.equal(r.hinted, true, 'taken as a hint');
  await hints.close();
  const again = await HintStore.open('/hints', hintOpts);
  t.teardown(() => again.close());
  t.same(Object.fromEntries(again.pendingByTarget()), { [id]: 1 });
  const [h] = await again.list(id, 10);
  t.equal(h?.key.toString(), 'k');
  t.equal(h?.obj.siblings[0]?.value.toString(), 'v');
});

function vsib(value: string, tsMs: number): Omit<Sibling, 'dot'> {
  return { value: Buffer.from(value), tombstone: false, expiresAtMs: 0, contentType: '', flags: 0, ts: tsMs * 1000, writer: 'c1' };
}

async function coordinate(s: ReplicaStore, k: Buffer, ctx: Record<string, number>, value: string, tsMs: number): Promise<StoredObject> {
  const r = ok(await s.apply({ t: OpType.CoordinatedPut, key: k, ctx, sib: vsib(value, tsMs) }));
  return r.obj!;
}

function liveValues(obj: StoredObject | null): string[] {
  return (obj?.siblings ?? []).filter((x) => !x.tombstone).map((x) => x.value.toString()).sort();
}

t.test('vector-clock writes take their dots from the node-wide counter of the node\'s actor', async (t) => {
  const clock = new ManualClock(T0);
  const { s, dots } = await store(clock);
  t.match(dots.actor, /^n1#[0-9a-f]{8}$/);
  const a = await coordinate(s, Buffer.from('k1'), {}, 'a', T0);
  const b = await coordinate(s, Buffer.from('k2'), {}, 'b', T0);
  const c = await coordinate(s, Buffer.from('k1'), a.context, 'c', T0);
  t.same(a.siblings.map((x) => x.dot), [[dots.actor, 1]]);
  t.same(b.siblings.map((x) => x.dot), [[dots.actor, 2]], 'another key: the next counter of the node, not 1');
  t.same(c.siblings.map((x) => x.dot), [[dots.actor, 3]]);
  // A client context holding a higher counter of this actor lifts the node counter.
  const d = await coordinate(s, Buffer.from('k3'), { [dots.actor]: 40 }, 'd', T0);
  t.same(d.siblings.map((x) => x.dot), [[dots.actor, 41]]);
  t.same((await coordinate(s, Buffer.from('k4'), {}, 'e', T0)).siblings.map((x) => x.dot), [[dots.actor, 42]]);
});

t.test('a purged key whose copy held the actor\'s dots: the actor is retired, and a blind write after it keeps the value it never saw', async (t) => {
  const clock = new ManualClock(T0);
  const { s: a, dots } = await store(clock, undefined, 'n1');
  const { s: b } = await store(clock, undefined, 'n2');
  const k = Buffer.from('cart');
  // n1 coordinates five overwrites; n2 merges each.
  let obj: StoredObject | undefined;
  for (let i = 1; i <= 5; i++) {
    obj = await coordinate(a, k, obj?.context ?? {}, `v${i}`, T0 + i);
    ok(await b.apply({ t: OpType.Merge, key: k, obj }));
  }
  const before = dots.actor;
  // A key that only reached n1 by a merge holds no dot of n1's actor: purging it is harmless.
  const other = Buffer.from('other');
  ok(await a.apply({ t: OpType.Merge, key: other, obj: await coordinate(b, other, {}, 'x', T0) }));
  t.equal(await a.purge(other), true);
  t.equal(dots.actor, before, 'no dots of the actor in the purged copy: the actor stays');

  t.equal(await a.purge(k), true, 'n1 purges the key (cleanup of a range it stopped owning)');
  t.not(dots.actor, before, 'the purge retired n1\'s actor');
  const blind = await coordinate(a, k, {}, 'blind', T0 + 10);
  t.same(blind.siblings.map((x) => x.dot![0]), [dots.actor], 'the blind write has a dot of the new actor');
  // The coordinator's result goes to n2 (the write's quorum), and n2's state back (repair).
  ok(await b.apply({ t: OpType.Merge, key: k, obj: blind }));
  ok(await a.apply({ t: OpType.Merge, key: k, obj: (await b.get(k))! }));
  t.same(liveValues(await b.get(k)), ['blind', 'v5'], 'n2 keeps both acknowledged writes as siblings');
  t.same(liveValues(await a.get(k)), ['blind', 'v5'], 'and so does n1');
});

t.test('a key in a quarantined block: Get answers SUSPECT_RANGE, Merge writes over it, CoordinatedPut is refused, scans pass over it', async (t) => {
  const clock = new ManualClock(T0);
  const fs = new MemoryFileSystem();
  await fs.mkdirp('/db');
  let e = await Engine.open('/db', { fs, clock, maxKeyBytes: 260, autoCompaction: false });
  const dots = await DotCounter.open('/ACTOR', '/ACTOR.tmp', 'n1', { fs });
  let s = new ReplicaStore(e, 'n1', clock, undefined, { dots });
  const keys = Array.from({ length: 300 }, (_, i) => Buffer.from(`rk-${i}`));
  for (const k of keys) ok(await s.apply({ t: OpType.Merge, key: k, obj: lww(`v-${k}`, T0) }));
  await e.close();
  // Damage the first data block of the one table.
  const sst = (await fs.readdir('/db')).find((f) => f.endsWith('.sst'))!;
  const raw = Buffer.from(fs.rawFile(`/db/${sst}`));
  raw[50]! ^= 0xff;
  fs.setRawFile(`/db/${sst}`, raw);
  e = await Engine.open('/db', { fs, clock, maxKeyBytes: 260, autoCompaction: false });
  s = new ReplicaStore(e, 'n1', clock, undefined, { dots });
  // The leaf rebuild scans everything: it passes over the block and quarantines it.
  const entries = await s.rebuildLeaves();
  const suspects = s.suspects();
  t.equal(suspects.length, 1, 'the scan quarantined the block');
  const inBlock = keys.filter((k) => {
    const ek = engineKeyOf(k);
    return Buffer.compare(ek, suspects[0]!.first) >= 0 && Buffer.compare(ek, suspects[0]!.last) <= 0;
  });
  t.ok(inBlock.length > 0, `${inBlock.length} keys are in it`);
  t.equal(entries, keys.length - inBlock.length, 'the rebuild counted every other key');
  const [a, b, c] = inBlock as [Buffer, Buffer, Buffer];
  const get = await s.apply({ t: OpType.Get, key: a });
  t.same(get.ok ? 'ok' : get.code, ErrorCodes.SUSPECT_RANGE, 'Get: SUSPECT_RANGE');
  const cput = await s.apply({ t: OpType.CoordinatedPut, key: b, ctx: {}, sib: { value: Buffer.from('x'), tombstone: false, expiresAtMs: 0, contentType: '', flags: 0, ts: T0 * 1000, writer: 'c' } });
  t.same(cput.ok ? 'ok' : cput.code, ErrorCodes.SUSPECT_RANGE, 'CoordinatedPut: refused');
  ok(await s.apply({ t: OpType.Merge, key: a, obj: lww('repaired', T0 - 1000) }));
  const after = ok(await s.apply({ t: OpType.Get, key: a }));
  t.equal(after.obj?.siblings[0]?.value.toString(), 'repaired', 'a Merge writes over the unreadable copy (even an older version: the local one is lost)');
  const actorBefore = dots.actor;
  // The near cache's invalidations hear of every change of what a Get answers, this one too.
  const changed: string[] = [];
  s.onKeyChanged = (k) => changed.push(k.toString());
  t.ok(await s.resolveSuspect(c), 'a key no replica holds is purged');
  t.same(changed, [c.toString()], 'the purge is told to onKeyChanged (near-cache invalidations)');
  t.not(dots.actor, actorBefore, 'after retiring the actor (the unreadable copy may have held its dots)');
  t.equal(ok(await s.apply({ t: OpType.Get, key: c })).obj, null, 'and then reads as absent');
  t.notOk(await s.resolveSuspect(a), 'a key already rewritten is not suspect any more');
  t.equal(s.counters.suspectGets, 1);
  t.equal(s.counters.suspectWrites, 1);
  await e.close();
});
