// An in-memory network of membership nodes for the failure detector's and membership's
// tests: each node is a real Membership and FailureDetector (timers not started; tests run
// probe rounds and gossip exchanges themselves) on a ManualClock, and its Transport answers
// through the other nodes' real handlers. Messages go through msgpack as on the wire.
// Per address a node can be up, dead (connection refused), paused (calls time out) or hung
// (calls wait until released); links can be cut one way. Single-threaded, like the nodes.

import { ManualClock } from '../../../sdk/clock.js';
import { NodeUnavailableError, TimeoutError } from '../../../sdk/errors.js';
import type { ClusterSettings, MemberInfo } from '../../../sdk/membership.js';
import type { CallOptions, Transport } from '../../../sdk/transport.js';
import { decodeMessage, encodeMessage, Routes } from '../../../sdk/wire/protocol.js';
import type { Logger } from '../../../storage-server/logger.js';
import type { FailureDetectorOptions, PingMessage, PingReqMessage } from '../../../storage-server/membership/failure-detector.js';
import { FailureDetector } from '../../../storage-server/membership/failure-detector.js';
import type { GossipMessage } from '../../../storage-server/membership/membership.js';
import { Membership, publicInfo } from '../../../storage-server/membership/membership.js';

export const quiet: Logger = { debug() {}, info() {}, warn() {}, error() {} };

export type Reach = 'up' | 'dead' | 'paused' | 'hung';

export interface SimNode {
  id: string;
  address: string;
  clock: ManualClock;
  membership: Membership;
  detector: FailureDetector;
}

export interface CallRecord {
  from: string;
  to: string;
  path: string;
  body: unknown;
}

export const testDetectorOptions: FailureDetectorOptions = {
  probeIntervalMs: 1000,
  probeTimeoutMs: 500,
  indirectProbes: 2,
  suspectAfterMisses: 3,
  suspicionTimeoutMs: 2000,
  probesPerRound: 16,
};

export class MemNetwork {
  readonly nodes = new Map<string, SimNode>();
  readonly calls: CallRecord[] = [];
  private readonly reach = new Map<string, Reach>();
  private readonly cut = new Set<string>();
  private hungCalls: (() => void)[] = [];

  /** A node `id` at address `id:7000` whose incarnation starts at `incarnation`. */
  add(
    id: string,
    o: {
      incarnation?: number;
      clock?: ManualClock;
      detector?: Partial<FailureDetectorOptions>;
      address?: string;
      /** The node's last outage (its previous life's last heartbeat to this start). */
      outage?: { fromMs: number; toMs: number };
      selfLeft?: boolean;
      settings?: ClusterSettings;
    } = {},
  ): SimNode {
    const address = o.address ?? `${id}:7000`;
    const clock = o.clock ?? new ManualClock();
    const transport = this.transportFrom(address);
    const membership = new Membership({
      self: { id, address, weight: 1, state: 'up', incarnation: o.incarnation ?? 1000 },
      settings: o.settings ?? { vnodesPerNode: 8, replicationFactor: 3 },
      seeds: [],
      transport,
      clock,
      log: quiet,
      gossipIntervalMs: 1000,
      requestTimeoutMs: 500,
      outage: o.outage,
      selfLeft: o.selfLeft ?? false,
    });
    const detector = new FailureDetector(membership, transport, clock, quiet, { ...testDetectorOptions, ...o.detector });
    const n: SimNode = { id, address, clock, membership, detector };
    this.nodes.set(address, n);
    this.reach.set(address, 'up');
    return n;
  }

  /** Every node learns every other node's record (as after a few gossip rounds). */
  introduceAll(): void {
    const all: MemberInfo[] = [...this.nodes.values()].map((n) => publicInfo(n.membership.self));
    for (const n of this.nodes.values()) n.membership.mergeList(all);
  }

  set(node: SimNode, r: Reach): void {
    this.reach.set(node.address, r);
    if (r !== 'hung') this.releaseHung();
  }

  /** Calls from `a` to `b` time out (one way). */
  cutLink(a: SimNode, b: SimNode): void {
    this.cut.add(`${a.address}>${b.address}`);
  }

  healLink(a: SimNode, b: SimNode): void {
    this.cut.delete(`${a.address}>${b.address}`);
  }

  /** Lets every hung call end (with a timeout). */
  releaseHung(): void {
    const h = this.hungCalls;
    this.hungCalls = [];
    for (const f of h) f();
  }

  get hungCount(): number {
    return this.hungCalls.length;
  }

  callsTo(node: SimNode, path: string): CallRecord[] {
    return this.calls.filter((c) => c.to === node.address && c.path === path);
  }

  /** One push-pull gossip exchange from `a` to `b`, as Membership's round does it. */
  async gossip(a: SimNode, b: SimNode): Promise<void> {
    const reply = await this.transportFrom(a.address).call<GossipMessage>(b.address, Routes.gossip, a.membership.gossipMessage(), { timeoutMs: 500 });
    a.membership.takeGossipReply(reply);
  }

  transportFrom(from: string): Transport {
    return {
      call: <T>(address: string, path: string, body: unknown, opts: CallOptions) => this.call<T>(from, address, path, body, opts),
      close: async () => {},
    };
  }

  private async call<T>(from: string, to: string, path: string, body: unknown, opts: CallOptions): Promise<T> {
    this.calls.push({ from, to, path, body });
    const target = this.nodes.get(to);
    const r = this.reach.get(to);
    if (!target || r === 'dead') throw new NodeUnavailableError(to, 'connection refused');
    if (r === 'paused' || this.cut.has(`${from}>${to}`)) throw new TimeoutError(`${path} to ${to}`, opts.timeoutMs);
    if (r === 'hung') {
      await new Promise<void>((resolve) => this.hungCalls.push(resolve));
      throw new TimeoutError(`${path} to ${to}`, opts.timeoutMs);
    }
    const msg = decodeMessage<unknown>(encodeMessage(body));
    let answer: unknown;
    if (path === Routes.ping) answer = target.detector.handlePing(msg as PingMessage);
    else if (path === Routes.pingReq) answer = await target.detector.handlePingReq(msg as PingReqMessage);
    else if (path === Routes.gossip) answer = target.membership.handleGossip(msg as GossipMessage);
    else throw new Error(`mem-network: no route ${path}`);
    return decodeMessage<T>(encodeMessage(answer));
  }
}
