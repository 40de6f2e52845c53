// Tests of placement per data center (Ring.replicas and friends): one data center without
// racks places exactly as the flat preference list; for every range of the ring, each data
// center holds its replication factor (or all its members) on min(RF, racks) distinct racks;
// a join or a leave moves data only within its data center; stamps and ring changes cover
// the data center and rack; and a data-driven table (ring-dc-cases.json) breaks on any
// accidental placement change. Randomized parts print their seed (RINGKV_SEED=<seed>).

import { readFileSync } from 'node:fs';
import t from 'tap';
import type { Test } from 'tap';
import type { MemberInfo } from '../../sdk/membership.js';
import { changesRing, isFencingChange, ringStampOf } from '../../sdk/ring-epoch.js';
import { Ring } from '../../sdk/ring.js';
import type { RingMember } from '../../sdk/ring.js';
import { ringRanges } from '../../storage-server/anti-entropy/token-ranges.js';
import { SeededRandom, testSeed } from './seeded-random.js';

const seed = testSeed();
t.comment(`seed ${seed} (rerun with RINGKV_SEED=${seed})`);

/** Members `prefix1..prefixN` of data center `dc`, node i on racks[i % racks.length] when racks are given. */
function dcMembers(dc: string, n: number, racks?: string[], prefix = dc): RingMember[] {
  return Array.from({ length: n }, (_, i) => ({ id: `${prefix}${i + 1}`, dc, ...(racks ? { rack: racks[i % racks.length]! } : {}) }));
}

/** Checks the placement invariants of every range of `ring`. */
function checkPlacement(t: Test, ring: Ring, label: string): void {
  const members = new Map(ring.members.map((m) => [m.id, m]));
  let bad = 0;
  for (const r of ringRanges(ring)) {
    const all = ring.replicasForToken(r.end);
    if (new Set(all).size !== all.length) bad++;
    for (const dc of ring.dataCenters) {
      const inDc = ring.members.filter((m) => (m.dc ?? 'default') === dc);
      const racks = new Set(inDc.map((m) => m.rack ?? ''));
      const rf = ring.replication![dc]!;
      const got = ring.replicasInDcForToken(r.end, dc);
      const gotRacks = new Set(got.map((id) => members.get(id)!.rack ?? ''));
      if (got.length !== Math.min(rf, inDc.length)) bad++;
      else if (gotRacks.size !== Math.min(rf, racks.size)) bad++;
      else if (!got.every((id) => (members.get(id)!.dc ?? 'default') === dc)) bad++;
    }
  }
  t.equal(bad, 0, `${label}: every range holds RF per data center on min(RF, racks) racks`);
}

t.test('one data center without racks places as the flat preference list', async (t) => {
  const rnd = new SeededRandom(seed);
  for (const [n, rf] of [
    [1, 3],
    [3, 3],
    [5, 3],
    [7, 5],
  ] as const) {
    const members = Array.from({ length: n }, (_, i) => ({ id: `node-${i + 1}` }));
    const ring = new Ring(members, { vnodesPerNode: 64, replication: { default: rf } });
    let same = 0;
    for (let i = 0; i < 5000; i++) {
      const k = rnd.bytes(12);
      const a = ring.replicas(k);
      const b = ring.preferenceList(k, rf);
      if (a.length === b.length && a.every((x, j) => x === b[j])) same++;
    }
    t.equal(same, 5000, `${n} nodes, rf ${rf}: identical for 5000 keys`);
    t.same(ring.replicasInDc('k', 'default'), ring.preferenceList('k', rf));
  }
});

t.test('every range: RF per data center on distinct racks while racks remain', async (t) => {
  // Uneven racks: east 3 on r1, 2 on r2, 1 on r3; west 4 on two racks.
  const east = [...dcMembers('east', 3, ['r1'], 'e-a'), ...dcMembers('east', 2, ['r2'], 'e-b'), ...dcMembers('east', 1, ['r3'], 'e-c')];
  const west = dcMembers('west', 4, ['a', 'b']);
  const ring = new Ring([...east, ...west], { vnodesPerNode: 32, replication: { east: 3, west: 3 } });
  checkPlacement(t, ring, 'east 3 racks, west 2 racks');
  t.same(ring.dataCenters, ['east', 'west']);
  const r = ring.replicas('some-key');
  t.equal(r.length, 6);
  t.same(r.slice(0, 3), ring.replicasInDc('some-key', 'east'), 'data centers in name order');
  // A data center with fewer members than its replication factor holds them all.
  const small = new Ring([...dcMembers('east', 2), ...dcMembers('west', 5)], { vnodesPerNode: 16, replication: { east: 3, west: 2 } });
  checkPlacement(t, small, 'east of 2 for RF 3');
  t.equal(small.replicasInDc('k', 'east').length, 2);
  // A data center of the settings without members holds nothing; members of a data center
  // the settings do not name hold nothing either.
  const orphan = new Ring([...dcMembers('east', 3), ...dcMembers('mars', 2)], { vnodesPerNode: 16, replication: { east: 3, west: 3 } });
  t.same(orphan.replicasInDc('k', 'west'), []);
  t.ok(orphan.replicas('k').every((x) => x.startsWith('east')), 'mars holds no replicas');
  t.same(orphan.replicasInDc('k', 'mars'), []);
});

