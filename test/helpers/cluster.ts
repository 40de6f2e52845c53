// A cluster of real storage-server processes on 127.0.0.1 for tests: each node is a
// child process of the compiled CLI (`dist/`, built by `npm test`'s pretest) on its own
// port and temp data directory (or its own loopback address, data directory and
// environment, for the nemesis suite). Nodes can be killed (-9), paused (SIGSTOP), resumed
// and restarted on the same port and data. Everything is stopped in t.teardown (or, when
// started without a tap test, by the caller's stopAll()).

import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { Test } from 'tap';
import { connect } from '../../sdk/client.js';
import type { ConnectOptions, RingkvClient } from '../../sdk/client.js';
import type { MembersView } from '../../sdk/membership.js';
import { HttpTransport } from '../../sdk/transport.js';
import { Routes } from '../../sdk/wire/protocol.js';
import { httpsRequest } from './certs.js';

/** How long a node may take to report 'ready' before its start counts as failed. */
const START_BOUND_MS = 60_000;

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const CLI = path.join(root, 'dist/storage-server/cli/ringkv.js');

export interface TestNode {
  id: string;
  /** The address it binds, advertises and connects to its peers from. */
  host: string;
  port: number;
  address: string;
  dataDir: string;
  child: ChildProcess | undefined;
  /** Last lines of the node's log, for failure messages. */
  log: string[];
}

export interface TestClusterOptions {
  nodes?: number;
  /** Extra CLI args for every node. */
  args?: string[];
  /** Extra environment for every node. */
  env?: Record<string, string>;
  /** Log level of the nodes (default warn). */
  logLevel?: string;
  /** Address each node binds (by index; default 127.0.0.1 for all, each on its own port). */
  hosts?: string[];
  /** Data directory of a node (default `<cluster dir>/<id>`); e.g. a small tmpfs. */
  dataDirOf?: (id: string) => string;
  /** Extra environment of one node (on every start of it), over `env`. */
  nodeEnv?: (id: string) => Record<string, string>;
  /** Extra CLI args of one node (its TLS certificate, say), at every start. */
  nodeArgs?: (id: string) => string[];
  /**
   * TLS material of the helper's own requests (views, internal calls, metrics): it speaks
   * plain HTTP, or TLS to nodes that answer TLS_REQUIRED, presenting this certificate.
   */
  tls?: { ca: Buffer; cert: Buffer; key: Buffer };
  /** Extra CLI args of one node from its record (its data center, say), on every start of it, after `nodeArgs`. */
  nodeArgsOf?: (node: TestNode) => string[];
  /** The seeds of a node (default: every other node's address). */
  seedsOf?: (node: TestNode, all: readonly TestNode[]) => string[];
  /** Called once the nodes have their ports, before any starts (e.g. to open proxies to them). */
  prepare?: (nodes: readonly TestNode[]) => Promise<void>;
}

/** A free TCP port on `host` (default 127.0.0.1). */
/**
 * The kernel's ephemeral port range (Linux), from which it also picks the source ports of
 * outgoing connections; undefined when unknown.
 */
function ephemeralRange(): [number, number] | undefined {
  try {
    const [lo, hi] = fs.readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/).map(Number);
    return lo !== undefined && hi !== undefined && lo > 0 ? [lo, hi] : undefined;
  } catch {
    return undefined;
  }
}

function tryListen(port: number, host: string): Promise<number | undefined> {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.once('error', () => resolve(undefined));
    s.listen(port, host, () => {
      const got = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(got));
    });
  });
}

/**
 * A port free on `host` now, for a server to listen on next. Picked at random below the
 * kernel's ephemeral range: a port from bind(0) comes from that range, where any outgoing
 * connection of the tests running beside this one (thousands per cluster test) can take it
 * between this check and the server's listen — which failed cluster tests with EADDRINUSE
 * on a busy machine. Falls back to bind(0) when the range is unknown or leaves no room.
 */
export async function freePort(host = '127.0.0.1'): Promise<number> {
  const range = ephemeralRange();
  const lowest = 20_000;
  if (range && range[0] - lowest >= 2048) {
    for (let attempt = 0; attempt < 50; attempt++) {
      const port = lowest + Math.floor(Math.random() * (range[0] - lowest));
      const got = await tryListen(port, host);
      if (got !== undefined) return got;
    }
  }
  const got = await tryListen(0, host);
  if (got === undefined) throw new Error(`no free port on ${host}`);
  return got;
}

export class TestCluster {
  readonly nodes: TestNode[] = [];
  readonly dir: string;
  private readonly clients: RingkvClient<unknown>[] = [];
  private readonly transport: HttpTransport;

  private constructor(private readonly o: TestClusterOptions) {
    this.dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ringkv-cluster-'));
    this.transport = new HttpTransport({ connectTimeoutMs: 500, tls: o.tls ? { ...o.tls, policy: 'transitional' } : undefined });
  }

