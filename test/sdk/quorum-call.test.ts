// Direct tests of one quorum fan-out (no servers): replicas are promises the test settles one
// by one, so each step's effect is seen exactly — when the call resolves or rejects, which
// node a failure brings in, what `settled` collects, and that no timer outlives the call.
// Last, a table of cases for N = 3 at R = 1, 2 and 3: a SUSPECT_RANGE answer (a quarantined
// copy) brings in the next replica and is excused above a majority only.

import t from 'tap';
import { ErrorCodes, NodeUnavailableError, OverloadedError, QuorumNotMetError, RingkvError, TimeoutError } from '../../sdk/errors.js';
import type { QuorumExcuse, QuorumOutcome } from '../../sdk/quorum-call.js';
import { quorumCall } from '../../sdk/quorum-call.js';
import type { StoredObject } from '../../sdk/versioning/index.js';
import type { WireResult } from '../../sdk/wire/protocol.js';
import { SeededRandom, testSeed } from './seeded-random.js';

/** Replicas whose answers the test gives: each `send` waits until the test settles that node. */
class Replicas {
  readonly asked: string[] = [];
  private readonly waiting = new Map<string, { resolve: (r: WireResult) => void; reject: (e: unknown) => void }>();

  readonly send = (node: string): Promise<WireResult> => {
    this.asked.push(node);
    return new Promise<WireResult>((resolve, reject) => this.waiting.set(node, { resolve, reject }));
  };

  get pending(): string[] {
    return [...this.waiting.keys()];
  }

  private take(node: string) {
    const w = this.waiting.get(node);
    if (!w) throw new Error(`${node} was not asked, or already answered`);
    this.waiting.delete(node);
    return w;
  }

  /** The node answers with success. */
  ok(node: string, obj: StoredObject | null = null): void {
    this.take(node).resolve({ ok: true, obj, ts: this.asked.indexOf(node) });
  }

  /** The node answers with an error result ({ ok: false }). */
  refuse(node: string, code: string, msg = `${node} refused`): void {
    this.take(node).resolve({ ok: false, code, msg } as WireResult);
  }

  /** The request to the node fails (transport error). */
  fail(node: string, err: unknown = new NodeUnavailableError(node, 'down')): void {
    this.take(node).reject(err);
  }
}

/** A promise's state, readable synchronously. */
function watch<T>(p: Promise<T>) {
  const s: { state: 'pending' | 'resolved' | 'rejected'; value?: T; error?: unknown } = { state: 'pending' };
  p.then(
    (v) => Object.assign(s, { state: 'resolved', value: v }),
    (e: unknown) => Object.assign(s, { state: 'rejected', error: e }),
  );
  return s;
}

/** Lets every answer given so far run through the call's callbacks. */
const flush = () => new Promise<void>((r) => setImmediate(r));

/** Active ref'd timers of the process (the call's deadline timer is one while it runs). */
const timers = () => process.getActiveResourcesInfo().filter((x) => x === 'Timeout').length;

const obj = (v: string): StoredObject => ({
  mode: 'lww',
  siblings: [{ value: Buffer.from(v), tombstone: false, contentType: '', flags: 0, expiresAtMs: 0, ts: 1, writer: 'w' }],
  context: {},
});

t.test('resolves at `required` successes; the late answers are still collected in `settled`', async (t) => {
  const r = new Replicas();
  const base = timers();
  const call = watch(quorumCall('get', ['a', 'b', 'c'], 2, 10_000, r.send));
  t.same(r.asked, ['a', 'b', 'c'], 'every node asked at once (initial defaults to all)');
  t.equal(timers(), base + 1, 'the deadline timer runs');
  r.ok('b', obj('x'));
  await flush();
  t.equal(call.state, 'pending', 'one success of two required');
  r.ok('c');
  await flush();
  t.equal(call.state, 'resolved', 'resolved at the second success, with a still unanswered');
  const out = call.value!;
  t.same(out.answers.map((a) => a.node), ['b', 'c']);
  t.same(out.answers[0]!.obj, obj('x'), 'the answer carries the replica\'s object');
  t.equal(out.answers[1]!.obj, null, 'a replica without the key answers null');
  t.equal(out.answers[1]!.result.ts, 2, 'the whole result is kept (extra fields)');
  t.same(out.failures, []);
  const settled = watch(out.settled);
  await flush();
  t.equal(settled.state, 'pending', 'settled waits for a');
  r.fail('a');
  await flush();
  t.equal(settled.state, 'resolved');
  t.same(settled.value!.answers.map((a) => a.node), ['b', 'c']);
  t.same(settled.value!.failures.map((f) => f.node), ['a'], 'a late failure is collected, and settled does not reject');
  t.same(out.answers.map((a) => a.node), ['b', 'c'], 'the outcome given at resolve time is a copy');
  t.equal(out.failures.length, 0);
  t.equal(timers(), base, 'no timer left once settled');

  // A late success is collected too.
  const r2 = new Replicas();
  const out2 = await (async () => {
    const p = quorumCall('put', ['a', 'b', 'c'], 1, 10_000, r2.send);
    r2.ok('a');
    return p;
  })();
  r2.ok('c', obj('late'));
  r2.refuse('b', ErrorCodes.IO_ERROR);
  const all = await out2.settled;
  t.same(all.answers.map((a) => a.node), ['a', 'c']);
  t.same(all.answers[1]!.obj, obj('late'), 'the late object is there for read repair');
  t.same(all.failures.map((f) => f.node), ['b']);
  t.equal(timers(), base);
});

