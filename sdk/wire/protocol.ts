// The internal wire protocol between SDK clients and storage servers, and between storage
// servers: msgpack bodies over HTTP/1.1 keep-alive. The SDK owns it; the server imports it.
// Documented in ./wire-format.md. Operation types are append-only; PROTOCOL_VERSION rises
// when a message changes shape or a route is added, and a message carries MESSAGE_VERSION of
// its route: the lowest version with its shape. Data and codecs, shared by SDK and server;
// the one mutable thing is the test-only cap of the versions a server process accepts.

import { Packr } from 'msgpackr';
import { MalformedRequestError, ProtocolMismatchError } from '../errors.js';
import type { ErrorCode } from '../errors.js';
import type { StoredObject, VersionVector } from '../versioning/index.js';
import type { CrdtOp } from '../crdt/crdt-state.js';
import type { MemberInfo, MembersView } from '../membership.js';
import type { RingStamp } from '../ring-epoch.js';

/**
 * Version of this protocol. A server accepts requests from [MIN_PROTOCOL_VERSION, PROTOCOL_VERSION].
 * 2: the Put operation (a fresh last-write-wins write, answered with `won`), the server's
 * clock (`now`) in batch and membership answers.
 * 3: ring epochs — the ring stamp a batch was routed on (`ring`), the replica's view in an
 * answer that refused writes with RING_CHANGED (`view`), members' `ringVersion`, the
 * `recovering` member state, the ring-fence route, the `compact` admin action.
 * 4: data types — the DtUpdate operation, stored objects of mode 'crdt' (in Get, Merge and
 * stream answers), `won: false` in a Merge answer whose data type lost to another type.
 * 5: data centers — members' `dc`, `rack` and `remoteAddress`, the settings' `replication`,
 * a Merge's `shipped`, the repl-apply route, the `fullsync` admin action.
 * 6: routes a client reads — the scan route (listing: the SDK's keys() and entries()) and
 * the ring route (the dashboard's arcs, shares and key placement). No message changed shape.
 */
export const PROTOCOL_VERSION = 6;
export const MIN_PROTOCOL_VERSION = 1;
/**
 * The protocol version that brought a route, for the routes a node of an older version
 * answers 404 ROUTE_NOT_FOUND (sdk/protocol-support.ts names such a node in its error).
 */
export const PROTOCOL_OF_ROUTE = { scan: 6, ring: 6 } as const;

/**
 * The `v` every message of a route carries, requests and answers alike: the lowest protocol
 * version that has the message's shape, not the sender's newest (PROTOCOL_VERSION). A node
 * of 6 then speaks to a node of 5 in messages the 5 accepts, and servers of 5 and 6 mix in
 * one cluster (a rolling upgrade); only the routes 6 added carry 6 and need it on the node
 * asked. When a later version changes a message's shape, that route's entry rises to it
 * (./wire-format.md, "Rules for changing it"); a new route enters at the version it came with.
 */
export const MESSAGE_VERSION = {
  batch: 5,
  members: 5,
  gossip: 5,
  ping: 5,
  pingReq: 5,
  hints: 5,
  merkle: 5,
  merkleKeys: 5,
  stream: 5,
  status: 5,
  admin: 5,
  ringFence: 5,
  authAdmin: 5,
  authSync: 5,
  whoami: 5,
  scan: PROTOCOL_OF_ROUTE.scan,
  ring: PROTOCOL_OF_ROUTE.ring,
  hotKeys: 5,
  invalidations: 5,
  replApply: 5,
} as const satisfies Record<keyof typeof Routes, number>;

export const MSGPACK_CONTENT_TYPE = 'application/msgpack';
/** Request header carrying the sender's protocol version. */
export const PROTOCOL_HEADER = 'x-ringkv-protocol';

