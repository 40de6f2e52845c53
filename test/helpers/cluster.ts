// A cluster of real storage-server processes on 127.0.0.1 for tests: the RingkvCluster the
// benchmarks use too (benchmarks/harness/ringkv-cluster.ts: ports, data directories, start,
// kill -9, SIGSTOP, restart, membership), with the tests' additions — SDK clients closed with
// the cluster, /metrics over TLS too, and stopAll (kill -9 of every node) at the tap test's
// teardown, or, when started without a tap test, by the caller. Single-threaded.

import type { Test } from 'tap';
import { connect } from '../../sdk/client.js';
import type { ConnectOptions, RingkvClient } from '../../sdk/client.js';
import { ProcessGroup } from '../../benchmarks/harness/processes.js';
import { RingkvCluster } from '../../benchmarks/harness/ringkv-cluster.js';
import type { RingkvClusterOptions } from '../../benchmarks/harness/ringkv-cluster.js';
import { httpsRequest } from './certs.js';

export { freePort } from '../../benchmarks/harness/processes.js';
export { RINGKV_CLI as CLI } from '../../benchmarks/harness/ringkv-cluster.js';
export type { ClusterNode } from '../../benchmarks/harness/ringkv-cluster.js';

/** What a test may choose: everything but the process group and how the nodes end (kill -9). */
export type TestClusterOptions = Omit<RingkvClusterOptions, 'group' | 'stopSignal'>;

export class TestCluster extends RingkvCluster {
  private readonly clients: RingkvClient<unknown>[] = [];

  private constructor(o: TestClusterOptions) {
    // RINGKV_TEST_LOGS=1 prints the nodes' logs as they come.
    super({ ...o, group: new ProcessGroup({ echoLogs: !!process.env.RINGKV_TEST_LOGS }), stopSignal: 'SIGKILL' });
  }

  /**
   * Starts the nodes and waits until every node sees every other one up. With a tap test
   * the cluster is stopped at its teardown; with `undefined` the caller must call
   * stopAll() (also when start() throws, it has stopped what it started).
   */
  static async start(t: Test | undefined, o: TestClusterOptions = {}): Promise<TestCluster> {
    const c = new TestCluster(o);
    if (t) t.teardown(() => c.stopAll());
    return c.launch();
  }

  /** A client connected to every node; closed by stopAll(). */
  async client<V = Buffer>(o: Partial<ConnectOptions<V>> = {}): Promise<RingkvClient<V>> {
    const c = (await connect({ seeds: this.addresses, timeoutMs: 3000, ...o } as ConnectOptions<Buffer>)) as unknown as RingkvClient<V>;
    this.clients.push(c as RingkvClient<unknown>);
    return c;
  }

  /** Fetches a node's /metrics text (over TLS with the cluster's certificate when the node requires it). */
  async metrics(id: string): Promise<string> {
    const res = await fetch(`http://${this.node(id).address}/metrics`);
    if (res.status === 426 && this.o.tls) {
      const r = await httpsRequest(this.node(id).address, { path: '/metrics', ca: this.o.tls.ca, identity: this.o.tls });
      return r.body.toString();
    }
    return res.text();
  }

  /** Closes the clients, kills every node (-9) and removes the data. */
  override async stopAll(): Promise<void> {
    await Promise.all(this.clients.map((c) => c.close().catch(() => undefined)));
    await super.stopAll();
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