t.test('rejects with QUORUM_NOT_MET as soon as success became impossible, and not before', async (t) => {
  const r = new Replicas();
  const base = timers();
  const call = watch(quorumCall('put', ['a', 'b', 'c'], 2, 10_000, r.send));
  const first = new NodeUnavailableError('a', 'connection refused');
  r.fail('a', first);
  await flush();
  t.equal(call.state, 'pending', 'one failure of three: two can still succeed');
  r.ok('b');
  await flush();
  t.equal(call.state, 'pending', 'one success, one failure, one unanswered');
  r.refuse('c', ErrorCodes.IO_ERROR);
  await flush();
  t.equal(call.state, 'rejected');
  const err = call.error as QuorumNotMetError;
  t.ok(err instanceof QuorumNotMetError);
  t.equal(err.code, ErrorCodes.QUORUM_NOT_MET);
  t.match(err, { required: 2, succeeded: 1, failed: 2 });
  t.same(err.details, { op: 'put', required: 2, succeeded: 1, failed: 2 });
  t.equal(err.cause, first, 'the first failure is the cause');
  t.equal(timers(), base, 'no timer left');

  // Impossible while replicas are still unanswered: rejected at once, not at the deadline.
  const r2 = new Replicas();
  const call2 = watch(quorumCall('get', ['a', 'b', 'c'], 2, 10_000, r2.send));
  r2.fail('c');
  r2.fail('a');
  await flush();
  t.equal(call2.state, 'rejected', 'two of three failed: rejected with b still unanswered');
  t.match(call2.error, { code: ErrorCodes.QUORUM_NOT_MET, succeeded: 0, failed: 2 });
  t.equal(timers(), base, 'the deadline timer was cleared at the rejection');
  r2.ok('b');
  await flush();
  t.equal(call2.state, 'rejected', 'a late success changes nothing');

  // At `all`, the first failure is enough.
  const r3 = new Replicas();
  const call3 = watch(quorumCall('get', ['a', 'b', 'c'], 3, 10_000, r3.send));
  r3.ok('a');
  r3.ok('b');
  await flush();
  t.equal(call3.state, 'pending');
  r3.fail('c');
  await flush();
  t.match(call3.error, { code: ErrorCodes.QUORUM_NOT_MET, succeeded: 2, failed: 1 });
});

t.test('TIMEOUT at timeoutMs, with what had succeeded and failed by then', async (t) => {
  const r = new Replicas();
  const base = timers();
  const started = performance.now();
  const p = quorumCall('get', ['a', 'b', 'c'], 2, 300, r.send);
  const call = watch(p);
  r.fail('a', new NodeUnavailableError('a', 'reset'));
  r.ok('b');
  await new Promise((res) => setTimeout(res, 100));
  t.equal(call.state, 'pending', 'still pending before the deadline');
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  const elapsed = performance.now() - started;
  t.ok(err instanceof TimeoutError, 'a TimeoutError');
  t.equal((err as RingkvError).code, ErrorCodes.TIMEOUT);
  // Node timers may fire up to a millisecond early.
  t.ok(elapsed >= 299, `not before the deadline (${elapsed.toFixed(0)} ms)`);
  t.same((err as RingkvError).details, {
    op: 'get',
    timeoutMs: 300,
    required: 2,
    succeeded: 1,
    failed: 1,
    failures: ['a: NODE_UNAVAILABLE'],
  });
  t.equal(timers(), base, 'no timer left after the timeout');
  r.ok('c');
  await flush();
  t.equal(call.state, 'rejected', 'an answer after the deadline changes nothing');

  // A failure without a code is described by its message; unanswered nodes are not failures.
  const r2 = new Replicas();
  const p2 = quorumCall('put', ['a', 'b', 'c', 'd'], 2, 50, r2.send);
  r2.fail('a', new Error('socket hang up'));
  r2.refuse('b', ErrorCodes.IO_ERROR);
  const err2 = (await p2.catch((e: unknown) => e)) as RingkvError;
  t.equal(err2.code, ErrorCodes.TIMEOUT);
  t.same(err2.details?.failures, ['a: socket hang up', 'b: IO_ERROR']);
  t.equal(err2.details?.failed, 2);
  t.equal(err2.details?.succeeded, 0);
  t.equal(timers(), base);
});

