// Direct tests of the per-node batcher (no servers; an in-memory Transport stands in for
// the network): coalescing, one outcome per request, each call's deadline carried into
// its batch and to the server, queued operations dropped when their caller gave up or
// aborted, and answers matched to operations.

import t from 'tap';
import { Batcher } from '../../sdk/batcher.js';
import { ErrorCodes, NodeUnavailableError, RingkvError, TimeoutError } from '../../sdk/errors.js';
import type { CallOptions, Transport } from '../../sdk/transport.js';
import type { BatchRequest, BatchResponse, WireOp } from '../../sdk/wire/protocol.js';
import { OpType } from '../../sdk/wire/protocol.js';

/** A transport whose answers the test controls: each request waits for `release`. */
class ScriptedTransport implements Transport {
  readonly requests: { address: string; body: BatchRequest; timeoutMs: number }[] = [];
  delayMs = 0;
  fail: Error | undefined;
  call<T>(address: string, _path: string, body: unknown, opts: CallOptions): Promise<T> {
    const b = body as BatchRequest;
    this.requests.push({ address, body: b, timeoutMs: opts.timeoutMs });
    return new Promise<T>((resolve, reject) => {
      const answer = () => {
        if (this.fail) return reject(this.fail);
        const res: BatchResponse = { v: 2, results: b.ops.map((op) => ({ ok: true, obj: null, ts: (op as { n?: number }).n ?? 0 })), now: Date.now() };
        resolve(res as T);
      };
      if (this.delayMs >= opts.timeoutMs) {
        setTimeout(() => reject(new TimeoutError('request', opts.timeoutMs)), opts.timeoutMs);
      } else if (this.delayMs > 0) setTimeout(answer, this.delayMs);
      else setImmediate(answer);
    });
  }
  async close(): Promise<void> {}
}

const get = (n: number): WireOp => ({ t: OpType.Get, key: Buffer.from(`k${n}`), n }) as unknown as WireOp;
const now = () => performance.now();

t.test('operations issued together go in one request; each gets its own answer', async (t) => {
  const tr = new ScriptedTransport();
  const b = new Batcher(tr);
  const results = await Promise.all(Array.from({ length: 50 }, (_, i) => b.submit('a:1', get(i))));
  t.equal(tr.requests.length, 1);
  t.equal(tr.requests[0]!.body.ops.length, 50);
  t.same(results.map((r) => (r.ok ? r.ts : -1)), Array.from({ length: 50 }, (_, i) => i), 'answers matched in order');
});

t.test('a call\'s deadline, not the client default, is the batch timeout, and travels to the server', async (t) => {
  const tr = new ScriptedTransport();
  tr.delayMs = 300;
  const b = new Batcher(tr, { requestTimeoutMs: 100 });
  const r = await b.submit('a:1', get(1), { deadline: now() + 2000 });
  t.equal(r.ok, true, 'a timeout above the client default works (the batch waited 300 ms)');
  t.ok(tr.requests[0]!.timeoutMs > 1500 && tr.requests[0]!.timeoutMs <= 2000, `request timeout ${tr.requests[0]!.timeoutMs}`);
  t.equal(tr.requests[0]!.body.timeoutMs, tr.requests[0]!.timeoutMs, 'the budget is in the request body');
});

t.test('a batch\'s timeout is its earliest deadline', async (t) => {
  const tr = new ScriptedTransport();
  const b = new Batcher(tr);
  await Promise.all([b.submit('a:1', get(1), { deadline: now() + 5000 }), b.submit('a:1', get(2), { deadline: now() + 700 })]);
  t.ok(tr.requests[0]!.timeoutMs <= 700, `timeout ${tr.requests[0]!.timeoutMs}`);
});

t.test('an operation whose deadline passes while queued is dropped, never sent', async (t) => {
  const tr = new ScriptedTransport();
  tr.delayMs = 400;
  const b = new Batcher(tr);
  const first = b.submit('a:1', get(1), { deadline: now() + 2000 });
  await new Promise((r) => setImmediate(r));
  // The node is busy with `first`: this one waits behind it, with 100 ms to live.
  const late = b.submit('a:1', get(2), { deadline: now() + 100 });
  const err = await late.catch((e: unknown) => e);
  t.equal((err as RingkvError).code, ErrorCodes.TIMEOUT);
  t.equal((err as RingkvError).details?.sent, false, 'it says it was never sent');
  await first;
  await new Promise((r) => setTimeout(r, 50));
  t.equal(tr.requests.length, 1, 'only the first request went out');
  t.equal(b.counters.expired, 1);
});

t.test('an aborted operation is dropped from its queue; one aborted in flight rejects at once', async (t) => {
  const tr = new ScriptedTransport();
  tr.delayMs = 300;
  const b = new Batcher(tr);
  const busy = b.submit('a:1', get(1), { deadline: now() + 2000 });
  await new Promise((r) => setImmediate(r));
  const ac = new AbortController();
  const queued = b.submit('a:1', get(2), { deadline: now() + 2000, signal: ac.signal });
  ac.abort();
  t.equal(((await queued.catch((e: unknown) => e)) as RingkvError).code, ErrorCodes.ABORTED);
  await busy;
  await new Promise((r) => setTimeout(r, 50));
  t.equal(tr.requests.length, 1, 'the aborted operation was never sent');
  const ac2 = new AbortController();
  const started = now();
  const inflight = b.submit('a:1', get(3), { deadline: now() + 2000, signal: ac2.signal });
  setTimeout(() => ac2.abort(), 50);
  t.equal(((await inflight.catch((e: unknown) => e)) as RingkvError).code, ErrorCodes.ABORTED);
  t.ok(now() - started < 250, 'rejected when aborted, not when the answer came');
  const pre = new AbortController();
  pre.abort();
  t.equal(((await b.submit('a:1', get(4), { deadline: now() + 1000, signal: pre.signal }).catch((e: unknown) => e)) as RingkvError).code, ErrorCodes.ABORTED);
});

t.test('a failed request of 256 operations is one outcome, not 256', async (t) => {
  const tr = new ScriptedTransport();
  tr.fail = new NodeUnavailableError('a:1', 'down');
  const outcomes: unknown[] = [];
  const b = new Batcher(tr, { onRequestOutcome: (_a, err) => outcomes.push(err) });
  const all = await Promise.allSettled(Array.from({ length: 256 }, (_, i) => b.submit('a:1', get(i))));
  t.ok(all.every((r) => r.status === 'rejected'), 'every operation failed');
  t.equal(tr.requests.length, 1);
  t.equal(outcomes.length, 1, 'one outcome reported');
  tr.fail = undefined;
  await b.submit('a:1', get(1));
  t.equal(outcomes.length, 2);
  t.equal(outcomes[1], undefined, 'a success is reported as such');
});

t.test('whole batches go out alongside the one in flight, up to maxInflightBatches', async (t) => {
  const tr = new ScriptedTransport();
  tr.delayMs = 50;
  const b = new Batcher(tr, { maxBatchOps: 10, maxInflightBatches: 2 });
  await Promise.all(Array.from({ length: 45 }, (_, i) => b.submit('a:1', get(i))));
  t.ok(tr.requests.every((r) => r.body.ops.length <= 10), 'no batch above maxBatchOps');
  t.equal(tr.requests.reduce((s, r) => s + r.body.ops.length, 0), 45);
  t.equal(b.counters.ops, 45);
});
