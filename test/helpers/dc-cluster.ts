// A cluster of several data centers for tests: real server processes on 127.0.0.1 (a
// TestCluster laid out by benchmarks/harness/dc-layout.ts, as the dc benchmark's is), each
// started with --dc and the replication per data center, and one
// InterDcLink through which every connection from one data center to another goes: each node
// advertises its own address to its data center and, as --advertise-remote, a listener of
// the link that forwards to it — so the link can be cut or delayed while each data center's
// own traffic goes on. (Deployments do the same with a public or NAT address, or a port of an
// inter-region gateway, as the remote address.) Stopped at the test's teardown.

import type { Test } from 'tap';
import { connect } from '../../sdk/client.js';
import type { ConnectOptions, RingkvClient } from '../../sdk/client.js';
import type { ClusterNode } from './cluster.js';
import { metricSum, TestCluster } from './cluster.js';
import { dcLayout } from '../../benchmarks/harness/dc-layout.js';
import type { DcSpec } from '../../benchmarks/harness/dc-layout.js';
import { InterDcLink } from '../../benchmarks/harness/inter-dc-link.js';

export type { DcSpec } from '../../benchmarks/harness/dc-layout.js';

export interface DcClusterOptions {
  dcs: DcSpec[];
  /** Extra CLI args for every node. */
  args?: string[];
  /** Extra environment for every node. */
  env?: Record<string, string>;
  /** Extra environment of the nodes of one data center. */
  dcEnv?: Record<string, Record<string, string>>;
  logLevel?: string;
}

export class DcCluster {
  private readonly clients: RingkvClient<unknown>[] = [];
  /** Node id -> data center. */
  readonly dcOf = new Map<string, string>();
  /** Node id -> the address the other data centers reach it at (a listener of the link). */
  readonly remoteAddress = new Map<string, string>();

  private constructor(
    readonly cluster: TestCluster,
    readonly link: InterDcLink,
    readonly spec: DcClusterOptions,
  ) {}

  static async start(t: Test, o: DcClusterOptions): Promise<DcCluster> {
    const link = new InterDcLink();
    t.teardown(() => link.close());
    const layout = dcLayout(link, o.dcs);
    const cluster = await TestCluster.start(t, {
      ...layout.options,
      ...(o.logLevel ? { logLevel: o.logLevel } : {}),
      args: o.args ?? [],
      env: o.env ?? {},
      nodeEnv: (node) => o.dcEnv?.[layout.dcOf.get(node.id)!] ?? {},
    });
    const c = new DcCluster(cluster, link, o);
    for (const [id, dc] of layout.dcOf) c.dcOf.set(id, dc);
    for (const [id, a] of layout.remoteAddress) c.remoteAddress.set(id, a);
    t.teardown(() => c.closeClients());
    return c;
  }

  /** The nodes of data center `dc`. */
  nodesOf(dc: string): ClusterNode[] {
    return this.cluster.nodes.filter((n) => this.dcOf.get(n.id) === dc);
  }

  /** A client in data center `dc` (seeds: its nodes; localDc: it); closed at teardown. */
  async client<V = Buffer>(dc: string, o: Partial<ConnectOptions<V>> = {}): Promise<RingkvClient<V>> {
    const c = (await connect({ seeds: this.nodesOf(dc).map((n) => n.address), localDc: dc, timeoutMs: 3000, ...o } as ConnectOptions<Buffer>)) as unknown as RingkvClient<V>;
    this.clients.push(c as RingkvClient<unknown>);
    return c;
  }

  /** Sum over the nodes of `from` of a metric's samples labelled with destination `dc` (and `match`). */
  async metricOver(from: string, name: string, dc: string): Promise<number[]> {
    return Promise.all(this.nodesOf(from).map(async (n) => metricSum(await this.cluster.metrics(n.id), name, { dc })));
  }

  private async closeClients(): Promise<void> {
    await Promise.all(this.clients.map((c) => c.close().catch(() => undefined)));
  }
}
