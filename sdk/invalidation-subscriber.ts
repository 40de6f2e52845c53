// The client side of the near cache's invalidation streams: one stream per node (the first
// cached read served by a node opens it), each a long-lived POST /internal/v1/invalidations
// through the transport's stream() (sdk/wire/invalidation-stream.ts). A stream is live from
// its hello, whose `sid` the client's Gets to that node then carry (`track`). Invalidations
// go to onInvalidate. A stream that ends, fails or stays silent past 3 heartbeats + 1 s is
// lost: onLost flushes what was cached from the node (its tracking is gone with the stream),
// and the stream is opened again after an exponential back-off with jitter (100 ms doubling
// to 5 s; 60 s for a node without the route). A node that left the cluster is let go.
// Single-threaded; close() ends every stream.

import type { RingkvError } from './errors.js';
import type { Transport } from './transport.js';
import type { InvalidationMessage, SubscribeRequest } from './wire/invalidation-stream.js';
import { MESSAGE_VERSION, Routes } from './wire/protocol.js';

export interface InvalidationSubscriberOptions {
  transport: Transport;
  clientId: string;
  /** The address of a member, or undefined when it is not (any longer) one. */
  addressOf: (node: string) => string | undefined;
  heartbeatMs: number;
  onInvalidate: (node: string, keys: Buffer[]) => void;
  /** The stream to `node` was lost: drop what it tracked. */
  onLost: (node: string) => void;
  /** First back-off after a loss. Default 100 ms. */
  minBackoffMs?: number;
  /** Longest back-off. Default 5000 ms. */
  maxBackoffMs?: number;
}

type Status = 'connecting' | 'live' | 'waiting' | 'stopped';

interface StreamState {
  status: Status;
  sid: string | undefined;
  attempts: number;
  controller: AbortController | undefined;
  timer: NodeJS.Timeout | undefined;
  wake: (() => void) | undefined;
}

/** A node without the route: ask again this much later. */
const UNSUPPORTED_RETRY_MS = 60_000;

export class InvalidationSubscriber {
  private readonly streams = new Map<string, StreamState>();
  private closed = false;
  readonly counters = { opened: 0, lost: 0, invalidations: 0, failedAttempts: 0 };

  constructor(private readonly o: InvalidationSubscriberOptions) {}

  /**
   * The id of the live stream to `node` (what a Get to it carries as `track`), or
   * undefined when none is live — then one is being opened.
   */
  liveSid(node: string): string | undefined {
    const st = this.streams.get(node);
    if (st) return st.status === 'live' ? st.sid : undefined;
    if (!this.closed && this.o.transport.stream) this.open(node);
    return undefined;
  }

  /** Nodes whose stream is live. */
  get liveNodes(): string[] {
    return [...this.streams].filter(([, s]) => s.status === 'live').map(([n]) => n);
  }

  close(): void {
    this.closed = true;
    for (const st of this.streams.values()) {
      st.status = 'stopped';
      st.controller?.abort();
      if (st.timer) clearTimeout(st.timer);
      st.wake?.();
    }
    this.streams.clear();
  }

  private open(node: string): void {
    const st: StreamState = { status: 'connecting', sid: undefined, attempts: 0, controller: undefined, timer: undefined, wake: undefined };
    this.streams.set(node, st);
    void this.run(node, st);
  }

  private async run(node: string, st: StreamState): Promise<void> {
    const minMs = this.o.minBackoffMs ?? 100;
    const maxMs = this.o.maxBackoffMs ?? 5000;
    while (!this.closed && st.status !== 'stopped') {
      const address = this.o.addressOf(node);
      if (address === undefined) break;
      const controller = new AbortController();
      st.controller = controller;
      st.status = 'connecting';
      let failure: unknown;
      try {
        const req: SubscribeRequest = { v: MESSAGE_VERSION.invalidations, from: this.o.clientId, heartbeatMs: this.o.heartbeatMs };
        await this.o.transport.stream!(address, Routes.invalidations, req, {
          signal: controller.signal,
          idleTimeoutMs: 3 * this.o.heartbeatMs + 1000,
          onMessage: (raw) => this.onMessage(node, st, raw as InvalidationMessage),
        });
      } catch (err) {
        failure = err;
      }
      // (The status changed in onMessage or close() while the stream ran.)
      const now = st.status as Status;
      const wasLive = now === 'live';
      st.sid = undefined;
      if (now !== 'stopped') st.status = 'waiting';
      if (wasLive) {
        this.counters.lost++;
        this.o.onLost(node);
        st.attempts = 0;
      } else this.counters.failedAttempts++;
      if (this.closed || now === 'stopped') return;
      const code = (failure as RingkvError | undefined)?.code;
      const delay = code === 'ROUTE_NOT_FOUND' ? UNSUPPORTED_RETRY_MS : Math.min(maxMs, minMs * 2 ** st.attempts) * (0.5 + Math.random() / 2);
      st.attempts = Math.min(st.attempts + 1, 30);
      await new Promise<void>((resolve) => {
        st.wake = resolve;
        st.timer = setTimeout(resolve, delay);
        st.timer.unref();
      });
      st.wake = undefined;
      st.timer = undefined;
    }
    if (this.streams.get(node) === st) this.streams.delete(node);
  }

  private onMessage(node: string, st: StreamState, msg: InvalidationMessage): void {
    if (!msg || typeof msg !== 'object') return;
    if (msg.t === 'hello' && typeof msg.sid === 'string') {
      st.sid = msg.sid;
      st.status = 'live';
      st.attempts = 0;
      this.counters.opened++;
    } else if (msg.t === 'inv' && st.status === 'live' && Array.isArray(msg.keys)) {
      this.counters.invalidations += msg.keys.length;
      this.o.onInvalidate(node, msg.keys);
    }
  }
}
