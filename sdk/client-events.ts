// The client's events: membership changes as the client's view of the cluster sees them
// ('membership', 'nodeDown', 'nodeUp') and one 'operation' event per finished call with its
// metrics, named so that they map onto OpenTelemetry's database-client conventions.
// Listeners run synchronously where the event happens; one that throws is reported on
// 'listenerError' (or, without a listener for that, ignored) and never fails the call.

import type { MemberInfo, MemberState } from './membership.js';
import { RingkvError } from './errors.js';
import { monotonicNowMs } from './batcher.js';

/** One member whose state changed in the client's view. */
export interface MemberChange {
  id: string;
  address: string;
  /** Undefined when the member is new to this client. */
  from: MemberState | undefined;
  to: MemberState;
}

/** A change of the client's view of the members. */
export interface MembershipEvent {
  /** Every member now, as the client sees it. */
  members: MemberInfo[];
  /** The members whose state (or presence) changed. */
  changes: MemberChange[];
}

/** A node that went down (`nodeDown`) or came back up (`nodeUp`). */
export interface NodeEvent {
  id: string;
  address: string;
  /** Its state before. */
  from: MemberState | undefined;
}

/** The metrics of one finished call (an `operation` event). */
export interface OperationMetrics {
  /** `get`, `put` or `delete` (each key of getMany/putMany/deleteMany is one operation). */
  operation: 'get' | 'put' | 'delete';
  /** Wall time of the call, retries and back-off included, in ms. */
  durationMs: number;
  /** True when the call succeeded. */
  ok: boolean;
  /** The error's code when it failed. */
  errorCode?: string;
  /** Requests sent to replicas (and hint holders) for this call, read repairs included. */
  replicasAsked: number;
  /** Repairs of stale replicas this call made before it returned (a read's write-back, read repair). */
  repairs: number;
  /** Attempts after the first (the `retry` option). */
  retries: number;
  /** The consistency level's name (`strong`, `eventual`, `all`, `linearizable`, or `r2w2`). */
  consistency: string;
}

/** The client's events and what their listeners receive. */
export interface ClientEventMap {
  membership: MembershipEvent;
  nodeDown: NodeEvent;
  nodeUp: NodeEvent;
  operation: OperationMetrics;
  /** A listener threw: the error, and the event it was handling. */
  listenerError: { error: unknown; event: string };
}

export type ClientEventName = keyof ClientEventMap;
export type ClientListener<E extends ClientEventName> = (payload: ClientEventMap[E]) => void;

/**
 * OpenTelemetry names for an `operation` event: the semantic-convention attributes of a
 * database client call, and the instruments an exporter records it on. `durationSeconds`
 * is the value for the `db.client.operation.duration` histogram (seconds, as the
 * convention asks).
 */
export function otelAttributes(m: OperationMetrics): {
  attributes: Record<string, string>;
  durationSeconds: number;
  instruments: { duration: string; replicasAsked: string; repairs: string; retries: string };
} {
  const attributes: Record<string, string> = {
    'db.system.name': 'ringkv',
    'db.operation.name': m.operation,
    'ringkv.consistency': m.consistency,
  };
  if (m.errorCode) attributes['error.type'] = m.errorCode;
  return { attributes, durationSeconds: m.durationMs / 1000, instruments: OTEL_INSTRUMENTS };
}

/** Instrument names for the `operation` metrics (counters but the duration histogram). */
export const OTEL_INSTRUMENTS = Object.freeze({
  duration: 'db.client.operation.duration',
  replicasAsked: 'ringkv.client.replicas_asked',
  repairs: 'ringkv.client.read_repairs',
  retries: 'ringkv.client.retries',
});

/** Per-call counters, filled as the call runs. */
export interface CallStats {
  started: number;
  replicasAsked: number;
  repairs: number;
  retries: number;
}

export function newCallStats(): CallStats {
  return { started: monotonicNowMs(), replicasAsked: 0, repairs: 0, retries: 0 };
}

/** The listeners of one client, and the last member states it reported. */
export class ClientEvents {
  private readonly listeners = new Map<ClientEventName, Set<(p: never) => void>>();
  private states: Map<string, MemberState> | undefined;

  on<E extends ClientEventName>(event: E, listener: ClientListener<E>): void {
    if (!EVENT_NAMES.has(event)) throw new RingkvError('INVALID_ARGUMENT', `unknown event ${JSON.stringify(event)}; one of ${[...EVENT_NAMES].join(', ')}`);
    if (typeof listener !== 'function') throw new RingkvError('INVALID_ARGUMENT', 'listener must be a function');
    let set = this.listeners.get(event);
    if (!set) this.listeners.set(event, (set = new Set()));
    set.add(listener as (p: never) => void);
  }

  off<E extends ClientEventName>(event: E, listener: ClientListener<E>): void {
    this.listeners.get(event)?.delete(listener as (p: never) => void);
  }

  /** True when someone listens to `event` (so that work for it can be skipped). */
  has(event: ClientEventName): boolean {
    return (this.listeners.get(event)?.size ?? 0) > 0;
  }

  emit<E extends ClientEventName>(event: E, payload: ClientEventMap[E]): void {
    const set = this.listeners.get(event);
    if (!set) return;
    for (const l of [...set]) {
      try {
        (l as ClientListener<E>)(payload);
      } catch (error) {
        if (event !== 'listenerError') this.emit('listenerError', { error, event });
      }
    }
  }

  /**
   * Takes the client's new view of the members: emits `membership` with what changed, and
   * `nodeDown` / `nodeUp` for members that went down or came up. The first view is the
   * baseline (a `membership` event listing every member as new, no up/down events).
   */
  onMembers(members: readonly MemberInfo[]): void {
    const prev = this.states;
    const next = new Map<string, MemberState>();
    const changes: MemberChange[] = [];
    for (const m of members) {
      next.set(m.id, m.state);
      const from = prev?.get(m.id);
      if (prev === undefined || from !== m.state) changes.push({ id: m.id, address: m.address, from, to: m.state });
    }
    this.states = next;
    if (changes.length === 0) return;
    this.emit('membership', { members: members.map((m) => ({ ...m })), changes });
    if (prev === undefined) return;
    for (const c of changes) {
      if (c.to === 'down' && c.from !== 'down') this.emit('nodeDown', { id: c.id, address: c.address, from: c.from });
      else if (c.to === 'up' && c.from !== undefined && c.from !== 'up') this.emit('nodeUp', { id: c.id, address: c.address, from: c.from });
    }
  }

  /** Emits the `operation` event of a call that ended (with `err` when it failed). */
  operationDone(operation: OperationMetrics['operation'], consistency: string, stats: CallStats, err: unknown): void {
    if (!this.has('operation')) return;
    const m: OperationMetrics = {
      operation,
      durationMs: monotonicNowMs() - stats.started,
      ok: err === undefined,
      replicasAsked: stats.replicasAsked,
      repairs: stats.repairs,
      retries: stats.retries,
      consistency,
    };
    if (err !== undefined) m.errorCode = err instanceof RingkvError ? err.code : 'INTERNAL';
    this.emit('operation', m);
  }
}

const EVENT_NAMES: ReadonlySet<string> = new Set<ClientEventName>(['membership', 'nodeDown', 'nodeUp', 'operation', 'listenerError']);
