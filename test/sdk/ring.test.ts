// Tests of the consistent-hash ring: hashing, validation, lookups against a naive oracle,
// balance, movement on membership changes, weights, and a data-driven placement table
// (ring-cases.json) that breaks on any accidental placement change. Randomized parts print
// their seed; rerun one with RINGKV_SEED=<seed>.

import { readFileSync } from 'node:fs';
import t from 'tap';
import { ErrorCodes } from '../../sdk/errors.js';
import { Ring, vnodeToken } from '../../sdk/ring.js';
import type { RingMember } from '../../sdk/ring.js';
import { SeededRandom, testSeed } from './seeded-random.js';

const seed = testSeed();
t.comment(`seed ${seed} (rerun with RINGKV_SEED=${seed})`);

const nodes = (n: number, prefix = 'node-'): RingMember[] => Array.from({ length: n }, (_, i) => ({ id: `${prefix}${i + 1}` }));

/** 100k random binary keys, shared by the statistical tests. */
const KEY_COUNT = 100_000;
const keys: Buffer[] = (() => {
  const rnd = new SeededRandom(seed);
  return Array.from({ length: KEY_COUNT }, () => rnd.bytes(8 + rnd.int(17)));
})();

/** The reference lookup: a linear scan of the sorted token list. */
function naivePreferenceList(ring: Ring, token: number, n: number): string[] {
  const list = ring.tokens();
  if (list.length === 0) return [];
  let start = list.findIndex((e) => e.token >= token);
  if (start < 0) start = 0;
  const out: string[] = [];
  for (let k = 0; k < list.length && out.length < n; k++) {
    const node = list[(start + k) % list.length]!.node;
    if (!out.includes(node)) out.push(node);
  }
  return out;
}

function primaryCounts(ring: Ring): Map<string, number> {
  const counts = new Map<string, number>(ring.members.map((m) => [m.id, 0]));
  for (const k of keys) {
    const p = ring.preferenceList(k, 1)[0]!;
    counts.set(p, counts.get(p)! + 1);
  }
  return counts;
}

t.test('tokenOf is murmurhash3 x86_32 with seed 0 over the key bytes', async (t) => {
  // Published MurmurHash3_x86_32 test vectors.
  t.equal(Ring.tokenOf(''), 0);
  t.equal(Ring.tokenOf('hello'), 0x248bfa47);
  t.equal(Ring.tokenOf('The quick brown fox jumps over the lazy dog'), 0x2e4ff723);
  // A string hashes as its UTF-8 bytes.
  t.equal(Ring.tokenOf('clé-ü'), Ring.tokenOf(Buffer.from('clé-ü', 'utf8')));
  t.equal(Ring.tokenOf(new Uint8Array([0xff, 0x00, 0x80])), Ring.tokenOf(Buffer.from([0xff, 0x00, 0x80])));
  t.equal(vnodeToken('a', 3), Ring.tokenOf('a#3'));
  for (const k of keys.slice(0, 1000)) {
    const tok = Ring.tokenOf(k);
    t.ok(Number.isInteger(tok) && tok >= 0 && tok < 2 ** 32, 'token is a uint32');
  }
});

