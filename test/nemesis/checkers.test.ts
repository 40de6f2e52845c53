// Tests of the nemesis checkers on hand-made histories, most of which must fail: each anomaly
// the suite exists to catch is written out as a small timeline. Then a seeded cross-check of the
// linearizability checker against a brute-force search on hundreds of tiny histories, and a
// 3,000-op run as a performance sanity check. Rerun a seed with RINGKV_SEED=<seed>.

import t from 'tap';
import type { Test } from 'tap';
import type { CheckResult, HistoryOp } from './history.js';
import { checkLinearizability, checkSetCompleteness, checkStrongContract, checkVectorClocks } from './checkers/index.js';
import { history } from './history-text.js';
import { bruteForceLinearizable } from './brute-force-linearizability.js';
import { mutateOneRead, simulateRegisterHistory } from './register-simulator.js';
import { SeededRandom, testSeed } from '../sdk/seeded-random.js';

const seed = testSeed();
t.comment(`seed ${seed} (rerun with RINGKV_SEED=${seed})`);

const kinds = (r: CheckResult): string[] => [...new Set(r.anomalies.map((a) => a.kind))].sort();
const lin = (h: HistoryOp[]): CheckResult => checkLinearizability(h);
const strong = (h: HistoryOp[]): CheckResult => checkStrongContract(h);

/** Both register checkers accept h. */
function bothPass(t: Test, h: HistoryOp[], what: string): void {
  const l = lin(h);
  const s = strong(h);
  t.ok(l.valid, `linearizable: ${what}`, { anomalies: l.anomalies });
  t.same(l.undecided, [], `decided: ${what}`);
  t.ok(s.valid, `strong contract holds: ${what}`, { anomalies: s.anomalies });
}

t.test('register histories that must pass', async (t) => {
  bothPass(t, [], 'empty history');
  bothPass(
    t,
    history(`
      c1 read   x -   0  5 ok     # initial state: absent
      c1 write  x a  10 20 ok
      c2 read   x a  30 40 ok
      c1 write  x b  50 60 ok
      c2 read   x b  70 80 ok
      c1 delete x -  90 95 ok
      c2 read   x - 100 110 ok
      c1 insert x c 120 130 ok    # insert is a write
      c2 read   x c 140 150 ok
    `),
    'sequential writes, deletes and reads',
  );
  // A read overlapping a write may see either side of it.
  for (const seen of ['-', 'a']) {
    bothPass(
      t,
      history(`
        c1 write x a  0 10 ok
        c2 read  x ${seen} 5 15 ok
      `),
      `read overlapping a write returns ${seen}`,
    );
  }
  // Two concurrent writes: later reads may see either, as long as they agree.
  for (const seen of ['a', 'b']) {
    bothPass(
      t,
      history(`
        c1 write x a  0 10 ok
        c2 write x b  2 12 ok
        c3 read  x ${seen} 20 30 ok
        c1 read  x ${seen} 40 50 ok
      `),
      `concurrent writes, both reads return ${seen}`,
    );
  }
  // Lenient ties: completing in the same millisecond another op is invoked is concurrent.
  bothPass(
    t,
    history(`
      c1 write x a  0 10 ok
      c2 read  x - 10 20 ok
    `),
    'a read invoked the millisecond a write completed may miss it',
  );
  bothPass(
    t,
    history(`
      c1 write x a   0  10 ok
      c2 write x b  20  30 unknown   # took effect long after the client gave up
      c3 write x c  40  50 ok
      c1 read  x c  60  70 ok
      c2 read  x b  80  90 ok
    `),
    'an unknown write that took effect late',
  );
  bothPass(
    t,
    history(`
      c1 write x a  0 10 ok
      c2 write x b 20 30 unknown     # never took effect
      c1 read  x a 40 50 ok
      c3 read  x a 60 70 ok
    `),
    'an unknown write that never took effect',
  );
  bothPass(
    t,
    history(`
      c1 write  x a  0 10 ok
      c2 write  x b 20 30 fail       # did not happen
      c3 delete x - 25 35 fail       # did not happen
      c1 read   x a 40 50 ok
      c2 read   x z 55 60 unknown    # an unknown read says nothing
      c1 read   x a 60 70 ok
    `),
    'fail operations and unknown reads are ignored',
  );
  bothPass(
    t,
    history(`
      c1 write x a   0  10 ok
      c2 write x b  20  30 unknown
      c3 read  x b 100 110 ok        # only the unknown write can explain this read: fine
    `),
    'a read only an unknown write explains',
  );
  bothPass(
    t,
    history(`
      c1 write x a  0 10 ok
      c2 write y b  0 10 ok
      c1 read  y b 20 30 ok
      c2 read  x a 20 30 ok
    `),
    'keys are independent registers',
  );
});

