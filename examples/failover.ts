// failover.ts — kill -9 one of three nodes in the middle of a write loop: no write fails,
// and no acknowledged write is lost.
//
// Shows: the example starts its own 3-node cluster (child processes of `ringkv server` on
// free ports, data in a temp directory — so it never kills a node of a cluster you run),
// writes with 8 concurrent loops at `strong` (W = 2 of 3), and SIGKILLs node n3 two seconds
// in. Every write still succeeds: the client sends n3's copy to a healthy node as a hint
// (sloppy quorum) and the two live replicas make the quorum — before and after the cluster
// has detected the failure. Then n3 restarts on the same port and data, the hints are
// delivered to it, and every acknowledged key reads back at `all`. Exits 1 on any failure.
// Takes about 15 seconds.
//
// Run:  npm run build && node dist/examples/failover.js

import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { connect, RingkvError } from 'ringkv';
import type { RingkvClient } from 'ringkv';

const WRITERS = 8;
const KILL_AFTER_MS = 2000;
/** Writes go on this long after the client has seen n3 down. */
const AFTER_DETECTION_MS = 1000;

// ---------------------------------------------------------------------------------------
// A local cluster of `ringkv server` processes

const here = path.dirname(fileURLToPath(import.meta.url));
// From dist/examples/ the CLI is ../storage-server/cli/; from examples/ (tsx) it is in dist/.
const CLI = [path.join(here, '../storage-server/cli/ringkv.js'), path.join(here, '../dist/storage-server/cli/ringkv.js')].find((p) => fs.existsSync(p));
if (!CLI) throw new Error('the ringkv CLI is not built: run npm run build');

interface LocalNode {
  id: string;
  port: number;
  dataDir: string;
  child?: ChildProcess;
  stderr: string[];
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

/** Starts `node` with the others as seeds; resolves when it reports ready. */
function startNode(node: LocalNode, all: LocalNode[]): Promise<void> {
  const seeds = all.filter((n) => n !== node).map((n) => `127.0.0.1:${n.port}`);
  // Our own RINGKV_* settings (RINGKV_SEEDS...) are not meant for the servers.
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('RINGKV_')));
  const args = [CLI!, 'server', '--id', node.id, '--port', String(node.port), '--data', node.dataDir, '--seeds', seeds.join(','), '--log-level', 'warn'];
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'ignore', 'pipe', 'ipc'], env });
  node.child = child;
  node.stderr = [];
  child.stderr!.on('data', (d: Buffer) => node.stderr.push(d.toString()));
  return new Promise((resolve, reject) => {
    child.on('message', (m: { type?: string }) => m?.type === 'ready' && resolve());
    child.once('exit', (code, signal) => reject(new Error(`${node.id} exited (${code ?? signal}) before it was ready: ${node.stderr.join('')}`)));
  });
}

function killNode(node: LocalNode, signal: NodeJS.Signals): Promise<void> {
  const c = node.child;
  if (!c || c.exitCode !== null || c.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    c.once('exit', () => resolve());
    c.kill(signal);
  });
}

/** How many members `node` sees up, from its member list. */
async function upCount(node: LocalNode): Promise<number> {
  const res = await fetch(`http://127.0.0.1:${node.port}/internal/v1/members`, { headers: { accept: 'application/json' } });
  return ((await res.json()) as { members: { state: string }[] }).members.filter((m) => m.state === 'up').length;
}

/** Pending hints summed over `nodes`, from each node's status endpoint. */
async function hintsPending(nodes: LocalNode[]): Promise<number> {
  let sum = 0;
  for (const n of nodes) {
    const res = await fetch(`http://127.0.0.1:${n.port}/internal/v1/status`, { headers: { accept: 'application/json' } });
    sum += ((await res.json()) as { hintsPending: number }).hintsPending;
  }
  return sum;
}