t.test('short only because replicas shed load: OVERLOADED with a retry-after, not QUORUM_NOT_MET or TIMEOUT', async (t) => {
  // At all: one replica shed (the client's queue for it, say): no other failure could have
  // made the quorum short, so the call fails with OVERLOADED at once.
  const r = new Replicas();
  const call = watch(quorumCall('put', ['a', 'b', 'c'], 3, 10_000, r.send));
  r.ok('a');
  r.fail('b', new OverloadedError('the queue for b is too long', 0.25, { sent: false }));
  await flush();
  t.equal(call.state, 'rejected', 'at once');
  const err = call.error as RingkvError;
  t.equal(err.code, ErrorCodes.OVERLOADED, 'OVERLOADED');
  t.equal(err.details?.retryAfterSec, 0.25, 'with the shed replica\'s retry-after');
  t.same(err.details?.shed, ['b'], 'naming the replica that shed');
  r.ok('c');

  // An OVERLOADED error result counts the same; with two shed, the hint is when enough of
  // them take work again.
  const r2 = new Replicas();
  const call2 = watch(quorumCall('get', ['a', 'b', 'c'], 2, 10_000, r2.send));
  r2.fail('a', new OverloadedError('node a sheds', 2));
  r2.refuse('b', ErrorCodes.OVERLOADED);
  await flush();
  t.equal((call2.error as RingkvError).code, ErrorCodes.OVERLOADED);
  t.equal((call2.error as RingkvError).details?.retryAfterSec, 1, 'c may still answer, so one of them is needed back: the sooner retry-after (the error result gave none: 1 s)');
  r2.ok('c');

  // Short even had the shed replica answered: QUORUM_NOT_MET, as before.
  const r3 = new Replicas();
  const call3 = watch(quorumCall('get', ['a', 'b', 'c'], 3, 10_000, r3.send));
  r3.fail('a', new NodeUnavailableError('a', 'down'));
  r3.fail('b', new OverloadedError('b sheds', 1));
  await flush();
  t.equal((call3.error as RingkvError).code, ErrorCodes.QUORUM_NOT_MET, 'a down replica makes `all` impossible anyway');
  r3.ok('c');

  // At the deadline: OVERLOADED when the shed replicas would have made up the quorum.
  const r4 = new Replicas();
  const p4 = quorumCall('get', ['a', 'b', 'c'], 2, 50, r4.send);
  r4.ok('a');
  r4.fail('b', new OverloadedError('b sheds', 1));
  const err4 = (await p4.catch((e: unknown) => e)) as RingkvError;
  t.equal(err4.code, ErrorCodes.OVERLOADED, 'c never answered, but b\'s answer would have met the quorum');
  const r5 = new Replicas();
  const p5 = quorumCall('get', ['a', 'b', 'c', 'd'], 3, 50, r5.send);
  r5.ok('a');
  r5.fail('b', new OverloadedError('b sheds', 1));
  const err5 = (await p5.catch((e: unknown) => e)) as RingkvError;
  t.equal(err5.code, ErrorCodes.TIMEOUT, '3 of 4 needed, c and d unanswered: b alone would not have met it');
});

