// GET /internal/v1/ring, which the dashboard draws from (it no longer computes the ring in
// the browser), on real server processes: the arcs tile the token space and every token of
// an arc is first-owned by the arc's node as sdk/ring.ts routes it (checked at each arc's
// ends and at random tokens), each node's vnodes and share are the SDK's for the cluster's
// members and weights, every node answers the same ring, a key's replicas are the ones the
// SDK writes to (per data center and rack on a cluster of two), bad keys are refused with
// their codes, and the route answers the dashboard of another node (CORS).
// Randomized parts print their seed; rerun one with RINGKV_SEED=<seed>.

import t from 'tap';
import { Ring } from '../../sdk/ring.js';
import type { MembersView } from '../../sdk/membership.js';
import type { RingAnswer, RingKeyAnswer } from '../../sdk/wire/protocol.js';
import { decodeMessage, PROTOCOL_VERSION, Routes } from '../../sdk/wire/protocol.js';
import { TestCluster } from '../helpers/cluster.js';
import { DcCluster } from '../helpers/dc-cluster.js';
import { SeededRandom, testSeed } from '../sdk/seeded-random.js';

t.setTimeout(180_000);

const seed = testSeed();
t.comment(`seed ${seed} (rerun with RINGKV_SEED=${seed})`);
const rnd = new SeededRandom(seed);
const SPACE = 2 ** 32;

/** GET a node's ring route as the dashboard does (JSON). */
async function getRing<T = RingAnswer>(address: string, query = '', headers: Record<string, string> = {}): Promise<{ status: number; body: T; headers: Headers }> {
  const res = await fetch(`http://${address}${Routes.ring}${query}`, { headers: { accept: 'application/json', ...headers } });
  // Errors on internal routes come as msgpack {code, message}, whatever was accepted.
  const bytes = Buffer.from(await res.arrayBuffer());
  const body = (res.headers.get('content-type')?.includes('json') ? JSON.parse(bytes.toString('utf8')) : decodeMessage(bytes)) as T;
  return { status: res.status, body, headers: res.headers };
}

/** The SDK's ring of a node's members view (the members in the ring: neither joining nor left). */
function sdkRing(view: MembersView): Ring {
  const members = view.members
    .filter((m) => m.state !== 'joining' && m.state !== 'left')
    .map((m) => ({ id: m.id, weight: m.weight, ...(m.dc ? { dc: m.dc } : {}), ...(m.rack ? { rack: m.rack } : {}) }));
  const replication = view.settings.replication ?? { default: view.settings.replicationFactor };
  return new Ring(members, { vnodesPerNode: view.settings.vnodesPerNode, replication });
}

/** Problems of `arcs` as a tiling of the token space, and against the SDK's first owners. */
function arcProblems(arcs: RingAnswer['arcs'], ring: Ring, randomTokens: number[]): string[] {
  const problems: string[] = [];
  if (arcs.length === 0) return ['no arcs'];
  if (arcs[0]!.from !== 0) problems.push(`the first arc starts at ${arcs[0]!.from}, not 0`);
  if (arcs[arcs.length - 1]!.to !== SPACE - 1) problems.push(`the last arc ends at ${arcs[arcs.length - 1]!.to}, not 2^32 - 1`);
  const first = (token: number) => ring.preferenceListForToken(token, 1)[0];
  for (let i = 0; i < arcs.length; i++) {
    const a = arcs[i]!;
    if (!(a.to >= a.from)) problems.push(`arc ${i} is empty or reversed (${a.from}..${a.to})`);
    if (i > 0 && a.from !== arcs[i - 1]!.to + 1) problems.push(`gap or overlap before arc ${i}`);
    if (i > 0 && a.node === arcs[i - 1]!.node) problems.push(`arcs ${i - 1} and ${i} have one owner (not joined)`);
    for (const token of [a.from, a.to]) if (first(token) !== a.node) problems.push(`token ${token} of arc ${i} is ${a.node}'s, the SDK routes it to ${first(token)}`);
    if (problems.length > 10) break;
  }
  // Random tokens: the arc holding each is owned by the SDK's first replica of it.
  for (const token of randomTokens) {
    let lo = 0;
    let hi = arcs.length - 1;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (arcs[mid]!.to < token) lo = mid + 1;
      else hi = mid;
    }
    if (arcs[lo]!.node !== first(token)) {
      problems.push(`token ${token}: arc of ${arcs[lo]!.node}, the SDK routes it to ${first(token)}`);
      if (problems.length > 10) break;
    }
  }
  return problems;
}

