// The nemesis harness's own pieces, without a cluster: where partitions put clients, the
// fault schedule (alternation, bounds, heal on abort and on error), outcome classification,
// scenario selection, the skew range and libfaketime's offset format, and the firewall's
// refusal to touch any namespace but the runner's own.

import t from 'tap';
import { SeededRandom } from '../sdk/seeded-random.js';
import type { Nemesis, NemesisContext } from './nemeses.js';
import { blockedPairs, faketimeOffset, randomSkewMs, runSchedule } from './nemeses.js';
import { Firewall, NAMESPACE_ENV } from './net-namespace.js';
import { SCENARIOS, selectScenarios } from './scenarios.js';
import { failedOutcome, siblingValues } from './workloads.js';

const addr = (id: string) => `127.0.0.${10 + Number(id.slice(1))}`;
const key = (p: [string, string]) => [...p].sort().join('-');

t.test('partitions: nodes across sides and clients outside their side are blocked, in both directions', async (t) => {
  const workers = ['127.0.0.101', '127.0.0.102', '127.0.0.103'];
  const bridge = new Set(blockedPairs({ sides: [['n1', 'n2'], ['n4', 'n5']], bridge: ['n3'] }, addr, workers).map(key));
  const expectBlocked = (a: string, b: string, want: boolean) => t.equal(bridge.has(key([a, b])), want, `${a} x ${b} ${want ? 'blocked' : 'open'}`);
  for (const a of ['n1', 'n2']) for (const b of ['n4', 'n5']) expectBlocked(addr(a), addr(b), true);
  for (const x of ['n1', 'n2', 'n4', 'n5']) expectBlocked(addr('n3'), addr(x), false);
  expectBlocked(addr('n1'), addr('n2'), false);
  // w0 sees the first side and the bridge, w1 the last side and the bridge, w2 everything.
  for (const n of ['n1', 'n2', 'n3']) expectBlocked(workers[0]!, addr(n), false);
  for (const n of ['n4', 'n5']) expectBlocked(workers[0]!, addr(n), true);
  for (const n of ['n3', 'n4', 'n5']) expectBlocked(workers[1]!, addr(n), false);
  for (const n of ['n1', 'n2']) expectBlocked(workers[1]!, addr(n), true);
  for (const n of ['n1', 'n2', 'n3', 'n4', 'n5']) expectBlocked(workers[2]!, addr(n), false);
  t.equal(bridge.size, 4 + 2 + 2, 'nothing else is blocked');

  const iso = blockedPairs({ sides: [['n2'], ['n1', 'n3', 'n4', 'n5']], bridge: [] }, addr, workers).map(key);
  t.equal(iso.length, 4 + 4 + 1, 'an isolated node: 4 node pairs, w0 cut from 4 nodes, w1 from the isolated one');
});

function recordingNemesis(log: string[], failOnInject = -1): Nemesis {
  let n = 0;
  return {
    name: 'none',
    nodes: 3,
    inject: async () => {
      if (n++ === failOnInject) throw new Error('inject failed');
      log.push('inject');
      return 'inject';
    },
    heal: async () => {
      log.push('heal');
      return 'heal';
    },
  };
}

const ctx = (seed: number) => ({ rng: new SeededRandom(seed) }) as unknown as NemesisContext;

t.test('schedule: healthy first, then fault and heal alternately, healed at the end', async (t) => {
  const log: string[] = [];
  const events = await runSchedule(recordingNemesis(log), ctx(1), 1600, { minPhaseMs: 100, maxPhaseMs: 150 });
  t.ok(log.length >= 4, `several cycles (${log.length} steps)`);
  t.same(log, log.map((_, i) => (i % 2 === 0 ? 'inject' : 'heal')), 'inject and heal alternate');
  t.equal(log[log.length - 1], 'heal', 'ends healed');
  t.ok(events[0]!.atMs >= 100, 'the first phase is healthy');
});

t.test('schedule: an abort stops it early and still heals', async (t) => {
  const log: string[] = [];
  let stop = false;
  const started = Date.now();
  const p = runSchedule(recordingNemesis(log), ctx(2), 60_000, { minPhaseMs: 100, maxPhaseMs: 100, aborted: () => stop });
  await new Promise((r) => setTimeout(r, 150));
  stop = true;
  await p;
  t.ok(Date.now() - started < 5000, 'returned soon after the abort');
  t.same(log, ['inject', 'heal'], 'the fault injected before the abort was healed');
});