t.test('classic stale read after an acknowledged write', async (t) => {
  const h = history(`
    c1 write x a  0 10 ok
    c2 write x b 20 30 ok
    c3 read  x a 40 50 ok        # b was acknowledged before this read began
  `);
  const l = lin(h);
  t.notOk(l.valid);
  t.same(kinds(l), ['not-linearizable']);
  t.equal(l.anomalies[0]!.key, 'x');
  t.ok(l.anomalies[0]!.ops.includes(3), 'the witness holds the stale read', { anomaly: l.anomalies[0] });
  t.ok(l.anomalies[0]!.ops.length <= 3, 'the witness is small');
  t.match(l.anomalies[0]!.message, /op 3/);
  const s = strong(h);
  t.same(kinds(s), ['stale-read']);
  t.same(s.anomalies[0]!.ops, [1, 2, 3], 'the read, the write of its value and the newer acknowledged write');

  // The same with absent: a read that misses an acknowledged write entirely.
  const h2 = history(`
    c1 write x a  0 10 ok
    c2 read  x - 20 30 ok
  `);
  t.same(kinds(lin(h2)), ['not-linearizable']);
  t.same(kinds(strong(h2)), ['stale-read']);
  // Absent because of a delete that may come after the write is not stale.
  bothPass(
    t,
    history(`
      c1 write  x a  0 10 ok
      c2 delete x -  5 15 ok
      c3 read   x - 20 30 ok
    `),
    'absent from a concurrent delete',
  );
  // ... but it is once the delete precedes the acknowledged write.
  const h3 = history(`
    c2 delete x -  0  5 ok
    c1 write  x a 10 20 ok
    c3 read   x - 30 40 ok
  `);
  t.same(kinds(lin(h3)), ['not-linearizable']);
  t.same(kinds(strong(h3)), ['stale-read']);
});

t.test('clock skew: a write acknowledged later loses to an older one, and reads return the old value forever', async (t) => {
  // B is acknowledged after A completed, but B's writer's clock lagged, so last-write-wins
  // keeps A on every replica: every later read returns A.
  const h = history(`
    c1 write x A   0  10 ok
    c2 write x B  20  30 ok
    c1 read  x A  40  50 ok
    c2 read  x A  60  70 ok
    c3 read  x A  80  90 ok
    c1 read  x A 100 110 ok
  `);
  const l = lin(h);
  t.same(kinds(l), ['not-linearizable']);
  const s = strong(h);
  t.same(kinds(s), ['stale-read']);
  t.equal(s.anomalies.length, 4, 'every later read is stale');
  t.equal(s.stats!['stale-read'], 4);
});

t.test('a read of a value never written fails, whatever unknown writes there are', async (t) => {
  const h = history(`
    c1 write x a  0 10 ok
    c2 write x b 20 30 unknown
    c3 write x c 25 35 unknown
    c1 read  x z 40 50 ok
  `);
  const l = lin(h);
  t.same(kinds(l), ['not-linearizable']);
  t.ok(l.anomalies[0]!.ops.includes(4));
  const s = strong(h);
  t.same(kinds(s), ['phantom-read']);
  t.same(s.anomalies[0]!.ops, [4]);
  // Written under another key is still never written here.
  const h2 = history(`
    c1 write y z  0 10 ok
    c1 read  x z 20 30 ok
  `);
  t.same(kinds(lin(h2)), ['not-linearizable']);
  t.same(kinds(strong(h2)), ['phantom-read']);
});

