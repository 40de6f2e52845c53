// A local ringkv cluster of real processes, the one the tests (test/helpers/cluster.ts) and
// the benchmarks share: N storage-server processes of the compiled CLI (dist/, built by
// `npm run build`), each on a free port of its loopback address (127.0.0.1 unless `hosts`
// says otherwise) with its own data directory. Nodes can be killed (-9), paused (SIGSTOP),
// resumed, stopped, restarted on the same port and data, and added. With `profileDir`,
// each server runs under `node --cpu-prof`. Every process belongs to a ProcessGroup (the
// caller's, or the cluster's own) and stopAll() stops them all and removes the data.
// Single-threaded: one caller drives a cluster; its methods may overlap on different nodes.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { MembersView } from '../../sdk/membership.js';
import { HttpTransport } from '../../sdk/transport.js';
import { Routes } from '../../sdk/wire/protocol.js';
import type { Started } from './processes.js';
import { ProcessGroup, REPO_ROOT, freePort, waitUntil } from './processes.js';

/**
 * The server CLI of the same build as this file: compiled, the dist/ this file is in (so a
 * copy of dist/ runs its own servers); from source (tsx), the repository's dist/.
 */
export const RINGKV_CLI = fileURLToPath(import.meta.url).endsWith('.js')
  ? path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../storage-server/cli/ringkv.js')
  : path.join(REPO_ROOT, 'dist/storage-server/cli/ringkv.js');

/**
 * How long a node may take to report 'ready' before its start counts as failed. A bound, not
 * a pause: 'ready' usually comes within a second, but on a 2-core machine shared with other
 * test runs (load 20-30) a start took more than 15 s; a node that never starts still fails,
 * with its log.
 */
export const NODE_START_BOUND_MS = 60_000;

/** How long a new cluster's nodes may take to see each other up (a bound, polled). */
export const CLUSTER_CONVERGE_BOUND_MS = 30_000;

export interface ClusterNode {
  id: string;
  /** The address it binds, advertises and connects to its peers from. */
  host: string;
  port: number;
  address: string;
  dataDir: string;
  /** The running (or last) process of the node, with the last lines of its log. */
  proc: Started | undefined;
}

export interface RingkvClusterOptions {
  /** Number of nodes. Default 3. */
  nodes?: number;
  /** The group the processes belong to. Default: the cluster's own. */
  group?: ProcessGroup;
  /** Extra server flags for every node. */
  args?: string[];
  /** Extra environment of every node (RINGKV_* settings without a flag). */
  env?: Record<string, string>;
  /** Log level of the nodes. Default warn. */
  logLevel?: string;
  /** Address each node binds (by index). Default 127.0.0.1 for all, each on its own port. */
  hosts?: string[];
  /** Data directory of a node. Default `<cluster dir>/<id>`; e.g. a small tmpfs. */
  dataDirOf?: (id: string) => string;
  /** Extra environment of one node (on every start of it), over `env`. */
  nodeEnv?: (node: ClusterNode) => Record<string, string>;
  /** Extra server flags of one node (its data center, its certificate), on every start of it, after `args`. */
  nodeArgs?: (node: ClusterNode) => string[];
  /** The seeds of a node. Default: every other node's address. */
  seedsOf?: (node: ClusterNode, all: readonly ClusterNode[]) => string[];
  /** Called once the nodes have their ports, before any starts (e.g. to open proxies to them). */
  prepare?: (nodes: readonly ClusterNode[]) => Promise<void>;
  /** Write a CPU profile per server into this directory (when it stops gracefully). */
  profileDir?: string;
  /**
   * Run every server on these CPUs (`taskset -c`, e.g. "0"), so a load generator pinned to
   * the others is not competing with them for a core. Linux only; taskset must exist.
   */
  cpus?: string;
  /**
   * TLS material of the cluster's own requests (membership views, internal calls): it speaks
   * plain HTTP, or TLS to nodes that answer TLS_REQUIRED, presenting this certificate.
   */
  tls?: { ca: Buffer; cert: Buffer; key: Buffer };
  /**
   * How stopAll() ends the nodes: SIGTERM (graceful, so profiles get written; SIGKILL after
   * 20 s) or SIGKILL (at once). Default SIGTERM.
   */
  stopSignal?: 'SIGTERM' | 'SIGKILL';
  /**
   * A command that runs the server of one node (e.g. a shell that enters a memory cgroup,
   * then execs): `[...prefix, node, ...args]`. It must exec, so the pid stays the server's.
   */
  commandPrefix?: (node: ClusterNode) => string[];
}