async function until(what: string, test: () => Promise<boolean> | boolean, timeoutMs: number): Promise<number> {
  const started = Date.now();
  for (;;) {
    const done = await Promise.resolve()
      .then(test)
      .catch(() => false);
    if (done) break;
    if (Date.now() - started > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return Date.now() - started;
}

// ---------------------------------------------------------------------------------------
// The demonstration

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ringkv-failover-'));
const nodes: LocalNode[] = [];
for (const id of ['n1', 'n2', 'n3']) nodes.push({ id, port: await freePort(), dataDir: path.join(dir, id), stderr: [] });
const [n1, n2, n3] = nodes as [LocalNode, LocalNode, LocalNode];
const stopCluster = async () => {
  await Promise.all(nodes.map((n) => killNode(n, 'SIGTERM')));
  fs.rmSync(dir, { recursive: true, force: true });
};
// Whatever way this process ends, its servers end with it.
process.on('exit', () => {
  for (const n of nodes) if (n.child && n.child.exitCode === null && n.child.signalCode === null) n.child.kill('SIGKILL');
});

const t0 = Date.now();
const at = () => `t=${((Date.now() - t0) / 1000).toFixed(1).padStart(4)}s`;
let kv: RingkvClient<string> | undefined;
let stop = false;
let writers: Promise<void>[] = [];
let report: NodeJS.Timeout | undefined;
let ok = false;
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    stop = true;
    clearInterval(report);
    void stopCluster().then(() => process.exit(130));
  });
}
try {
  await Promise.all(nodes.map((n) => startNode(n, nodes)));
  // Ready processes are not yet a cluster: wait until every node sees all three up.
  await until('every node to see three members up', async () => (await Promise.all(nodes.map(upCount))).every((n) => n === 3), 20_000);
  console.log(`${at()}  cluster up: ${nodes.map((n) => `${n.id}=127.0.0.1:${n.port}`).join(' ')}`);
  const client = await connect({ seeds: nodes.map((n) => `127.0.0.1:${n.port}`), valueEncoding: 'utf8', timeoutMs: 2000 });
  kv = client;
  // The client's own events: it learns of n3's death and return from the nodes' gossip.
  const events: string[] = [];
  client.on('nodeDown', (e) => {
    events.push(`nodeDown ${e.id}`);
    console.log(`${at()}  event nodeDown ${e.id} (${e.address}, was ${e.from})`);
  });
  client.on('nodeUp', (e) => {
    events.push(`nodeUp ${e.id}`);
    console.log(`${at()}  event nodeUp ${e.id} (was ${e.from})`);
  });
  await until("the client's view to have three members up", () => nodes.every((n) => client.cluster.member(n.id)?.state === 'up'), 10_000);

  // WRITERS loops of strong writes to new keys; every acknowledged one is remembered.
  const acked = new Map<string, string>();
  const failures = new Map<string, number>();
  let seq = 0;
  writers = Array.from({ length: WRITERS }, async () => {
    while (!stop) {
      const i = seq++;
      const key = `failover:${i}`;
      try {
        await client.put(key, `value-${i}`, { consistency: 'strong' });
        acked.set(key, `value-${i}`);
      } catch (err) {
        const code = err instanceof RingkvError ? err.code : String(err);
        failures.set(code, (failures.get(code) ?? 0) + 1);
        // Back off a little, as an application would (and so a fast failure cannot spin).
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
    }
  });
  const failedCount = () => [...failures.values()].reduce((a, b) => a + b, 0);

  // Once a second: writes acknowledged, failures, and n3's state as the client sees it.
  let last = 0;
  report = setInterval(() => {
    const n3State = client.cluster.member('n3')?.state ?? '?';
    console.log(`${at()}  ${String(acked.size - last).padStart(5)} writes/s  ${acked.size} acknowledged  ${failedCount()} failed  n3 ${n3State}`);
    last = acked.size;
  }, 1000);

  await new Promise((resolve) => setTimeout(resolve, KILL_AFTER_MS));
  await killNode(n3, 'SIGKILL');
  const killedAt = Date.now();
  console.log(`${at()}  kill -9 n3`);
  await until("the client's view to mark n3 down", () => client.cluster.member('n3')?.state === 'down', 20_000);
  console.log(`${at()}  the cluster declared n3 down ${Date.now() - killedAt} ms after the kill; writes go on`);
  await new Promise((resolve) => setTimeout(resolve, AFTER_DETECTION_MS));
  stop = true;
  await Promise.all(writers);
  clearInterval(report);

  const failed = failedCount();
  console.log(`${at()}  writes stopped: ${acked.size} acknowledged, ${failed} failed${failed ? ` ${JSON.stringify(Object.fromEntries(failures))}` : ''}`);
  console.log(`${at()}  n1 and n2 hold ${await hintsPending([n1, n2])} hints for n3`);

  // Bring n3 back on the same port and data: the hint holders deliver what it missed.
  await startNode(n3, nodes);
  await until('n3 up again', () => client.cluster.member('n3')?.state === 'up', 20_000);
  console.log(`${at()}  n3 restarted and is up again`);
  const drainMs = await until('the hints to drain', async () => (await hintsPending([n1, n2])) === 0, 30_000);
  console.log(`${at()}  hints delivered to n3 in ${drainMs} ms`);

  // Every acknowledged write reads back from all three replicas.
  let lost = 0;
  const entries = [...acked];
  for (let i = 0; i < entries.length; i += 256) {
    await Promise.all(
      entries.slice(i, i + 256).map(async ([key, value]) => {
        const r = await client.get(key, { consistency: 'all' });
        if (r?.value !== value) lost++;
      }),
    );
  }
  console.log(`${at()}  read back ${acked.size} keys at consistency all: ${lost} lost`);
  const sawEvents = events.includes('nodeDown n3') && events.includes('nodeUp n3');
  if (!sawEvents) console.log(`the client's events were ${JSON.stringify(events)}, not nodeDown n3 then nodeUp n3`);
  ok = failed === 0 && lost === 0 && acked.size > 0 && sawEvents;
  console.log(ok ? 'nothing failed, nothing was lost' : 'FAILED: see above');
} finally {
  // Also on an error: stop the writers, then the client, then the cluster.
  stop = true;
  clearInterval(report);
  await Promise.all(writers);
  await kv?.close();
  await stopCluster();
}
process.exitCode = ok ? 0 : 1;
