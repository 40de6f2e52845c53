// The client's answer to a node that sheds load (503 OVERLOADED), against a scripted
// transport of three in-memory nodes: a write at `all` fails with OVERLOADED (not
// QUORUM_NOT_MET), the node is avoided for its Retry-After without counting as failed, a
// write meanwhile is kept as a hint and still fails with OVERLOADED (not NODE_UNAVAILABLE),
// a strong write succeeds on the other two, and a coordinated write (vector clocks) is
// coordinated by another replica, or at `all` fails with OVERLOADED too.

import t from 'tap';
import { connect } from '../../sdk/client.js';
import { ManualClock } from '../../sdk/clock.js';
import type { RingkvError } from '../../sdk/errors.js';
import { ErrorCodes, OverloadedError } from '../../sdk/errors.js';
import type { MemberInfo, MembersView } from '../../sdk/membership.js';
import { ringStampOf } from '../../sdk/ring-epoch.js';
import type { CallOptions, Transport } from '../../sdk/transport.js';
import type { StoredObject } from '../../sdk/versioning/index.js';
import { mergeObjects } from '../../sdk/versioning/index.js';
import type { BatchRequest, BatchResponse, WireResult } from '../../sdk/wire/protocol.js';
import { OpType, PROTOCOL_VERSION, Routes } from '../../sdk/wire/protocol.js';

const members: MemberInfo[] = [1, 2, 3].map((i) => ({ id: `n${i}`, address: `10.0.0.${i}:7000`, dc: 'default', weight: 1, state: 'up', incarnation: 1, ringVersion: 1 }));
const stamp = ringStampOf(members);
const view: MembersView = {
  v: PROTOCOL_VERSION,
  self: 'n1',
  settings: { vnodesPerNode: 16, replicationFactor: 3, replication: { default: 3 } },
  members,
  epoch: 1,
  ringEpoch: stamp.epoch,
  ringDigest: stamp.digest,
  ringFloor: stamp.epoch,
};

/** Three nodes in memory; those in `shedding` refuse every batch as a node's admission control does (503). */
class ScriptedNodes implements Transport {
  readonly shedding = new Set<string>();
  readonly hints: string[] = [];
  readonly coordinators: string[] = [];
  readonly data = new Map<string, Map<string, StoredObject>>();

  async call<T>(address: string, path: string, body: unknown, _opts: CallOptions): Promise<T> {
    if (path.startsWith(Routes.members)) return view as T;
    if (path !== Routes.batch) throw new Error(`unexpected ${path}`);
    const node = members.find((m) => m.address === address)!.id;
    // What the HTTP transport makes of `503 OVERLOADED` with `Retry-After: 1`.
    if (this.shedding.has(node)) throw new OverloadedError(`node ${node} sheds load`, 1);
    let store = this.data.get(node);
    if (!store) this.data.set(node, (store = new Map()));
    const b = body as BatchRequest;
    const results: WireResult[] = b.ops.map((op) => {
      const k = op.key.toString();
      if ('hintFor' in op && op.hintFor) {
        this.hints.push(`${node} for ${op.hintFor}`);
        return { ok: true, obj: null, won: true };
      }
      if (op.t === OpType.Get) return { ok: true, obj: store!.get(k) ?? null };
      if (op.t === OpType.Put || op.t === OpType.Merge) {
        const cur = store!.get(k);
        const merged = cur ? mergeObjects(cur, op.obj) : op.obj;
        store!.set(k, merged);
        return { ok: true, obj: null, ts: merged.siblings[0]!.ts, won: true, created: !cur };
      }
      if (op.t === OpType.CoordinatedPut) {
        // Enough of a coordinator for routing: the sibling as the resulting object.
        this.coordinators.push(node);
        return { ok: true, obj: { mode: 'lww', siblings: [op.sib], context: {} }, created: true };
      }
      return { ok: false, code: 'INVALID_ARGUMENT', msg: 'unexpected op' };
    });
    const res: BatchResponse = { v: PROTOCOL_VERSION, results, now: Date.now() };
    return res as T;
  }

  async close(): Promise<void> {}
}

t.test('a node that sheds load makes calls that need it fail with OVERLOADED, and is no failed node', async (t) => {
  const tr = new ScriptedNodes();
  // One real failure would avoid a node for a minute; a refusal for load only for its Retry-After.
  const clock = new ManualClock(Date.now());
  const health = { failuresToAvoid: 1, backoffMs: 60_000, maxBackoffMs: 60_000 };
  const kv = await connect({ seeds: ['10.0.0.1:7000'], transport: tr, valueEncoding: 'utf8', membershipWatchMs: 0, clock, health });
  t.teardown(() => kv.close());
  await kv.put('k', 'v0', { consistency: 'all' });
  tr.shedding.add('n1');

  const e1 = (await kv.put('k', 'v1', { consistency: 'all' }).catch((e: unknown) => e)) as RingkvError;
  t.equal(e1.code, ErrorCodes.OVERLOADED, 'a write at all: OVERLOADED, not QUORUM_NOT_MET');
  t.equal(e1.details?.retryAfterSec, 1, "with the node's Retry-After");
  t.same(kv.avoidedNodes, ['n1'], 'n1 is avoided for its Retry-After');

  // Within the Retry-After, n1 is not asked: its write is kept as a hint, and at `all` the
  // call still fails for load, not as if n1 were down.
  const e2 = (await kv.put('k', 'v2', { consistency: 'all' }).catch((e: unknown) => e)) as RingkvError;
  t.equal(e2.code, ErrorCodes.OVERLOADED, 'a write at all while n1 is avoided: OVERLOADED, not QUORUM_NOT_MET');
  t.ok(tr.hints.some((h) => h.endsWith('for n1')), `its write for n1 was kept as a hint (${tr.hints.join(', ')})`);

  const ok = await kv.put('k', 'v3', { consistency: 'strong' });
  t.ok(ok.version, 'a strong write succeeds on the other two');
  clock.advance(1001);
  t.same(kv.avoidedNodes, [], 'after its Retry-After n1 is used again: its refusals were no failures');

  // A coordinated write (vector clocks) of a key n1 would coordinate: it hands over to the
  // next replica; at `all` the write fails for load.
  const vc = await connect({ seeds: ['10.0.0.1:7000'], transport: tr, valueEncoding: 'utf8', membershipWatchMs: 0, conflictMode: 'vector-clock', health: { failuresToAvoid: 1 } });
  t.teardown(() => vc.close());
  const vk = Array.from({ length: 100 }, (_, i) => `vk${i}`).find((k) => vc.replicasOf(k)[0] === 'n1')!;
  const r3 = await vc.put(vk, 'x', { consistency: 'strong' }).catch((e: unknown) => e as RingkvError);
  t.ok('version' in r3, `a coordinated strong write succeeds (${(r3 as RingkvError).code ?? 'ok'})`);
  t.ok(tr.coordinators.length === 1 && tr.coordinators[0] !== 'n1', `another replica coordinated (${tr.coordinators.join(', ')})`);
  const e4 = (await vc.put(vk, 'y', { consistency: 'all' }).catch((e: unknown) => e)) as RingkvError;
  t.equal(e4.code, ErrorCodes.OVERLOADED, 'a coordinated write at all: OVERLOADED');
});
