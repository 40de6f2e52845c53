// The near cache without servers: an in-memory transport plays three nodes (members, batch
// answers held until the test releases them, invalidation streams the test writes to), so
// the races are made deterministic — an invalidation that arrives while a read of the same
// key is in flight leaves nothing cached, one that arrives after drops the entry, a lost
// stream flushes its node's entries and keeps in-flight reads from filling the cache, and
// the client's own writes drop its entry. The TTL runs on a fake clock.

import t from 'tap';
import type { Test } from 'tap';
import { connect } from '../../sdk/client.js';
import type { RingkvClient } from '../../sdk/client.js';
import type { MembersView } from '../../sdk/membership.js';
import { NearCache, nearCacheDefaults, resolveNearCacheOptions } from '../../sdk/near-cache.js';
import type { CallOptions, StreamOptions, Transport } from '../../sdk/transport.js';
import type { StoredObject } from '../../sdk/versioning/index.js';
import type { BatchRequest, BatchResponse, GetOp, WireResult } from '../../sdk/wire/protocol.js';
import { OpType, PROTOCOL_VERSION, Routes } from '../../sdk/wire/protocol.js';

const NODES = ['n1', 'n2', 'n3'];
const addr = (n: string) => `${n}.test:1`;

function lww(value: string, ts: number): StoredObject {
  return { mode: 'lww', siblings: [{ value: Buffer.from(value), tombstone: false, expiresAtMs: 0, contentType: 'text/plain; charset=utf-8', flags: 0, ts, writer: 'w' }], context: {} };
}

interface HeldGet {
  node: string;
  key: string;
  track: string | undefined;
  release: () => void;
}

/** Three nodes in memory. Gets of keys in `hold` wait for release(); streams say hello at once. */
class ThreeNodes implements Transport {
  readonly data = new Map<string, StoredObject>();
  readonly hold = new Set<string>();
  readonly held: HeldGet[] = [];
  readonly gets: { node: string; key: string; track: string | undefined }[] = [];
  /** Whether Gets answer `tracked` for a known stream id. */
  tracking = true;
  private readonly streams = new Map<string, { sid: string; opts: StreamOptions; end: () => void }>();
  private sids = 0;

  async call<T>(address: string, path: string, body: unknown, _opts: CallOptions): Promise<T> {
    const node = NODES.find((n) => addr(n) === address)!;
    if (path.startsWith(Routes.members)) {
      const view: MembersView = {
        v: PROTOCOL_VERSION,
        self: node,
        settings: { vnodesPerNode: 8, replicationFactor: 3 },
        members: NODES.map((id) => ({ id, address: addr(id), weight: 1, state: 'up', incarnation: 1 })),
        epoch: 1,
        now: Date.now(),
      };
      return view as T;
    }
    if (path === Routes.batch) {
      const b = body as BatchRequest;
      const results = await Promise.all(
        b.ops.map(async (op): Promise<WireResult> => {
          const key = op.key.toString('latin1');
          if (op.t === OpType.Get) {
            const track = (op as GetOp).track;
            this.gets.push({ node, key, track });
            // As a node does: the key is tracked when the Get arrives, then read.
            const tracked = this.tracking && track !== undefined && this.streams.get(node)?.sid === track;
            const obj = this.data.get(key) ?? null;
            if (this.hold.has(key)) await new Promise<void>((release) => this.held.push({ node, key, track, release }));
            return { ok: true, obj, ...(tracked ? { tracked: true } : {}) };
          }
          if (op.t === OpType.Put) {
            this.data.set(key, op.obj);
            return { ok: true, obj: null, won: true, ts: op.obj.siblings[0]!.ts, created: false };
          }
          return { ok: false, code: 'INVALID_ARGUMENT', msg: 'not in this test' };
        }),
      );
      const res: BatchResponse = { v: PROTOCOL_VERSION, results, now: Date.now() };
      return res as T;
    }
    throw new Error(`unexpected ${path}`);
  }