t.test('the ring route on a cluster of three nodes of different weights', async (t) => {
  const weights: Record<string, string> = { n1: '1', n2: '0.5', n3: '2.25' };
  const cluster = await TestCluster.start(t, { nodes: 3, args: ['--vnodes', '48'], nodeArgs: (node) => ['--weight', weights[node.id]!] });
  await cluster.waitForMembers(3, 'up', 20_000);
  const view = await cluster.view('n1');
  const ring = sdkRing(view);

  const { status, body } = await getRing(cluster.node('n1').address);
  t.equal(status, 200, 'GET /internal/v1/ring answers 200');
  t.equal(body.v, PROTOCOL_VERSION, `v is ${PROTOCOL_VERSION}`);
  t.same([body.node, body.ringEpoch, body.ringDigest], ['n1', view.ringEpoch, view.ringDigest], 'the answer names its node and the ring stamp of its member list');
  t.same([body.tokenSpace, body.vnodesPerNode, body.replication, body.moving], [SPACE, 48, { default: 3 }, false], 'token space, vnodes, replication, nothing moving');

  const randomTokens = Array.from({ length: 3000 }, () => rnd.uint32());
  t.same(arcProblems(body.arcs, ring, randomTokens), [], `${body.arcs.length} arcs tile the token space, owned as the SDK routes (3000 random tokens too)`);

  const shares = ring.ownership();
  const vnodes = new Map<string, number>();
  for (const { node } of ring.tokens()) vnodes.set(node, (vnodes.get(node) ?? 0) + 1);
  t.same(body.members.map((m) => m.id), ['n1', 'n2', 'n3'], 'a member entry per node, by id');
  for (const m of body.members) {
    t.equal(m.vnodes, vnodes.get(m.id), `${m.id} (weight ${m.weight}): ${m.vnodes} vnodes, as the SDK places them`);
    t.ok(Math.abs(m.share - shares.get(m.id)!) < 1e-12, `${m.id}: share ${(m.share * 100).toFixed(2)}% is the SDK's`);
    const arcWidth = body.arcs.filter((a) => a.node === m.id).reduce((w, a) => w + (a.to - a.from + 1), 0);
    t.ok(Math.abs(arcWidth / SPACE - m.share) < 1e-12, `${m.id}: its arcs add up to its share`);
    t.equal(m.pendingShare, undefined, `${m.id}: no share after a move (nothing moving)`);
  }
  t.same(body.members.map((m) => m.vnodes), [48, 24, 108], 'vnodes follow the weights: round(48 × weight)');
  t.ok(Math.abs(body.members.reduce((s, m) => s + m.share, 0) - 1) < 1e-12, 'the shares sum to 1');

  for (const id of ['n2', 'n3']) {
    const other = await getRing(cluster.node(id).address);
    t.same([other.body.node, other.body.arcs, other.body.members.map((m) => m.share)], [id, body.arcs, body.members.map((m) => m.share)], `${id} answers the same ring`);
  }
  const packed = await fetch(`http://${cluster.node('n2').address}${Routes.ring}`, { headers: { accept: 'application/msgpack' } });
  t.same(decodeMessage<RingAnswer>(Buffer.from(await packed.arrayBuffer())).arcs, body.arcs, 'the same answer in msgpack');

  // A key's replicas: those the SDK writes to.
  const kv = await cluster.client<string>({ valueEncoding: 'utf8' });
  let wrong = 0;
  const keys = ['user:42', 'é', '鍵:1', ...Array.from({ length: 150 }, (_, i) => `k${i}:${rnd.int(1_000_000)}`)];
  for (const key of keys) {
    const a = await getRing<RingKeyAnswer>(cluster.node('n3').address, `?key=${encodeURIComponent(key)}`);
    const ok = a.status === 200 && a.body.key === key && a.body.token === Ring.tokenOf(key) && JSON.stringify(a.body.replicas) === JSON.stringify([{ dc: 'default', nodes: kv.replicasOf(key) }]);
    if (!ok && ++wrong <= 3) t.fail(`${key}: ${JSON.stringify(a.body)}; the SDK: token ${Ring.tokenOf(key)}, ${kv.replicasOf(key).join(',')}`);
  }
  t.equal(wrong, 0, `${keys.length} keys: token and replicas as the SDK computes them`);
  const empty = await getRing<{ code: string }>(cluster.node('n1').address, '?key=');
  t.same([empty.status, empty.body.code], [400, 'KEY_EMPTY'], 'an empty key: 400 KEY_EMPTY');
  const long = await getRing<{ code: string }>(cluster.node('n1').address, `?key=${'x'.repeat(257)}`);
  t.same([long.status, long.body.code], [400, 'KEY_TOO_LARGE'], 'a key of 257 bytes: 400 KEY_TOO_LARGE');

  // The dashboard served by another node reads this one's ring.
  const cors = await getRing(cluster.node('n1').address, '', { origin: `http://${cluster.node('n2').address}` });
  t.equal(cors.headers.get('access-control-allow-origin'), '*', "another node's page may read the ring (CORS)");
  const pre = await fetch(`http://${cluster.node('n1').address}${Routes.ring}`, { method: 'OPTIONS', headers: { origin: 'http://elsewhere', 'access-control-request-method': 'GET', 'access-control-request-headers': 'authorization' } });
  t.equal(pre.status, 204, 'and its preflight with the Authorization header is granted');
});