/** Internal HTTP routes. */
export const Routes = {
  batch: '/internal/v1/batch',
  members: '/internal/v1/members',
  gossip: '/internal/v1/gossip',
  ping: '/internal/v1/ping',
  pingReq: '/internal/v1/ping-req',
  hints: '/internal/v1/hints',
  merkle: '/internal/v1/merkle',
  merkleKeys: '/internal/v1/merkle/keys',
  stream: '/internal/v1/stream',
  status: '/internal/v1/status',
  admin: '/internal/v1/admin',
  ringFence: '/internal/v1/ring-fence',
  /** User and role management (storage-server/auth/README.md): admins and node certificates. */
  authAdmin: '/internal/v1/auth/admin',
  /** The user table between nodes: push and digest pull (node certificates only). */
  authSync: '/internal/v1/auth/sync',
  /** Who the caller is: its user, roles and grants, or its node. */
  whoami: '/internal/v1/auth/whoami',
  /** Listing (the SDK's keys() and entries()): a page of one replica's keys in token spans. Clients may call it (protocol 6). */
  scan: '/internal/v1/scan',
  /** GET: the ring as this node sees it — arcs, shares, vnodes — or, with `?key=`, the key's replicas (protocol 6; the dashboard). */
  ring: '/internal/v1/ring',
  /** GET: the keys the node served most in its hot-key window (`?k=`; storage-server/hot-keys.ts). */
  hotKeys: '/internal/v1/hot-keys',
  /** POST: the near cache's invalidation stream (./invalidation-stream.ts). */
  invalidations: '/internal/v1/invalidations',
  /** Objects shipped from another data center, for the receiving node to write into its own (protocol 5). */
  replApply: '/internal/v1/repl/apply',
} as const;

/** Operation types inside a batch. Append-only: never renumber. */
export const OpType = {
  /** Read the stored object of a key (tombstones and expired siblings included). */
  Get: 1,
  /** Merge a full object into the replica (LWW winner / DVV sync) and return the result. */
  Merge: 2,
  /** Vector-clock put coordinated by this replica: assign a dot, apply the client's context. */
  CoordinatedPut: 3,
  /**
   * A fresh last-write-wins write (protocol 2): like Merge, but the replica first refuses a
   * timestamp that leads its clock by more than its maxClockSkewMs (CLOCK_SKEW), and answers
   * whether the written version is the one it now holds (`won`).
   */
  Put: 4,
  /**
   * A data-type update coordinated by this replica (protocol 4): apply the operation to its
   * state as its own actor, store the result and return it (as a 'crdt' object), which the
   * client then Merges into the other replicas. Carries the client's operation id: an id the
   * state's window holds is not applied again.
   */
  DtUpdate: 5,
} as const;
export type OpTypeValue = (typeof OpType)[keyof typeof OpType];

export interface GetOp {
  t: typeof OpType.Get;
  key: Buffer;
  /**
   * The near cache: the id of the sender's invalidation stream to this node (its hello's
   * `sid`). The node tracks the key for that stream before reading it — when the key
   * changes here, the stream carries it — and answers `tracked: true`. An unknown id is
   * ignored (no `tracked`). Older nodes ignore the field; clients only send it to nodes
   * whose stream said hello.
   */
  track?: string;
}

export interface MergeOp {
  t: typeof OpType.Merge;
  key: Buffer;
  obj: StoredObject;
  /** When set, the receiver is not a replica of the key: it keeps the object as a hint for this node. */
  hintFor?: string;
  /**
   * The object is already in the other data centers (it was shipped from one, or is moved
   * between replicas of one data center): the receiver does not queue it for shipping to
   * the other data centers (protocol 5; absent: it may).
   */
  shipped?: boolean;
}

export interface CoordinatedPutOp {
  t: typeof OpType.CoordinatedPut;
  key: Buffer;
  /** The causal context the client read (empty for a blind write). */
  ctx: VersionVector;
  /** The new sibling, without a dot (the coordinator assigns it). */
  sib: {
    value: Buffer;
    tombstone: boolean;
    expiresAtMs: number;
    contentType: string;
    flags: number;
    ts: number;
    writer: string;
  };
}