/** GET /internal/v1/status of a node, as JSON. */
export interface NodeStatus {
  id: string;
  hintsPending: number;
  keys: number;
  members: { id: string; state: string }[];
}

export async function fetchJson<T>(url: string, timeoutMs = 2000): Promise<T> {
  const res = await fetch(url, { headers: { accept: 'application/json' }, signal: AbortSignal.timeout(timeoutMs) });
  if (!res.ok) throw new Error(`${url}: HTTP ${res.status}`);
  return (await res.json()) as T;
}

export class RingkvCluster {
  readonly nodes: ClusterNode[] = [];
  /** The temp directory holding the nodes' data (unless `dataDirOf` puts it elsewhere). */
  readonly dir: string;
  readonly group: ProcessGroup;
  /** The transport of the cluster's own requests (views, internal calls). */
  protected readonly transport: HttpTransport;

  constructor(protected readonly o: RingkvClusterOptions = {}) {
    if (!fs.existsSync(RINGKV_CLI)) throw new Error(`${RINGKV_CLI} is missing: run npm run build first`);
    this.dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ringkv-cluster-'));
    this.group = o.group ?? new ProcessGroup();
    this.transport = new HttpTransport({ connectTimeoutMs: 500, tls: o.tls ? { ...o.tls, policy: 'transitional' } : undefined });
  }

  /**
   * Starts the nodes and waits until every node sees every other one up. When it throws it
   * has stopped what it started.
   */
  async launch(): Promise<this> {
    try {
      const n = this.o.nodes ?? 3;
      for (let i = 0; i < n; i++) this.nodes.push(await this.newNode());
      await this.o.prepare?.(this.nodes);
      await Promise.all(this.nodes.map((node) => this.spawnNode(node)));
      await this.waitForMembers(n, 'up', CLUSTER_CONVERGE_BOUND_MS);
    } catch (err) {
      await this.stopAll().catch(() => undefined);
      throw err;
    }
    return this;
  }

  get addresses(): string[] {
    return this.nodes.map((n) => n.address);
  }

  node(id: string): ClusterNode {
    const n = this.nodes.find((x) => x.id === id);
    if (!n) throw new Error(`no node ${id}`);
    return n;
  }

  /** Adds and starts one more node (with `extraArgs`, e.g. ['--join']) that learns the cluster from the others. */
  async addNode(extraArgs: string[] = []): Promise<ClusterNode> {
    const node = await this.newNode();
    this.nodes.push(node);
    await this.spawnNode(node, extraArgs);
    return node;
  }

  /** The record of the next node: its id, a free port on its host, its data directory. */
  private async newNode(): Promise<ClusterNode> {
    const i = this.nodes.length;
    const id = `n${i + 1}`;
    const host = this.o.hosts?.[i] ?? '127.0.0.1';
    const port = await freePort(host);
    return { id, host, port, address: `${host}:${port}`, dataDir: this.o.dataDirOf?.(id) ?? path.join(this.dir, id), proc: undefined };
  }

