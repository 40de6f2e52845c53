// Server-assisted invalidation of the SDK's near cache, as Redis's client-side caching
// tracks keys: a client opens one stream per node (POST /internal/v1/invalidations; format
// in sdk/wire/invalidation-stream.ts and wire-format.md), its Gets name the stream (`track`),
// and this node remembers, per stream, the keys read through it. When such a key changes
// here (the replica store's change hook, after the write is readable), the node sends it on
// every stream tracking it and forgets it there (read it again to track it again).
//
// Bounds: at most maxSubscribers streams (more are refused with OVERLOADED), each tracking at
// most maxTrackedKeysPerSubscriber keys and all together maxTrackedKeys; past a bound the
// oldest key of the (largest) stream is dropped and sent as an invalidation, so a client never
// keeps a value nobody tracks. A stream whose client does not read what is sent (more than
// maxPendingBytes buffered) is cut: the client flushes what it cached from this node, as it
// does whenever a stream ends. Invalidations are coalesced per stream and written once per
// event-loop turn. Single-threaded (the server's event loop).

import crypto from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { OverloadedError } from '../sdk/errors.js';
import type { InvalidationMessage, SubscribeRequest } from '../sdk/wire/invalidation-stream.js';
import { INVALIDATION_STREAM_VERSION } from '../sdk/wire/invalidation-stream.js';
import { encodeFrame, FRAMES_CONTENT_TYPE } from '../sdk/wire/frames.js';

export interface InvalidationHubOptions {
  /** Streams open at once. Default 256. */
  maxSubscribers: number;
  /** Keys one stream tracks at most. Default 100,000. */
  maxTrackedKeysPerSubscriber: number;
  /** Keys tracked at most over all streams. Default 1,000,000. */
  maxTrackedKeys: number;
  /** Bytes buffered for a stream before it is cut. Default 4 MiB. */
  maxPendingBytes: number;
  /** Most keys in one invalidation message. Default 1000. */
  maxKeysPerFrame: number;
}

export const invalidationHubDefaults: InvalidationHubOptions = {
  maxSubscribers: 256,
  maxTrackedKeysPerSubscriber: 100_000,
  maxTrackedKeys: 1_000_000,
  maxPendingBytes: 4 * 1024 * 1024,
  maxKeysPerFrame: 1000,
};

const MIN_HEARTBEAT_MS = 100;
const MAX_HEARTBEAT_MS = 60_000;
const DEFAULT_HEARTBEAT_MS = 1000;

class Subscriber {
  /** Tracked keys (latin1 strings), oldest first. */
  readonly tracked = new Set<string>();
  /** Keys to send in the next frame. */
  pending: string[] = [];
  scheduled = false;
  heartbeat: NodeJS.Timeout | undefined;
  closed = false;

  constructor(
    readonly sid: string,
    readonly from: string,
    readonly res: ServerResponse,
  ) {}
}

export class InvalidationHub {
  private readonly o: InvalidationHubOptions;
  private readonly subs = new Map<string, Subscriber>();
  /** key -> streams tracking it. */
  private readonly index = new Map<string, Set<Subscriber>>();
  private totalTracked = 0;
  /** For metrics and tests. */
  readonly counters = { subscribed: 0, closed: 0, cut: 0, refused: 0, invalidations: 0, evictions: 0 };

  constructor(
    private readonly nodeId: string,
    opts: Partial<InvalidationHubOptions> = {},
  ) {
    this.o = { ...invalidationHubDefaults, ...opts };
  }

  get subscribers(): number {
    return this.subs.size;
  }

  get trackedKeys(): number {
    return this.totalTracked;
  }