  stream(address: string, _path: string, _body: unknown, opts: StreamOptions): Promise<void> {
    const node = NODES.find((n) => addr(n) === address)!;
    return new Promise<void>((resolve) => {
      const sid = `${node}-s${++this.sids}`;
      const end = () => {
        if (this.streams.get(node)?.end === end) this.streams.delete(node);
        resolve();
      };
      this.streams.set(node, { sid, opts, end });
      opts.signal.addEventListener('abort', end, { once: true });
      setImmediate(() => opts.onMessage({ t: 'hello', v: 1, sid, heartbeatMs: 1000, node }));
    });
  }

  /** The node sends an invalidation of `keys` on its stream. */
  invalidate(node: string, ...keys: string[]): void {
    this.streams.get(node)!.opts.onMessage({ t: 'inv', keys: keys.map((k) => Buffer.from(k, 'latin1')) });
  }

  /** The node ends its stream (the client must flush what the node served). */
  endStream(node: string): void {
    this.streams.get(node)?.end();
  }

  sidOf(node: string): string | undefined {
    return this.streams.get(node)?.sid;
  }

  async close(): Promise<void> {}
}

const tick = () => new Promise((r) => setImmediate(r));

async function until(what: string, cond: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await tick();
  }
}

/** A client with a near cache over `tr`, with a live stream to every node. */
async function cachedClient(t: Test, tr: ThreeNodes): Promise<RingkvClient<string>> {
  const kv = await connect({
    seeds: [addr('n1')],
    transport: tr,
    valueEncoding: 'utf8',
    consistency: 'eventual',
    readRepairChance: 0,
    hedge: false,
    membershipWatchMs: 0,
    membershipRefreshMs: 600_000,
    cache: { ttlMs: 600_000 },
  });
  t.teardown(() => kv.close());
  // Reads open the streams (a read served by a node without a live stream is not kept).
  for (let i = 0; kv.nearCacheStats!.liveStreams.length < 3; i++) {
    if (i > 200) throw new Error('streams did not open');
    await kv.get(`warm-${i}`);
    await tick();
  }
  return kv;
}

/** Reads `key` and says whether it was served from the cache (no Get reached a node). */
async function readFrom(tr: ThreeNodes, kv: RingkvClient<string>, key: string): Promise<{ value: string | undefined; cached: boolean }> {
  const before = tr.gets.filter((g) => g.key === key).length;
  const r = await kv.get(key);
  return { value: r?.value, cached: tr.gets.filter((g) => g.key === key).length === before };
}

t.test('options: defaults and validation', async (t) => {
  t.same(nearCacheDefaults, { maxEntries: 10_000, maxBytes: 64 * 1024 * 1024, ttlMs: 5000, heartbeatMs: 1000 });
  t.same(resolveNearCacheOptions({ ttlMs: 100 }), { ...nearCacheDefaults, ttlMs: 100 });
  t.throws(() => resolveNearCacheOptions({ maxEntries: 0 }), { code: 'INVALID_ARGUMENT' });
  t.throws(() => resolveNearCacheOptions({ ttlMs: 0 }), { code: 'INVALID_ARGUMENT' });
  t.throws(() => resolveNearCacheOptions({ heartbeatMs: 50 }), { code: 'INVALID_ARGUMENT' });
});

t.test('a read at eventual is kept when its node tracks the key; strong reads are not', async (t) => {
  const tr = new ThreeNodes();
  tr.data.set('k', lww('v1', 1000));
  const kv = await cachedClient(t, tr);
  let r = await readFrom(tr, kv, 'k');
  t.same(r, { value: 'v1', cached: false }, 'first read goes to a node');
  const get = tr.gets.filter((g) => g.key === 'k')[0]!;
  t.equal(get.track, tr.sidOf(get.node), 'the Get named the live stream of its node');
  r = await readFrom(tr, kv, 'k');
  t.same(r, { value: 'v1', cached: true }, 'the second is served from the cache');
  const strong = await kv.get('k', { consistency: 'strong' });
  t.equal(strong?.value, 'v1');
  t.equal(tr.gets.filter((g) => g.key === 'k').length, 3, 'a strong read asks two replicas, never the cache');
  t.ok(tr.gets.filter((g) => g.key === 'k').slice(1).every((g) => g.track === undefined), 'and names no stream');
  const opt = await readFrom(tr, kv, 'k');
  t.same(opt.cached, true);
  const off = tr.gets.length;
  await kv.get('k', { cache: false });
  t.equal(tr.gets.length, off + 1, '{ cache: false } skips the cache');
  tr.data.delete('missing');
  t.same(await readFrom(tr, kv, 'missing'), { value: undefined, cached: false });
  t.same(await readFrom(tr, kv, 'missing'), { value: undefined, cached: true }, 'an absent key is kept too');
});

