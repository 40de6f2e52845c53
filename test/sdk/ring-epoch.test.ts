// Ring epochs (sdk/ring-epoch.ts): the stamp of a member table, which changes move
// ownership (fence), and whether a replica takes a write routed on another table's stamp —
// through a join and a decommission as a sequence of tables, plus the precedence of news.

import t from 'tap';
import type { MemberInfo, MemberState } from '../../sdk/membership.js';
import { supersedes } from '../../sdk/membership.js';
import type { ReplicaRing, RingStamp } from '../../sdk/ring-epoch.js';
import { changesRing, checkRouted, isFencingChange, isRingStamp, ringStampOf } from '../../sdk/ring-epoch.js';

function m(id: string, state: MemberState, ringVersion: number, incarnation = 1, weight = 1): MemberInfo {
  return { id, address: `127.0.0.1:${7000 + Number(id.slice(1))}`, weight, state, incarnation, ringVersion };
}

/** A replica's ring after a change from `prev` to `table` (the floor rises on fencing changes). */
function replicaAfter(prevFloor: number, prev: MemberInfo[], table: MemberInfo[]): ReplicaRing {
  const stamp = ringStampOf(table);
  let floor = prevFloor;
  for (const x of table) {
    const before = prev.find((p) => p.id === x.id);
    if (isFencingChange(before, x)) floor = stamp.epoch;
  }
  return { ...stamp, floor };
}

t.test('the stamp: the sum of ring versions and a digest of classes and weights', async (t) => {
  const a = ringStampOf([m('n1', 'up', 1), m('n2', 'up', 2), m('n3', 'up', 1)]);
  t.equal(a.epoch, 4, 'epoch = sum of ring versions');
  const reordered = ringStampOf([m('n3', 'up', 1), m('n1', 'up', 1), m('n2', 'up', 2)]);
  t.same(reordered, a, 'order of the table does not matter');
  const suspect = ringStampOf([m('n1', 'up', 1), m('n2', 'suspect', 2, 5), m('n3', 'down', 1, 9)]);
  t.same(suspect, a, 'liveness (suspect, down) and incarnations are not part of the ring');
  const recovering = ringStampOf([m('n1', 'up', 1), m('n2', 'recovering', 2), m('n3', 'up', 1)]);
  t.same(recovering, a, 'a recovering member is in the ring like an up one');
  const joining = ringStampOf([m('n1', 'up', 1), m('n2', 'joining', 2), m('n3', 'up', 1)]);
  t.equal(joining.epoch, a.epoch, 'same epoch ...');
  t.not(joining.digest, a.digest, '... but another digest when a member is in another ring class');
  const heavier = ringStampOf([m('n1', 'up', 1), m('n2', 'up', 2, 1, 2), m('n3', 'up', 1)]);
  t.not(heavier.digest, a.digest, 'a weight is part of the ring');
  t.ok(isRingStamp(a));
  t.notOk(isRingStamp({ epoch: -1, digest: 0 }));
  t.notOk(isRingStamp({ epoch: 1, digest: 2 ** 32 }));
  t.notOk(isRingStamp({ epoch: 1.5, digest: 3 }));
  t.notOk(isRingStamp(undefined));
});

t.test('which changes raise a ring version, and which fence', async (t) => {
  const cases: [string, MemberState | undefined, MemberState, boolean, boolean][] = [
    // [what, from, to, changesRing, fences]
    ['a node starts joining', undefined, 'joining', true, true],
    ['joining -> up (the flip after streaming)', 'joining', 'up', true, false],
    ['up -> leaving (decommission)', 'up', 'leaving', true, true],
    ['leaving -> left (the flip after hand-over)', 'leaving', 'left', true, false],
    ['down -> left (removenode)', 'down', 'left', true, true],
    ['up -> suspect', 'up', 'suspect', false, false],
    ['suspect -> down', 'suspect', 'down', false, false],
    ['up -> recovering', 'up', 'recovering', false, false],
    ['joining -> suspect (suspected while joining)', 'joining', 'suspect', true, false],
    ['leaving -> suspect (suspected while leaving)', 'leaving', 'suspect', true, true],
    ['left -> up (a removed node back without --join)', 'left', 'up', true, true],
  ];
  for (const [what, from, to, changes, fences] of cases) {
    const prev = from ? { state: from, weight: 1 } : undefined;
    const next = { state: to, weight: 1 };
    t.equal(changesRing(prev, next), changes, `${what}: ${changes ? 'raises' : 'keeps'} the ring version`);
    t.equal(isFencingChange(prev, next), fences, `${what}: ${fences ? 'fences' : 'does not fence'}`);
  }
  t.ok(changesRing({ state: 'up', weight: 1 }, { state: 'up', weight: 2 }), 'a weight change raises it');
  t.ok(isFencingChange({ state: 'up', weight: 1 }, { state: 'up', weight: 2 }), 'and fences');
});

