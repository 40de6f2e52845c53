// The invalidation stream of the near cache (wire-format.md, "Invalidations"): a client's
// long-lived POST to a node whose answer is a framed msgpack stream (./frames.ts) that the
// node writes as keys the client read from it change. The messages; both sides import them.

/** Version of the stream's messages (the hello carries it). */
export const INVALIDATION_STREAM_VERSION = 1;

/** The subscription request (msgpack body of the POST). */
export interface SubscribeRequest {
  v: number;
  /** Sender id, for logs. */
  from?: string;
  /** How often the node sends a heartbeat when it has nothing else to send (clamped to 100..60,000 ms). */
  heartbeatMs?: number;
}

/**
 * What the node sends:
 * - `hello` first: the subscription id that the client's Gets carry (`track`) so that the
 *   node tracks the keys they read for this stream; the heartbeat it will keep;
 * - `inv`: keys that changed on this node (or that it stopped tracking) since the client
 *   read them — drop them; a key is then untracked until read again with `track`;
 * - `hb`: nothing changed, the stream is alive.
 */
export type InvalidationMessage =
  | { t: 'hello'; v: number; sid: string; heartbeatMs: number; node: string }
  | { t: 'inv'; keys: Buffer[] }
  | { t: 'hb' };
