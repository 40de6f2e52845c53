// `ringkv cluster up --dcs 2 --nodes 3` as a user tries it: six real server processes in data
// centers dc1 and dc2; `ringkv status` shows each node's data center; data commands need
// `--local-dc` (LOCAL_DC_REQUIRED without it) and a write in dc1 is read in dc2; `ringkv repl
// status` lists each node's destination, `repl fullsync` and `repl check` succeed; Ctrl-C
// (SIGINT) stops every process. On 127.0.0.1, on six consecutive free ports.

import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import t from 'tap';
import { CLI } from '../helpers/cluster.js';

t.setTimeout(240_000);

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function ringkv(args: string[], env: Record<string, string> = {}): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.on('error', reject);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code: code ?? -1, stdout, stderr });
    });
  });
}

function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.once('error', () => resolve(false));
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });
}

/** The first of `n` consecutive ports free on 127.0.0.1. */
async function freeRange(n: number): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const base = 20_000 + Math.floor(Math.random() * 20_000);
    let ok = true;
    for (let i = 0; i < n && ok; i++) ok = await portFree(base + i);
    if (ok) return base;
  }
  throw new Error(`no ${n} consecutive free ports`);
}

t.test('cluster up --dcs 2 --nodes 3: two data centers to try', async (t) => {
  const base = await freeRange(6);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ringkv-up-dcs-'));
  const up = spawn(process.execPath, [CLI, 'cluster', 'up', '--dcs', '2', '--nodes', '3', '--base-port', String(base), '--data', dir, '--log-level', 'warn'], {
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  let out = '';
  up.stdout!.on('data', (c: Buffer) => (out += c.toString()));
  up.stderr!.on('data', (c: Buffer) => (out += c.toString()));
  const exited = new Promise<number | null>((resolve) => up.once('exit', (code) => resolve(code)));
  t.teardown(async () => {
    // Whatever happened above: its process group (the servers too) goes away.
    if (up.exitCode === null && up.signalCode === null) {
      try {
        process.kill(-up.pid!, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    fs.rmSync(dir, { recursive: true, force: true });
  });
  const deadline = Date.now() + 120_000;
  while (!/ringkv: 6 nodes up at/.test(out)) {
    if (up.exitCode !== null || Date.now() > deadline) throw new Error(`cluster up did not come up:\n${out}`);
    await new Promise((r) => setTimeout(r, 200));
  }
  t.match(out, new RegExp(`dc1: 127\\.0\\.0\\.1:${base}, 127\\.0\\.0\\.1:${base + 1}, 127\\.0\\.0\\.1:${base + 2}`), 'it prints dc1 and its nodes');
  t.match(out, new RegExp(`dc2: 127\\.0\\.0\\.1:${base + 3}`), 'and dc2');
  const seeds = ['--seeds', `127.0.0.1:${base}`];

  // Every node up, in its data center.
  const upDeadline = Date.now() + 60_000;
  let nodes: { id: string; dc: string; state: string }[] = [];
  for (;;) {
    const r = await ringkv(['status', '--json', ...seeds]);
    if (r.code === 0) nodes = (JSON.parse(r.stdout) as { nodes: typeof nodes }).nodes;
    if (nodes.length === 6 && nodes.every((n) => n.state === 'up')) break;
    if (Date.now() > upDeadline) throw new Error(`not every node up: ${JSON.stringify(nodes)}`);
    await new Promise((r) => setTimeout(r, 500));
  }
  t.same(
    nodes.map((n) => `${n.id}:${n.dc}`),
    ['n1:dc1', 'n2:dc1', 'n3:dc1', 'n4:dc2', 'n5:dc2', 'n6:dc2'],
    'status --json: three nodes in each data center',
  );
  const table = await ringkv(['status', ...seeds]);
  t.match(table.stdout, /^DC\s+RACK\s+ID\s+ADDRESS\s+STATE/m, 'the status table leads with the data center and rack');
  t.match(table.stdout, /^dc2\s+-\s+n4\s/m);

  // Data commands name their data center.
  const guessed = await ringkv(['put', 'greeting', 'hello', ...seeds]);
  t.not(guessed.code, 0, 'put without --local-dc fails');
  t.match(guessed.stderr, /LOCAL_DC_REQUIRED/);
  t.equal((await ringkv(['put', 'greeting', 'hello', '--local-dc', 'dc1', '--consistency', 'localQuorum', ...seeds])).code, 0, 'put --local-dc dc1');
  const readDeadline = Date.now() + 30_000;
  let read: Run;
  for (;;) {
    read = await ringkv(['get', 'greeting', '--consistency', 'localOne', '--seeds', `127.0.0.1:${base + 3}`], { RINGKV_LOCAL_DC: 'dc2' });
    if (read.code === 0 || Date.now() > readDeadline) break;
    await new Promise((r) => setTimeout(r, 300));
  }
  t.equal(read.stdout, 'hello', "dc2 reads dc1's write (RINGKV_LOCAL_DC)");

  // The data-type and export commands name their data center too.
  const incrGuessed = await ringkv(['counter', 'incr', 'visits', '2', ...seeds]);
  t.match(incrGuessed.stderr, /LOCAL_DC_REQUIRED/, 'counter incr without --local-dc: LOCAL_DC_REQUIRED');
  const incr = await ringkv(['counter', 'incr', 'visits', '2', '--local-dc', 'dc1', '--consistency', 'localQuorum', ...seeds]);
  t.equal(incr.stdout.trim(), '2', `counter incr --local-dc dc1 (${incr.stderr.trim()})`);
  const exported = await ringkv(['export', '--local-dc', 'dc1', ...seeds]);
  t.equal(exported.code, 0, `export --local-dc dc1 (${exported.stderr.trim().split('\n').pop()})`);
  t.match(exported.stdout, /"key":"greeting"/, 'the export holds the key written');

  // repl status / fullsync / check.
  const st = await ringkv(['repl', 'status', '--json', ...seeds]);
  t.equal(st.code, 0, 'repl status');
  const repl = JSON.parse(st.stdout) as { replication: Record<string, number>; nodes: { node: string; dc: string; repl?: { dc: string }[] }[] };
  t.same(repl.replication, { dc1: 3, dc2: 3 });
  t.same(
    repl.nodes.map((n) => `${n.node}->${(n.repl ?? []).map((r) => r.dc).join(',')}`),
    ['n1->dc2', 'n2->dc2', 'n3->dc2', 'n4->dc1', 'n5->dc1', 'n6->dc1'],
    'a row per node and destination',
  );
  const text = await ringkv(['repl', 'status', ...seeds]);
  t.match(text.stdout, /NODE\s+DC\s+TO\s+PENDING\s+DROPPED\s+LAG/, 'repl status prints a table');
  const fs2 = await ringkv(['repl', 'fullsync', '--dc', 'dc2', ...seeds]);
  t.equal(fs2.code, 0, `repl fullsync --dc dc2: ${fs2.stdout.trim().split('\n')[0]}`);
  const check = await ringkv(['repl', 'check', ...seeds]);
  t.equal(check.code, 0, `repl check: ${check.stdout.trim()}`);

  // Ctrl-C stops the cluster.
  up.kill('SIGINT');
  let timer: NodeJS.Timeout | undefined;
  const code = await Promise.race([exited, new Promise<'timeout'>((r) => (timer = setTimeout(() => r('timeout'), 60_000)))]);
  clearTimeout(timer);
  t.not(code, 'timeout', 'cluster up exits after SIGINT');
  t.match(out, /cluster stopped/);
  for (let i = 0; i < 6; i++) t.ok(await portFree(base + i), `port ${base + i} released`);
});
