// A local ringkv cluster for benchmarks: N storage-server processes of the compiled CLI
// (dist/, built by `npm run build`) on free loopback ports with data in a temp directory.
// Nodes can be killed (-9) and restarted on the same port and data (the failover run).
// With `profileDir`, each server runs under `node --cpu-prof` and writes its profile there
// when it stops. All processes belong to the caller's ProcessGroup.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ProcessGroup, Started } from './processes.js';
import { REPO_ROOT, freePort, waitUntil } from './processes.js';

/**
 * The server CLI of the same build as this file: compiled, the dist/ this file is in (so a
 * copy of dist/ runs its own servers); from source (tsx), the repository's dist/.
 */
export const RINGKV_CLI = fileURLToPath(import.meta.url).endsWith('.js')
  ? path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../storage-server/cli/ringkv.js')
  : path.join(REPO_ROOT, 'dist/storage-server/cli/ringkv.js');

export interface RingkvClusterOptions {
  nodes: number;
  group: ProcessGroup;
  /** Write a CPU profile per server into this directory. */
  profileDir?: string;
  /** Extra server flags for every node. */
  args?: string[];
  /** Extra environment of every node (RINGKV_* settings without a flag). */
  env?: Record<string, string>;
  logLevel?: string;
  /**
   * Run every server on these CPUs (`taskset -c`, e.g. "0"), so a load generator pinned to
   * the others is not competing with them for a core. Linux only; taskset must exist.
   */
  cpus?: string;
  /** Extra server flags of one node (its data center, say), after `args`. */
  nodeArgs?: (node: ClusterNode) => string[];
  /** The seeds of a node (default: every other node's address). */
  seedsOf?: (node: ClusterNode, all: readonly ClusterNode[]) => string[];
  /** Called once the nodes have their ports, before any starts (e.g. to open proxies to them). */
  prepare?: (nodes: readonly ClusterNode[]) => Promise<void>;
}

export interface ClusterNode {
  id: string;
  port: number;
  address: string;
  dataDir: string;
  proc: Started | undefined;
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
  readonly dir: string;

  private constructor(private readonly o: RingkvClusterOptions) {
    this.dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ringkv-bench-'));
  }

  /** Starts the nodes and waits until every one sees all of them up. */
  static async start(o: RingkvClusterOptions): Promise<RingkvCluster> {
    if (!fs.existsSync(RINGKV_CLI)) throw new Error(`${RINGKV_CLI} is missing: run npm run build first`);
    const c = new RingkvCluster(o);
    try {
      for (let i = 0; i < o.nodes; i++) {
        const port = await freePort();
        c.nodes.push({ id: `n${i + 1}`, port, address: `127.0.0.1:${port}`, dataDir: path.join(c.dir, `n${i + 1}`), proc: undefined });
      }
      await o.prepare?.(c.nodes);
      await Promise.all(c.nodes.map((n) => c.spawnNode(n)));
      await c.waitForMembers(o.nodes, 'up', 30_000);
    } catch (err) {
      await c.stop();
      throw err;
    }
    return c;
  }

  get addresses(): string[] {
    return this.nodes.map((n) => n.address);
  }

  node(id: string): ClusterNode {
    const n = this.nodes.find((x) => x.id === id);
    if (!n) throw new Error(`no node ${id}`);
    return n;
  }

  /** Adds a node (started with `extraArgs`, e.g. ['--join']) that learns the cluster from the others. */
  async addNode(extraArgs: string[] = []): Promise<ClusterNode> {
    const port = await freePort();
    const id = `n${this.nodes.length + 1}`;
    const node: ClusterNode = { id, port, address: `127.0.0.1:${port}`, dataDir: path.join(this.dir, id), proc: undefined };
    this.nodes.push(node);
    await this.spawnNode(node, extraArgs);
    return node;
  }

  private spawnNode(node: ClusterNode, extraArgs: string[] = []): Promise<void> {
    const seeds = this.o.seedsOf?.(node, this.nodes) ?? this.nodes.filter((x) => x !== node).map((x) => x.address);
    const nodeArgs = this.o.profileDir ? ['--cpu-prof', '--cpu-prof-dir', this.o.profileDir, '--cpu-prof-name', `server-${node.id}-${Date.now()}.cpuprofile`] : [];
    const args = [
      ...nodeArgs,
      RINGKV_CLI,
      'server',
      '--id',
      node.id,
      '--port',
      String(node.port),
      '--data',
      node.dataDir,
      '--log-level',
      this.o.logLevel ?? 'warn',
      ...(seeds.length > 0 ? ['--seeds', seeds.join(',')] : []),
      ...(this.o.args ?? []),
      ...(this.o.nodeArgs?.(node) ?? []),
      ...extraArgs,
    ];
    // taskset execs node in place: the pid (kill -9, SIGSTOP) is the server's own.
    const [command, commandArgs] = this.o.cpus ? ['taskset', ['-c', this.o.cpus, process.execPath, ...args]] : [process.execPath, args];
    const proc = this.o.group.spawn(`ringkv-${node.id}`, command, commandArgs, {
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
      ...(this.o.env ? { env: { ...process.env, ...this.o.env } } : {}),
    });
    node.proc = proc;
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`node ${node.id} did not start in 20 s:\n${proc.log.join('\n')}`)), 20_000);
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

  isRunning(id: string): boolean {
    const c = this.node(id).proc?.child;
    return !!c && c.exitCode === null && c.signalCode === null;
  }

  /** kill -9 one node. */
  async kill(id: string): Promise<void> {
    const p = this.node(id).proc;
    if (p) await this.o.group.stop(p, 'SIGKILL');
  }

  /** Starts a killed or stopped node again on the same port and data. */
  async restart(id: string): Promise<void> {
    await this.kill(id);
    await this.spawnNode(this.node(id));
  }

  async status(id: string, timeoutMs = 2000): Promise<NodeStatus> {
    return fetchJson<NodeStatus>(`http://${this.node(id).address}/internal/v1/status`, timeoutMs);
  }

  /** Waits until every running node sees `count` members in `state`. */
  async waitForMembers(count: number, state: string, timeoutMs: number): Promise<void> {
    await waitUntil(
      `${count} members ${state}`,
      async () => {
        const live = this.nodes.filter((n) => this.isRunning(n.id));
        const views = await Promise.all(live.map((n) => fetchJson<{ members: { state: string }[] }>(`http://${n.address}/internal/v1/members`, 1000)));
        return views.every((v) => v.members.filter((m) => m.state === state).length === count);
      },
      timeoutMs,
    );
  }

  /** Stops every node gracefully (so profiles get written) and removes the data. */
  async stop(): Promise<void> {
    await Promise.all(this.nodes.map((n) => (n.proc ? this.o.group.stop(n.proc, 'SIGTERM', 20_000) : undefined)));
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}
