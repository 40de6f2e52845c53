// The internal route of replication between data centers (replication/README.md):
// repl-apply, objects shipped from another data center, written into this one's replicas.
// Admitted by the load shedder like a batch (budget: the sender's timeoutMs, else five
// request timeouts). Handlers run concurrently.

import { ClosedError, MalformedRequestError } from '../../sdk/errors.js';
import type { ReplApplyRequest } from '../../sdk/wire/protocol.js';
import { checkProtocolVersion, decodeMessage, Routes } from '../../sdk/wire/protocol.js';
import type { NodeParts } from '../node-parts.js';
import { readBatchBody } from './read-body.js';
import { sendMsgpack } from './respond.js';
import type { Route } from './router.js';

export function replicationRoutes(n: Pick<NodeParts, 'config' | 'membership' | 'admission' | 'shedder' | 'replication' | 'stopping'>): Route[] {
  return [
    {
      name: 'repl-apply',
      path: Routes.replApply,
      methods: ['POST'],
      handle: async ({ req, res, arrivedAt }) => {
        if (n.stopping) throw new ClosedError('server');
        const msg = decodeMessage<ReplApplyRequest>(await readBatchBody(req, n.config.maxBatchBodyBytes));
        if (!msg || typeof msg !== 'object') throw new MalformedRequestError('repl-apply body must be a map');
        checkProtocolVersion(msg.v);
        if (typeof msg.from === 'string') n.membership.heardFrom(msg.from);
        const budget = typeof msg.timeoutMs === 'number' && Number.isFinite(msg.timeoutMs) && msg.timeoutMs > 0 ? msg.timeoutMs : n.config.requestTimeoutMs * 5;
        const ops = Array.isArray(msg.ops) ? msg.ops.length : 0;
        n.admission.admit(ops, budget - (performance.now() - arrivedAt));
        n.shedder.enter(ops);
        try {
          sendMsgpack(res, 200, await n.replication.apply(msg, Math.max(1, budget - (performance.now() - arrivedAt))));
        } finally {
          n.shedder.leave(ops);
        }
      },
    },
  ];
}
