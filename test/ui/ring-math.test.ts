// The dashboard recomputes the ring in the browser (storage-server/ui/murmur3.js, ring.js).
// These tests pin it to the SDK's: the same hash as the `murmurhash` package's v3 for
// ASCII, multi-byte UTF-8 and every tail length; the same tokens and ownership shares as
// sdk/ring.ts for assorted members and weights; arcs that tile the circle exactly.
// Randomized parts print their seed; rerun one with RINGKV_SEED=<seed>.

import murmurhash from 'murmurhash';
import t from 'tap';
import { Ring } from '../../sdk/ring.js';
import { SeededRandom, testSeed } from '../sdk/seeded-random.js';

interface UiMember {
  id: string;
  weight?: number;
  state?: string;
  dc?: string;
  rack?: string;
}
interface Murmur3Module {
  murmur3(input: string | Uint8Array, seed?: number): number;
}
interface RingModule {
  TOKEN_SPACE: number;
  inRing(m: { state: string }): boolean;
  ringTokens(members: UiMember[], vnodesPerNode: number): { token: number; node: string }[];
  ownership(members: UiMember[], vnodesPerNode: number): Map<string, number>;
  ringArcs(tokens: { token: number; node: string }[]): { node: string; start: number; end: number }[];
  placement(members: UiMember[], vnodesPerNode: number, replication: Record<string, number>, token: number): { dc: string; replicas: string[] }[];
}

const ui = (name: string) => new URL(`../../storage-server/ui/${name}`, import.meta.url).href;
const { murmur3 } = (await import(ui('murmur3.js'))) as Murmur3Module;
const ring = (await import(ui('ring.js'))) as RingModule;

const seed = testSeed();
t.comment(`seed ${seed} (rerun with RINGKV_SEED=${seed})`);
const rnd = new SeededRandom(seed);

t.test('murmur3 matches the murmurhash package (v3) that the SDK hashes with', async (t) => {
  const fixed = ['', 'a', 'ab', 'abc', 'abcd', 'abcde', 'n1#0', 'n3#127', 'node-10#255', 'héllo', '☃ snow', '𝄞 clef', 'ключ', '鍵'];
  const alphabet = 'abcdefghijklmnopqrstuvwxyz0123456789#:-_éü☃𝄞鍵';
  const random = Array.from({ length: 2000 }, () => {
    const chars = Array.from(alphabet);
    return Array.from({ length: rnd.int(40) }, () => chars[rnd.int(chars.length)]).join('');
  });
  let mismatches = 0;
  for (const s of [...fixed, ...random]) {
    for (const seedValue of [0, 1, 0x9747b28c]) {
      if (murmur3(s, seedValue) !== murmurhash.v3(s, seedValue) >>> 0) {
        mismatches++;
        if (mismatches < 5) t.fail(`murmur3(${JSON.stringify(s)}, ${seedValue}) differs`);
      }
    }
  }
  t.equal(mismatches, 0, `${(fixed.length + random.length) * 3} strings and seeds agree`);
  for (let len = 0; len < 16; len++) {
    const bytes = rnd.bytes(len);
    t.equal(murmur3(bytes), murmurhash.v3(bytes, 0) >>> 0, `bytes of length ${len}`);
  }
});

t.test('the ring tokens and ownership match sdk/ring.ts', async (t) => {
  const cases: { name: string; members: UiMember[]; vnodes: number }[] = [
    { name: 'three nodes, 128 vnodes', members: [{ id: 'n1' }, { id: 'n2' }, { id: 'n3' }], vnodes: 128 },
    { name: 'one node', members: [{ id: 'solo' }], vnodes: 16 },
    { name: 'weights', members: [{ id: 'a', weight: 0.5 }, { id: 'b', weight: 1 }, { id: 'c', weight: 2.25 }, { id: 'd', weight: 0.001 }], vnodes: 64 },
    { name: 'ids out of order', members: [{ id: 'node-10' }, { id: 'node-2' }, { id: 'Node-1' }, { id: 'ñ' }], vnodes: 32 },
    { name: 'five nodes, 256 vnodes', members: Array.from({ length: 5 }, (_, i) => ({ id: `n${i + 1}` })), vnodes: 256 },
  ];
  for (const c of cases) {
    const sdk = new Ring(c.members.map((m) => ({ id: m.id, weight: m.weight ?? 1 })), { vnodesPerNode: c.vnodes });
    t.same(ring.ringTokens(c.members, c.vnodes), sdk.tokens().map((e) => ({ token: e.token, node: e.node })), `${c.name}: same tokens, same order`);
    const mine = ring.ownership(c.members, c.vnodes);
    const theirs = sdk.ownership();
    let maxDiff = 0;
    for (const [id, share] of theirs) maxDiff = Math.max(maxDiff, Math.abs(share - (mine.get(id) ?? NaN)));
    t.ok(maxDiff < 1e-12, `${c.name}: same shares (max difference ${maxDiff})`);
    const total = [...mine.values()].reduce((a, b) => a + b, 0);
    t.ok(Math.abs(total - 1) < 1e-12, `${c.name}: shares sum to 1`);
  }
});