export interface PutOp {
  t: typeof OpType.Put;
  key: Buffer;
  /** A last-write-wins object with the one new sibling. */
  obj: StoredObject;
  /** As for Merge: the receiver keeps it as a hint for this node. */
  hintFor?: string;
}

export interface DtUpdateOp {
  t: typeof OpType.DtUpdate;
  key: Buffer;
  /** The operation (sdk/crdt/crdt-state.ts CrdtOp; removes carry the context of a fetch as a version vector). */
  op: CrdtOp;
  /** The operation id, 1..64 bytes, chosen by the client and kept for its retries. */
  id: Buffer;
}

export type WireOp = GetOp | MergeOp | CoordinatedPutOp | PutOp | DtUpdateOp;

/**
 * Per-operation result. Get, CoordinatedPut and DtUpdate: the replica's object after the
 * operation (null when it has none). Merge and Put: `obj` is null and `ts` is the newest
 * timestamp the replica holds for the key (the writer's clock observes it); `created` when
 * it had no live value before; `hinted` when it was stored as a hint for another node. Put:
 * `won` is true when the written version is the one the replica now holds, false when it
 * holds a newer one (whose timestamp is `ts`): the write did not take effect there. Merge of
 * a data type (protocol 4): `won: false` when the replica holds another data type that wins
 * over it (the merged updates do not take effect there). A failure may carry its error's
 * `details` (protocol 4; the data-type bound's sizes, say).
 */
export type WireResult =
  | { ok: true; obj: StoredObject | null; ts?: number; created?: boolean; hinted?: boolean; won?: boolean; tracked?: boolean }
  | { ok: false; code: ErrorCode; msg: string; details?: Record<string, unknown> };

export interface BatchRequest {
  v: number;
  /** Sender id (client or node), for logs and metrics. */
  from?: string;
  ops: WireOp[];
  /**
   * How long the sender still waits for the answer, in ms: the receiver answers an operation
   * it would start after that with DEADLINE_EXCEEDED instead of doing it (protocol 2).
   */
  timeoutMs?: number;
  /**
   * The ring the sender routed the batch's writes on (protocol 3): a replica whose floor is
   * above its epoch refuses the writes with RING_CHANGED. With operations routed on several
   * rings, the oldest. Absent: not checked (older senders, hint replay, anti-entropy).
   */
  ring?: RingStamp;
}

export interface BatchResponse {
  v: number;
  results: WireResult[];
  /** The answering server's clock (ms since the epoch) when it answered (protocol 2). */
  now?: number;
  /** When some operation was refused with RING_CHANGED: the replica's view, to route again on (protocol 3). */
  view?: MembersView;
}

/**
 * POST Routes.ringFence (protocol 3): a node that changes the ring hands its member table to
 * every live member and waits until each answers that it knows the new ring and refuses
 * writes routed on older ones; the answer comes once the receiver's writes admitted under an
 * older ring have finished.
 */
export interface RingFenceRequest {
  v: number;
  from: string;
  members: MemberInfo[];
}

export interface RingFenceResponse {
  v: number;
  from: string;
  members: MemberInfo[];
  ringEpoch: number;
  ringDigest: number;
  ringFloor: number;
}

/** An error body of an internal endpoint. */
export interface WireError {
  code: ErrorCode;
  message: string;
}

/** Hashes of token spans (anti-entropy): POST Routes.merkle. Spans are inclusive [from, to]. */
export interface MerkleRequest {
  v: number;
  spans: [number, number][];
}

export interface MerkleResponse {
  v: number;
  /** False while the node is still building its leaf hashes after a start: ask again later. */
  ready: boolean;
  /** Per span, the XOR of the 64-bit digests of its entries, as [high, low] 32-bit halves. */
  hashes: [number, number][];
}