t.test('randomized topologies keep the invariants', async (t) => {
  const rnd = new SeededRandom(seed ^ 0x5a5a);
  for (let round = 0; round < 25; round++) {
    const dcs = 1 + rnd.int(3);
    const members: RingMember[] = [];
    const replication: Record<string, number> = {};
    for (let d = 0; d < dcs; d++) {
      const name = `dc${d}`;
      const n = 1 + rnd.int(8);
      const racks = Array.from({ length: 1 + rnd.int(4) }, (_, i) => `r${i}`);
      for (let i = 0; i < n; i++) members.push({ id: `${name}-n${i}`, dc: name, rack: rnd.pick(racks), weight: rnd.pick([0.5, 1, 2]) });
      replication[name] = 1 + rnd.int(5);
    }
    const ring = new Ring(members, { vnodesPerNode: 8 + rnd.int(24), replication });
    checkPlacement(t, ring, `round ${round}: ${JSON.stringify(replication)}`);
  }
});

t.test('a join or a leave moves data only within its data center', async (t) => {
  const base = [...dcMembers('east', 4, ['r1', 'r2']), ...dcMembers('west', 4, ['r1', 'r2'])];
  const ring = new Ring(base, { vnodesPerNode: 64, replication: { east: 3, west: 3 } });
  const joined = ring.withMember({ id: 'east5', dc: 'east', rack: 'r1' });
  const left = ring.withoutMember('west2');
  // Over the ranges of both rings (every token where either placement could change).
  for (const [after, changed, unchanged] of [
    [joined, 'east', 'west'],
    [left, 'west', 'east'],
  ] as const) {
    const ends = new Set([...ring.tokens(), ...after.tokens()].map((x) => x.token));
    let moved = 0;
    let otherMoved = 0;
    for (const token of ends) {
      const a = ring.replicasInDcForToken(token, unchanged);
      const b = after.replicasInDcForToken(token, unchanged);
      if (a.join() !== b.join()) otherMoved++;
      if (ring.replicasInDcForToken(token, changed).join() !== after.replicasInDcForToken(token, changed).join()) moved++;
    }
    t.equal(otherMoved, 0, `${changed} changed: nothing moved in ${unchanged}`);
    t.ok(moved > 0, `${changed} changed: ${moved} ranges moved in ${changed}`);
    checkPlacement(t, after, `after the change in ${changed}`);
  }
});

t.test('stamps and ring changes cover the data center and rack', async (t) => {
  const m = (id: string, extra: Partial<MemberInfo> = {}): MemberInfo => ({ id, address: `h:${id.length}`, weight: 1, state: 'up', incarnation: 1, ringVersion: 1, ...extra });
  const plain = [m('a'), m('b')];
  // Single data center records: the digest is what it was before data centers (FNV-1a over
  // "id\0class\0weight" entries; the literal below is that older formula's value).
  t.equal(ringStampOf(plain).digest, legacyDigest(['a\u0000m\u00001', 'b\u0000m\u00001']), 'single-data-center digests are unchanged');
  t.not(ringStampOf([m('a', { dc: 'east' }), m('b')]).digest, ringStampOf(plain).digest, 'a data center is part of the ring');
  t.not(ringStampOf([m('a', { dc: 'east', rack: 'r1' }), m('b')]).digest, ringStampOf([m('a', { dc: 'east' }), m('b')]).digest, 'a rack too');
  t.equal(ringStampOf([m('a', { remoteAddress: 'x:1' }), m('b')]).digest, ringStampOf(plain).digest, 'a remote address is not');
  t.ok(changesRing(m('a'), m('a', { dc: 'east' })), 'a new data center changes the ring');
  t.ok(changesRing(m('a', { rack: 'r1' }), m('a', { rack: 'r2' })), 'a new rack changes the ring');
  t.notOk(changesRing(m('a'), m('a', { remoteAddress: 'x:1' })), 'a new remote address does not');
  t.ok(isFencingChange(m('a', { dc: 'east' }), m('a', { dc: 'west' })), 'moving a member between data centers fences');
});

function legacyDigest(parts: string[]): number {
  let h = 0x811c9dc5;
  for (const p of [...parts].sort()) {
    for (let i = 0; i < p.length; i++) {
      h ^= p.charCodeAt(i) & 0xff;
      h = Math.imul(h, 0x01000193);
      h ^= p.charCodeAt(i) >>> 8;
      h = Math.imul(h, 0x01000193);
    }
    h ^= 0x0a;
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

interface DcCase {
  name: string;
  vnodesPerNode: number;
  replication: Record<string, number>;
  members: RingMember[];
  keys: { key: string; replicas: string[] }[];
}

t.test('placement table (test/sdk/ring-dc-cases.json)', async (t) => {
  const cases = JSON.parse(readFileSync(new URL('./ring-dc-cases.json', import.meta.url), 'utf8')) as DcCase[];
  t.ok(cases.length >= 3);
  for (const c of cases) {
    const ring = new Ring(c.members, { vnodesPerNode: c.vnodesPerNode, replication: c.replication });
    for (const k of c.keys) t.same([...ring.replicas(k.key)], k.replicas, `${c.name}: ${k.key}`);
  }
});
