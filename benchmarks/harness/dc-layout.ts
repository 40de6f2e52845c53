// How a local cluster of several data centers is laid out, for the tests (test/helpers/
// dc-cluster.ts) and the dc benchmark: nodes n1.. by data center in the order given, each
// started with --dc, --rack, the replication per data center and, as --advertise-remote, its
// listener on the InterDcLink; its seeds are the nodes of its own data center at their
// addresses and the others through the link. Built once per cluster; single-threaded.

import type { InterDcLink } from './inter-dc-link.js';
import type { ClusterNode, RingkvClusterOptions } from './ringkv-cluster.js';

export interface DcSpec {
  name: string;
  nodes: number;
  /** Replicas per key in this data center. Default min(3, nodes). */
  rf?: number;
  /** Rack of each node (by index), if any. */
  racks?: string[];
}

export interface DcLayout {
  /** Node id -> data center. */
  readonly dcOf: ReadonlyMap<string, string>;
  /** Node id -> the address the other data centers reach it at (its listener on the link), once the cluster has started. */
  readonly remoteAddress: ReadonlyMap<string, string>;
  /** The `--replication` value, e.g. "east:3,west:3". */
  readonly replication: string;
  /** What a RingkvCluster needs for this layout. */
  readonly options: Required<Pick<RingkvClusterOptions, 'nodes' | 'prepare' | 'nodeArgs' | 'seedsOf'>>;
}

/** The layout of `dcs` with the data centers joined by `link`. */
export function dcLayout(link: InterDcLink, dcs: readonly DcSpec[]): DcLayout {
  const dcOf = new Map<string, string>();
  const rack = new Map<string, string>();
  const remote = new Map<string, string>();
  let i = 0;
  for (const dc of dcs) {
    for (let j = 0; j < dc.nodes; j++) {
      const id = `n${++i}`;
      dcOf.set(id, dc.name);
      if (dc.racks?.[j]) rack.set(id, dc.racks[j]!);
    }
  }
  const replication = dcs.map((d) => `${d.name}:${d.rf ?? Math.min(3, d.nodes)}`).join(',');
  const dc = (n: ClusterNode) => dcOf.get(n.id)!;
  return {
    dcOf,
    remoteAddress: remote,
    replication,
    options: {
      nodes: i,
      prepare: async (nodes) => {
        for (const n of nodes) remote.set(n.id, await link.forward(n.address));
      },
      nodeArgs: (n) => ['--dc', dc(n), ...(rack.has(n.id) ? ['--rack', rack.get(n.id)!] : []), '--replication', replication, '--advertise-remote', remote.get(n.id)!],
      // Its own data center at their addresses, the others through the link.
      seedsOf: (n, all) => all.filter((x) => x !== n).map((x) => (dc(x) === dc(n) ? x.address : remote.get(x.id)!)),
    },
  };
}