  /**
   * Opens a stream on `res` for the subscription request `msg`: headers, then hello, then
   * invalidations and heartbeats until the client goes away or closeAll(). Throws
   * OverloadedError when maxSubscribers streams are open.
   */
  subscribe(req: IncomingMessage, res: ServerResponse, msg: SubscribeRequest): void {
    if (this.subs.size >= this.o.maxSubscribers) {
      this.counters.refused++;
      throw new OverloadedError(`node ${this.nodeId} has ${this.subs.size} invalidation streams open (maxSubscribers)`, 5);
    }
    const hb = Math.min(MAX_HEARTBEAT_MS, Math.max(MIN_HEARTBEAT_MS, Math.floor(Number(msg.heartbeatMs) || DEFAULT_HEARTBEAT_MS)));
    const sub = new Subscriber(crypto.randomBytes(12).toString('base64url'), typeof msg.from === 'string' ? msg.from.slice(0, 256) : '', res);
    this.subs.set(sub.sid, sub);
    this.counters.subscribed++;
    res.writeHead(200, { 'content-type': FRAMES_CONTENT_TYPE, 'cache-control': 'no-store' });
    const close = () => this.drop(sub);
    res.on('close', close);
    req.on('error', close);
    this.write(sub, { t: 'hello', v: INVALIDATION_STREAM_VERSION, sid: sub.sid, heartbeatMs: hb, node: this.nodeId });
    sub.heartbeat = setInterval(() => {
      if (!sub.scheduled) this.write(sub, { t: 'hb' });
    }, hb);
    sub.heartbeat.unref();
  }

  /**
   * Tracks `key` for stream `sid` (a Get with `track`, before it reads): true when the
   * stream exists, so the Get's answer may say `tracked`.
   */
  track(sid: string, key: Uint8Array): boolean {
    const sub = this.subs.get(sid);
    if (!sub || sub.closed) return false;
    const k = Buffer.from(key.buffer, key.byteOffset, key.byteLength).toString('latin1');
    if (sub.tracked.has(k)) return true;
    if (sub.tracked.size >= this.o.maxTrackedKeysPerSubscriber) this.evictOldest(sub);
    if (this.totalTracked >= this.o.maxTrackedKeys) {
      let largest = sub;
      for (const s of this.subs.values()) if (s.tracked.size > largest.tracked.size) largest = s;
      this.evictOldest(largest);
    }
    sub.tracked.add(k);
    this.totalTracked++;
    let set = this.index.get(k);
    if (!set) {
      set = new Set();
      this.index.set(k, set);
    }
    set.add(sub);
    return true;
  }

  /** The replica store's change hook: `key` changed on this node (the new version is readable). */
  keyChanged(key: Buffer): void {
    if (this.index.size === 0) return;
    const k = key.toString('latin1');
    const set = this.index.get(k);
    if (!set) return;
    this.index.delete(k);
    for (const sub of set) {
      sub.tracked.delete(k);
      this.totalTracked--;
      this.queue(sub, k);
    }
  }

  /** Ends every stream (the server stops): clients flush what they cached from this node. */
  closeAll(): void {
    for (const sub of [...this.subs.values()]) {
      sub.res.end();
      this.drop(sub);
    }
  }

  /** Drops the oldest key `sub` tracks and tells the client to drop it too. */
  private evictOldest(sub: Subscriber): void {
    const oldest = sub.tracked.values().next();
    if (oldest.done) return;
    const k = oldest.value;
    sub.tracked.delete(k);
    this.totalTracked--;
    const set = this.index.get(k);
    set?.delete(sub);
    if (set && set.size === 0) this.index.delete(k);
    this.counters.evictions++;
    this.queue(sub, k);
  }

  private queue(sub: Subscriber, k: string): void {
    sub.pending.push(k);
    this.counters.invalidations++;
    if (sub.scheduled) return;
    sub.scheduled = true;
    setImmediate(() => {
      sub.scheduled = false;
      const keys = sub.pending;
      sub.pending = [];
      for (let i = 0; i < keys.length && !sub.closed; i += this.o.maxKeysPerFrame) {
        this.write(sub, { t: 'inv', keys: keys.slice(i, i + this.o.maxKeysPerFrame).map((x) => Buffer.from(x, 'latin1')) });
      }
    });
  }

  private write(sub: Subscriber, msg: InvalidationMessage): void {
    if (sub.closed) return;
    if (sub.res.writableLength > this.o.maxPendingBytes) {
      // The client does not read: cut the stream (it flushes and subscribes again).
      this.counters.cut++;
      sub.res.destroy();
      this.drop(sub);
      return;
    }
    sub.res.write(encodeFrame(msg));
  }

  private drop(sub: Subscriber): void {
    if (sub.closed) return;
    sub.closed = true;
    this.counters.closed++;
    if (sub.heartbeat) clearInterval(sub.heartbeat);
    this.subs.delete(sub.sid);
    for (const k of sub.tracked) {
      const set = this.index.get(k);
      set?.delete(sub);
      if (set && set.size === 0) this.index.delete(k);
    }
    this.totalTracked -= sub.tracked.size;
    sub.tracked.clear();
    sub.pending = [];
  }
}
