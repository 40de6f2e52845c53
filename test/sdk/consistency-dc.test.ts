// Consistency levels per data center: the Consistency header's names, what planFor makes of
// each level with one data center (exactly quorumFor's R and W) and with several (local,
// each, global counts; strong = localQuorum, eventual = localOne; localDc required), and the
// per-group counts of quorumCall (success needs every group's count; a group that cannot
// reach it fails the call naming it; a failure brings in a node of its own group).

import t from 'tap';
import type { Consistency } from '../../sdk/consistency.js';
import { parseConsistency, planFor, quorumFor } from '../../sdk/consistency.js';
import type { RingkvError } from '../../sdk/errors.js';
import { quorumCall } from '../../sdk/quorum-call.js';
import type { WireResult } from '../../sdk/wire/protocol.js';

t.test('the Consistency header knows the data-center levels', async (t) => {
  const cases: [string, Consistency][] = [
    ['localQuorum', 'localQuorum'],
    ['LOCAL_QUORUM', 'localQuorum'],
    ['local-quorum', 'localQuorum'],
    ['localOne', 'localOne'],
    ['LOCAL_ONE', 'localOne'],
    ['eachQuorum', 'eachQuorum'],
    ['EACH_QUORUM', 'eachQuorum'],
    ['quorum', 'quorum'],
    ['QUORUM', 'quorum'],
    ['all', 'all'],
    ['strong', 'strong'],
    ['one', 'eventual'],
    ['r=2,w=1', { r: 2, w: 1 }],
  ];
  for (const [h, want] of cases) t.same(parseConsistency(h), want, h);
  for (const bad of ['local', 'eachquorumm', 'local__', 'r_2']) t.throws(() => parseConsistency(bad), { code: 'INVALID_CONSISTENCY' }, bad);
});

t.test('one data center: every level is what quorumFor says', async (t) => {
  const levels: Consistency[] = ['linearizable', 'strong', 'eventual', 'all', 'quorum', 'localQuorum', 'localOne', 'eachQuorum', { r: 1, w: 3 }, { r: 3 }];
  for (const n of [1, 3, 5]) {
    for (const level of levels) {
      if (typeof level === 'object' && ((level.r ?? 0) > n || (level.w ?? 0) > n)) continue;
      const q = quorumFor(level, n);
      for (const localDc of [undefined, 'default']) {
        const p = planFor(level, { default: n }, localDc);
        t.equal(p.read.total, q.r, `N=${n} ${JSON.stringify(level)}: R`);
        t.equal(p.write.total, q.w, `N=${n} ${JSON.stringify(level)}: W`);
        t.same(p.read.dcs, ['default']);
        t.equal(p.writeBack?.total, q.r >= 2 ? Math.floor(n / 2) + 1 : undefined, `N=${n} ${JSON.stringify(level)}: write-back to a majority at R >= 2`);
        t.equal(p.crossDc, false);
      }
    }
  }
});

t.test('several data centers: local, each and global counts', async (t) => {
  const rep = { east: 3, west: 3, south: 1 };
  const p = (c: Consistency) => planFor(c, rep, 'west');
  const perDc = (c: Consistency) => Object.fromEntries(p(c).write.perDc);
  t.same(p('localQuorum').write.dcs, ['west']);
  t.same(perDc('localQuorum'), { west: 2 });
  t.same(perDc('strong'), { west: 2 }, 'strong is localQuorum');
  t.same(perDc('localOne'), { west: 1 });
  t.same(perDc('eventual'), { west: 1 }, 'eventual is localOne');
  t.same(perDc({ r: 1, w: 3 }), { west: 3 }, 'counts are of the local data center');
  t.throws(() => p({ w: 4 }), { code: 'INVALID_CONSISTENCY' }, 'a count above the local replication factor');
  t.same(perDc('eachQuorum'), { west: 2, east: 2, south: 1 });
  t.equal(p('eachQuorum').write.total, 5);
  t.same(p('eachQuorum').write.dcs, ['west', 'east', 'south'], 'the local data center first');
  t.same(perDc('all'), { west: 3, east: 3, south: 1 });
  t.same(Object.fromEntries(p('all').writeBack!.perDc), { west: 2, east: 2, south: 1 }, 'all writes back to a majority of each');
  t.same(perDc('quorum'), {}, 'quorum counts over every replica');
  t.equal(p('quorum').write.total, 4, 'a majority of 7');
  t.equal(p('linearizable').read.total, 4, 'linearizable: a majority of every replica');
  t.equal(p('localQuorum').crossDc, false);
  t.equal(p('eachQuorum').crossDc, true);
  t.equal(p('quorum').crossDc, true);
  t.throws(() => planFor('strong', rep, undefined), { code: 'LOCAL_DC_REQUIRED' }, 'localDc is required');
  t.throws(() => planFor('eventual', rep, 'north'), { code: 'LOCAL_DC_REQUIRED' }, 'an unknown data center is refused');
});

function answering(behaviour: Record<string, 'ok' | 'fail'>, started: string[]): (node: string) => Promise<WireResult> {
  return async (node) => {
    started.push(node);
    await new Promise((r) => setTimeout(r, 1));
    return behaviour[node] === 'ok' ? { ok: true, obj: null } : { ok: false, code: 'IO_ERROR', msg: 'scripted' };
  };
}

t.test('quorumCall with groups', async (t) => {
  const groups = { of: (n: string) => n[0]!, need: new Map([['e', 2], ['w', 2]]) };
  const nodes = ['e1', 'e2', 'e3', 'w1', 'w2', 'w3'];
  // Enough answers in all, but not in w: it waits for w, and fails naming it.
  let started: string[] = [];
  const err = await quorumCall('op', nodes, 4, 1000, answering({ e1: 'ok', e2: 'ok', e3: 'ok', w1: 'ok', w2: 'fail', w3: 'fail' }, started), 4, groups).then(
    () => undefined,
    (e: RingkvError) => e,
  );
  t.equal(err?.code, 'QUORUM_NOT_MET');
  t.equal(err?.details?.dc, 'w', 'the group that fell short');
  // The first started are each group's count; a failure in w brings in the next w.
  started = [];
  const ok = await quorumCall('op', nodes, 4, 1000, answering({ e1: 'ok', e2: 'ok', e3: 'ok', w1: 'fail', w2: 'ok', w3: 'ok' }, started), 4, groups);
  t.equal(ok.answers.length, 4);
  t.same(started.slice(0, 4).sort(), ['e1', 'e2', 'w1', 'w2'], 'first: two of each group');
  t.equal(started[4], 'w3', 'a failure in w starts the next w, not e3');
  // Without groups it is the plain count.
  started = [];
  const plain = await quorumCall('op', nodes, 4, 1000, answering({ e1: 'ok', e2: 'ok', e3: 'ok', w1: 'ok', w2: 'fail', w3: 'fail' }, started), 4);
  t.equal(plain.answers.length, 4);
  // A group with fewer nodes than its count fails at once.
  const tooFew = await quorumCall('op', ['e1', 'w1'], 2, 1000, answering({ e1: 'ok', w1: 'ok' }, []), 2, groups).then(
    () => undefined,
    (e: RingkvError) => e,
  );
  t.equal(tooFew?.code, 'QUORUM_NOT_MET');
});