t.test('a value from a failed write is read', async (t) => {
  const h = history(`
    c1 write x a  0 10 ok
    c2 write x b 20 30 fail
    c3 read  x b 40 50 ok
  `);
  t.same(kinds(lin(h)), ['not-linearizable']);
  const s = strong(h);
  t.same(kinds(s), ['phantom-read']);
  t.same(s.anomalies[0]!.ops, [2, 3]);
  t.match(s.anomalies[0]!.message, /only failed/);
  // Absent, from a failed delete: stale.
  const h2 = history(`
    c1 write  x a  0 10 ok
    c2 delete x - 20 30 fail
    c3 read   x - 40 50 ok
  `);
  t.same(kinds(lin(h2)), ['not-linearizable']);
  t.same(kinds(strong(h2)), ['stale-read']);
});

t.test('reads going backwards', async (t) => {
  // v2's write is still in flight, so r1 may see it; r2 then may not go back to v1.
  const h = history(`
    c1 write x v1  0  10 ok
    c2 write x v2 20 100 ok
    c3 read  x v2 30  40 ok
    c4 read  x v1 50  60 ok
  `);
  t.same(kinds(lin(h)), ['not-linearizable']);
  const s = strong(h);
  t.same(kinds(s), ['read-went-back'], 'not stale: v2 was not acknowledged when r2 began');
  t.same(s.anomalies[0]!.ops, [1, 2, 3, 4]);
  // Back to the initial absent state after a read saw a value.
  const h2 = history(`
    c1 write x a  0 100 ok
    c2 read  x a 10  20 ok
    c3 read  x - 30  40 ok
  `);
  t.same(kinds(lin(h2)), ['not-linearizable']);
  t.same(kinds(strong(h2)), ['read-went-back']);
  // Not backwards when the two values' writes are concurrent: no order between them.
  const h3 = history(`
    c1 write x v1  0 100 ok
    c2 write x v2  5 100 ok
    c3 read  x v2 10  20 ok
    c4 read  x v1 30  40 ok
  `);
  bothPass(t, h3, 'the second read sees a concurrent write that was linearized later');
});

t.test('non-linearizable histories the strong contract allows', async (t) => {
  // Two concurrent writes; after both are acknowledged, three sequential reads see a, b, a.
  // Each read alone is fine by the contract: neither write precedes the other, so no value is
  // "older" than another. But no total order exists: once both writes took effect the register
  // holds one value for good. Last-write-wins replicas that disagree on the winner (and a read
  // that repairs from a different quorum each time) produce exactly this flip-flop.
  const h = history(`
    c1 write x a  0 10 ok
    c2 write x b  0 10 ok
    c3 read  x a 20 30 ok
    c3 read  x b 40 50 ok
    c3 read  x a 60 70 ok
  `);
  const l = lin(h);
  t.same(kinds(l), ['not-linearizable']);
  t.ok(strong(h).valid, 'the strong contract holds');
  // The other direction does not exist: a linearizable history keeps the contract (the
  // randomized cross-check below asserts it on every generated history).

  // Two writes still in flight, and two readers that see them in opposite orders: c3 sees a
  // then b, c4 sees b then a. Each reader's view is coherent and no write precedes the other,
  // so nothing is "older"; but each write takes effect once, so no single order explains both
  // readers. Reads served by different quorums while the writes propagate can do this.
  const h2 = history(`
    c1 write x a  0 100 ok
    c2 write x b  0 100 ok
    c3 read  x a 10  20 ok
    c4 read  x b 10  20 ok
    c3 read  x b 30  40 ok
    c4 read  x a 30  40 ok
  `);
  t.same(kinds(lin(h2)), ['not-linearizable']);
  t.ok(strong(h2).valid, 'the strong contract holds');
  // Each reader alone is linearizable.
  t.ok(lin(h2.filter((o) => o.process !== 'c4')).valid);
  t.ok(lin(h2.filter((o) => o.process !== 'c3')).valid);
});

