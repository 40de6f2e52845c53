// GET /internal/v1/ring (protocol 6): the ring as this node's view has it, computed by
// sdk/ring.ts itself — arcs of first ownership tiling the token space, each member's vnodes
// and share (and, while members join or leave, its share once they are done) — or, with
// `?key=`, the key's replicas per data center. The dashboard draws from it instead of
// re-implementing the ring in the browser. Read-only and synchronous: the answer is made
// from one read of the cluster view, so its parts belong to one member table.

import type { ClusterView } from '../../sdk/cluster-view.js';
import { ClosedError } from '../../sdk/errors.js';
import { checkKey } from '../../sdk/limits.js';
import { dcOf } from '../../sdk/membership.js';
import { Ring } from '../../sdk/ring.js';
import type { RingAnswer, RingAnswerMember, RingKeyAnswer } from '../../sdk/wire/protocol.js';
import { MESSAGE_VERSION } from '../../sdk/wire/protocol.js';

/** The answer to GET Routes.ring from node `self` with view `view` (undefined: the node is closing). */
export function ringAnswer(view: ClusterView | undefined, self: string, query: URLSearchParams): RingAnswer | RingKeyAnswer {
  if (!view) throw new ClosedError('server');
  const key = query.get('key');
  return key === null ? wholeRing(view, self) : keyPlacement(view, self, key);
}

function wholeRing(view: ClusterView, self: string): RingAnswer {
  const ring = view.ring;
  const pending = view.pendingRing;
  const moving = pending !== ring;
  const shares = ring.ownership();
  const pendingShares = moving ? pending.ownership() : undefined;
  const vnodes = new Map<string, number>();
  for (const { node } of ring.tokens()) vnodes.set(node, (vnodes.get(node) ?? 0) + 1);
  const members: RingAnswerMember[] = view
    .members()
    .filter((m) => m.state !== 'left')
    .sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
    .map((m) => {
      const out: RingAnswerMember = { id: m.id, state: m.state, dc: dcOf(m), weight: m.weight, vnodes: vnodes.get(m.id) ?? 0, share: shares.get(m.id) ?? 0 };
      if (m.rack !== undefined) out.rack = m.rack;
      if (pendingShares) out.pendingShare = pendingShares.get(m.id) ?? 0;
      return out;
    });
  return {
    ...answerHeader(view, self),
    tokenSpace: 2 ** 32,
    vnodesPerNode: view.settings.vnodesPerNode,
    replication: { ...view.replication },
    members,
    arcs: ring.arcs(),
    moving,
  };
}

/** What both answers start with: the protocol, the node asked, and the ring it answered from. */
function answerHeader(view: ClusterView, self: string): { v: number; node: string; ringEpoch: number; ringDigest: number } {
  const stamp = view.ringStamp;
  return { v: MESSAGE_VERSION.ring, node: self, ringEpoch: stamp.epoch, ringDigest: stamp.digest };
}

function keyPlacement(view: ClusterView, self: string, key: string): RingKeyAnswer {
  const bytes = Buffer.from(key, 'utf8');
  checkKey(bytes);
  const ring = view.ring;
  const token = Ring.tokenOf(bytes);
  return {
    ...answerHeader(view, self),
    key,
    token,
    replicas: ring.dataCenters.map((dc) => ({ dc, nodes: [...ring.replicasInDcForToken(token, dc)] })),
  };
}
