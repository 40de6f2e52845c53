// Admission control in the SDK on three real server processes: while one node is stopped
// (SIGSTOP) with writes piled up in the client's queue for it, calls whose replicas include
// it and whose time is short fail at once with OVERLOADED — never sent to it, not waiting
// out their deadline in the queue — a strong read is served by the other replicas without
// waiting, the stopped node is not taken for failed by the client's failure detector, every
// queued write with time enough is done once the node runs again, and the writes it shed
// reach it through hints.

import t from 'tap';
import { ErrorCodes, RingkvError } from '../../sdk/errors.js';
import type { StoredObject } from '../../sdk/versioning/index.js';
import { liveSiblings } from '../../sdk/versioning/index.js';
import type { BatchResponse } from '../../sdk/wire/protocol.js';
import { OpType, PROTOCOL_VERSION, Routes } from '../../sdk/wire/protocol.js';
import { TestCluster } from '../helpers/cluster.js';

t.setTimeout(180_000);

/** Time the stopped node's queue is left to age before the short calls. */
const STALL_MS = 1000;
/** The short calls' timeout: below what the aged queue needs, above any fast refusal. */
const SHORT_TIMEOUT_MS = 500;
/**
 * The strong read's: below what n1's aged queue needs too (7 batches ahead of 4 slots x
 * 1000 ms), and time enough for two idle replicas to answer.
 */
const READ_TIMEOUT_MS = 1000;

t.test('calls fail fast with OVERLOADED while a stopped node holds their queue', async (t) => {
  const c = await TestCluster.start(t, { nodes: 3 });
  // Batches of 8: a few dozen queued writes make a queue several batches deep for n1 while
  // the other nodes, which take the same writes, finish them at once.
  const kv = await c.client<string>({ valueEncoding: 'utf8', timeoutMs: 10_000, batch: { maxBatchOps: 8, shedding: true } });
  // Round trips to every node are measured (and connections open) before the stop.
  await Promise.all(Array.from({ length: 50 }, (_, i) => kv.put(`warm-${i}`, 'v', { consistency: 'all' })));
  const shedBefore = kv.batchCounters.shed;

  c.pause('n1');
  let resumed = false;
  const resume = () => {
    if (!resumed) c.resume('n1');
    resumed = true;
  };
  t.teardown(resume);
  let filler: Promise<string>[] = [];
  const short: { code: string | undefined; ms: number }[] = [];
  let strongRead: string | undefined;
  let avoidedWhileStopped: string[] = [];
  try {
    // Writes at `all` with time enough (30 s) pile up in the client's queue for n1: four
    // batches go out and stall, the rest wait behind them.
    filler = Array.from({ length: 60 }, (_, i) =>
      kv.put(`fill-${i}`, `f${i}`, { consistency: 'all', timeoutMs: 30_000 }).then(
        () => 'ok',
        (e: unknown) => String((e as RingkvError).code ?? e),
      ),
    );
    await new Promise((r) => setTimeout(r, STALL_MS));
    // Short calls that need n1: every replica of every key at `all`.
    await Promise.all(
      Array.from({ length: 20 }, async (_, i) => {
        const started = performance.now();
        const op = i % 2 === 0 ? kv.put(`short-${i}`, 'v', { consistency: 'all', timeoutMs: SHORT_TIMEOUT_MS }) : kv.get(`warm-${i}`, { consistency: 'all', timeoutMs: SHORT_TIMEOUT_MS });
        const err = await op.then(
          () => undefined,
          (e: unknown) => e as RingkvError,
        );
        short.push({ code: err?.code, ms: performance.now() - started });
      }),
    );
    // A strong read (2 of 3) with the same short time: n1's refusal brings in the third replica.
    strongRead = await kv.get('warm-1', { consistency: 'strong', timeoutMs: READ_TIMEOUT_MS }).then(
      (r) => r?.value,
      (e: unknown) => `failed: ${String(e)}`,
    );
    avoidedWhileStopped = kv.avoidedNodes;
  } finally {
    resume();
  }
  const codes = short.map((s) => s.code);
  t.same(codes, Array.from({ length: 20 }, () => ErrorCodes.OVERLOADED), 'every short call that needs n1 failed with OVERLOADED (not TIMEOUT, not QUORUM_NOT_MET)');
  const slowest = Math.max(...short.map((s) => s.ms));
  t.ok(slowest < SHORT_TIMEOUT_MS - 100, `each failed well before its ${SHORT_TIMEOUT_MS} ms deadline instead of waiting it out (slowest ${slowest.toFixed(0)} ms)`);
  t.ok(kv.batchCounters.shed > shedBefore, `the client's queue for n1 refused them (${kv.batchCounters.shed - shedBefore} operations shed)`);
  t.equal(strongRead, 'v', 'a strong read was served by the two other replicas meanwhile');
  t.notOk(avoidedWhileStopped.includes('n1'), 'operations shed for n1 are no failures: the client does not avoid it');

  const done = await Promise.all(filler);
  const notOk = done.filter((x) => x !== 'ok');
  t.equal(notOk.length, 0, `every queued write with time enough was done once n1 ran again (${notOk.length} failed: ${[...new Set(notOk)].join(', ')})`);
  t.equal((await kv.get('fill-59', { consistency: 'all' }))?.value, 'f59', 'n1 holds the last of them too');
  t.notOk(kv.avoidedNodes.includes('n1'), 'n1 is not avoided afterwards');

  // The writes shed for n1 were kept as hints on the others (sloppy quorum), as for a node
  // that did not answer: n1 gets them without any read repairing it.
  const shedWrites = Array.from({ length: 10 }, (_, i) => `short-${2 * i}`);
  const deadline = Date.now() + 30_000;
  let missing = shedWrites;
  while (missing.length > 0 && Date.now() < deadline) {
    const held = await Promise.all(missing.map((k) => rawGet(c, 'n1', k).catch(() => null)));
    missing = missing.filter((_, i) => liveSiblings(held[i] ?? { mode: 'lww', siblings: [], context: {} }, Date.now())[0]?.value.toString() !== 'v');
    if (missing.length > 0) await new Promise((r) => setTimeout(r, 200));
  }
  t.same(missing, [], 'n1 holds every write it shed, delivered by hints');
});

async function rawGet(c: TestCluster, id: string, key: string): Promise<StoredObject | null> {
  const res = await c.call<BatchResponse>(id, Routes.batch, { v: PROTOCOL_VERSION, ops: [{ t: OpType.Get, key: Buffer.from(key) }] });
  const r = res.results[0]!;
  if (!r.ok) throw new Error(`${r.code}: ${r.msg}`);
  return r.obj;
}