  /**
   * Starts the nodes and waits until every node sees every other one up. With a tap test
   * the cluster is stopped at its teardown; with `undefined` the caller must call
   * stopAll() (also when start() throws, it has stopped what it started).
   */
  static async start(t: Test | undefined, o: TestClusterOptions = {}): Promise<TestCluster> {
    if (!fs.existsSync(CLI)) throw new Error(`${CLI} is missing: run npm run build first`);
    const c = new TestCluster(o);
    if (t) t.teardown(() => c.stopAll());
    try {
      const n = o.nodes ?? 3;
      for (let i = 0; i < n; i++) {
        const id = `n${i + 1}`;
        const host = o.hosts?.[i] ?? '127.0.0.1';
        const port = await freePort(host);
        c.nodes.push({ id, host, port, address: `${host}:${port}`, dataDir: o.dataDirOf?.(id) ?? path.join(c.dir, id), child: undefined, log: [] });
      }
      await o.prepare?.(c.nodes);
      await Promise.all(c.nodes.map((node) => c.spawnNode(node)));
      await c.waitForMembers(n, 'up', 20_000);
    } catch (err) {
      if (!t) await c.stopAll();
      throw err;
    }
    return c;
  }

  get addresses(): string[] {
    return this.nodes.map((n) => n.address);
  }

  node(id: string): TestNode {
    const n = this.nodes.find((x) => x.id === id);
    if (!n) throw new Error(`no node ${id}`);
    return n;
  }

  /** Adds and starts one more node that joins through the existing ones. */
  async addNode(extraArgs: string[] = []): Promise<TestNode> {
    const id = `n${this.nodes.length + 1}`;
    const host = this.o.hosts?.[this.nodes.length] ?? '127.0.0.1';
    const port = await freePort(host);
    const node: TestNode = { id, host, port, address: `${host}:${port}`, dataDir: this.o.dataDirOf?.(id) ?? path.join(this.dir, id), child: undefined, log: [] };
    this.nodes.push(node);
    await this.spawnNode(node, extraArgs);
    return node;
  }

  private spawnNode(node: TestNode, extraArgs: string[] = [], extraEnv: Record<string, string> = {}): Promise<void> {
    const seeds = this.o.seedsOf?.(node, this.nodes) ?? this.nodes.filter((x) => x !== node).map((x) => x.address);
    const args = [
      CLI,
      'server',
      '--id',
      node.id,
      '--host',
      node.host,
      '--port',
      String(node.port),
      '--data',
      node.dataDir,
      '--log-level',
      this.o.logLevel ?? 'warn',
      ...(seeds.length > 0 ? ['--seeds', seeds.join(',')] : []),
      ...(this.o.args ?? []),
      ...(this.o.nodeArgs?.(node.id) ?? []),
      ...(this.o.nodeArgsOf?.(node) ?? []),
      ...extraArgs,
    ];
    const child = spawn(process.execPath, args, {
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
      env: { ...process.env, ...this.o.env, ...this.o.nodeEnv?.(node.id), ...extraEnv },
    });
    node.child = child;
    node.log = [];
    for (const s of [child.stdout!, child.stderr!]) {
      readline.createInterface({ input: s }).on('line', (line) => {
        node.log.push(line);
        if (node.log.length > 200) node.log.shift();
        if (process.env.RINGKV_TEST_LOGS) process.stderr.write(`${node.id} | ${line}\n`);
      });
    }
    return new Promise<void>((resolve, reject) => {
      // A bound, not a pause: 'ready' usually comes within a second. On a 2-core machine
      // shared with other test runs (load 20-30) a start took more than 15 s, so the bound is
      // generous; a node that never starts still fails the test, with its log.
      const timer = setTimeout(() => reject(new Error(`node ${node.id} did not start in ${START_BOUND_MS / 1000} s:\n${node.log.join('\n')}`)), START_BOUND_MS);
      child.on('message', (m: { type?: string }) => {
        if (m?.type === 'ready') {
          clearTimeout(timer);
          resolve();
        }
      });
      child.once('exit', (code, signal) => {
        clearTimeout(timer);
        reject(new Error(`node ${node.id} exited (${code ?? signal}) before it was ready:\n${node.log.join('\n')}`));
      });
    });
  }

  /** kill -9 a node. */
  async kill(id: string): Promise<void> {
    const n = this.node(id);
    const c = n.child;
    if (!c || c.exitCode !== null || c.signalCode !== null) return;
    const exited = new Promise((r) => c.once('exit', r));
    c.kill('SIGKILL');
    await exited;
  }

  /** True while the node's process runs (or is paused). */
  running(id: string): boolean {
    const c = this.node(id).child;
    return !!c && c.exitCode === null && c.signalCode === null;
  }

  /** SIGSTOP a node (a paused process: its sockets stay open but nothing answers). */
  pause(id: string): void {
    this.node(id).child?.kill('SIGSTOP');
  }

  resume(id: string): void {
    this.node(id).child?.kill('SIGCONT');
  }

