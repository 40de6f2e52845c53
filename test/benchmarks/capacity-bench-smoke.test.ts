// Keeps bench:capacity honest without running it (the run itself is opt-in, minutes long):
// its command line and defaults, the key count that makes the data multiple, values that
// a wrong byte fails, the pass rule (an OOM kill, a dead server or one wrong value fails
// the run), the cgroup file parsers, and — where this process may make cgroups (root) — a
// real memory cgroup that OOM-kills a process allocating past it and says so.

import { spawn } from 'node:child_process';
import t from 'tap';
import type { CapacityResult, PhaseFigures } from '../../benchmarks/harness/capacity-data.js';
import { capacityIndex, capacityKey, capacityPassed, capacityProgram, capacityTable, capacityValue, checkValue, fitsKeysFor, keysFor } from '../../benchmarks/harness/capacity-data.js';
import { MemoryLimit, ownMemoryCgroup, parseKeyValues } from '../../benchmarks/harness/memory-limit.js';

const MiB = 1024 * 1024;

function parse(args: string[]) {
  const p = capacityProgram().exitOverride().configureOutput({ writeErr: () => undefined, writeOut: () => undefined });
  p.parse(['node', 'capacity-bench', ...args]);
  return p.opts();
}

t.test('command line: defaults, flags, and bad numbers refused', async (t) => {
  const d = parse([]);
  t.equal(d.memoryMib, 128);
  t.equal(d.dataMultiple, 10);
  t.equal(d.nodes, 1);
  t.equal(d.consistency, 'strong');
  t.equal(d.save, true);
  t.equal(d.requireLimit, true);
  t.equal(d.mallocArenaMax, 0, 'the environment as it is unless asked');
  const o = parse(['--memory-mib', '64', '--data-multiple', '20', '--nodes', '3', '--no-save', '--no-require-limit', '--consistency', 'eventual', '--malloc-arena-max', '2']);
  t.same([o.memoryMib, o.dataMultiple, o.nodes, o.save, o.requireLimit, o.consistency, o.mallocArenaMax], [64, 20, 3, false, false, 'eventual', 2]);
  t.throws(() => parse(['--memory-mib', '0']), /memory-mib must be a number >= 16/);
  t.throws(() => parse(['--data-multiple', 'x']));
  t.throws(() => parse(['--consistency', 'all']));
});

t.test('the key count makes at least the data multiple, and not a key more', async (t) => {
  const f = { memoryMib: 128, dataMultiple: 10, valueSize: 1024 };
  const n = keysFor(f);
  const perKey = capacityKey(0).length + f.valueSize;
  t.ok(n * perKey >= 10 * 128 * MiB, 'enough bytes');
  t.ok((n - 1) * perKey < 10 * 128 * MiB, 'no more than needed');
  t.equal(capacityKey(123).length, capacityKey(9_999_999).length, 'fixed-width keys');
  t.equal(capacityIndex(capacityKey(4242)), 4242);
  t.equal(capacityIndex('other:1'), undefined);
});

t.test('values: deterministic, distinct, and any wrong byte is caught', async (t) => {
  const a = capacityValue(7, 1001, 42);
  t.same(capacityValue(7, 1001, 42), a, 'same index and seed, same bytes');
  t.not(capacityValue(8, 1001, 42).equals(a), true, 'another index differs');
  t.not(capacityValue(7, 1001, 43).equals(a), true, 'another seed differs');
  t.equal(checkValue(7, a, 1001, 42), 'ok');
  t.equal(checkValue(7, undefined, 1001, 42), 'missing');
  t.equal(checkValue(8, a, 1001, 42), 'mismatch', 'a value of another key');
  t.equal(checkValue(7, a.subarray(0, 1000), 1001, 42), 'mismatch', 'a short value');
  const flipped = Buffer.from(a);
  flipped[1000]! ^= 1;
  t.equal(checkValue(7, flipped, 1001, 42), 'mismatch', 'one bit of the last byte');
});

function result(over: Partial<CapacityResult> = {}, memory: Partial<CapacityResult['memory']> = {}): CapacityResult {
  const p: PhaseFigures = { ops: 10, seconds: 1, opsPerSec: 10, mibPerSec: 0.01, p50Ms: 1, p99Ms: 2, maxMs: 3, errors: 0, errorCodes: {} };
  return {
    nodes: 1,
    replication: 1,
    keys: 10,
    valueBytes: 1024,
    bytesWritten: 10_380,
    diskBytes: 20_000,
    dataMultipleOfLimit: 10,
    write: p,
    readHit: p,
    readMiss: p,
    ranges: { ranges: 1, keys: 5, errors: 0, seconds: 0.1 },
    verifyErrors: 0,
    memory: { limitBytes: 128 * MiB, peakRssBytes: 100 * MiB, peakAnonBytes: 60 * MiB, peakChargedBytes: 128 * MiB, oomKills: 0, serverExit: null, ...memory },
    serverMetrics: {},
    ...over,
  };
}