t.test('the ring route places a key per data center and rack, as the SDK does', async (t) => {
  const dc = await DcCluster.start(t, {
    dcs: [
      { name: 'east', nodes: 3, racks: ['r1', 'r2', 'r1'], rf: 2 },
      { name: 'west', nodes: 2, racks: ['r1', 'r2'], rf: 1 },
    ],
    env: { RINGKV_FULL_SYNC_INTERVAL_MS: '0' },
  });
  await dc.cluster.waitForMembers(5, 'up', 30_000);
  const east = await dc.client<string>('east', { valueEncoding: 'utf8' });
  const n1 = dc.cluster.node('n1').address;
  const { body } = await getRing(n1);
  t.same(body.replication, { east: 2, west: 1 }, 'the replicas per data center');
  t.same(
    body.members.map((m) => `${m.id}=${m.dc}/${m.rack}`),
    ['n1=east/r1', 'n2=east/r2', 'n3=east/r1', 'n4=west/r1', 'n5=west/r2'],
    "each member's data center and rack",
  );
  t.same(arcProblems(body.arcs, sdkRing(await dc.cluster.view('n1')), []), [], 'the arcs tile the token space, owned as the SDK routes');
  let wrong = 0;
  for (let i = 0; i < 100; i++) {
    const key = `dc-key:${i}:${rnd.int(1_000_000)}`;
    const a = await getRing<RingKeyAnswer>(n1, `?key=${encodeURIComponent(key)}`);
    const sdk = [{ dc: 'east', nodes: [...east.cluster.ring.replicasInDc(key, 'east')] }, { dc: 'west', nodes: [...east.cluster.ring.replicasInDc(key, 'west')] }];
    const ok = JSON.stringify(a.body.replicas) === JSON.stringify(sdk) && a.body.replicas.flatMap((r) => r.nodes).join() === east.replicasOf(key).join();
    if (!ok && ++wrong <= 3) t.fail(`${key}: ${JSON.stringify(a.body.replicas)}, the SDK: ${JSON.stringify(sdk)}`);
    const eastRacks = new Set(a.body.replicas[0]!.nodes.map((id) => body.members.find((m) => m.id === id)!.rack));
    if (eastRacks.size !== 2 && ++wrong <= 3) t.fail(`${key}: east's two replicas are not on two racks`);
  }
  t.equal(wrong, 0, "100 keys: each data center's replicas as the SDK places them, east's on both racks");
});
