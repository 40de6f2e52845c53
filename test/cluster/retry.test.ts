// Retries with back-off against a real 3-node cluster, with failures injected through the
// transport seam (the first batch requests to one node fail as if it were unreachable):
// a read at `all` fails without retries and succeeds with them; a retried last-write-wins
// put sends the very same version again (so a replica that took the first attempt holds
// one version, not two); a vector-clock write that may have been applied is not retried;
// retries stop at the call's deadline.

import t from 'tap';
import { TestCluster } from '../helpers/cluster.js';
import { HttpTransport } from '../../sdk/transport.js';
import type { CallOptions, Transport } from '../../sdk/transport.js';
import { NodeUnavailableError } from '../../sdk/errors.js';
import type { RingkvError } from '../../sdk/errors.js';
import type { BatchRequest } from '../../sdk/wire/protocol.js';
import { OpType, Routes } from '../../sdk/wire/protocol.js';
import type { OperationMetrics } from '../../sdk/client-events.js';

t.setTimeout(120_000);

/** The real transport, but the next `failures` batch requests to `address` fail unsent; records the batches sent. */
class FlakyTransport implements Transport {
  readonly inner = new HttpTransport();
  failures = 0;
  address = '';
  readonly sent: BatchRequest[] = [];
  async call<T>(address: string, path: string, body: unknown, opts: CallOptions): Promise<T> {
    if (path === Routes.batch) {
      this.sent.push(body as BatchRequest);
      if (address === this.address && this.failures > 0) {
        this.failures--;
        throw new NodeUnavailableError(address, 'injected: connection refused');
      }
    }
    return this.inner.call<T>(address, path, body, opts);
  }
  close(): Promise<void> {
    return this.inner.close();
  }
}

t.test('retries', async (t) => {
  const c = await TestCluster.start(t, { nodes: 3 });
  const flaky = new FlakyTransport();
  t.teardown(() => flaky.close());
  flaky.address = c.node('n3').address;
  const kv = await c.client<string>({ valueEncoding: 'utf8', transport: flaky, timeoutMs: 5000, health: { failuresToAvoid: 1000 } });
  const ops: OperationMetrics[] = [];
  kv.on('operation', (m) => ops.push(m));
  await kv.put('r:read', 'hello', { consistency: 'all' });

  await t.test('a read at all: fails without retries, succeeds with them', async (t) => {
    flaky.failures = 1;
    const err = (await kv.get('r:read', { consistency: 'all' }).catch((e: unknown) => e)) as RingkvError;
    t.equal(err?.code, 'QUORUM_NOT_MET', 'without retries one unreachable replica fails a read at all');
    flaky.failures = 2;
    ops.length = 0;
    const got = await kv.get('r:read', { consistency: 'all', retry: { attempts: 5, backoffMs: 10 } });
    t.equal(got?.value, 'hello', 'with retries the read succeeds');
    t.equal(ops[0]?.retries, 2, 'the operation event counts the two retries');
    t.equal(flaky.failures, 0, 'both injected failures were met');
  });

  await t.test('a retried last-write-wins put sends the same version again', async (t) => {
    flaky.failures = 1;
    flaky.sent.length = 0;
    const put = await kv.put('r:put', 'once', { consistency: 'all', retry: { attempts: 3, backoffMs: 10 } });
    const puts = flaky.sent.flatMap((b) => b.ops).filter((op) => (op.t === OpType.Put || op.t === OpType.Merge) && Buffer.from(op.key).toString() === 'r:put');
    t.ok(puts.length >= 4, `the first attempt and the retry both went out (${puts.length} replica writes)`);
    const stamps = new Set(puts.map((op) => ('obj' in op ? `${op.obj.siblings[0]!.ts}-${op.obj.siblings[0]!.writer}` : '')));
    t.equal(stamps.size, 1, `every attempt carried the same version: ${[...stamps].join(', ')}`);
    t.equal(put.version, [...stamps][0], 'the version put() returns is that version');
    const got = await kv.get('r:put', { consistency: 'all' });
    t.equal(got?.version, put.version, 'every replica holds that one version');
  });

  await t.test('arguments are never retried', async (t) => {
    ops.length = 0;
    const err = (await kv.put('r:bad', 'x', { consistency: { r: 1, w: 4 }, retry: { attempts: 5 } }).catch((e: unknown) => e)) as RingkvError;
    t.equal(err?.code, 'INVALID_CONSISTENCY');
    t.same([ops[0]?.retries, ops[0]?.replicasAsked], [0, 0], 'not retried, and no replica was asked');
  });

  await t.test('retries stop at the call deadline', async (t) => {
    flaky.failures = 1_000_000;
    ops.length = 0;
    const started = Date.now();
    const err = (await kv.get('r:read', { consistency: 'all', timeoutMs: 400, retry: { attempts: 100, backoffMs: 20, maxBackoffMs: 40 } }).catch((e: unknown) => e)) as RingkvError;
    const took = Date.now() - started;
    flaky.failures = 0;
    t.equal(err?.code, 'QUORUM_NOT_MET', 'the last attempt\'s error');
    t.ok(ops[0]!.retries >= 1 && ops[0]!.retries < 99, `retried (${ops[0]!.retries} times) until the deadline, not every attempt`);
    t.ok(took < 400 + 3000, `it ended near its 400 ms deadline (${took} ms)`);
  });

  await t.test('a vector-clock write that may have been applied is not retried', async (t) => {
    const vc = await c.client<string>({ valueEncoding: 'utf8', transport: flaky, conflictMode: 'vector-clock', timeoutMs: 5000, health: { failuresToAvoid: 1000 } });
    const events: OperationMetrics[] = [];
    vc.on('operation', (m) => events.push(m));
    // n3 refuses its first request: the coordinator (another replica) applied the write, so
    // the call fails with notApplied false; a second attempt would coordinate a new dot.
    const key = 'r:vc';
    const replicas = vc.replicasOf(key);
    flaky.address = c.node(replicas[replicas.length - 1]!).address;
    flaky.failures = 1;
    const err = (await vc.put(key, 'v', { consistency: 'all', retry: { attempts: 4, backoffMs: 10 } }).catch((e: unknown) => e)) as RingkvError;
    flaky.failures = 0;
    t.equal(err?.code, 'QUORUM_NOT_MET');
    t.equal(err?.notApplied, false, 'it may have been applied');
    t.equal(events[0]?.retries, 0, 'so it was not retried');
    await vc.drain();
    const got = await vc.get(key, { consistency: 'all' });
    t.equal(got?.siblings, undefined, 'and the key holds one version, not two siblings of the same write');
  });
});