t.test('validation throws InvalidArgumentError', async (t) => {
  const cases: { name: string; make: () => unknown }[] = [
    { name: 'empty id', make: () => new Ring([{ id: '' }]) },
    { name: 'non-string id', make: () => new Ring([{ id: 7 as unknown as string }]) },
    { name: 'duplicate ids', make: () => new Ring([{ id: 'a' }, { id: 'b' }, { id: 'a', weight: 2 }]) },
    { name: 'weight 0', make: () => new Ring([{ id: 'a', weight: 0 }]) },
    { name: 'negative weight', make: () => new Ring([{ id: 'a', weight: -1 }]) },
    { name: 'NaN weight', make: () => new Ring([{ id: 'a', weight: NaN }]) },
    { name: 'infinite weight', make: () => new Ring([{ id: 'a', weight: Infinity }]) },
    { name: 'vnodesPerNode 0', make: () => new Ring([{ id: 'a' }], { vnodesPerNode: 0 }) },
    { name: 'vnodesPerNode -4', make: () => new Ring([{ id: 'a' }], { vnodesPerNode: -4 }) },
    { name: 'vnodesPerNode 1.5', make: () => new Ring([{ id: 'a' }], { vnodesPerNode: 1.5 }) },
    { name: 'vnodesPerNode NaN', make: () => new Ring([{ id: 'a' }], { vnodesPerNode: NaN }) },
    { name: 'negative n', make: () => new Ring(nodes(3)).preferenceList('k', -1) },
    { name: 'fractional n', make: () => new Ring(nodes(3)).preferenceList('k', 1.5) },
    { name: 'token too large', make: () => new Ring(nodes(3)).preferenceListForToken(2 ** 32, 1) },
    { name: 'negative token', make: () => new Ring(nodes(3)).preferenceListForToken(-1, 1) },
    { name: 'fractional token', make: () => new Ring(nodes(3)).preferenceListForToken(0.5, 1) },
    { name: 'withMember with bad weight', make: () => new Ring(nodes(3)).withMember({ id: 'node-1', weight: 0 }) },
  ];
  for (const c of cases) t.throws(c.make, { code: ErrorCodes.INVALID_ARGUMENT }, c.name);
});

t.test('members are sorted by id with their weight filled in; vnode counts follow the weight', async (t) => {
  const ring = new Ring([{ id: 'c', weight: 0.5 }, { id: 'a' }, { id: 'b', weight: 2 }, { id: 'd', weight: 0.001 }], { vnodesPerNode: 16 });
  t.same(ring.members, [
    { id: 'a', weight: 1 },
    { id: 'b', weight: 2 },
    { id: 'c', weight: 0.5 },
    { id: 'd', weight: 0.001 },
  ]);
  t.equal(ring.vnodesPerNode, 16);
  t.equal(new Ring(nodes(2)).vnodesPerNode, 128, 'default vnodesPerNode');
  const perNode = new Map<string, number>();
  for (const e of ring.tokens()) perNode.set(e.node, (perNode.get(e.node) ?? 0) + 1);
  t.same(Object.fromEntries(perNode), { a: 16, b: 32, c: 8, d: 1 }, 'round(vnodes * weight), at least 1');
  const toks = ring.tokens().map((e) => e.token);
  t.same(toks, [...toks].sort((x, y) => x - y), 'tokens are sorted');
  const expected = new Set<number>();
  for (const [id, n] of perNode) for (let i = 0; i < n; i++) expected.add(vnodeToken(id, i));
  t.same(new Set(toks), expected, 'vnode i of node id sits at murmur3(`${id}#${i}`)');
});

t.test('placement does not depend on the order members are given in', async (t) => {
  const rnd = new SeededRandom(seed ^ 0x1111);
  const members = nodes(7).map((m, i) => ({ ...m, weight: 0.5 + (i % 3) * 0.5 }));
  const ref = new Ring(members, { vnodesPerNode: 32 });
  for (let round = 0; round < 5; round++) {
    const shuffled = [...members].sort(() => rnd.next() - 0.5);
    const r = new Ring(shuffled, { vnodesPerNode: 32 });
    t.same(r.tokens(), ref.tokens());
  }
});

t.test('equal tokens are ordered by node id', async (t) => {
  // tie-19576#0 and tie-59420#0 hash to the same token (found by a birthday search).
  const a = 'tie-19576';
  const b = 'tie-59420';
  const tie = vnodeToken(a, 0);
  t.equal(vnodeToken(b, 0), tie, 'the two vnodes collide');
  for (const members of [[{ id: a }, { id: b }], [{ id: b }, { id: a }]]) {
    const ring = new Ring(members, { vnodesPerNode: 1 });
    t.same(ring.tokens(), [
      { token: tie, node: a },
      { token: tie, node: b },
    ]);
    t.same(ring.preferenceListForToken(tie, 2), [a, b], 'the smaller id is the primary at the tied token');
    t.same(ring.preferenceListForToken(0, 2), [a, b], 'and for the ranges on either side');
    t.same(ring.preferenceListForToken(tie + 1, 2), [a, b]);
    t.same([...ring.ownership()], [
      [a, 1],
      [b, 0],
    ]);
  }
});

