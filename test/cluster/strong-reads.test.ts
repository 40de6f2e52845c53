// Quorum reads never go backwards, on three real server processes: a value seen on one
// replica only (a write that reached one replica and failed) is returned by a strong read
// only once a majority holds it; when the read cannot write it back, it fails with a typed
// error instead of returning it, so no later quorum read can return the older value.

import t from 'tap';
import { ErrorCodes, NodeUnavailableError, RingkvError } from '../../sdk/errors.js';
import type { StoredObject } from '../../sdk/versioning/index.js';
import type { BatchRequest, BatchResponse } from '../../sdk/wire/protocol.js';
import { OpType, PROTOCOL_VERSION, Routes } from '../../sdk/wire/protocol.js';
import type { CallOptions, Transport } from '../../sdk/transport.js';
import { FaultyTransport, HttpTransport } from '../../sdk/transport.js';
import { TestCluster } from '../helpers/cluster.js';

t.setTimeout(180_000);

/** A transport whose batches carrying a Merge to one address fail (a repair that cannot land). */
class NoRepairsTo implements Transport {
  constructor(
    private readonly inner: Transport,
    private readonly address: string,
  ) {}
  call<T>(address: string, path: string, body: unknown, opts: CallOptions): Promise<T> {
    const ops = (body as BatchRequest | undefined)?.ops;
    if (address === this.address && path === Routes.batch && ops?.some((o) => o.t === OpType.Merge)) {
      return Promise.reject(new NodeUnavailableError(address, 'repairs to this node fail (injected)'));
    }
    return this.inner.call<T>(address, path, body, opts);
  }
  close(): Promise<void> {
    return this.inner.close();
  }
}

function lww(value: string, ts: number): StoredObject {
  return { mode: 'lww', siblings: [{ value: Buffer.from(value), tombstone: false, expiresAtMs: 0, contentType: 'text/plain; charset=utf-8', flags: 0, ts, writer: 'w' }], context: {} };
}

t.test('a value on one replica only is returned at strong only once a majority holds it', async (t) => {
  const c = await TestCluster.start(t, { nodes: 3 });
  const setup = await c.client<string>({ valueEncoding: 'utf8' });
  const key = 'backwards';
  const [a, b, cc] = setup.replicasOf(key) as [string, string, string];
  await setup.put(key, 'v1', { consistency: 'all' });
  // v2 reached replica a only (its write failed elsewhere).
  const res = await c.call<BatchResponse>(a, Routes.batch, { v: PROTOCOL_VERSION, ops: [{ t: OpType.Put, key: Buffer.from(key), obj: lww('v2', (Date.now() + 1000) * 1000) }] });
  t.ok(res.results[0]!.ok);

  // Reader 1 reaches a and b (not c), and its repairs to b fail.
  const faulty1 = new FaultyTransport(new NoRepairsTo(new HttpTransport(), c.node(b).address));
  faulty1.set(c.node(cc).address, { drop: true });
  const r1 = await c.client<string>({ valueEncoding: 'utf8', transport: faulty1, readRepairChance: 0, timeoutMs: 1500 });
  const first = await r1.get(key, { consistency: 'strong' }).then(
    (v) => ({ value: v?.value }),
    (err: unknown) => ({ err: err as RingkvError }),
  );
  // Reader 2 reaches b and c only.
  const faulty2 = new FaultyTransport(new HttpTransport());
  faulty2.set(c.node(a).address, { drop: true });
  const r2 = await c.client<string>({ valueEncoding: 'utf8', transport: faulty2, readRepairChance: 0 });
  const second = await r2.get(key, { consistency: 'strong' });
  if ('err' in first) {
    t.ok([ErrorCodes.QUORUM_NOT_MET, ErrorCodes.TIMEOUT].includes(first.err.code as 'QUORUM_NOT_MET'), `reader 1 failed with ${first.err.code}: it could not write v2 back`);
  } else {
    t.equal(first.value, 'v2');
    t.equal(second?.value, 'v2', 'a later strong read does not go back to v1');
  }
  t.ok('err' in first, 'reader 1 did not return a value it could not store at a majority');

  // A reader that reaches every replica (v2 was never acknowledged, so a quorum read of b
  // and c may still return v1 until then) writes v2 back before returning it; reads stay there.
  const r3 = await c.client<string>({ valueEncoding: 'utf8', transport: new NoRepairsTo(new HttpTransport(), 'nowhere'), readRepairChance: 0 });
  t.equal((await r3.get(key, { consistency: 'all' }))?.value, 'v2');
  t.equal((await r2.get(key, { consistency: 'strong' }))?.value, 'v2', 'after the write-back, b and c answer v2');
  t.ok(r3.counters.writeBacks >= 1, 'the value was written back');
});