t.test('unknown writes cannot save a history that no order explains', async (t) => {
  // The read returned b before b's write was even invoked.
  const h = history(`
    c1 read  x b  0 10 ok
    c2 write x b 20 30 unknown
  `);
  t.same(kinds(lin(h)), ['not-linearizable']);
  t.same(kinds(strong(h)), ['future-read']);
  // b is read, so the unknown write happened, after a (a completed before b was invoked);
  // a later read cannot see a again.
  const h2 = history(`
    c1 write x a  0 10 ok
    c2 write x b 20 30 unknown
    c3 read  x b 40 50 ok
    c1 read  x a 60 70 ok
  `);
  t.same(kinds(lin(h2)), ['not-linearizable']);
  t.same(kinds(strong(h2)), ['read-went-back']);
  // Two unknown writes of the same absent value (deletes) still cannot put b back.
  const h3 = history(`
    c1 write  x b  0 10 ok
    c2 delete x - 20 30 unknown
    c3 delete x - 25 35 unknown
    c1 read   x - 40 50 ok
    c2 read   x b 60 70 ok
  `);
  t.same(kinds(lin(h3)), ['not-linearizable']);
  t.same(kinds(strong(h3)), ['read-went-back']);
  // An unknown delete that a later read needs must not be spent where the search could do
  // without it: first read absent via the acknowledged delete, then b, then absent again via
  // the unknown delete, which took effect after b.
  bothPass(
    t,
    history(`
      c1 write  x x0  0  1 ok
      c2 read   x -   2 50 ok
      c3 delete x -   3  4 ok
      c4 delete x -   3  4 unknown
      c5 write  x b   5 50 ok
      c2 read   x -  60 70 ok
    `),
    'an unknown delete saved for the read that needs it',
  );
  // With one write of b left in flight, the same reads are fine.
  bothPass(
    t,
    history(`
      c1 write  x b  0 10 ok
      c2 delete x - 20 30 unknown
      c3 write  x b2 25 35 unknown
      c1 read   x - 40 50 ok
      c2 read   x b2 60 70 ok
    `),
    'unknown writes that explain both reads',
  );
});

t.test('acknowledged writes nobody read still take effect', async (t) => {
  // a is never read, but it was acknowledged before the read began: absent is stale.
  const h = history(`
    c1 write x a  0 10 ok
    c2 read  x - 20 30 ok
  `);
  t.same(kinds(lin(h)), ['not-linearizable']);
  // Overwritten before any read: fine, even when the overwrite began after a completed.
  bothPass(
    t,
    history(`
      c1 write x a  0 10 ok
      c2 write x b 20 30 ok
      c3 read  x b 40 50 ok
    `),
    'an unread write overwritten later',
  );
  // Unread writes that hang (timeouts) across many reads.
  bothPass(
    t,
    history(`
      c1 write x a   0  10 ok
      c2 write x u1  5 500 ok
      c3 write x u2  5 500 ok
      c4 read  x a  20  30 ok
      c4 read  x a  40  50 ok
      c1 write x b  60  70 ok
      c4 read  x b  80  90 ok
      c1 read  x b 510 520 ok     # u1 and u2 took effect before b
    `),
    'hanging unread writes',
  );
  const after = history(`
    c1 write x a   0  10 ok
    c2 write x u1  5 500 ok
    c1 write x b  60  70 ok
    c4 read  x b  80  90 ok
    c4 read  x b 200 210 ok
    c1 read  x a 510 520 ok     # a again: impossible, a was overwritten by b after it
  `);
  t.same(kinds(lin(after)), ['not-linearizable']);
  t.same(kinds(strong(after)), ['stale-read']);
});

t.test('violations are reported per key, with the key', async (t) => {
  const h = history(`
    c1 write x a  0 10 ok
    c2 write y b  0 10 ok
    c1 read  x a 20 30 ok
    c2 read  y - 20 30 ok
  `);
  const l = lin(h);
  t.equal(l.anomalies.length, 1);
  t.equal(l.anomalies[0]!.key, 'y');
  t.equal(l.stats!.keys, 2);
  const s = strong(h);
  t.equal(s.anomalies.length, 1);
  t.equal(s.anomalies[0]!.key, 'y');
});

t.test('the search budget: a key it gives up on is undecided, not a violation', async (t) => {
  const h = history(`
    c1 write x a  0 10 ok
    c2 write x b  0 10 ok
    c3 read  x b 20 30 ok
    c1 write y a  0 10 ok
    c1 read  y a 20 30 ok
    c1 read  y z 40 50 ok
  `);
  const tight = checkLinearizability(h, { maxStatesPerKey: 1 });
  t.same(tight.undecided, ['x', 'y'], 'both keys need more than one state');
  t.ok(tight.valid, 'undecided is not invalid');
  const roomy = checkLinearizability(h);
  t.same(roomy.undecided, []);
  t.same(roomy.anomalies.map((a) => a.key), ['y']);
  t.throws(() => checkLinearizability(h, { maxStatesPerKey: 0 }), RangeError);
});

