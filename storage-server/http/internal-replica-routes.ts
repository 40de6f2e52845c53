// The internal routes SDK clients and peers read and write replicas through: the batch
// endpoint (operations on this node's replicas, applied by batch-applier.ts; a user's
// operations checked key by key) and the near cache's invalidation streams
// (invalidation-hub.ts), fed by the Gets a batch tracks. Handlers run concurrently.

import { ClosedError, MalformedRequestError } from '../../sdk/errors.js';
import type { SubscribeRequest } from '../../sdk/wire/invalidation-stream.js';
import type { BatchRequest, BatchResponse } from '../../sdk/wire/protocol.js';
import { checkProtocolVersion, decodeMessage, Routes } from '../../sdk/wire/protocol.js';
import { isRingStamp } from '../../sdk/ring-epoch.js';
import type { NodeParts } from '../node-parts.js';
import { readBatchBody, readBody } from './read-body.js';
import { sendMsgpack } from './respond.js';
import type { Route } from './router.js';

const MAX_BATCH_OPS = 10_000;

export function internalReplicaRoutes(n: Pick<NodeParts, 'config' | 'membership' | 'metrics' | 'admission' | 'shedder' | 'batches' | 'invalidations' | 'stopping'>): Route[] {
  return [
    {
      name: 'batch',
      path: Routes.batch,
      methods: ['POST'],
      handle: async ({ req, res, caller, arrivedAt }) => {
        if (n.stopping) throw new ClosedError('server');
        const batch = decodeMessage<BatchRequest>(await readBatchBody(req, n.config.maxBatchBodyBytes));
        if (!batch || typeof batch !== 'object') throw new MalformedRequestError('batch body must be a map');
        checkProtocolVersion(batch.v);
        if (!Array.isArray(batch.ops) || batch.ops.length > MAX_BATCH_OPS) throw new MalformedRequestError(`ops must be an array of at most ${MAX_BATCH_OPS}`);
        if (typeof batch.from === 'string') n.membership.heardFrom(batch.from);
        n.metrics.batchSize.observe(batch.ops.length);
        // The sender's remaining budget, counted from when the request arrived: operations this
        // node would start after it are answered DEADLINE_EXCEEDED, not done.
        const budget = typeof batch.timeoutMs === 'number' && Number.isFinite(batch.timeoutMs) && batch.timeoutMs > 0 ? batch.timeoutMs : undefined;
        const deadline = budget !== undefined ? arrivedAt + budget : undefined;
        if (batch.ring !== undefined && !isRingStamp(batch.ring)) throw new MalformedRequestError('ring must be {epoch, digest}');
        // Admission: refuse now what this node could not finish while its sender still waits.
        n.admission.admit(batch.ops.length, budget !== undefined ? budget - (performance.now() - arrivedAt) : undefined);
        n.shedder.enter(batch.ops.length);
        let response: BatchResponse;
        try {
          if (caller.kind === 'user') response = await n.batches.applyForUser(caller, batch.ops, deadline, batch.ring);
          else response = await n.batches.apply(batch.ops, deadline, batch.ring);
        } finally {
          n.shedder.leave(batch.ops.length);
        }
        n.shedder.record(performance.now() - arrivedAt);
        // The clock reading lets clients follow the servers' time (sdk/cluster-clock.ts).
        sendMsgpack(res, 200, response);
      },
    },
    {
      // A near cache's invalidation stream: open until the client leaves.
      name: 'invalidations',
      path: Routes.invalidations,
      methods: ['POST'],
      handle: async ({ req, res }) => {
        if (n.stopping) throw new ClosedError('server');
        const msg = decodeMessage<SubscribeRequest>(await readBody(req, 64 * 1024));
        if (!msg || typeof msg !== 'object') throw new MalformedRequestError('subscription body must be a map');
        checkProtocolVersion(msg.v);
        n.invalidations.subscribe(req, res, msg);
      },
    },
  ];
}