/** The (key, digest) lists of token spans: POST Routes.merkleKeys. */
export interface MerkleKeysRequest {
  v: number;
  spans: [number, number][];
  /** Most entries returned per span. */
  limit: number;
}

export interface MerkleKeysResponse {
  v: number;
  /** Per span, [key, digest high, digest low] in token order. */
  keys: [Buffer, number, number][][];
  /** Per span, true when more entries exist than `limit`. */
  truncated: boolean[];
}

/** A page of a token range's data (range streaming): POST Routes.stream. */
export interface StreamRequest {
  v: number;
  /** Inclusive token spans to read. */
  spans: [number, number][];
  /** Resume after this (span index, key) — from the previous page's `next`. */
  after?: { span: number; key: Buffer };
  /** Most entries in this page. */
  limit: number;
}

export interface StreamResponse {
  v: number;
  entries: { key: Buffer; obj: StoredObject }[];
  /** Where the next page starts; absent when the spans are exhausted. */
  next?: { span: number; key: Buffer };
  /** Encoded bytes of the entries (for rate limiting and the moved-data figures). */
  bytes: number;
}

/**
 * A page of the live keys of token spans, for listing (the SDK's keys() and entries()):
 * POST Routes.scan. Unlike Routes.stream (node to node), clients may call it. The replica
 * leaves out keys whose every sibling is a tombstone and keys not starting with `prefix`.
 */
export interface ScanRequest {
  v: number;
  /** Inclusive token spans to read, in ascending token order. */
  spans: [number, number][];
  /** Resume after this (span index, key): the previous page's `next`, or a listing's cursor. */
  after?: { span: number; key: Buffer };
  /** Most entries in this page (the replica caps it at 10,000). */
  limit: number;
  /** Only keys that start with these bytes. */
  prefix?: Buffer;
  /** Leave the values out (every sibling's value is sent empty). */
  keysOnly?: boolean;
}

export interface ScanResponse {
  v: number;
  entries: { key: Buffer; obj: StoredObject }[];
  /**
   * Where the next page starts; absent when the spans are exhausted. A page may be empty
   * and still have a `next` (the replica read its budget of keys without a match).
   */
  next?: { span: number; key: Buffer };
}

/**
 * GET Routes.ring (protocol 6): the ring of the answering node's view, computed by
 * sdk/ring.ts, so that the dashboard draws it without re-implementing it.
 */
export interface RingAnswer {
  v: number;
  /** The answering node. */
  node: string;
  /** The stamp of the member table the ring comes from (sdk/ring-epoch.ts). */
  ringEpoch: number;
  ringDigest: number;
  /** Tokens are 0 .. tokenSpace - 1 (2^32). */
  tokenSpace: number;
  vnodesPerNode: number;
  /** Replicas per data center. */
  replication: Record<string, number>;
  /** Every member but those that left, by id: its vnodes and primary share in the ring now and, while members join or leave, in the ring to come. */
  members: RingAnswerMember[];
  /** Ring.arcs() of the current ring: inclusive token spans tiling the token space, in token order. */
  arcs: { node: string; from: number; to: number }[];
  /** True while members join or leave (the members then carry `pendingShare`). */
  moving: boolean;
}

export interface RingAnswerMember {
  id: string;
  state: string;
  dc: string;
  rack?: string;
  weight: number;
  /** Vnodes in the current ring (0 for a member not in it: joining). */
  vnodes: number;
  /** Fraction of the token space it owns first (0 when not in the ring); the members' shares sum to 1. */
  share: number;
  /** Its share once the joins and leaves under way are done (only while `moving`). */
  pendingShare?: number;
}