t.test('malformed intervals are refused', async (t) => {
  t.throws(() => lin(history('c1 write x a 10 5 ok')), RangeError);
  t.throws(() => strong(history('c1 write x a NaN 5 ok')), RangeError);
});

t.test('strong contract: only the chosen levels are judged', async (t) => {
  const h = history(`
    c1 write x a  0 10 ok level=strong
    c2 write x b 20 30 ok level=strong
    c3 read  x a 40 50 ok level=eventual
    c3 read  x b 60 70 ok level=strong
  `);
  t.same(kinds(strong(h)), ['stale-read']);
  t.ok(checkStrongContract(h, { readLevels: ['strong'] }).valid, 'the eventual read may be stale');
});

t.test('set completeness', async (t) => {
  const h = history(`
    c1 insert s1 a  0 10 ok
    c2 insert s2 b  0 10 unknown
    c3 insert s3 c  0 10 unknown
    c1 insert s4 d 20 30 fail
    c2 read   s1 a 40 50 ok       # reads are not judged here
  `);
  const fine = new Map<string, string | null>([
    ['s1', 'a'],
    ['s2', 'b'],
    ['s3', null],
    ['s4', null],
  ]);
  const ok = checkSetCompleteness(h, fine);
  t.ok(ok.valid, 'acknowledged present, unknown either way, failed absent', { anomalies: ok.anomalies });
  t.same(ok.stats, { acknowledged: 1, present: 1, lost: 0, unknownPresent: 1, unknownAbsent: 1, failed: 1, failedPresent: 0, phantoms: 0, notRead: 0 });
  t.equal(ok.checked, 4);

  const lost = checkSetCompleteness(h, new Map([...fine, ['s1', null]]));
  t.same(kinds(lost), ['lost-insert']);
  t.same(lost.anomalies[0]!.ops, [1]);
  t.equal(lost.stats!.lost, 1);
  t.same(kinds(checkSetCompleteness(h, new Map([...fine, ['s1', 'zz']]))), ['lost-insert', 'phantom'], 'another value in its place');

  const failed = checkSetCompleteness(h, new Map([...fine, ['s4', 'd']]));
  t.same(kinds(failed), ['failed-insert-present']);
  t.same(failed.anomalies[0]!.ops, [4]);

  t.same(kinds(checkSetCompleteness(h, new Map([...fine, ['s2', 'q']]))), ['phantom']);
  t.same(kinds(checkSetCompleteness(h, new Map([...fine, ['nobody', 'q']]))), ['phantom'], 'a key no insert wrote');
  t.ok(checkSetCompleteness(h, new Map([...fine, ['nobody', null]])).valid, 'an absent extra key is fine');

  const unread = new Map(fine);
  unread.delete('s1');
  t.same(kinds(checkSetCompleteness(h, unread)), ['not-read']);
});