  /** Starts the node's process; resolves when it reports 'ready', rejects (with its log) when it exits first or takes longer than NODE_START_BOUND_MS. */
  private spawnNode(node: ClusterNode, extraArgs: string[] = [], extraEnv: Record<string, string> = {}): Promise<void> {
    const o = this.o;
    const seeds = o.seedsOf?.(node, this.nodes) ?? this.nodes.filter((x) => x !== node).map((x) => x.address);
    const profile = o.profileDir ? ['--cpu-prof', '--cpu-prof-dir', o.profileDir, '--cpu-prof-name', `server-${node.id}-${Date.now()}.cpuprofile`] : [];
    const args = [
      ...profile,
      RINGKV_CLI,
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
      o.logLevel ?? 'warn',
      ...(seeds.length > 0 ? ['--seeds', seeds.join(',')] : []),
      ...(o.args ?? []),
      ...(o.nodeArgs?.(node) ?? []),
      ...extraArgs,
    ];
    // taskset execs node in place: the pid (kill -9, SIGSTOP) is the server's own.
    const inner = o.cpus ? ['taskset', '-c', o.cpus, process.execPath, ...args] : [process.execPath, ...args];
    const [command, ...commandArgs] = [...(o.commandPrefix?.(node) ?? []), ...inner] as [string, ...string[]];
    const proc = this.group.spawn(node.id, command, commandArgs, {
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
      env: { ...process.env, ...o.env, ...o.nodeEnv?.(node), ...extraEnv },
    });
    node.proc = proc;
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`node ${node.id} did not start in ${NODE_START_BOUND_MS / 1000} s:\n${proc.log.join('\n')}`)), NODE_START_BOUND_MS);
      proc.child.on('message', (m: { type?: string }) => {
        if (m?.type === 'ready') {
          clearTimeout(timer);
          resolve();
        }
      });
      proc.child.once('exit', (code, signal) => {
        clearTimeout(timer);
        reject(new Error(`node ${node.id} exited (${code ?? signal}) before it was ready:\n${proc.log.join('\n')}`));
      });
    });
  }

  /** True while the node's process runs (or is paused). */
  running(id: string): boolean {
    const c = this.node(id).proc?.child;
    return !!c && c.exitCode === null && c.signalCode === null;
  }

  /** The last lines (up to 200) the node's current or last process wrote, for failure messages. */
  log(id: string): string[] {
    return this.node(id).proc?.log ?? [];
  }

  /** kill -9 a node; resolves when it has exited. */
  async kill(id: string): Promise<void> {
    const p = this.node(id).proc;
    if (p) await this.group.stop(p, 'SIGKILL');
  }

  /** SIGSTOP a node (a paused process: its sockets stay open but nothing answers). */
  pause(id: string): void {
    this.node(id).proc?.child.kill('SIGSTOP');
  }

  resume(id: string): void {
    this.node(id).proc?.child.kill('SIGCONT');
  }

  /** Graceful stop (SIGTERM; SIGKILL after 15 s) of one node. */
  async stop(id: string): Promise<void> {
    const p = this.node(id).proc;
    if (p) await this.group.stop(p, 'SIGTERM', 15_000);
  }

  /** Starts a stopped or killed node (killed first if it runs) again on the same port and data directory, with `extraArgs` and `extraEnv` (over the cluster's env). */
  async restart(id: string, extraArgs: string[] = [], extraEnv: Record<string, string> = {}): Promise<void> {
    await this.kill(id);
    await this.spawnNode(this.node(id), extraArgs, extraEnv);
  }

  /** Graceful restart (SIGTERM, wait, start) with `extraArgs` (a rolling restart's step). */
  async restartGraceful(id: string, extraArgs: string[] = []): Promise<void> {
    await this.stop(id);
    await this.spawnNode(this.node(id), extraArgs);
  }

  /** The membership view of one node. */
  async view(id: string): Promise<MembersView> {
    return this.transport.call<MembersView>(this.node(id).address, Routes.members, undefined, { timeoutMs: 1000 });
  }

  /** Calls an internal route on one node. */
  call<T>(id: string, route: string, body: unknown, timeoutMs = 2000): Promise<T> {
    return this.transport.call<T>(this.node(id).address, route, body, { timeoutMs });
  }

  /** GET /internal/v1/status of one node (plain HTTP). */
  async status(id: string, timeoutMs = 2000): Promise<NodeStatus> {
    return fetchJson<NodeStatus>(`http://${this.node(id).address}/internal/v1/status`, timeoutMs);
  }

  /** Waits until every running node sees `count` members in `state`; the error says what they saw last. */
  async waitForMembers(count: number, state: string, timeoutMs: number): Promise<void> {
    await waitUntil(
      `members to converge to ${count} ${state}`,
      async () => {
        const live = this.nodes.filter((n) => this.running(n.id));
        const views = await Promise.all(live.map((n) => this.view(n.id)));
        if (views.every((v) => v.members.filter((m) => m.state === state).length === count)) return true;
        throw new Error(JSON.stringify(views.map((v) => ({ self: v.self, members: v.members.map((m) => `${m.id}:${m.state}`) }))));
      },
      timeoutMs,
    );
  }

  /** Stops every node (by `stopSignal`), closes the cluster's transport and removes its directory. */
  async stopAll(): Promise<void> {
    const signal = this.o.stopSignal ?? 'SIGTERM';
    await Promise.all(this.nodes.map((n) => (n.proc ? this.group.stop(n.proc, signal, 20_000) : undefined)));
    await this.transport.close();
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}