t.test('lookups agree with a naive linear scan, including boundary tokens', async (t) => {
  const rnd = new SeededRandom(seed ^ 0x2222);
  let checked = 0;
  for (let round = 0; round < 20; round++) {
    const size = 1 + rnd.int(9);
    const members = nodes(size).map((m) => ({ ...m, weight: 0.25 + rnd.next() * 2 }));
    const ring = new Ring(members, { vnodesPerNode: 1 + rnd.int(40) });
    const list = ring.tokens();
    const probes = [0, 2 ** 32 - 1, 1, 2 ** 31];
    for (const e of list.slice(0, 30)) probes.push(e.token, Math.max(0, e.token - 1), Math.min(2 ** 32 - 1, e.token + 1));
    for (let i = 0; i < 200; i++) probes.push(rnd.uint32());
    for (const token of probes) {
      const n = 1 + rnd.int(size + 2);
      const got = ring.preferenceListForToken(token, n);
      const want = naivePreferenceList(ring, token, n);
      if (JSON.stringify(got) !== JSON.stringify(want)) {
        t.same(got, want, `token ${token}, n ${n}, ring of ${size}`);
        return;
      }
      checked++;
    }
  }
  t.ok(checked > 4000, `${checked} lookups matched the oracle`);
});

t.test('a key whose token equals a vnode token belongs to that vnode; the wrap goes to the first token', async (t) => {
  const ring = new Ring(nodes(4), { vnodesPerNode: 8 });
  const list = ring.tokens();
  for (let i = 0; i < list.length; i++) {
    t.equal(ring.preferenceListForToken(list[i]!.token, 1)[0], list[i]!.node);
    if (i > 0 && list[i - 1]!.token + 1 < list[i]!.token) {
      t.equal(ring.preferenceListForToken(list[i - 1]!.token + 1, 1)[0], list[i]!.node, '(prev, token] is the range');
    }
  }
  const last = list[list.length - 1]!.token;
  if (last < 2 ** 32 - 1) t.equal(ring.preferenceListForToken(last + 1, 1)[0], list[0]!.node);
  t.equal(ring.preferenceListForToken(2 ** 32 - 1, 1)[0], last === 2 ** 32 - 1 ? list[list.length - 1]!.node : list[0]!.node);
});

t.test('preference lists: n distinct nodes, prefixes of each other and of walk()', async (t) => {
  for (const size of [1, 3, 5, 8]) {
    const ring = new Ring(nodes(size));
    for (const k of keys.slice(0, 500)) {
      const full = [...ring.walk(k)];
      if (full.length !== size || new Set(full).size !== size) {
        t.fail(`walk yields every node once (ring of ${size})`);
        return;
      }
      for (let n = 0; n <= size + 2; n++) {
        const pl = ring.preferenceList(k, n);
        const ok = pl.length === Math.min(n, size) && new Set(pl).size === pl.length && pl.every((x, i) => x === full[i]);
        if (!ok) {
          t.same(pl, full.slice(0, n), `ring of ${size}, n=${n}`);
          return;
        }
      }
      if (ring.preferenceList(k, 1)[0] !== ring.preferenceListForToken(Ring.tokenOf(k), 1)[0]) {
        t.fail('preferenceList and preferenceListForToken agree');
        return;
      }
    }
    t.pass(`ring of ${size}: 500 keys`);
  }
});

t.test('an empty ring has no owners', async (t) => {
  const ring = new Ring([]);
  t.same(ring.preferenceList('k', 3), []);
  t.same([...ring.walk('k')], []);
  t.same(ring.tokens(), []);
  t.equal(ring.ownership().size, 0);
  t.same(ring.withMember({ id: 'a' }).preferenceList('k', 3), ['a']);
});

