// The ringkv SDK: what application code imports (`import { connect } from 'ringkv'`).

export { connect, RingkvClient } from './client.js';
export type {
  ConnectOptions,
  ConflictMode,
  GetOptions,
  GetResult,
  PutOptions,
  PutResult,
  DeleteOptions,
  SiblingResolver,
  SiblingValue,
  ValueEncoding,
  CallOptions,
  ListEntry,
} from './client.js';
export { CounterHandle, SetHandle, RegisterHandle, MapHandle, MapUpdate } from './data-types.js';
export { ShardedCounterHandle, shardKey } from './sharded-counter.js';
export type { CounterOptions } from './sharded-counter.js';
export type { DataTypeUpdateOptions, DataTypeValue, DataTypeView, Fetched, JsonValue, RemoveOptions } from './data-types.js';
export type { CrdtOp, CrdtType } from './crdt/crdt-state.js';
export type { RetryOptions } from './retry.js';
export { RETRYABLE_CODES, isRetryableError } from './retry.js';
export type { KeyOutcome, PutEntry } from './multi-key.js';
export { MAX_KEYS_PER_CALL } from './multi-key.js';
export type { ListOptions } from './listing.js';
export { Listing } from './listing.js';
export type { ClientEventMap, ClientEventName, ClientListener, MemberChange, MembershipEvent, NodeEvent, OperationMetrics } from './client-events.js';
export { otelAttributes, OTEL_INSTRUMENTS } from './client-events.js';
export type { Consistency, Quorum } from './consistency.js';
export { quorumFor, parseConsistency } from './consistency.js';
export * from './errors.js';
export { MAX_KEY_BYTES, MAX_VALUE_BYTES } from './limits.js';
export { Ring } from './ring.js';
export type { RingArc, RingMember, RingOptions } from './ring.js';
export type { Clock } from './clock.js';
export { systemClock, ManualClock, SkewedClock } from './clock.js';
export type { Transport, CallOptions as TransportCallOptions, Fault } from './transport.js';
export { HttpTransport, FaultyTransport } from './transport.js';
export type { TlsMode, TlsOptions, TransportTls } from './transport-security.js';
export type { MemberInfo, MemberState, MembersView, ClusterSettings } from './membership.js';