t.test('vector clocks: no acknowledged write lost', async (t) => {
  // c1 and c2 both write blind (concurrent siblings a, b); c3 reads both and writes c over them;
  // c1 writes d blind, concurrent with c.
  const h = history(`
    c1 write x a  0 10 ok ctx=
    c2 write x b  0 10 ok ctx=
    c3 read  x a 20 30 ok sib=a,b
    c3 write x c 40 50 ok ctx=a,b
    c1 write x d 40 50 ok ctx=
  `);
  const fine = checkVectorClocks(h, new Map([['x', ['c', 'd']]]));
  t.ok(fine.valid, 'a and b superseded by c, c and d siblings', { anomalies: fine.anomalies });
  t.same(fine.stats, { okWrites: 4, present: 2, superseded: 2, lost: 0, finalSiblings: 2, phantoms: 0, resurrected: 0, notRead: 0 });

  const lost = checkVectorClocks(h, new Map([['x', ['c']]]));
  t.same(kinds(lost), ['lost-write'], 'd was acknowledged and nothing superseded it');
  t.same(lost.anomalies[0]!.ops, [5]);

  // Superseded by an unknown write: it may have applied, so a's absence is explained.
  const h2 = history(`
    c1 write x a  0 10 ok ctx=
    c2 read  x a 20 30 ok sib=a
    c2 write x b 40 50 unknown ctx=a
  `);
  t.ok(checkVectorClocks(h2, new Map([['x', ['b']]])).valid);
  // Even with b absent too: b may have applied and then been covered by a version vector that
  // no read reported it under (a context vector covers a whole prefix of a node's counter),
  // so b's absence does not prove a was lost.
  t.ok(checkVectorClocks(h2, new Map([['x', []]])).valid);
  // ... but not by a failed one.
  const h3 = history(`
    c1 write x a  0 10 ok ctx=
    c2 write x b 40 50 fail ctx=a
  `);
  t.same(kinds(checkVectorClocks(h3, new Map([['x', []]]))), ['lost-write']);

  t.same(kinds(checkVectorClocks(h, new Map([['x', ['c', 'd', 'zz']]]))), ['phantom-sibling']);
  t.same(kinds(checkVectorClocks(h3, new Map([['x', ['a', 'b']]]))), ['phantom-sibling'], 'a failed write present');
  const phantomRead = history(`
    c1 write x a  0 10 ok ctx=
    c2 read  x a 20 30 ok sib=a,q
  `);
  t.same(kinds(checkVectorClocks(phantomRead, new Map([['x', ['a']]]))), ['phantom-sibling'], 'a read returned a sibling nobody wrote');

  // a comes back after c (acknowledged) superseded it.
  const back = checkVectorClocks(h, new Map([['x', ['a', 'c', 'd']]]));
  t.same(kinds(back), ['resurrected-sibling']);
  t.same(back.anomalies[0]!.ops, [1, 4]);
  t.ok(checkVectorClocks(h, new Map([['x', ['a', 'c', 'd']]]), { finalReadsInvokedMs: 45 }).valid, 'the final read began before c completed');
  t.ok(checkVectorClocks(h2, new Map([['x', ['a', 'b']]])).valid, 'a covering unknown write is no proof');
  // A delete with context: what it covered must be gone.
  const del = history(`
    c1 write  x a  0 10 ok ctx=
    c2 delete x - 20 30 ok ctx=a
  `);
  t.ok(checkVectorClocks(del, new Map([['x', []]])).valid);
  t.same(kinds(checkVectorClocks(del, new Map([['x', ['a']]]))), ['resurrected-sibling']);
  t.same(kinds(checkVectorClocks(h, new Map())), ['not-read']);
});

// Cross-check against the definition. Each small history is either simulated (linearizable by
// construction), simulated then mutated (one or two reads changed), or random noise (with
// duplicate values and many deletes); the brute force decides, and both checkers must agree
// with it (strong: it never flags a linearizable history, as linearizability implies the contract).
function randomSmallHistory(rnd: SeededRandom, round: number, maxOps: number): HistoryOp[] {
  if (round % 3 < 2) {
    const h = simulateRegisterHistory(rnd, {
      ops: 3 + rnd.int(maxOps - 2),
      keys: 1 + rnd.int(2),
      clients: 2 + rnd.int(4),
      pRead: rnd.pick([0.3, 0.5, 0.6]),
      pDelete: 0.2,
      pUnknownWrite: 0.25,
      pFailWrite: 0.1,
      pUnknownRead: 0.1,
      maxDurationMs: 6,
      maxGapMs: 3,
      pLong: rnd.pick([0, 0.1, 0.5]),
      longDurationMs: 25,
      // Duplicate values now and then: groups of unknown writes of one value, like deletes.
      valuePool: rnd.chance(0.3) ? ['p', 'q'] : undefined,
    });
    if (round % 3 === 1) {
      mutateOneRead(rnd, h);
      if (rnd.chance(0.3)) mutateOneRead(rnd, h);
    }
    return h;
  }
  const h: HistoryOp[] = [];
  const n = 3 + rnd.int(maxOps - 2);
  for (let id = 1; id <= n; id++) {
    const f = rnd.pick(['read', 'write', 'write', 'delete', 'read'] as const);
    const invokeMs = rnd.int(12);
    const value = f === 'delete' ? null : f === 'write' ? (rnd.chance(0.15) ? 'dup' : `w${id}`) : rnd.pick(['a', 'dup', null]);
    const outcome = rnd.pick(['ok', 'ok', 'ok', 'unknown', 'fail'] as const);
    h.push({ id, process: `c${id}`, f, key: rnd.chance(0.8) ? 'x' : 'y', value, invokeMs, completeMs: invokeMs + rnd.int(6), outcome });
  }
  // Reads mostly return values that were written (or absent).
  for (const r of h) if (r.f === 'read' && rnd.chance(0.8)) r.value = rnd.pick(h).value;
  return h;
}