t.test('ownership: the fractions sum to 1 and predict where keys land', async (t) => {
  const one = new Ring([{ id: 'solo' }], { vnodesPerNode: 1 });
  t.same([...one.ownership()], [['solo', 1]], 'one vnode owns the whole circle');
  for (const size of [2, 5, 9]) {
    const ring = new Ring(nodes(size));
    const own = ring.ownership();
    t.equal(own.size, size);
    const sum = [...own.values()].reduce((a, b) => a + b, 0);
    t.ok(Math.abs(sum - 1) < 1e-9, `sum ${sum}`);
    const counts = primaryCounts(ring);
    for (const [id, frac] of own) {
      const share = counts.get(id)! / KEY_COUNT;
      t.ok(Math.abs(share - frac) < 0.01, `${id}: key share ${share.toFixed(4)} vs ownership ${frac.toFixed(4)}`);
    }
  }
});

t.test('balance of primaries with 128 vnodes and 3..10 equal nodes', async (t) => {
  // Random vnode placement gives each node a share with a relative standard deviation of
  // about 1/sqrt(vnodes) = 8.8% at 128 vnodes, so the bound is +-25% of the mean (about
  // 2.8 sigma) and the spread across nodes (coefficient of variation) at most 15%.
  const report: string[] = [];
  for (let size = 3; size <= 10; size++) {
    const ring = new Ring(nodes(size));
    const counts = [...primaryCounts(ring).values()];
    const mean = KEY_COUNT / size;
    const ratios = counts.map((c) => c / mean);
    const cv = Math.sqrt(ratios.reduce((s, r) => s + (r - 1) ** 2, 0) / size);
    report.push(`${size} nodes: min ${Math.min(...ratios).toFixed(3)} max ${Math.max(...ratios).toFixed(3)} cv ${cv.toFixed(3)}`);
    t.equal(counts.reduce((a, b) => a + b, 0), KEY_COUNT);
    for (const r of ratios) t.ok(r > 0.75 && r < 1.25, `${size} nodes: a node holds ${r.toFixed(3)} x the mean`);
    t.ok(cv < 0.15, `${size} nodes: cv ${cv.toFixed(3)}`);
  }
  t.comment(report.join('\n'));
});

t.test('keys stored per node (N = 3 replicas) spread within +-10% with 128 vnodes', async (t) => {
  // What a node actually holds is every key it is one of the N replicas of (Cassandra's
  // "effective ownership"). A replica set spans N ranges, which cuts the spread of a
  // primary share (about 1/sqrt(vnodes) = 8.8% relative) by about sqrt(N): with 128 vnodes
  // every node of a 4..7-node cluster stays within 10% of the mean. (At 8-10 nodes the
  // extreme node of 10 drifts to about 11%: the limit of random placement, see ring.ts.)
  const report: string[] = [];
  for (let size = 4; size <= 7; size++) {
    const ring = new Ring(nodes(size));
    const held = new Map<string, number>();
    for (const k of keys) for (const n of ring.preferenceList(k, 3)) held.set(n, (held.get(n) ?? 0) + 1);
    const mean = (keys.length * 3) / size;
    const ratios = [...held.values()].map((c) => c / mean);
    report.push(`${size} nodes: min ${Math.min(...ratios).toFixed(3)} max ${Math.max(...ratios).toFixed(3)}`);
    t.equal(held.size, size, 'every node holds keys');
    for (const r of ratios) t.ok(r >= 0.9 && r <= 1.1, `${size} nodes: a node holds ${r.toFixed(3)} x the mean`);
  }
  t.comment(report.join('\n'));
});

t.test('adding a 4th node to 3 moves about 1/4 of the primaries, all to the new node', async (t) => {
  const before = new Ring(nodes(3));
  const after = before.withMember({ id: 'node-4' });
  t.same(
    after.members.map((m) => m.id),
    ['node-1', 'node-2', 'node-3', 'node-4'],
  );
  let moved = 0;
  let movedElsewhere = 0;
  for (const k of keys) {
    const p0 = before.preferenceList(k, 1)[0];
    const p1 = after.preferenceList(k, 1)[0];
    if (p0 !== p1) {
      moved++;
      if (p1 !== 'node-4') movedElsewhere++;
    }
  }
  const frac = moved / KEY_COUNT;
  t.ok(frac >= 0.18 && frac <= 0.32, `moved ${frac.toFixed(4)} of the keys`);
  t.equal(movedElsewhere, 0, 'every moved key moved to the new node');
});