t.test('an invalidation while a read of the key is in flight leaves nothing cached', async (t) => {
  const tr = new ThreeNodes();
  tr.data.set('race', lww('old', 1000));
  const kv = await cachedClient(t, tr);
  tr.hold.add('race');
  const reading = kv.get('race');
  await until('the read to reach a node', () => tr.held.length === 1);
  const h = tr.held.shift()!;
  t.equal(h.track, tr.sidOf(h.node), 'the read named the stream');
  // The key changes on the node after the node read it: the invalidation arrives first.
  tr.data.set('race', lww('new', 2000));
  tr.invalidate(h.node, 'race');
  await tick();
  h.release();
  t.equal((await reading)?.value, 'old', 'the read itself returns what it got');
  t.equal(kv.nearCacheStats!.raced, 1, 'its answer was not stored');
  tr.hold.clear();
  t.same(await readFrom(tr, kv, 'race'), { value: 'new', cached: false }, 'the next read asks a node and sees the new value');
});

t.test('the same read without an invalidation is kept (the control)', async (t) => {
  const tr = new ThreeNodes();
  tr.data.set('race', lww('old', 1000));
  const kv = await cachedClient(t, tr);
  tr.hold.add('race');
  const reading = kv.get('race');
  await until('the read to reach a node', () => tr.held.length === 1);
  tr.held.shift()!.release();
  t.equal((await reading)?.value, 'old');
  tr.hold.clear();
  t.same(await readFrom(tr, kv, 'race'), { value: 'old', cached: true });
  t.equal(kv.nearCacheStats!.raced, 0);
});

t.test('an invalidation after the read drops the entry; of another key, nothing', async (t) => {
  const tr = new ThreeNodes();
  tr.data.set('a', lww('a1', 1000));
  tr.data.set('b', lww('b1', 1000));
  const kv = await cachedClient(t, tr);
  await kv.get('a');
  await kv.get('b');
  const nodeOfA = tr.gets.filter((g) => g.key === 'a')[0]!.node;
  tr.data.set('a', lww('a2', 2000));
  tr.invalidate(nodeOfA, 'a');
  await tick();
  t.same(await readFrom(tr, kv, 'a'), { value: 'a2', cached: false }, 'a is read again');
  t.same(await readFrom(tr, kv, 'b'), { value: 'b1', cached: true }, 'b is still cached');
});

