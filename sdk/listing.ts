// Listing: kv.keys() and kv.entries() as async iterators over every range of the ring. The
// ring is cut into token spans, adjacent spans with the same replicas are joined, and each
// is read from one of its replicas (Routes.scan, page by page, in token order); a replica
// that fails is replaced by another replica of the same span, from where the listing
// stood. The position is (token, key): everything handed out so far lies at or before it,
// so nothing is handed out twice (a replica taking over, or a resumed cursor, starts after
// it) and a listing resumes from its cursor on another client, or after a ring change.
// A replica of a release without the scan route of protocol 6 (404, or PROTOCOL_MISMATCH)
// fails the listing at once with a ProtocolMismatchError naming it and its version: the
// servers are to be upgraded before their clients (sdk/protocol-support.ts).
// One Listing is one iteration; it is not safe to iterate it twice at once.

import { Ring } from './ring.js';
import type { ClusterView } from './cluster-view.js';
import type { Transport } from './transport.js';
import type { ScanRequest, ScanResponse } from './wire/protocol.js';
import { MESSAGE_VERSION, PROTOCOL_OF_ROUTE, Routes } from './wire/protocol.js';
import { AbortedError, InvalidArgumentError, QuorumNotMetError } from './errors.js';
import { olderNodeError } from './protocol-support.js';
import type { StoredObject } from './versioning/index.js';

const MAX_TOKEN = 0xffffffff;
/** Most spans one page request carries. */
const MAX_SPANS_PER_REQUEST = 256;

/** Options of keys() and entries(). */
export interface ListOptions {
  /** Only keys that start with this (a string is matched as its UTF-8 bytes). Default: every key. */
  prefix?: string | Uint8Array;
  /** Resume after the position a previous listing's `cursor` gave. Default: from the start. */
  cursor?: string;
  /** Keys per page request to a replica (1 to 10,000). Default 500. */
  pageSize?: number;
  /** Timeout of each page request, in ms. Default: the client's timeoutMs. */
  timeoutMs?: number;
  /** Stops the listing: the iterator rejects with ABORTED at its next page. */
  signal?: AbortSignal;
}

/** What listing needs of the client. */
export interface ListingDeps {
  view: ClusterView;
  transport: Transport;
  /** True when requests should go to `node` now (membership and the client's failure detector). */
  isUsable(node: string): boolean;
  timeoutMs: number;
  isClosed(): boolean;
  /** The client's data center (several data centers): its replicas are read first. */
  localDc?: string | undefined;
}

/** A position: everything at or before (token, key) is behind; without a key, everything below `token`. */
interface Position {
  token: number;
  key?: Buffer;
}

/** A run of adjacent token spans with the same replicas. */
interface SpanGroup {
  from: number;
  to: number;
  replicas: string[];
}

/**
 * An async iterable over a listing, with the cursor to resume it. Between two items,
 * `cursor` resumes right after the last item handed out; `done` is true once every range
 * has been read.
 */
export class Listing<T> implements AsyncIterable<T> {
  private pos: Position;
  private finished = false;
  private started = false;

  /** @internal made by the client's keys() / entries() */
  constructor(
    private readonly deps: ListingDeps,
    private readonly opts: ListOptions,
    private readonly make: (key: Buffer, obj: StoredObject) => T | undefined,
    private readonly keysOnly: boolean,
  ) {
    this.pos = opts.cursor === undefined ? { token: 0 } : decodeCursor(opts.cursor);
    checkListOptions(opts);
  }

  /** Where the listing stands: hand it to keys()/entries() as `cursor` to go on from here. */
  get cursor(): string {
    return encodeCursor(this.pos);
  }

  /** True once the listing has read every range. */
  get done(): boolean {
    return this.finished;
  }

  [Symbol.asyncIterator](): AsyncIterator<T> {
    if (this.started) throw new InvalidArgumentError('a listing is iterated once; start another from its cursor');
    this.started = true;
    return this.run();
  }