t.test('N=3 replica sets: a join only adds the new node; a leave only removes the old one', async (t) => {
  const before = new Ring(nodes(5));
  const after = before.withMember({ id: 'node-6' });
  let changed = 0;
  for (const k of keys) {
    const s0 = before.preferenceList(k, 3);
    const s1 = after.preferenceList(k, 3);
    const gained = s1.filter((x) => !s0.includes(x));
    const lost = s0.filter((x) => !s1.includes(x));
    if (gained.length === 0 && lost.length === 0) continue;
    changed++;
    if (gained.length !== 1 || gained[0] !== 'node-6' || lost.length !== 1) {
      t.fail(`key ${k.toString('hex')}: ${s0} -> ${s1}`);
      return;
    }
  }
  // The new node joins about 3/6 of the replica sets.
  t.ok(changed / KEY_COUNT > 0.35 && changed / KEY_COUNT < 0.65, `${changed} replica sets changed`);

  const left = after.withoutMember('node-2');
  let affected = 0;
  for (const k of keys) {
    const s0 = after.preferenceList(k, 3);
    const s1 = left.preferenceList(k, 3);
    if (!s0.includes('node-2')) {
      if (s0.join() !== s1.join()) {
        t.fail(`key ${k.toString('hex')} lost no replica but changed: ${s0} -> ${s1}`);
        return;
      }
      continue;
    }
    affected++;
    const gained = s1.filter((x) => !s0.includes(x));
    if (gained.length !== 1 || s1.includes('node-2') || s1.length !== 3) {
      t.fail(`key ${k.toString('hex')}: ${s0} -> ${s1}`);
      return;
    }
  }
  t.ok(affected > 0);
});

t.test('weights: a node of weight 0.5 gets about half the share of the others', async (t) => {
  const ring = new Ring([...nodes(4), { id: 'half', weight: 0.5 }]);
  const counts = primaryCounts(ring);
  const others = [...counts].filter(([id]) => id !== 'half').map(([, c]) => c);
  const meanOthers = others.reduce((a, b) => a + b, 0) / others.length;
  const ratio = counts.get('half')! / meanOthers;
  t.ok(ratio > 0.35 && ratio < 0.65, `weight 0.5 gets ${ratio.toFixed(3)} x the others' mean share`);

  const heavy = new Ring([...nodes(4), { id: 'double', weight: 2 }]);
  const hc = primaryCounts(heavy);
  const hOthers = [...hc].filter(([id]) => id !== 'double').map(([, c]) => c);
  const hRatio = hc.get('double')! / (hOthers.reduce((a, b) => a + b, 0) / hOthers.length);
  t.ok(hRatio > 1.6 && hRatio < 2.4, `weight 2 gets ${hRatio.toFixed(3)} x the others' mean share`);
});

t.test('reweighting moves keys only to or from the reweighted node', async (t) => {
  const ring = new Ring(nodes(4));
  const lighter = ring.withMember({ id: 'node-3', weight: 0.5 });
  t.same(lighter.members.find((m) => m.id === 'node-3'), { id: 'node-3', weight: 0.5 });
  t.equal(lighter.members.length, 4);
  for (const k of keys.slice(0, 20_000)) {
    const p0 = ring.preferenceList(k, 1)[0];
    const p1 = lighter.preferenceList(k, 1)[0];
    if (p0 !== p1 && p0 !== 'node-3') {
      t.fail(`key ${k.toString('hex')} moved ${p0} -> ${p1}`);
      return;
    }
  }
  t.pass('only node-3 lost keys');
});

t.test('rings are immutable; withoutMember of a stranger returns the same ring', async (t) => {
  const ring = new Ring(nodes(3));
  const snapshot = JSON.stringify(ring.tokens());
  const bigger = ring.withMember({ id: 'node-9' });
  const smaller = ring.withoutMember('node-1');
  t.not(bigger, ring);
  t.equal(JSON.stringify(ring.tokens()), snapshot);
  t.same(ring.members.map((m) => m.id), ['node-1', 'node-2', 'node-3']);
  t.same(smaller.members.map((m) => m.id), ['node-2', 'node-3']);
  t.equal(smaller.vnodesPerNode, ring.vnodesPerNode);
  t.equal(ring.withoutMember('nobody'), ring);
  t.ok(Object.isFrozen(ring.members) && Object.isFrozen(ring.tokens()));
});