t.test('schedule: an inject that fails half-way is healed, and the error is thrown', async (t) => {
  const log: string[] = [];
  const n = recordingNemesis(log);
  let calls = 0;
  // The second fault is half applied (say, some of a partition's rules) when it throws.
  const failing: Nemesis = {
    ...n,
    inject: async (c) => {
      const r = await n.inject(c);
      if (++calls === 2) throw new Error('boom');
      return r;
    },
  };
  await t.rejects(runSchedule(failing, ctx(3), 5000, { minPhaseMs: 50, maxPhaseMs: 50 }), /boom/);
  t.same(log, ['inject', 'heal', 'inject', 'heal'], 'the half-applied fault was healed before the error left');
});

t.test('outcomes: a failed write is fail only when the SDK says not applied', async (t) => {
  t.equal(failedOutcome('read', new Error('x')), 'fail', 'a failed read constrains nothing');
  t.equal(failedOutcome('write', Object.assign(new Error('x'), { code: 'TIMEOUT' })), 'unknown');
  t.equal(failedOutcome('write', Object.assign(new Error('x'), { notApplied: false })), 'unknown');
  t.equal(failedOutcome('delete', Object.assign(new Error('x'), { notApplied: true })), 'fail');
  t.equal(failedOutcome('insert', Object.assign(new Error('x'), { notApplied: 'yes' })), 'unknown', 'only the boolean true counts');
  t.same(siblingValues(undefined), []);
  t.same(siblingValues({ value: 'b' }), ['b']);
  t.same(siblingValues({ value: 'b', siblings: [{ value: 'b' }, { value: 'a' }] }), ['a', 'b']);
});

t.test('clock skew: 100 ms to 30 s, both directions; libfaketime offsets', async (t) => {
  const rng = new SeededRandom(7);
  let ahead = 0;
  let behind = 0;
  const outOfRange: number[] = [];
  for (let i = 0; i < 2000; i++) {
    const ms = randomSkewMs(rng);
    if (!(Math.abs(ms) >= 100 && Math.abs(ms) <= 30_000)) outOfRange.push(ms);
    if (ms > 0) ahead++;
    else behind++;
  }
  t.same(outOfRange, [], 'every skew is 100 ms to 30 s');
  t.ok(ahead > 800 && behind > 800, `both directions (${ahead} ahead, ${behind} behind)`);
  t.equal(faketimeOffset(1500), '+1.500s');
  t.equal(faketimeOffset(-30_000), '-30.000s');
  t.equal(faketimeOffset(-100), '-0.100s');
});

t.test('scenarios: every nemesis at linearizable and strong; --only patterns', async (t) => {
  const names = SCENARIOS.map((s) => s.name);
  t.equal(new Set(names).size, names.length, 'names are unique');
  for (const n of ['kill', 'pause', 'partition-isolate', 'partition-halves', 'partition-bridge', 'client-skew', 'server-skew', 'disk-full']) {
    t.ok(names.includes(`${n}/linearizable/register`) && names.includes(`${n}/strong/register`), `${n} at both levels`);
  }
  t.same(selectScenarios('client-skew/strong').map((s) => s.name), ['client-skew/strong/register']);
  t.same(selectScenarios('kill*vclock').map((s) => s.name), ['kill/strong/vclock']);
  t.same(selectScenarios('kill/strong/insert, kill/strong/vclock').map((s) => s.name), ['kill/strong/insert', 'kill/strong/vclock']);
  t.equal(selectScenarios(undefined).length, SCENARIOS.length);
});

t.test('the firewall refuses to run outside the runner\'s own namespace', async (t) => {
  const saved = process.env[NAMESPACE_ENV];
  t.teardown(() => {
    if (saved === undefined) delete process.env[NAMESPACE_ENV];
    else process.env[NAMESPACE_ENV] = saved;
  });
  delete process.env[NAMESPACE_ENV];
  t.throws(() => Firewall.open(), /only used inside/);
  // Claiming a namespace this process is not in is caught by `ip netns identify`.
  process.env[NAMESPACE_ENV] = 'ringkv-nemesis-not-here';
  t.throws(() => Firewall.open(), /not in that network namespace/);
});
