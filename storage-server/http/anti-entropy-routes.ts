// The internal routes of Merkle anti-entropy (anti-entropy/README.md): the hashes of token
// spans (merkle; also `ringkv repair --check` with an admin's token) and the (key, digest)
// entries under differing spans (merkle-keys). The work one request may cause is bounded
// and yields to the event loop as it goes, so no request can stall the node. Handlers run
// concurrently; the hasher reads the leaf hashes the replica store keeps.

import { setImmediate as yieldToLoop } from 'node:timers/promises';
import { MalformedRequestError } from '../../sdk/errors.js';
import type { MerkleKeysRequest, MerkleRequest } from '../../sdk/wire/protocol.js';
import { MESSAGE_VERSION, Routes } from '../../sdk/wire/protocol.js';
import { LEAF_COUNT, LEAF_SPAN } from '../anti-entropy/leaf-hashes.js';
import type { NodeParts } from '../node-parts.js';
import { sendMsgpack } from './respond.js';
import type { Route } from './router.js';
import { readSpanRequest } from './token-spans.js';

/** Most Merkle leaves one merkle request may make a node sum (four full rings). */
export const MAX_MERKLE_LEAVES = 4 * LEAF_COUNT;
/**
 * Most (key, digest) entries one merkle-keys request returns in all (anti-entropy asks for
 * 64 leaves at a time: 250,000 entries is ~4,000 keys per leaf, a 260-million-key node;
 * beyond, truncated spans are reconciled key by key, correct but slower).
 */
export const MAX_KEYS_PER_REQUEST = 250_000;

export function antiEntropyRoutes(n: Pick<NodeParts, 'hasher'>): Route[] {
  return [
    {
      name: 'merkle',
      path: Routes.merkle,
      handle: async ({ req, res }) => {
        const { spans } = await readSpanRequest<MerkleRequest>(req, 16 * 1024 * 1024);
        // Bounded work: a request may make this node sum at most MAX_MERKLE_LEAVES leaf hashes
        // (four full rings; anti-entropy's own requests cover at most one), and the summing
        // yields to the event loop as it goes, so no request can stall the node.
        let leaves = 0;
        for (const s of spans) leaves += Math.floor(s[1] / LEAF_SPAN) - Math.floor(s[0] / LEAF_SPAN) + 1;
        if (leaves > MAX_MERKLE_LEAVES) {
          throw new MalformedRequestError(`the spans cover ${leaves} Merkle leaves; at most ${MAX_MERKLE_LEAVES} per request`);
        }
        if (!n.hasher.ready) return sendMsgpack(res, 200, { v: MESSAGE_VERSION.merkle, ready: false, hashes: [] });
        const hashes: [number, number][] = [];
        for (const s of spans) hashes.push((await n.hasher.spanHash(s)) as [number, number]);
        sendMsgpack(res, 200, { v: MESSAGE_VERSION.merkle, ready: true, hashes });
      },
    },
    {
      name: 'merkle-keys',
      path: Routes.merkleKeys,
      handle: async ({ req, res }) => {
        const { msg, spans } = await readSpanRequest<MerkleKeysRequest>(req, 16 * 1024 * 1024);
        const limit = Math.min(Math.max(1, Number(msg.limit) || 100_000), MAX_KEYS_PER_REQUEST);
        const keys: [Buffer, number, number][][] = [];
        const truncated: boolean[] = [];
        // At most MAX_KEYS_PER_REQUEST entries in all: spans past that budget come back truncated.
        let budget = MAX_KEYS_PER_REQUEST;
        let sinceYield = 0;
        for (const s of spans) {
          // Many small spans add up too: let other requests in every few thousand entries.
          if (sinceYield > 4096) {
            sinceYield = 0;
            await yieldToLoop();
          }
          const take = Math.min(limit, budget);
          const list = take > 0 ? await n.hasher.spanKeys(s, take + 1) : [];
          truncated.push(take === 0 || list.length > take);
          const kept = list.slice(0, take);
          budget -= kept.length;
          sinceYield += kept.length + 1;
          keys.push(kept);
        }
        sendMsgpack(res, 200, { v: MESSAGE_VERSION.merkleKeys, keys, truncated });
      },
    },
  ];
}