interface RingCase {
  name: string;
  members: RingMember[];
  vnodesPerNode: number;
  n: number;
  keys: { key?: string; keyHex?: string; token: number; preferenceList: string[] }[];
}

t.test('placement table (test/sdk/ring-cases.json)', async (t) => {
  const cases = JSON.parse(readFileSync(new URL('./ring-cases.json', import.meta.url), 'utf8')) as RingCase[];
  t.ok(cases.length >= 3);
  for (const c of cases) {
    const ring = new Ring(c.members, { vnodesPerNode: c.vnodesPerNode });
    for (const k of c.keys) {
      const key = k.keyHex !== undefined ? Buffer.from(k.keyHex, 'hex') : k.key!;
      const label = `${c.name}: ${k.keyHex ?? JSON.stringify(k.key)}`;
      t.equal(Ring.tokenOf(key), k.token, `${label} token`);
      t.same(ring.preferenceList(key, c.n), k.preferenceList, `${label} preference list`);
    }
  }
});

t.test('arcs: inclusive spans tiling the token space, owned as lookups route, adding up to the shares', async (t) => {
  const SPACE = 2 ** 32;
  const rnd = new SeededRandom(seed ^ 0x4a4c);
  t.same(new Ring([], { vnodesPerNode: 8 }).arcs(), [], 'an empty ring: no arcs');
  t.same(new Ring([{ id: 'solo' }], { vnodesPerNode: 8 }).arcs(), [{ node: 'solo', from: 0, to: SPACE - 1 }], 'one node: one arc, the whole space');
  // Two vnodes on one token (tie-19576#0 and tie-59420#0): the second owns nothing.
  const tie = new Ring([{ id: 'tie-19576' }, { id: 'tie-59420' }], { vnodesPerNode: 1 });
  t.same(tie.arcs(), [{ node: 'tie-19576', from: 0, to: SPACE - 1 }], 'a vnode on a token already taken owns no arc');
  for (const [name, ring] of [
    ['5 nodes, 64 vnodes, weights', new Ring([...nodes(4), { id: 'heavy', weight: 2.5 }], { vnodesPerNode: 64 })],
    ['2 nodes, 3 vnodes', new Ring(nodes(2), { vnodesPerNode: 3 })],
  ] as const) {
    const arcs = ring.arcs();
    const problems: string[] = [];
    if (arcs[0]!.from !== 0 || arcs[arcs.length - 1]!.to !== SPACE - 1) problems.push('does not span 0 .. 2^32 - 1');
    const width = new Map<string, number>();
    arcs.forEach((a, i) => {
      if (a.to < a.from) problems.push(`arc ${i} reversed`);
      if (i > 0 && (a.from !== arcs[i - 1]!.to + 1 || a.node === arcs[i - 1]!.node)) problems.push(`arc ${i}: gap, overlap or not joined`);
      for (const token of [a.from, a.to, a.from + Math.floor((a.to - a.from) / 2)]) {
        if (ring.preferenceListForToken(token, 1)[0] !== a.node) problems.push(`token ${token} routed elsewhere than arc ${i}`);
      }
      width.set(a.node, (width.get(a.node) ?? 0) + (a.to - a.from + 1));
    });
    for (let i = 0; i < 2000; i++) {
      const token = rnd.uint32();
      const arc = arcs.find((a) => a.from <= token && token <= a.to);
      if (arc?.node !== ring.preferenceListForToken(token, 1)[0]) problems.push(`random token ${token}`);
    }
    for (const [id, share] of ring.ownership()) if (Math.abs((width.get(id) ?? 0) / SPACE - share) > 1e-12) problems.push(`${id}: arcs do not add up to its share`);
    t.same(problems.slice(0, 10), [], `${name}: ${arcs.length} arcs`);
  }
});