t.test(`linearizability agrees with brute force on random small histories (seed ${seed})`, async (t) => {
  const rnd = new SeededRandom(seed);
  const counts = { linearizable: 0, violations: 0, strongFlagged: 0, disagreements: 0 };
  for (let round = 0; round < 3000; round++) {
    const h = randomSmallHistory(rnd, round, round < 2000 ? 8 : 14);
    if (round % 3 === 0 && !bruteForceLinearizable(h)) {
      t.fail('a simulated history must be linearizable (simulator bug)', { history: h.map((o) => JSON.stringify(o)) });
      return;
    }
    const expected = bruteForceLinearizable(h);
    const got = lin(h);
    if (got.valid !== expected || got.undecided!.length > 0) {
      counts.disagreements++;
      t.fail(`round ${round}: checker says ${got.valid}, brute force ${expected}`, { history: h.map((o) => JSON.stringify(o)), anomalies: got.anomalies });
      if (counts.disagreements > 3) return;
    }
    if (expected) counts.linearizable++;
    else counts.violations++;
    const s = strong(h);
    if (!s.valid) {
      counts.strongFlagged++;
      if (expected) t.fail(`round ${round}: strong contract flags a linearizable history`, { history: h.map((o) => JSON.stringify(o)), anomalies: s.anomalies });
    }
  }
  t.equal(counts.disagreements, 0);
  t.ok(counts.linearizable > 1000 && counts.violations > 800, 'both verdicts are well represented', { counts: { ...counts } });
  t.ok(counts.strongFlagged > 500, 'the strong checker flags most violations', { counts: { ...counts } });
  t.comment(JSON.stringify(counts));
});

t.test(`simulated histories pass and one impossible read makes them fail (seed ${seed})`, async (t) => {
  const rnd = new SeededRandom(seed ^ 0x5eed);
  for (let round = 0; round < 30; round++) {
    const h = simulateRegisterHistory(rnd, { ops: 200, keys: 3, clients: 5 });
    const l = lin(h);
    t.ok(l.valid && l.undecided!.length === 0, `round ${round}: linearizable`, { anomalies: l.anomalies.slice(0, 2) });
    t.ok(strong(h).valid, `round ${round}: strong contract holds`);
    const reads = h.filter((o) => o.f === 'read' && o.outcome === 'ok');
    const r = rnd.pick(reads);
    r.value = 'never-written';
    const bad = lin(h);
    t.same(kinds(bad), ['not-linearizable'], `round ${round}: a read of a never-written value fails`);
    t.same(bad.anomalies.map((a) => a.key), [r.key]);
    t.ok(bad.anomalies[0]!.ops.includes(r.id), 'the witness holds the mutated read');
  }
});

t.test('performance sanity: 3,000 ops on 20 keys from 6 clients', { timeout: 120_000 }, async (t) => {
  const rnd = new SeededRandom(seed ^ 0xbeef);
  // A tenth of the ops hang up to a second (a partition's timeouts) while others go on.
  const h = simulateRegisterHistory(rnd, { ops: 3000, keys: 20, clients: 6, pUnknownWrite: 0.15, maxDurationMs: 20, pLong: 0.1, longDurationMs: 1000 });
  const started = performance.now();
  const l = lin(h);
  t.ok(l.valid, 'linearizable', { anomalies: l.anomalies.slice(0, 2) });
  t.same(l.undecided, []);
  t.ok(strong(h).valid);
  t.comment(`checked ${h.length} ops in ${(performance.now() - started).toFixed(0)} ms, ${l.stats!.states} states`);
  mutateOneRead(rnd, h);
  const after = lin(h);
  t.same(after.undecided, [], 'a mutated history is decided too');
  t.comment(`after one mutated read: valid ${after.valid}, ${after.stats!.states} states`);
});