  private async *run(): AsyncGenerator<T> {
    const d = this.deps;
    const prefix = this.opts.prefix === undefined ? undefined : toBytes(this.opts.prefix);
    const pageSize = this.opts.pageSize ?? 500;
    const timeoutMs = this.opts.timeoutMs ?? d.timeoutMs;
    const groups = spanGroups(d.view.ring, d.view.settings.replicationFactor);
    let g = groupAt(groups, this.pos.token);
    let failed = new Set<string>();
    let failedAt = g;
    let lastErr: unknown;
    while (g < groups.length) {
      if (d.isClosed()) throw new AbortedError('list', new Error('the client was closed'));
      if (this.opts.signal?.aborted) throw new AbortedError('list', this.opts.signal.reason);
      if (g !== failedAt) {
        failed = new Set();
        failedAt = g;
      }
      const node = this.pick(groups, g, failed);
      if (node === undefined) throw new QuorumNotMetError(`list (tokens ${groups[g]!.from}..${groups[g]!.to})`, 1, 0, failed.size, lastErr);
      let end = g + 1;
      while (end < groups.length && end - g < MAX_SPANS_PER_REQUEST && groups[end]!.replicas.includes(node)) end++;
      const spans: [number, number][] = groups.slice(g, end).map((x) => [x.from, x.to]);
      spans[0]![0] = Math.max(spans[0]![0], this.pos.token);
      const req: ScanRequest = { v: MESSAGE_VERSION.scan, spans, limit: pageSize };
      if (this.pos.key && Ring.tokenOf(this.pos.key) === this.pos.token) req.after = { span: 0, key: this.pos.key };
      if (prefix) req.prefix = prefix;
      if (this.keysOnly) req.keysOnly = true;
      let page: ScanResponse;
      const address = d.view.addressOf(node);
      try {
        page = await d.transport.call<ScanResponse>(address, Routes.scan, req, { timeoutMs });
      } catch (err) {
        // A node of an older release: say which, rather than list around it.
        const older = olderNodeError(err, { node, address, route: Routes.scan, what: 'listing', sentProtocol: req.v, routeProtocol: PROTOCOL_OF_ROUTE.scan });
        if (older) throw older;
        // Another replica of this span goes on from the same position.
        failed.add(node);
        lastErr = err;
        continue;
      }
      for (const e of page.entries) {
        const key = Buffer.from(e.key);
        const token = Ring.tokenOf(key);
        if (!isAfter(token, key, this.pos)) continue; // handed out already
        if (prefix && !startsWith(key, prefix)) continue;
        this.pos = { token, key };
        const item = this.make(key, e.obj);
        if (item !== undefined) yield item;
      }
      if (page.next) {
        const key = Buffer.from(page.next.key);
        const token = Ring.tokenOf(key);
        if (isAfter(token, key, this.pos)) this.pos = { token, key };
      } else {
        const to = groups[end - 1]!.to;
        if (to >= MAX_TOKEN) break;
        this.pos = { token: to + 1 };
      }
      g = groupAt(groups, this.pos.token);
    }
    this.finished = true;
  }

  /** The replica of group `g` to read: usable ones first, the one covering the longest run. */
  private pick(groups: SpanGroup[], g: number, failed: Set<string>): string | undefined {
    const d = this.deps;
    const readable = groups[g]!.replicas.filter((x) => {
      const s = d.view.member(x)?.state;
      // A recovering replica may hold keys whose deletes it missed: never listed from.
      return !failed.has(x) && s !== undefined && s !== 'recovering' && s !== 'left';
    });
    const usable = readable.filter((x) => d.isUsable(x));
    const local = d.localDc === undefined ? usable : usable.filter((x) => d.view.dcOf(x) === d.localDc);
    const pool = local.length > 0 ? local : usable.length > 0 ? usable : readable;
    let best: string | undefined;
    let bestRun = -1;
    for (const node of shuffled(pool)) {
      let run = 1;
      while (g + run < groups.length && run < MAX_SPANS_PER_REQUEST && groups[g + run]!.replicas.includes(node)) run++;
      if (run > bestRun) {
        best = node;
        bestRun = run;
      }
    }
    return best;
  }
}