  /** Graceful stop (SIGTERM) of one node. */
  async stop(id: string): Promise<void> {
    const n = this.node(id);
    const c = n.child;
    if (!c || c.exitCode !== null || c.signalCode !== null) return;
    const exited = new Promise((r) => c.once('exit', r));
    c.kill('SIGCONT');
    c.kill('SIGTERM');
    const t = setTimeout(() => c.kill('SIGKILL'), 15_000);
    await exited;
    clearTimeout(t);
  }

  /** Starts a stopped or killed node again on the same port and data directory (`extraEnv` over the cluster's env). */
  async restart(id: string, extraArgs: string[] = [], extraEnv: Record<string, string> = {}): Promise<void> {
    const n = this.node(id);
    await this.kill(id);
    await this.spawnNode(n, extraArgs, extraEnv);
  }

  /** Graceful restart (SIGTERM, wait, start) with `extraArgs` (a rolling restart's step). */
  async restartGraceful(id: string, extraArgs: string[] = []): Promise<void> {
    const n = this.node(id);
    await this.stop(id);
    await this.spawnNode(n, extraArgs);
  }

  /** A client connected to every node; closed at teardown. */
  async client<V = Buffer>(o: Partial<ConnectOptions<V>> = {}): Promise<RingkvClient<V>> {
    const c = (await connect({ seeds: this.addresses, timeoutMs: 3000, ...o } as ConnectOptions<Buffer>)) as unknown as RingkvClient<V>;
    this.clients.push(c as RingkvClient<unknown>);
    return c;
  }

  /** The membership view of one node. */
  async view(id: string): Promise<MembersView> {
    return this.transport.call<MembersView>(this.node(id).address, Routes.members, undefined, { timeoutMs: 1000 });
  }

  /** Calls an internal route on one node. */
  call<T>(id: string, route: string, body: unknown, timeoutMs = 2000): Promise<T> {
    return this.transport.call<T>(this.node(id).address, route, body, { timeoutMs });
  }

  /** Waits until every running node sees `count` members in `state`. */
  async waitForMembers(count: number, state: string, timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let last = '';
    while (Date.now() < deadline) {
      const live = this.nodes.filter((n) => n.child && n.child.exitCode === null && n.child.signalCode === null);
      try {
        const views = await Promise.all(live.map((n) => this.view(n.id)));
        if (views.every((v) => v.members.filter((m) => m.state === state).length === count)) return;
        last = JSON.stringify(views.map((v) => ({ self: v.self, members: v.members.map((m) => `${m.id}:${m.state}`) })));
      } catch (err) {
        last = (err as Error).message;
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`members did not converge to ${count} ${state} in ${timeoutMs} ms: ${last}`);
  }

  /** Fetches a node's /metrics text. */
  async metrics(id: string): Promise<string> {
    const res = await fetch(`http://${this.node(id).address}/metrics`);
    if (res.status === 426 && this.o.tls) {
      const r = await httpsRequest(this.node(id).address, { path: '/metrics', ca: this.o.tls.ca, identity: this.o.tls });
      return r.body.toString();
    }
    return res.text();
  }

  async stopAll(): Promise<void> {
    await Promise.all(this.clients.map((c) => c.close().catch(() => undefined)));
    await Promise.all(
      this.nodes.map(async (n) => {
        const c = n.child;
        if (!c || c.exitCode !== null || c.signalCode !== null) return;
        const exited = new Promise((r) => c.once('exit', r));
        c.kill('SIGKILL');
        await exited;
      }),
    );
    await this.transport.close();
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

/**
 * Writes `count` keys (`key(i)` -> `value(i)`) at `all`, in chunks of 500 with a generous
 * timeout: loading a test's data set is not what it tests, and a loaded machine must not
 * fail it (3,000 writes at once can queue behind each other for seconds on 2 busy cores).
 */
export async function preload(
  kv: RingkvClient<string>,
  count: number,
  key: (i: number) => string,
  value: (i: number) => string,
): Promise<void> {
  for (let i = 0; i < count; i += 500) {
    const n = Math.min(500, count - i);
    await Promise.all(Array.from({ length: n }, (_, j) => kv.put(key(i + j), value(i + j), { consistency: 'all', timeoutMs: 30_000 })));
  }
}

/** Sum of a Prometheus counter's samples whose labels contain `match`. */
export function metricSum(text: string, name: string, match: Record<string, string> = {}): number {
  let sum = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue;
    const m = /^([a-z_]+)(\{([^}]*)\})? ([0-9.eE+-]+|NaN)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const labels = Object.fromEntries((m[3] ?? '').split(',').filter(Boolean).map((kv) => {
      const i = kv.indexOf('=');
      return [kv.slice(0, i), kv.slice(i + 2, -1)];
    }));
    if (Object.entries(match).every(([k, v]) => labels[k] === v)) sum += Number(m[4]);
  }
  return sum;
}