t.test('the pass rule and the table', async (t) => {
  t.equal(capacityPassed(result()), true);
  t.equal(capacityPassed(result({}, { oomKills: 1 })), false, 'an OOM kill fails the run');
  t.equal(capacityPassed(result({}, { serverExit: 'n1 SIGKILL' })), false, 'a dead server fails the run');
  t.equal(capacityPassed(result({ verifyErrors: 1 })), false, 'one wrong value fails the run');
  t.equal(capacityPassed(result({ ranges: { ranges: 1, keys: 5, errors: 1, seconds: 0.1 } })), false, 'a range listing error fails the run');
  t.equal(capacityPassed(result({ write: { ...result().write, errors: 1 } })), false, 'a failed write fails the run');
  const table = capacityTable(result());
  t.match(table, /^phase +ops +ops\/s +MiB\/s +p50 ms +p99 ms/);
  t.match(table, /written MiB +disk MiB +limit MiB +x limit +peak RSS MiB/);
  t.match(table, /\n0\.0 +0\.0 +128\.0 +10\.0 +100\.0 +60\.0 +128\.0 +0 +0$/);
});

t.test('the set that fits: its key count, the comparison rows with their ratios, and its errors fail the run', async (t) => {
  t.equal(parse([]).fitsMultiple, 0.25, 'a quarter of the block cache by default');
  t.equal(parse(['--fits-multiple', '0']).fitsMultiple, 0);
  const n = fitsKeysFor(0.25, 1024, 8 * MiB);
  t.ok(n * (capacityKey(0).length + 1024) >= 2 * MiB && (n - 1) * (capacityKey(0).length + 1024) < 2 * MiB, `${n} keys make 2 MiB, not a key more`);
  t.equal(fitsKeysFor(0, 1024, 8 * MiB), 0);
  const p = (opsPerSec: number, p99Ms: number, errors = 0): PhaseFigures => ({ ops: 10, seconds: 1, opsPerSec, mibPerSec: 0, p50Ms: 1, p99Ms, maxMs: p99Ms, errors, errorCodes: {} });
  const fits = { keys: n, bytesWritten: 2 * MiB, blockCacheBytes: 8 * MiB, readHit: p(4000, 10), readMiss: p(8000, 4), verifyErrors: 0, oomKills: 0, serverExit: null, serverMetrics: { ringkv_engine_pinned_bytes: 0 } };
  const r = result({ readHit: p(1000, 50), readMiss: p(6000, 6), bytesWritten: 1024 * MiB, serverMetrics: { ringkv_engine_pinned_bytes: 12 * MiB, ringkv_engine_tables: 7 }, fits });
  const table = capacityTable(r);
  t.match(table, /get hit +4000 +1000 +0\.25 +10\.00 +50\.00 +5\.00 +0 \/ 0/, 'fits and big side by side, big / fits');
  t.match(table, /get miss +8000 +6000 +0\.75 +4\.00 +6\.00 +1\.50/);
  t.match(table, /pinned filters \+ indexes: 12\.0 MiB for 1024\.0 MiB written \(12\.0 MiB per GiB\), 7 tables/);
  t.equal(capacityPassed(r), true);
  t.equal(capacityPassed({ ...r, fits: { ...fits, verifyErrors: 1 } }), false, 'a wrong value in the set that fits fails the run');
  t.equal(capacityPassed({ ...r, fits: { ...fits, serverExit: 'n1 SIGKILL' } }), false);
});

t.test('cgroup files: key-value lines and the own memory cgroup (v1 and v2)', async (t) => {
  t.same(parseKeyValues('low 0\nhigh 0\nmax 12\noom 1\noom_kill 1\n'), { low: 0, high: 0, max: 12, oom: 1, oom_kill: 1 });
  t.same(parseKeyValues('oom_kill_disable 0\nunder_oom 0\noom_kill 3'), { oom_kill_disable: 0, under_oom: 0, oom_kill: 3 });
  t.same(ownMemoryCgroup('9:name=systemd:/\n4:memory:/a/b\n0::/\n'), { version: 1, path: '/a/b' });
  t.same(ownMemoryCgroup('5:cpu,memory:/x\n'), { version: 1, path: '/x' });
  t.same(ownMemoryCgroup('0::/user.slice/s.scope\n'), { version: 2, path: '/user.slice/s.scope' });
  t.equal(ownMemoryCgroup('1:cpu:/\n'), undefined);
});

const why: string[] = [];
const limit = MemoryLimit.open(48 * MiB, `ringkv-capacity-test-${process.pid}`, why);
const noLimit = limit ? false : `no writable memory cgroup here (needs root): ${why.join('; ')}`;

t.test('a real memory cgroup: a process allocating past the limit is OOM-killed and counted', { skip: noLimit }, async (t) => {
  if (!limit) return;
  t.teardown(() => limit.release());
  // Touches 256 MiB of anonymous memory, 8 MiB at a time: far past the 48 MiB limit.
  const script = 'const a = []; for (let i = 0; i < 32; i++) a.push(Buffer.alloc(8 * 1024 * 1024, 1)); console.log("survived")';
  const [cmd, ...args] = [...limit.commandPrefix(), process.execPath, '-e', script] as unknown as [string, ...string[]];
  const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
  const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((r) => child.once('exit', (c, s) => r([c, s])));
  clearTimeout(timer);
  t.equal(signal, 'SIGKILL', `killed (exit ${code}, out ${JSON.stringify(out)})`);
  t.notMatch(out, /survived/);
  const m = limit.read();
  t.ok(m.oomKills >= 1, `the group counts the OOM kill (${m.oomKills})`);
  t.equal(m.limitBytes, 48 * MiB);
  t.ok(m.peakBytes === undefined || m.peakBytes <= 48 * MiB, `peak within the limit (${m.peakBytes})`);
});