t.test('checkRouted: older, diverged, ok', async (t) => {
  const mine: ReplicaRing = { epoch: 10, digest: 111, floor: 9 };
  t.equal(checkRouted({ epoch: 8, digest: 5 }, mine), 'older', 'below the floor: refused');
  t.equal(checkRouted({ epoch: 9, digest: 5 }, mine), 'ok', 'at the floor (a flip since): taken');
  t.equal(checkRouted({ epoch: 10, digest: 111 }, mine), 'ok', 'the same ring: taken');
  t.equal(checkRouted({ epoch: 10, digest: 222 }, mine), 'diverged', 'the same epoch, another ring: refused');
  t.equal(checkRouted({ epoch: 11, digest: 333 }, mine), 'ok', 'a newer ring than the replica knows: taken');
});

t.test('a join and a decommission as a sequence of tables', async (t) => {
  const t0 = [m('n1', 'up', 1), m('n2', 'up', 1), m('n3', 'up', 1)];
  const t1 = [...t0, m('n4', 'joining', 1)];
  const t2 = [...t0, m('n4', 'up', 2, 2)];
  const t3 = [m('n1', 'leaving', 2, 2), m('n2', 'up', 1), m('n3', 'up', 1), m('n4', 'up', 2, 2)];
  const t4 = [m('n1', 'left', 3, 3), m('n2', 'up', 1), m('n3', 'up', 1), m('n4', 'up', 2, 2)];
  const s: RingStamp[] = [t0, t1, t2, t3, t4].map(ringStampOf);
  for (let i = 1; i < s.length; i++) t.ok(s[i]!.epoch > s[i - 1]!.epoch, `epoch rises at every change (${s[i - 1]!.epoch} -> ${s[i]!.epoch})`);
  const r0: ReplicaRing = { ...s[0]!, floor: s[0]!.epoch };
  const r1 = replicaAfter(r0.floor, t0, t1);
  const r2 = replicaAfter(r1.floor, t1, t2);
  const r3 = replicaAfter(r2.floor, t2, t3);
  const r4 = replicaAfter(r3.floor, t3, t4);
  t.equal(r1.floor, s[1]!.epoch, 'n4 joining fences');
  t.equal(checkRouted(s[0]!, r1), 'older', 'a write routed without n4 is refused once n4 joins');
  t.equal(r2.floor, r1.floor, 'n4 up does not fence');
  t.equal(checkRouted(s[1]!, r2), 'ok', 'a write routed while n4 was joining (it went to n4 too) is taken after the flip');
  t.equal(checkRouted(s[0]!, r2), 'older', 'a write routed without n4 still is not');
  t.equal(r3.floor, s[3]!.epoch, 'n1 leaving fences');
  t.equal(checkRouted(s[2]!, r3), 'older', 'a write routed while n1 was not leaving is refused');
  t.equal(r4.floor, r3.floor, 'n1 left does not fence');
  t.equal(checkRouted(s[3]!, r4), 'ok', 'a write routed while n1 was leaving is taken after it left');
  // Two joins started at once, each known to one side: equal sums, different rings.
  const a = ringStampOf([...t0, m('n4', 'joining', 1)]);
  const b = ringStampOf([...t0, m('n5', 'joining', 1)]);
  t.equal(a.epoch, b.epoch, 'concurrent changes can give equal epochs');
  t.equal(checkRouted(a, { ...b, floor: b.epoch }), 'diverged', 'which the digest tells apart');
  const both = ringStampOf([...t0, m('n4', 'joining', 1), m('n5', 'joining', 1)]);
  t.equal(checkRouted(both, { ...b, floor: b.epoch }), 'ok', 'the merged table is newer than either');
});

t.test('supersedes: a higher ring version wins over any incarnation', async (t) => {
  const removed = m('n4', 'left', 3, 10);
  const restarted = m('n4', 'up', 2, 99);
  t.ok(supersedes(removed, restarted), 'a removal beats a restarted record of an older ring version');
  t.notOk(supersedes(restarted, removed));
  t.ok(supersedes(m('n4', 'up', 2, 11), m('n4', 'suspect', 2, 10)), 'equal ring versions: the higher incarnation wins (a refutation)');
  t.ok(supersedes(m('n4', 'suspect', 2, 10), m('n4', 'up', 2, 10)), 'then the more severe state');
  t.ok(supersedes(m('n4', 'up', 1, 1), { ...m('n4', 'up', 1, 1), ringVersion: undefined }), 'a record without a ring version (protocol 2) counts as 0');
});
