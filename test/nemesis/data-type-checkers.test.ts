// Tests of the nemesis checkers of the data-type workloads on hand-made histories: the counter
// checker (final value between acknowledged and acknowledged + unknown, reads between what was
// acknowledged before them and what was invoked before they completed) and the add-wins set
// checker (acknowledged adds not removed are present, no member nobody added, reads that miss
// an acknowledged add). Each anomaly is written out as a small timeline that must fail.

import t from 'tap';
import type { HistoryOp, Outcome } from './history.js';
import { checkAddWinsSet, checkCounters } from './checkers/index.js';

let nextId = 0;
function op(process: string, f: HistoryOp['f'], key: string, invokeMs: number, completeMs: number, outcome: Outcome, extra: Partial<HistoryOp> = {}): HistoryOp {
  return { id: nextId++, process, f, key, value: null, invokeMs, completeMs, outcome, ...extra };
}
const incr = (p: string, n: number, a: number, b: number, outcome: Outcome = 'ok') => op(p, 'incr', 'c', a, b, outcome, { amount: n });
const read = (p: string, v: number, a: number, b: number) => op(p, 'read', 'c', a, b, 'ok', { value: String(v) });
const kinds = (r: { anomalies: { kind: string }[] }) => [...new Set(r.anomalies.map((x) => x.kind))].sort();

t.test('counters that must pass', async (t) => {
  const h = [incr('c1', 2, 0, 10), incr('c2', 3, 5, 15, 'unknown'), read('c1', 2, 20, 30), read('c3', 5, 25, 35), incr('c1', 1, 40, 50, 'fail'), read('c2', 5, 60, 70)];
  for (const final of [2, 5]) {
    const r = checkCounters(h, new Map([['c', final]]));
    t.ok(r.valid, `final ${final}: the unknown increment may or may not count`, { anomalies: r.anomalies });
  }
  t.ok(checkCounters([incr('c1', 2, 0, 10), read('c2', 2, 5, 15), read('c3', 0, 5, 15)], new Map([['c', 2]])).valid, 'reads overlapping the increment see it or not');
  t.ok(checkCounters([], new Map([['c', 0]])).valid, 'a counter never updated reads 0');
});

t.test('counters that must fail', async (t) => {
  const base = [incr('c1', 2, 0, 10), incr('c2', 3, 5, 15, 'unknown')];
  t.same(kinds(checkCounters(base, new Map([['c', 1]]))), ['lost-increment'], 'below the acknowledged sum');
  t.same(kinds(checkCounters(base, new Map([['c', 7]]))), ['phantom-increment'], 'above acknowledged + unknown (counted twice)');
  t.same(kinds(checkCounters([...base, incr('c3', 4, 20, 30, 'fail')], new Map([['c', 9]]))), ['phantom-increment'], 'a failed increment applied');
  t.same(kinds(checkCounters(base, new Map())), ['not-read']);
  t.same(kinds(checkCounters([...base, read('c3', 0, 20, 30)], new Map([['c', 2]]))), ['stale-read'], 'a read missing an increment acknowledged before it began');
  t.ok(checkCounters([...base, read('c3', 0, 20, 30)], new Map([['c', 2]]), { readsSeeAcknowledged: false }).valid, 'allowed at eventual');
  t.same(kinds(checkCounters([...base, read('c3', 6, 20, 30)], new Map([['c', 2]]), { readsSeeAcknowledged: false })), ['phantom-read'], 'more than was ever sent, at any level');
  t.same(kinds(checkCounters([read('c3', 1, 0, 3), incr('c1', 1, 5, 10)], new Map([['c', 1]]))), ['phantom-read'], 'a read of an increment not yet invoked');
});

const add = (p: string, m: string, a: number, b: number, outcome: Outcome = 'ok') => op(p, 'add', 's', a, b, outcome, { value: m });
const members = (p: string, ms: string[], a: number, b: number) => op(p, 'read', 's', a, b, 'ok', { members: ms });
const remove = (p: string, m: string, seen: string[], a: number, b: number, outcome: Outcome = 'ok') => op(p, 'remove', 's', a, b, outcome, { value: m, members: seen });

t.test('add-wins sets that must pass', async (t) => {
  const h = [add('c1', 'a', 0, 10), add('c2', 'b', 5, 15, 'unknown'), members('c1', ['a'], 20, 30), remove('c1', 'a', ['a'], 31, 40), add('c3', 'c', 45, 50, 'fail'), members('c2', [], 60, 70)];
  for (const final of [[], ['b']]) {
    const r = checkAddWinsSet(h, new Map([['s', final]]));
    t.ok(r.valid, `final ${JSON.stringify(final)}`, { anomalies: r.anomalies });
  }
  const kept = checkAddWinsSet(h, new Map([['s', ['a']]]));
  t.ok(kept.valid, 'a removed member that stays (an add the remove did not see) is counted, not reported');
  t.equal(kept.stats!.removedPresent, 1);
});

t.test('add-wins sets that must fail', async (t) => {
  const base = [add('c1', 'a', 0, 10), add('c2', 'b', 5, 15, 'unknown'), add('c3', 'x', 5, 15, 'fail')];
  t.same(kinds(checkAddWinsSet(base, new Map([['s', ['b']]]))), ['lost-add'], 'an acknowledged add never removed is missing');
  t.same(kinds(checkAddWinsSet(base, new Map([['s', ['a', 'z']]]))), ['phantom-member']);
  t.same(kinds(checkAddWinsSet(base, new Map([['s', ['a', 'x']]]))), ['failed-add-present']);
  t.same(kinds(checkAddWinsSet(base, new Map())), ['not-read']);
  t.same(kinds(checkAddWinsSet([...base, members('c4', [], 20, 30)], new Map([['s', ['a']]]))), ['stale-read'], 'a read missing an add acknowledged before it began');
  t.ok(checkAddWinsSet([...base, members('c4', [], 20, 30)], new Map([['s', ['a']]]), { readsSeeAcknowledged: false }).valid, 'allowed at eventual');
  t.ok(checkAddWinsSet([...base, remove('c5', 'a', ['a'], 16, 25), members('c4', [], 20, 30)], new Map([['s', []]])).valid, 'a read after a remove was invoked may miss it');
  t.same(kinds(checkAddWinsSet([members('c4', ['q'], 0, 5), add('c1', 'q', 10, 20)], new Map([['s', ['q']]]))), ['phantom-read'], 'a read of a member whose add had not begun');
});
