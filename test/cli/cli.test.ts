// The ringkv command against a real cluster: status (table and --json), get / put / del
// (values on stdout, stdin input, TTL), and exit codes — 0 success, 1 not found, 2 usage
// error, 3 cluster error — with one line on stderr and never a stack trace.

import t from 'tap';
import type { Test } from 'tap';
import { TestCluster } from '../helpers/cluster.js';
import type { CliRun } from '../helpers/run-cli.js';
import { runRingkv } from '../helpers/run-cli.js';

t.setTimeout(120_000);

type Run = CliRun;

function ringkv(args: string[], opts: { env?: Record<string, string>; input?: Buffer | string } = {}): Promise<Run> {
  return runRingkv(args, { ...opts, stdoutEncoding: 'latin1' });
}

function noStack(t: Test, r: Run): void {
  t.notMatch(r.stderr, /\n\s+at /, 'no stack trace');
  t.equal(r.stderr.trim().split('\n').length, 1, `one line on stderr: ${r.stderr.trim()}`);
}

t.test('the ringkv command', async (t) => {
  const c = await TestCluster.start(t, { nodes: 3 });
  const seeds = ['--seeds', c.addresses.join(',')];

  await t.test('status: a table and --json', async (t) => {
    const table = await ringkv(['status', ...seeds]);
    t.equal(table.code, 0);
    t.match(table.stdout, /ID\s+ADDRESS\s+STATE\s+TLS\s+LOAD\s+OWNS \(effective\)\s+KEYS\s+HINTS\s+ENGINE\s+SUSPECT\s+UPTIME\s+LAST HEARD/);
    for (const n of c.nodes) t.match(table.stdout, new RegExp(`${n.id}\\s+${n.address.replace(/\./g, '\\.')}\\s+up\\s+off\\s.*\\sok\\s+0\\s`), `${n.id}: up, plain, engine ok, no suspect range`);
    const json = await ringkv(['status', '--json'], { env: { RINGKV_SEEDS: c.addresses[1]! } });
    t.equal(json.code, 0, 'RINGKV_SEEDS works too');
    const parsed = JSON.parse(json.stdout) as { nodes: { id: string; address: string; state: string; hintsPending: number; ownership: number; engine: string }[] };
    t.same(parsed.nodes.map((n) => [n.id, n.state, n.hintsPending, n.engine]), [['n1', 'up', 0, 'ok'], ['n2', 'up', 0, 'ok'], ['n3', 'up', 0, 'ok']]);
    t.ok(parsed.nodes.every((n) => Math.abs(n.ownership - 1) < 1e-9), 'with 3 nodes and N = 3 every node owns 100% (effective)');
  });

  await t.test('put, get, del; the value alone on stdout; stdin input; ttl', async (t) => {
    let r = await ringkv(['put', 'cli-key', 'hello world', ...seeds]);
    t.equal(r.code, 0, r.stderr);
    r = await ringkv(['get', 'cli-key', ...seeds]);
    t.equal(r.code, 0);
    t.equal(r.stdout, 'hello world', 'just the value, so it pipes');
    const binary = Buffer.from([0, 1, 2, 250, 255, 10, 13]);
    r = await ringkv(['put', 'cli-bin', ...seeds], { input: binary });
    t.equal(r.code, 0, r.stderr);
    r = await ringkv(['get', 'cli-bin', ...seeds]);
    t.ok(Buffer.from(r.stdout, 'latin1').equals(binary), 'binary from stdin comes back byte for byte');
    r = await ringkv(['get', 'cli-key', '--json', '--consistency', 'all', ...seeds]);
    t.equal(JSON.parse(r.stdout).value, 'hello world');
    r = await ringkv(['del', 'cli-key', ...seeds]);
    t.equal(r.code, 0);
    r = await ringkv(['get', 'cli-key', ...seeds]);
    t.equal(r.code, 1, 'exit 1: not found');
    t.match(r.stderr, /NOT_FOUND/);
    noStack(t, r);
    // Each command is a new process (slow to start on a busy machine): a TTL of a few seconds.
    // The write is stamped between the start of the put command and its exit: the key is
    // surely there up to 4 s after the start, and surely gone 4 s after the exit.
    const putAt = Date.now();
    r = await ringkv(['put', 'cli-ttl', 'soon gone', '--ttl', '4', ...seeds]);
    const putDone = Date.now();
    t.equal(r.code, 0);
    const early = await ringkv(['get', 'cli-ttl', ...seeds]);
    if (Date.now() - putAt < 3500) t.equal(early.stdout, 'soon gone', 'there before the TTL');
    await new Promise((res) => setTimeout(res, Math.max(0, putDone + 4200 - Date.now())));
    t.equal((await ringkv(['get', 'cli-ttl', ...seeds])).code, 1, 'expired');
  });

  await t.test('usage errors exit 2', async (t) => {
    for (const args of [['frobnicate'], ['get'], ['put', 'k', 'v', '--consistency', 'bogus', ...seeds], ['put', 'k', 'v', '--ttl', '-4', ...seeds], ['get', 'k', '--seeds', 'not-a-host-port'], ['get', 'k'.repeat(300), ...seeds]]) {
      const r = await ringkv(args);
      t.equal(r.code, 2, `${args.slice(0, 3).join(' ')}: exit 2 (${r.stderr.trim()})`);
      t.notMatch(r.stderr, /\n\s+at /, 'no stack trace');
    }
  });

  await t.test('cluster errors exit 3 with one line', async (t) => {
    const r = await ringkv(['get', 'k', '--seeds', '127.0.0.1:1']);
    t.equal(r.code, 3);
    t.match(r.stderr, /NODE_UNAVAILABLE/);
    noStack(t, r);
  });

  await t.test('--help for every command', async (t) => {
    for (const cmd of ['server', 'status', 'get', 'put', 'del', 'repair', 'decommission', 'removenode', 'cleanup']) {
      const r = await ringkv([cmd, '--help']);
      t.equal(r.code, 0, `${cmd} --help`);
      t.match(r.stdout, new RegExp(`Usage: ringkv ${cmd}`));
    }
  });
});
