// The internal routes of membership: the member list (long-polled by SDK clients), gossip
// between nodes, the SWIM failure detector's ping and ping-req, and the ring fence a node
// that changes the ring sends every live member (membership/ring-fence.ts). Handlers run
// concurrently; the membership they feed is single-threaded.

import type { MembersView } from '../../sdk/membership.js';
import { MalformedRequestError } from '../../sdk/errors.js';
import type { RingFenceRequest } from '../../sdk/wire/protocol.js';
import { checkProtocolVersion, decodeMessage, Routes } from '../../sdk/wire/protocol.js';
import type { PingMessage, PingReqMessage } from '../membership/failure-detector.js';
import type { GossipMessage } from '../membership/membership.js';
import { MAX_GOSSIP_MEMBERS } from '../membership/membership.js';
import { answerRingFence } from '../membership/ring-fence.js';
import type { NodeParts } from '../node-parts.js';
import { readBody } from './read-body.js';
import { sendMsgpack, sendMsgpackOrJson } from './respond.js';
import type { Route } from './router.js';

export function gossipRoutes(n: Pick<NodeParts, 'config' | 'clock' | 'membership' | 'detector' | 'admittedWrites'>): Route[] {
  return [
    {
      name: 'members',
      path: Routes.members,
      handle: async ({ req, res, url }) => {
        // Long-poll: ?since=<epoch>&waitMs=<ms> answers when the view moves past `since`.
        const since = Number(url.searchParams.get('since') ?? '0');
        const waitMs = Math.min(Number(url.searchParams.get('waitMs') ?? '0') || 0, 60_000);
        if (waitMs > 0 && Number.isFinite(since)) await n.membership.waitForChange(since, waitMs);
        const view: MembersView = { ...n.membership.view(), now: n.clock.nowMs() };
        sendMsgpackOrJson(req, res, view);
      },
    },
    {
      name: 'gossip',
      path: Routes.gossip,
      handle: async ({ req, res }) => {
        const msg = decodeMessage<GossipMessage>(await readBody(req, 4 * 1024 * 1024));
        if (!msg || !Array.isArray(msg.members)) throw new MalformedRequestError('gossip needs members');
        if (msg.members.length > MAX_GOSSIP_MEMBERS) throw new MalformedRequestError(`gossip carries at most ${MAX_GOSSIP_MEMBERS} members`);
        checkProtocolVersion(msg.v);
        sendMsgpack(res, 200, n.membership.handleGossip(msg));
      },
    },
    {
      name: 'ping',
      path: Routes.ping,
      handle: async ({ req, res }) => {
        const msg = decodeMessage<PingMessage>(await readBody(req, 64 * 1024));
        sendMsgpack(res, 200, n.detector.handlePing(msg));
      },
    },
    {
      name: 'ping-req',
      path: Routes.pingReq,
      handle: async ({ req, res }) => {
        const msg = decodeMessage<PingReqMessage>(await readBody(req, 64 * 1024));
        sendMsgpack(res, 200, await n.detector.handlePingReq(msg));
      },
    },
    {
      name: 'ring-fence',
      path: Routes.ringFence,
      handle: async ({ req, res }) => {
        const msg = decodeMessage<RingFenceRequest>(await readBody(req, 4 * 1024 * 1024));
        if (!msg || typeof msg.from !== 'string' || !Array.isArray(msg.members)) throw new MalformedRequestError('ring-fence needs from and members');
        checkProtocolVersion(msg.v);
        sendMsgpack(res, 200, await answerRingFence(msg, n.membership, n.admittedWrites, n.config.requestTimeoutMs * 2));
      },
    },
  ];
}