t.test('a lost stream flushes its node\'s entries, and keeps in-flight reads of it out', async (t) => {
  const tr = new ThreeNodes();
  for (let i = 0; i < 30; i++) tr.data.set(`f${i}`, lww(`v${i}`, 1000));
  const kv = await cachedClient(t, tr);
  for (let i = 0; i < 30; i++) await kv.get(`f${i}`);
  const byNode = kv.nearCacheEntriesByNode();
  const victim = [...byNode.keys()].find((n) => (byNode.get(n) ?? 0) > 0)!;
  const others = [...byNode].filter(([n]) => n !== victim).reduce((a, [, c]) => a + c, 0);
  // A read of the victim in flight when its stream ends.
  tr.data.set('inflight', lww('x', 1000));
  tr.hold.add('inflight');
  let h: HeldGet | undefined;
  for (let i = 0; !h; i++) {
    // Reads go to a random replica: retry until one is held at the victim.
    const p = kv.get('inflight', { cache: i > 50 ? false : undefined });
    await until('a held read', () => tr.held.length > 0);
    const x = tr.held.shift()!;
    if (x.node === victim) {
      h = x;
      const lost = kv.nearCacheStats!.streamsLost;
      tr.endStream(victim);
      await until('the loss to be seen', () => kv.nearCacheStats!.streamsLost > lost);
      // The stream comes back before the answer does: the answer was tracked for the old one.
      await until('the stream to come back', () => kv.nearCacheStats!.liveStreams.includes(victim));
      x.release();
      await p;
    } else {
      x.release();
      await p;
      kv['nearCache']!.invalidate('inflight');
    }
  }
  t.equal(kv.nearCacheEntriesByNode().get(victim) ?? 0, 0, `the ${byNode.get(victim)} entries from ${victim} are gone`);
  t.equal([...kv.nearCacheEntriesByNode()].filter(([n]) => n !== victim).reduce((a, [, c]) => a + c, 0), others, 'the other nodes\' entries stay');
  t.ok(kv.nearCacheStats!.streamsLost >= 1);
  t.notOk(kv.nearCacheEntriesByNode().has(victim), 'the read in flight at the lost stream was not stored (tracked for a stream gone since)');
  t.ok(kv.nearCacheStats!.liveStreams.includes(victim), 'the stream was opened again');
  tr.hold.clear();
  await kv.get(`f-after`);
  for (let i = 0; i < 30 && !kv.nearCacheEntriesByNode().has(victim); i++) await kv.get(`g${i}`);
  t.ok(kv.nearCacheEntriesByNode().has(victim), 'and reads it serves are kept again');
});

t.test('the client\'s own write drops its entry at once', async (t) => {
  const tr = new ThreeNodes();
  tr.data.set('mine', lww('v1', 1000));
  const kv = await cachedClient(t, tr);
  await kv.get('mine');
  t.same(await readFrom(tr, kv, 'mine'), { value: 'v1', cached: true });
  await kv.put('mine', 'v2');
  t.same(await readFrom(tr, kv, 'mine'), { value: 'v2', cached: false }, 'read again after the write');
});

t.test('a Get the node did not track is not kept', async (t) => {
  const tr = new ThreeNodes();
  tr.data.set('u', lww('v1', 1000));
  const kv = await cachedClient(t, tr);
  tr.tracking = false;
  await kv.get('u');
  t.same(await readFrom(tr, kv, 'u'), { value: 'v1', cached: false });
  t.ok(kv.nearCacheStats!.untracked >= 2);
});

t.test('NearCache: entries expire ttlMs after the read that fetched them began', async (t) => {
  let now = 0;
  const c = new NearCache(resolveNearCacheOptions({ ttlMs: 1000 }), () => now);
  const key = Buffer.from('k');
  const ticket = c.begin(key);
  now = 300; // the read took 300 ms
  t.ok(c.offer(ticket, lww('v', 1), 'n1'));
  c.end(ticket);
  now = 999;
  t.ok(c.get(key), 'served 999 ms after the read began');
  now = 1000;
  t.equal(c.get(key), undefined, 'not at 1000 ms');
  t.equal(c.counters.expired, 1);
});

t.test('NearCache: a generation per key in flight; bounded by entries', async (t) => {
  let now = 0;
  const c = new NearCache(resolveNearCacheOptions({ maxEntries: 3 }), () => now);
  const a1 = c.begin(Buffer.from('a'));
  const a2 = c.begin(Buffer.from('a'));
  c.invalidate('a');
  const a3 = c.begin(Buffer.from('a'));
  t.notOk(c.offer(a1, null, 'n1'), 'both reads in flight at the invalidation are refused');
  t.notOk(c.offer(a2, null, 'n1'));
  t.ok(c.offer(a3, null, 'n1'), 'a read begun after it is stored');
  for (const x of [a1, a2, a3]) c.end(x);
  for (const k of ['b', 'c', 'd']) {
    const tk = c.begin(Buffer.from(k));
    c.offer(tk, null, 'n2');
    c.end(tk);
  }
  t.equal(c.size, 3, 'at most maxEntries');
  t.equal(c.get(Buffer.from('a')), undefined, 'the least recently used went');
  now++;
});