/** GET Routes.ring?key=<UTF-8 key> (protocol 6): where the key lives, as the SDK places it. */
export interface RingKeyAnswer {
  v: number;
  node: string;
  ringEpoch: number;
  ringDigest: number;
  key: string;
  token: number;
  /** Per data center of the replication settings (name order): its replicas, in preference order. */
  replicas: { dc: string; nodes: string[] }[];
}

/** Operator actions on one node: POST Routes.admin. */
export interface AdminRequest {
  v: number;
  action: 'repair' | 'cleanup' | 'decommission' | 'removenode' | 'rebuild-leaves' | 'drop-hints' | 'compact' | 'fold' | 'snapshot' | 'fullsync';
  /** For removenode: the node to remove. */
  node?: string;
  /** For snapshot: its name (letters, digits, `.`, `_`, `-`; at most 64). */
  name?: string;
  /** For fullsync: the data center to synchronize with (protocol 5). */
  dc?: string;
}

/**
 * POST Routes.replApply (protocol 5): objects written in data center `fromDc`, for the
 * receiving node (a member of another data center) to merge into the replicas of its own
 * data center. Each is answered once a quorum of those replicas (hints within the data
 * center count) stored it, or holds something newer.
 */
export interface ReplApplyRequest {
  v: number;
  from: string;
  fromDc: string;
  ops: { key: Buffer; obj: StoredObject }[];
  /** How long the sender still waits, in ms. */
  timeoutMs?: number;
}

export interface ReplApplyResponse {
  v: number;
  /** Per operation, in order. */
  results: ({ ok: true } | { ok: false; code: ErrorCode; msg: string })[];
  /** The receiver's clock (ms since the epoch) when it answered: the apply time of the lag figures. */
  now: number;
}

// msgpackr's record extension: the key set of each object shape is written once per message
// and the objects as arrays of values. Measured on a batch of 256 merges: 36% fewer bytes,
// pack 1.2x and unpack 2.3x faster than plain maps. Every message defines its own records,
// so any decoder reads any message on its own (no state shared between sender and receiver).
const packr = new Packr({ useRecords: true, moreTypes: false, int64AsType: 'number' });

/** Encodes a message body. */
export function encodeMessage(msg: unknown): Buffer {
  return packr.pack(msg);
}

/** Decodes a message body; throws MalformedRequestError on bytes that are not msgpack. */
export function decodeMessage<T>(buf: Uint8Array): T {
  try {
    return packr.unpack(buf) as T;
  } catch (err) {
    throw new MalformedRequestError(`body is not valid msgpack: ${(err as Error).message}`);
  }
}

/** The highest version checkProtocolVersion accepts: PROTOCOL_VERSION, unless a test capped it. */
let acceptedMax: number = PROTOCOL_VERSION;

/**
 * Test only: makes checkProtocolVersion of this process refuse versions above `max`, so that
 * a real node of this build answers like a node of protocol `max` (the mixed-version tests;
 * `ringkv server` calls it when RINGKV_TEST_ACCEPT_PROTOCOL_MAX is set). Only the check
 * changes: the node still sends MESSAGE_VERSION and knows every route.
 */
export function capAcceptedProtocolForTests(max: number): void {
  if (!Number.isInteger(max) || max < MIN_PROTOCOL_VERSION || max > PROTOCOL_VERSION) {
    throw new RangeError(`accepted protocol cap ${max} is outside ${MIN_PROTOCOL_VERSION}..${PROTOCOL_VERSION}`);
  }
  acceptedMax = max;
}

/** Throws ProtocolMismatchError unless `v` is a protocol version this side speaks. */
export function checkProtocolVersion(v: unknown): void {
  if (typeof v !== 'number' || v < MIN_PROTOCOL_VERSION || v > acceptedMax) {
    throw new ProtocolMismatchError(`protocol version ${String(v)} is not supported (this side speaks ${MIN_PROTOCOL_VERSION}..${acceptedMax})`, {
      min: MIN_PROTOCOL_VERSION,
      max: acceptedMax,
    });
  }
}