function checkListOptions(o: ListOptions): void {
  if (o.prefix !== undefined && typeof o.prefix !== 'string' && !(o.prefix instanceof Uint8Array)) {
    throw new InvalidArgumentError('prefix must be a string or bytes');
  }
  if (o.pageSize !== undefined && !(Number.isInteger(o.pageSize) && o.pageSize >= 1 && o.pageSize <= 10_000)) {
    throw new InvalidArgumentError('pageSize must be an integer from 1 to 10000');
  }
  if (o.timeoutMs !== undefined && !(Number.isFinite(o.timeoutMs) && o.timeoutMs > 0)) throw new InvalidArgumentError('timeoutMs must be a positive number');
  if (o.signal !== undefined && !(o.signal instanceof AbortSignal)) throw new InvalidArgumentError('signal must be an AbortSignal');
}

/**
 * The ring's token spans in ascending order with their replicas, adjacent spans with the
 * same replica set joined. Vnode token t owns (previous token, t]; the span past the last
 * token wraps to the first. A ring with replication settings places replicas per data
 * center (Ring.replicasForToken, every data center's); one without takes the first `n`.
 */
export function spanGroups(ring: Ring, n: number): SpanGroup[] {
  const tokens = ring.tokens();
  const spans: SpanGroup[] = [];
  const push = (from: number, to: number) => {
    const replicas = ring.replication !== undefined ? [...ring.replicasForToken(from)] : ring.preferenceListForToken(from, n);
    const last = spans[spans.length - 1];
    if (last && last.to + 1 === from && sameSet(last.replicas, replicas)) last.to = to;
    else spans.push({ from, to, replicas });
  };
  let from = 0;
  for (const { token } of tokens) {
    if (token < from) continue; // a second vnode on one token owns nothing
    push(from, token);
    from = token + 1;
  }
  if (from <= MAX_TOKEN) push(from, MAX_TOKEN);
  return spans;
}

/** Index of the group holding `token` (groups.length when past the end). */
function groupAt(groups: SpanGroup[], token: number): number {
  let lo = 0;
  let hi = groups.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (groups[mid]!.to < token) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

function isAfter(token: number, key: Buffer, pos: Position): boolean {
  if (token !== pos.token) return token > pos.token;
  return pos.key === undefined || Buffer.compare(key, pos.key) > 0;
}

function sameSet(a: string[], b: string[]): boolean {
  return a.length === b.length && a.every((x) => b.includes(x));
}

function startsWith(key: Buffer, prefix: Buffer): boolean {
  return key.length >= prefix.length && prefix.equals(key.subarray(0, prefix.length));
}

function toBytes(x: string | Uint8Array): Buffer {
  return typeof x === 'string' ? Buffer.from(x, 'utf8') : Buffer.from(x.buffer, x.byteOffset, x.byteLength);
}

function shuffled<T>(a: readonly T[]): T[] {
  const out = [...a];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

// A cursor is `l1.<token in hex>` or `l1.<token in hex>.<key in base64url>`: versioned, so
// that a later format can still read (or plainly refuse) an old one.
const CURSOR_VERSION = 'l1';

function encodeCursor(p: Position): string {
  return p.key ? `${CURSOR_VERSION}.${p.token.toString(16)}.${p.key.toString('base64url')}` : `${CURSOR_VERSION}.${p.token.toString(16)}`;
}

function decodeCursor(c: string): Position {
  const m = typeof c === 'string' ? /^l1\.([0-9a-f]{1,8})(?:\.([A-Za-z0-9_-]+))?$/.exec(c) : null;
  if (!m) throw new InvalidArgumentError(`not a listing cursor: ${JSON.stringify(c)}`);
  const token = parseInt(m[1]!, 16);
  if (m[2] === undefined) return { token };
  const key = Buffer.from(m[2], 'base64url');
  if (Ring.tokenOf(key) !== token) throw new InvalidArgumentError('listing cursor is damaged: its key does not hash to its token');
  return { token, key };
}