t.test('serial fallback: with `initial` below the node count, each failure asks the next node not asked yet', async (t) => {
  const r = new Replicas();
  const base = timers();
  const call = watch(quorumCall('get', ['a', 'b', 'c', 'd'], 2, 10_000, r.send, 2));
  t.same(r.asked, ['a', 'b'], 'only the first two asked');
  r.fail('a');
  await flush();
  t.same(r.asked, ['a', 'b', 'c'], 'a thrown failure brings in c');
  r.refuse('c', ErrorCodes.CORRUPTION);
  await flush();
  t.same(r.asked, ['a', 'b', 'c', 'd'], 'an error result brings in d');
  t.equal(call.state, 'pending', 'b and d can still make the quorum');
  r.ok('d');
  r.ok('b');
  await flush();
  t.equal(call.state, 'resolved');
  t.same(call.value!.answers.map((a) => a.node), ['d', 'b']);
  t.same(call.value!.failures.map((f) => f.node), ['a', 'c']);
  t.equal(timers(), base, 'everything asked has answered: settled, no timer');
  t.same((await call.value!.settled).failures.map((f) => f.node), ['a', 'c']);

  // Successes do not bring anyone in; failures after the quorum do not either.
  const r2 = new Replicas();
  const call2 = watch(quorumCall('get', ['a', 'b', 'c', 'd'], 1, 10_000, r2.send, 2));
  r2.ok('b');
  await flush();
  t.equal(call2.state, 'resolved');
  r2.fail('a');
  await flush();
  t.same(r2.asked, ['a', 'b'], 'a failure after the quorum asks nobody new');
  const settled = await call2.value!.settled;
  t.same(settled.failures.map((f) => f.node), ['a'], 'settled resolves without the nodes never asked');
  t.equal(timers(), base);

  // `initial` below `required` still asks `required` nodes at once.
  const r3 = new Replicas();
  void quorumCall('put', ['a', 'b', 'c'], 2, 10_000, r3.send, 1).catch(() => undefined);
  t.same(r3.asked, ['a', 'b']);
  r3.ok('a');
  r3.ok('b');
  await flush();

  // Fallback runs out: QUORUM_NOT_MET once the last node failed.
  const r4 = new Replicas();
  const call4 = watch(quorumCall('get', ['a', 'b', 'c'], 1, 10_000, r4.send, 1));
  r4.fail('a');
  await flush();
  r4.refuse('b', ErrorCodes.UNAVAILABLE);
  await flush();
  t.equal(call4.state, 'pending', 'c is still to be heard');
  t.same(r4.asked, ['a', 'b', 'c'], 'one node at a time');
  r4.fail('c');
  await flush();
  t.match(call4.error, { code: ErrorCodes.QUORUM_NOT_MET, succeeded: 0, failed: 3 });
  t.equal(timers(), base);
});

t.test('an error result becomes a typed error; a thrown error is kept as it is', async (t) => {
  const r = new Replicas();
  const call = quorumCall('get', ['a', 'b', 'c', 'd'], 1, 10_000, r.send);
  const thrown = new Error('EPIPE');
  r.fail('a', thrown);
  r.refuse('b', ErrorCodes.CLOCK_SKEW, 'timestamp too far ahead');
  r.refuse('c', 'SOMETHING_NEW', 'from a newer server');
  r.ok('d');
  const out = await call;
  const all = await out.settled;
  t.equal(all.failures.length, 3);
  const byNode = Object.fromEntries(all.failures.map((f) => [f.node, f.error]));
  t.equal(byNode.a, thrown, 'the thrown error itself');
  t.ok(byNode.b instanceof RingkvError);
  t.equal((byNode.b as RingkvError).code, ErrorCodes.CLOCK_SKEW, 'the code from the wire');
  t.equal(byNode.b!.message, 'timestamp too far ahead');
  t.equal((byNode.c as RingkvError).code, ErrorCodes.INTERNAL, 'an unknown code becomes INTERNAL');
});

t.test('fewer nodes than required: QUORUM_NOT_MET at once, nothing sent', async (t) => {
  const base = timers();
  for (const nodes of [['a'], []]) {
    const r = new Replicas();
    const err = (await quorumCall('put', nodes, 2, 10_000, r.send).catch((e: unknown) => e)) as QuorumNotMetError;
    t.equal(err.code, ErrorCodes.QUORUM_NOT_MET, `${nodes.length} node(s)`);
    t.match(err, { required: 2, succeeded: 0, failed: 0 });
    t.match((err.cause as Error).message, `only ${nodes.length} replicas are available`);
    t.same(r.asked, [], 'nobody asked');
    t.equal(timers(), base, 'no timer left');
  }
  const r = new Replicas();
  const err = await quorumCall('get', [], 1, 10_000, r.send).catch((e: unknown) => e);
  t.match(err, { code: ErrorCodes.QUORUM_NOT_MET, required: 1 }, 'zero nodes, one required');
});