t.test('the arcs tile the circle and agree with the shares', async (t) => {
  const members: UiMember[] = [{ id: 'n1' }, { id: 'n2' }, { id: 'n3', weight: 1.5 }];
  const tokens = ring.ringTokens(members, 128);
  const arcs = ring.ringArcs(tokens);
  let covered = 0;
  const problems: string[] = [];
  const byNode = new Map<string, number>();
  for (let i = 0; i < arcs.length; i++) {
    const a = arcs[i]!;
    const next = arcs[(i + 1) % arcs.length]!;
    if (!(a.end > a.start)) problems.push(`arc ${i} is empty or reversed`);
    if (i + 1 < arcs.length && next.start !== a.end) problems.push(`gap or overlap after arc ${i}`);
    if (next.node === a.node) problems.push(`arcs ${i} and ${i + 1} have the same owner (not merged)`);
    covered += a.end - a.start;
    byNode.set(a.node, (byNode.get(a.node) ?? 0) + (a.end - a.start) / ring.TOKEN_SPACE);
  }
  t.same(problems, [], `${arcs.length} arcs: contiguous, non-empty, neighbours owned by different nodes`);
  t.equal(covered, ring.TOKEN_SPACE, 'the arcs cover the token space exactly once');
  const shares = ring.ownership(members, 128);
  for (const [id, share] of shares) t.ok(Math.abs(share - byNode.get(id)!) < 1e-12, `${id}: arcs add up to its share`);
  t.same(ring.ringArcs(ring.ringTokens([{ id: 'solo' }], 8)).map((a) => a.end - a.start), [ring.TOKEN_SPACE], 'one node: one arc, the whole circle');
  t.same(ring.ringArcs([]), [], 'no members: no arcs');
});

t.test('which members are in the ring', async (t) => {
  for (const [state, expected] of [['up', true], ['suspect', true], ['down', true], ['leaving', true], ['joining', false], ['left', false]] as const) {
    t.equal(ring.inRing({ state }), expected, `${state}: ${expected ? 'in' : 'out of'} the ring`);
  }
});

t.test('the placement per data center and rack matches sdk/ring.ts', async (t) => {
  for (let round = 0; round < 8; round++) {
    const members: UiMember[] = [];
    const replication: Record<string, number> = {};
    const dcs = 1 + rnd.int(3);
    for (let d = 0; d < dcs; d++) {
      const dc = d === 0 && round % 2 === 0 ? 'default' : `dc${d}`;
      replication[dc] = 1 + rnd.int(4);
      const racks = 1 + rnd.int(3);
      for (let i = 0; i < 1 + rnd.int(6); i++) {
        members.push({ id: `${dc}-n${i}`, ...(dc !== 'default' ? { dc } : {}), ...(racks > 1 ? { rack: `r${rnd.int(racks)}` } : {}), weight: rnd.pick([0.5, 1, 1.5]) });
      }
    }
    const vnodes = 8 + rnd.int(32);
    const sdk = new Ring(members.map((m) => ({ id: m.id, weight: m.weight!, ...(m.dc ? { dc: m.dc } : {}), ...(m.rack ? { rack: m.rack } : {}) })), { vnodesPerNode: vnodes, replication });
    let mismatches = 0;
    for (let i = 0; i < 300; i++) {
      const token = rnd.uint32();
      const mine = ring.placement(members, vnodes, replication, token).flatMap((p) => p.replicas);
      if (mine.join() !== sdk.replicasForToken(token).join()) mismatches++;
    }
    t.equal(mismatches, 0, `round ${round}: ${JSON.stringify(replication)}, 300 tokens agree`);
  }
});