t.test('required 0 resolves at once, with zero nodes or with nodes still answering', async (t) => {
  const base = timers();
  let guard: NodeJS.Timeout | undefined;
  const out = (await Promise.race([
    quorumCall('get', [], 0, 10_000, new Replicas().send),
    new Promise((r) => (guard = setTimeout(r, 1000, 'hung'))),
  ])) as QuorumOutcome | 'hung';
  clearTimeout(guard);
  t.not(out, 'hung', 'zero nodes, zero required: resolved, not left hanging');
  if (out !== 'hung') {
    t.same(out.answers, []);
    t.same(await out.settled, { answers: [], failures: [] });
  }
  const r = new Replicas();
  const call = watch(quorumCall('get', ['a', 'b'], 0, 10_000, r.send));
  await flush();
  t.equal(call.state, 'resolved', 'nothing required: resolved before any answer');
  t.same(r.asked, ['a', 'b'], 'the nodes are still asked (their answers go to settled)');
  r.ok('a');
  r.fail('b');
  if (call.state === 'resolved') {
    const s = await call.value!.settled;
    t.same([s.answers.length, s.failures.length], [1, 1]);
  }
  t.equal(timers(), base, 'no timer left');
});

t.test('randomized: resolution, rejection, fallback and settled agree with a model of the rules', async (t) => {
  const seed = testSeed();
  t.comment(`seed ${seed} (rerun with RINGKV_SEED=${seed})`);
  const rnd = new SeededRandom(seed);
  const base = timers();
  let resolvedRuns = 0;
  let rejectedRuns = 0;
  for (let run = 0; run < 300; run++) {
    // Corners included: no nodes, nothing required, more required than nodes, initial 0.
    const n = rnd.int(6);
    const required = rnd.int(n + 2);
    const initial = rnd.int(n + 1);
    const nodes = Array.from({ length: n }, (_, i) => `n${i}`);
    const r = new Replicas();
    const call = watch(quorumCall('op', nodes, required, 60_000, r.send, initial));
    await flush();
    let ok = 0;
    let failed = 0;
    let outcome: 'pending' | 'resolved' | 'rejected' = required > n ? 'rejected' : required === 0 ? 'resolved' : 'pending';
    let expectedAsked = required > n ? 0 : Math.min(n, Math.max(initial, required));
    const where = () => `seed ${seed} run ${run} (n ${n}, required ${required}, initial ${initial})`;
    if (r.asked.length !== expectedAsked) t.fail(`asked ${r.asked.length}, want ${expectedAsked}: ${where()}`);
    if (call.state !== outcome) {
      t.fail(`state ${call.state} before any answer, model says ${outcome}: ${where()}`);
      return;
    }
    while (r.pending.length > 0) {
      const node = rnd.pick(r.pending);
      const kind = rnd.int(3);
      if (kind === 0) r.ok(node);
      else if (kind === 1) r.refuse(node, ErrorCodes.IO_ERROR);
      else r.fail(node);
      await flush();
      if (kind === 0) ok++;
      else {
        failed++;
        if (outcome === 'pending' && expectedAsked < n) expectedAsked++;
      }
      if (outcome === 'pending') {
        if (ok >= required) outcome = 'resolved';
        else if (failed > n - required) outcome = 'rejected';
      }
      if (call.state !== outcome) {
        t.fail(`state ${call.state}, model says ${outcome} after ${ok} ok / ${failed} failed: ${where()}`);
        return;
      }
      if (r.asked.length !== expectedAsked || new Set(r.asked).size !== r.asked.length) {
        t.fail(`asked ${JSON.stringify(r.asked)}, model says ${expectedAsked} distinct: ${where()}`);
        return;
      }
    }
    if (outcome === 'pending') {
      t.fail(`nobody left to answer but the call is pending: ${where()}`);
      return;
    }
    if (call.state === 'resolved') {
      resolvedRuns++;
      const s = await call.value!.settled;
      if (s.answers.length !== ok || s.failures.length !== failed) t.fail(`settled ${s.answers.length}/${s.failures.length}: ${where()}`);
    } else rejectedRuns++;
    if (timers() !== base) {
      t.fail(`a timer is left after ${where()}`);
      return;
    }
  }
  t.ok(resolvedRuns > 30 && rejectedRuns > 30, `both outcomes exercised (${resolvedRuns} resolved, ${rejectedRuns} rejected)`);
});

// ---------------------------------------------------------------------------------------
// SUSPECT_RANGE answers: the table of fan-outs.

type Answer = 'ok' | 'SUSPECT_RANGE' | 'NODE_UNAVAILABLE' | 'INTERNAL';
const excuse = (r: number): QuorumExcuse => ({ codes: new Set(['SUSPECT_RANGE']), minAnswers: Math.min(r, 2) });

interface Case {
  what: string;
  r: number;
  answers: [Answer, Answer, Answer];
  /** Replicas asked at first (the client asks R, or all). */
  initial: number;
  withExcuse?: boolean;
  /** Resolved: the replicas whose answers count, and the excused ones; or rejected. */
  want: { answered: string[]; excused: string[] } | 'QUORUM_NOT_MET';
  /** Replicas that were asked, in order. */
  asked: string[];
}

const cases: Case[] = [
  { what: 'R=1: a suspect replica brings in the next one', r: 1, initial: 1, answers: ['SUSPECT_RANGE', 'ok', 'ok'], want: { answered: ['b'], excused: ['a'] }, asked: ['a', 'b'] },
  { what: 'R=1: two suspect replicas, the third answers', r: 1, initial: 1, answers: ['SUSPECT_RANGE', 'SUSPECT_RANGE', 'ok'], want: { answered: ['c'], excused: ['a', 'b'] }, asked: ['a', 'b', 'c'] },
  { what: 'R=1: every replica suspect: no answer', r: 1, initial: 1, answers: ['SUSPECT_RANGE', 'SUSPECT_RANGE', 'SUSPECT_RANGE'], want: 'QUORUM_NOT_MET', asked: ['a', 'b', 'c'] },
  { what: 'R=2: a suspect replica is replaced by the third', r: 2, initial: 2, answers: ['SUSPECT_RANGE', 'ok', 'ok'], want: { answered: ['b', 'c'], excused: ['a'] }, asked: ['a', 'b', 'c'] },
  { what: 'R=2: suspect and unreachable: a majority cannot answer', r: 2, initial: 2, answers: ['SUSPECT_RANGE', 'ok', 'NODE_UNAVAILABLE'], want: 'QUORUM_NOT_MET', asked: ['a', 'b', 'c'] },
  { what: 'R=3: one suspect replica is excused once the other two answered', r: 3, initial: 3, answers: ['SUSPECT_RANGE', 'ok', 'ok'], want: { answered: ['b', 'c'], excused: ['a'] }, asked: ['a', 'b', 'c'] },
  { what: 'R=3: two suspect replicas: fewer than a majority answered', r: 3, initial: 3, answers: ['SUSPECT_RANGE', 'SUSPECT_RANGE', 'ok'], want: 'QUORUM_NOT_MET', asked: ['a', 'b', 'c'] },
  { what: 'R=3: another error is never excused', r: 3, initial: 3, answers: ['INTERNAL', 'ok', 'ok'], want: 'QUORUM_NOT_MET', asked: ['a', 'b', 'c'] },
  { what: 'R=3 without the excuse (writes): a suspect answer fails it', r: 3, initial: 3, answers: ['SUSPECT_RANGE', 'ok', 'ok'], withExcuse: false, want: 'QUORUM_NOT_MET', asked: ['a', 'b', 'c'] },
  { what: 'R=2, all asked: no excuse needed when two answer', r: 2, initial: 3, answers: ['ok', 'SUSPECT_RANGE', 'ok'], want: { answered: ['a', 'c'], excused: ['b'] }, asked: ['a', 'b', 'c'] },
];

for (const c of cases) {
  t.test(c.what, async (t) => {
    const nodes = ['a', 'b', 'c'];
    const asked: string[] = [];
    const send = async (node: string): Promise<WireResult> => {
      asked.push(node);
      await new Promise((r) => setImmediate(r));
      const a = c.answers[nodes.indexOf(node)]!;
      return a === 'ok' ? { ok: true, obj: obj(node) } : { ok: false, code: a, msg: `${node}: ${a}` };
    };
    const run = quorumCall('get', nodes, c.r, 5000, send, c.initial, undefined, c.withExcuse === false ? undefined : excuse(c.r));
    if (c.want === 'QUORUM_NOT_MET') {
      await t.rejects(run, { code: 'QUORUM_NOT_MET' });
    } else {
      const out = await run;
      t.same(out.answers.map((a) => a.node).sort(), c.want.answered, 'the answers that count');
      t.same(out.excused.sort(), c.want.excused, 'the excused replicas');
      await out.settled;
    }
    await new Promise((r) => setTimeout(r, 10));
    t.same(asked, c.asked, `asked ${c.asked.join(', ')}`);
  });
}
