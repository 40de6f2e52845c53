// The consistent-hash ring: nodes placed on a 32-bit token circle through weighted virtual
// nodes, and the lookups that route a key to its replicas — the flat preference list, and
// the placement per data center (replicas on distinct racks while racks remain). Immutable
// once built (withMember / withoutMember return new rings); share freely: lookups are
// synchronous, and placements are computed once per range and cached.

import murmurhash from 'murmurhash';
import { InvalidArgumentError } from './errors.js';
import { DEFAULT_DC } from './membership.js';
import type { ReplicationMap } from './membership.js';

/** One physical node of the ring. */
export interface RingMember {
  /** The node id; non-empty and unique within a ring. */
  id: string;
  /** Relative capacity; default 1.0. The node gets round(vnodesPerNode * weight) vnodes, at least 1. */
  weight?: number;
  /** Data center; default {@link DEFAULT_DC}. */
  dc?: string;
  /** Rack within the data center; default none (the members without one share one rack). */
  rack?: string;
}

/** Options of a Ring. */
export interface RingOptions {
  /** Virtual nodes of a member of weight 1.0; a positive integer. Default {@link DEFAULT_VNODES_PER_NODE}. */
  vnodesPerNode?: number;
  /**
   * Replicas per data center, for {@link Ring.replicas} and the other placement lookups
   * (`{ default: 3 }` for a cluster of one data center). Without it only the flat
   * preference lists are available.
   */
  replication?: ReplicationMap;
}

/** One data center's part of the ring: its vnodes in token order and its racks. */
interface DcRing {
  name: string;
  rf: number;
  tokens: Uint32Array;
  /** owners[i] = member index of tokens[i]. */
  owners: Uint32Array;
  /** Distinct physical members. */
  memberCount: number;
  /** Distinct racks of the members. */
  rackCount: number;
}

/** A range's placement: every replica (data centers in name order), and per data center. */
interface Placement {
  all: readonly string[];
  byDc: readonly (readonly string[])[];
}

/** An inclusive token span [from, to] whose every token has `node` as its first owner (Ring.arcs). */
export interface RingArc {
  node: string;
  from: number;
  to: number;
}

/** Default number of virtual nodes per member of weight 1.0. */
export const DEFAULT_VNODES_PER_NODE = 128;

/** Size of the token space: tokens are 0 .. 2^32 - 1. */
const TOKEN_SPACE = 2 ** 32;

/**
 * A consistent-hash ring with virtual nodes.
 *
 * Placement: vnode i (0 <= i < vnodes) of node `id` sits at token
 * `murmurhash.v3(`${id}#${i}`, 0)`. Equal tokens are ordered by node id, so every machine
 * builds the same ring from the same members. A key's token is the murmurhash v3 of its
 * bytes; its primary owner is the owner of the first vnode token >= the key's token,
 * wrapping to the smallest token. Vnode token t therefore owns the range (previous token, t];
 * the first token also owns the range that wraps past 2^32 - 1.
 *
 * Balance: placement is random, so a node's primary share has a relative standard
 * deviation of about 1/sqrt(vnodes) (8.8% at 128). What a node stores is every range it is
 * one of the N replicas of, which averages N ranges: measured at 128 vnodes, every node of a
 * 4..7-node cluster holds within 10% of the mean (test/sdk/ring.test.ts). Give a node a
 * smaller weight to move share off it.
 */
export class Ring {
  /** The members, sorted by id, with their weight filled in. */
  readonly members: readonly RingMember[];
  /** Virtual nodes of a member of weight 1.0. */
  readonly vnodesPerNode: number;

  /** Sorted vnode tokens. */
  readonly #tokens: Uint32Array;
  /** owners[i] = index into `members` of the node owning tokens[i]. */
  readonly #owners: Uint32Array;
  /** Member ids by index, for the lookups. */
  readonly #ids: readonly string[];
  /** Scratch marks for preferenceListForToken: #marks[node] === #epoch means "already taken". */
  readonly #marks: Uint32Array;
  #epoch = 0;
  #tokenList: readonly { token: number; node: string }[] | undefined;
  /** Per member index: its data center and its rack's index within that data center. */
  readonly #dcOf: readonly string[];
  readonly #rackOf: Uint32Array;
  /** The replication settings, the data centers they name (sorted) and each one's ring. */
  readonly replication: ReplicationMap | undefined;
  readonly #dcs: readonly DcRing[];
  readonly #dcIndex = new Map<string, number>();
  /** Placement of each range (by index of its end token in #tokens), built on first use. */
  #placements: (Placement | undefined)[] | undefined;

  /**
   * Builds a ring. Throws InvalidArgumentError for an empty or duplicate id, a weight that
   * is not a finite number > 0, or a vnodesPerNode that is not a positive integer.
   */
  constructor(members: readonly RingMember[], opts: RingOptions = {}) {
    const vnodesPerNode = opts.vnodesPerNode ?? DEFAULT_VNODES_PER_NODE;
    if (!Number.isSafeInteger(vnodesPerNode) || vnodesPerNode <= 0) {
      throw new InvalidArgumentError(`vnodesPerNode must be a positive integer, got ${String(vnodesPerNode)}`);
    }
    if (!Array.isArray(members)) throw new InvalidArgumentError('ring members must be an array');
    const normalized: RingMember[] = members.map(checkMember);
    normalized.sort((a, b) => compareStrings(a.id, b.id));
    for (let i = 1; i < normalized.length; i++) {
      if (normalized[i]!.id === normalized[i - 1]!.id) {
        throw new InvalidArgumentError(`duplicate ring member id ${JSON.stringify(normalized[i]!.id)}`);
      }
    }
    this.members = Object.freeze(normalized);
    this.vnodesPerNode = vnodesPerNode;
    this.#ids = Object.freeze(normalized.map((m) => m.id));

    // Collect (token, member index) pairs; members are sorted by id, so ordering equal tokens
    // by member index orders them by node id.
    let total = 0;
    const counts = normalized.map((m) => {
      const c = vnodeCount(vnodesPerNode, m.weight!);
      total += c;
      return c;
    });
    const rawTokens = new Uint32Array(total);
    const rawOwners = new Uint32Array(total);
    let k = 0;
    for (let m = 0; m < normalized.length; m++) {
      const id = normalized[m]!.id;
      for (let i = 0; i < counts[m]!; i++) {
        rawTokens[k] = vnodeToken(id, i);
        rawOwners[k] = m;
        k++;
      }
    }
    const order = Array.from({ length: total }, (_, i) => i);
    order.sort((a, b) => rawTokens[a]! - rawTokens[b]! || rawOwners[a]! - rawOwners[b]!);
    this.#tokens = new Uint32Array(total);
    this.#owners = new Uint32Array(total);
    for (let i = 0; i < total; i++) {
      this.#tokens[i] = rawTokens[order[i]!]!;
      this.#owners[i] = rawOwners[order[i]!]!;
    }
    this.#marks = new Uint32Array(normalized.length);

    // Data centers and racks. A rack is an index within its data center.
    this.#dcOf = Object.freeze(normalized.map((m) => m.dc ?? DEFAULT_DC));
    this.#rackOf = new Uint32Array(normalized.length);
    const racksByDc = new Map<string, Map<string, number>>();
    for (let m = 0; m < normalized.length; m++) {
      const dc = this.#dcOf[m]!;
      let racks = racksByDc.get(dc);
      if (!racks) racksByDc.set(dc, (racks = new Map()));
      const rack = normalized[m]!.rack ?? '';
      let r = racks.get(rack);
      if (r === undefined) racks.set(rack, (r = racks.size));
      this.#rackOf[m] = r;
    }
    const replication = opts.replication;
    if (replication !== undefined) {
      checkReplication(replication);
      this.replication = Object.freeze({ ...replication });
      const names = Object.keys(replication).sort(compareStrings);
      const dcs: DcRing[] = [];
      for (const name of names) {
        const idx: number[] = [];
        for (let i = 0; i < total; i++) if (this.#dcOf[this.#owners[i]!] === name) idx.push(i);
        const tokensOf = new Uint32Array(idx.length);
        const ownersOf = new Uint32Array(idx.length);
        idx.forEach((i, j) => {
          tokensOf[j] = this.#tokens[i]!;
          ownersOf[j] = this.#owners[i]!;
        });
        this.#dcIndex.set(name, dcs.length);
        dcs.push({
          name,
          rf: replication[name]!,
          tokens: tokensOf,
          owners: ownersOf,
          memberCount: this.#dcOf.filter((d) => d === name).length,
          rackCount: racksByDc.get(name)?.size ?? 0,
        });
      }
      this.#dcs = Object.freeze(dcs);
    } else {
      this.replication = undefined;
      this.#dcs = [];
    }
  }

  /** The 32-bit unsigned token of a key: murmurhash v3 (seed 0) of its bytes (a string is hashed as UTF-8). */
  static tokenOf(key: Uint8Array | string): number {
    return murmurhash.v3(key, 0) >>> 0;
  }

  /** The first `n` distinct physical nodes clockwise from the key's token (fewer if the ring has fewer nodes). */
  preferenceList(key: Uint8Array | string, n: number): string[] {
    return this.preferenceListForToken(Ring.tokenOf(key), n);
  }

  /** The first `n` distinct physical nodes clockwise from `token` (an integer in 0 .. 2^32 - 1). */
  preferenceListForToken(token: number, n: number): string[] {
    checkToken(token);
    if (!Number.isSafeInteger(n) || n < 0) throw new InvalidArgumentError(`n must be a non-negative integer, got ${String(n)}`);
    const want = Math.min(n, this.#ids.length);
    const out: string[] = [];
    if (want === 0) return out;
    const tokens = this.#tokens;
    const owners = this.#owners;
    const marks = this.#marks;
    // A fresh epoch clears every mark at once; on wrap-around clear them for real.
    if (++this.#epoch === 0xffffffff) {
      marks.fill(0);
      this.#epoch = 1;
    }
    const epoch = this.#epoch;
    const len = tokens.length;
    let i = this.#firstAtOrAfter(token);
    for (let seen = 0; seen < len && out.length < want; seen++, i++) {
      if (i === len) i = 0;
      const owner = owners[i]!;
      if (marks[owner] !== epoch) {
        marks[owner] = epoch;
        out.push(this.#ids[owner]!);
      }
    }
    return out;
  }

  /**
   * Walks clockwise from the key's token yielding every distinct physical node once: the
   * preference list first, then the fallbacks beyond it (for sloppy quorum / hinted handoff).
   */
  *walk(key: Uint8Array | string): IterableIterator<string> {
    const len = this.#tokens.length;
    if (len === 0) return;
    const owners = this.#owners;
    const taken = new Uint8Array(this.#ids.length);
    let remaining = this.#ids.length;
    let i = this.#firstAtOrAfter(Ring.tokenOf(key));
    for (let seen = 0; seen < len && remaining > 0; seen++, i++) {
      if (i === len) i = 0;
      const owner = owners[i]!;
      if (taken[owner] === 0) {
        taken[owner] = 1;
        remaining--;
        yield this.#ids[owner]!;
      }
    }
  }

  /** The data centers of the replication settings, in name order (empty without them). */
  get dataCenters(): readonly string[] {
    return this.#dcs.map((d) => d.name);
  }

  /** The data center of member `id` (undefined for a non-member). */
  dcOf(id: string): string | undefined {
    const i = this.#indexOf(id);
    return i < 0 ? undefined : this.#dcOf[i];
  }

  /**
   * Every replica of the key: for each data center of the replication settings (in name
   * order), its replication factor's worth of its members (fewer when it has fewer),
   * walking clockwise from the key's token and taking members on racks not taken yet first
   * (see {@link Ring.replicasForToken}). Throws InvalidArgumentError on a ring built without
   * replication settings. The array is shared: do not mutate it.
   */
  replicas(key: Uint8Array | string): readonly string[] {
    return this.#placementAt(Ring.tokenOf(key)).all;
  }

  /**
   * The replicas of `token` (see {@link Ring.replicas}). Within a data center the walk goes
   * clockwise over its members' vnodes from the first at or after the token: a member on a
   * rack not taken yet is taken; one on a rack already taken is set aside while racks
   * remain, and once every rack has a replica the set-aside members come first (in the
   * order met), then the walk goes on. So a data center of R racks holds min(RF, R)
   * distinct racks for every key, and one without racks (or with one) holds the first RF
   * distinct members clockwise — the flat preference list. A data center's placement
   * depends only on its own members: a join or leave moves data within its data center.
   */
  replicasForToken(token: number): readonly string[] {
    checkToken(token);
    return this.#placementAt(token).all;
  }

  /** The replicas of the key in data center `dc`, in preference order (empty for a data center without replicas). */
  replicasInDc(key: Uint8Array | string, dc: string): readonly string[] {
    return this.replicasInDcForToken(Ring.tokenOf(key), dc);
  }

  /** The replicas of `token` in data center `dc`. */
  replicasInDcForToken(token: number, dc: string): readonly string[] {
    checkToken(token);
    const d = this.#dcIndex.get(dc);
    if (d === undefined) {
      if (this.replication === undefined) throw new InvalidArgumentError('this ring was built without replication settings');
      return EMPTY_LIST;
    }
    return this.#placementAt(token).byDc[d] ?? EMPTY_LIST;
  }

  /**
   * Walks clockwise from the key's token yielding every distinct member of data center
   * `dc` once (the fallbacks of a hinted write stay in the replica's data center).
   */
  *walkInDc(key: Uint8Array | string, dc: string): IterableIterator<string> {
    for (const id of this.walk(key)) if (this.#dcOf[this.#indexOf(id)] === dc) yield id;
  }

  #indexOf(id: string): number {
    // Members are sorted by id: binary search.
    const ids = this.#ids;
    let lo = 0;
    let hi = ids.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      const c = compareStrings(ids[mid]!, id);
      if (c === 0) return mid;
      if (c < 0) lo = mid + 1;
      else hi = mid - 1;
    }
    return -1;
  }

  /** The placement of the range `token` falls in (cached per range). */
  #placementAt(token: number): Placement {
    if (this.replication === undefined) throw new InvalidArgumentError('this ring was built without replication settings');
    if (this.#tokens.length === 0) return EMPTY_PLACEMENT;
    const i = this.#firstAtOrAfter(token);
    this.#placements ??= new Array<Placement | undefined>(this.#tokens.length);
    let p = this.#placements[i];
    if (p === undefined) {
      // Every token of the range (previous vnode token, tokens[i]] starts each data center's
      // walk at the same vnode: the first of that data center at or after tokens[i].
      const byDc = this.#dcs.map((d) => Object.freeze(this.#placeInDc(d, this.#tokens[i]!)));
      p = Object.freeze({ all: Object.freeze(byDc.flat()), byDc: Object.freeze(byDc) });
      this.#placements[i] = p;
    }
    return p;
  }

  /** The rack-aware walk of one data center from `token`. */
  #placeInDc(d: DcRing, token: number): string[] {
    const want = Math.min(d.rf, d.memberCount);
    const out: string[] = [];
    const len = d.tokens.length;
    if (want === 0 || len === 0) return out;
    let i = firstAtOrAfter(d.tokens, token);
    const taken = new Set<number>();
    const racksTaken = new Set<number>();
    const setAside: number[] = [];
    const take = (m: number) => {
      out.push(this.#ids[m]!);
    };
    for (let seen = 0; seen < len && out.length < want; seen++, i++) {
      if (i === len) i = 0;
      const m = d.owners[i]!;
      if (taken.has(m)) continue;
      taken.add(m);
      const rack = this.#rackOf[m]!;
      if (!racksTaken.has(rack)) {
        racksTaken.add(rack);
        take(m);
        if (racksTaken.size === d.rackCount) while (setAside.length > 0 && out.length < want) take(setAside.shift()!);
      } else if (racksTaken.size === d.rackCount) take(m);
      else setAside.push(m);
    }
    while (setAside.length > 0 && out.length < want) take(setAside.shift()!);
    return out;
  }

  /**
   * The sorted vnode tokens with their owners, for range computations: vnode token t owns
   * the range (previous token, t]; the range that wraps past 2^32 - 1 belongs to the first token.
   * Built on first use and shared; do not mutate.
   */
  tokens(): readonly { token: number; node: string }[] {
    if (this.#tokenList === undefined) {
      const list: { token: number; node: string }[] = [];
      for (let i = 0; i < this.#tokens.length; i++) {
        list.push(Object.freeze({ token: this.#tokens[i]!, node: this.#ids[this.#owners[i]!]! }));
      }
      this.#tokenList = Object.freeze(list);
    }
    return this.#tokenList;
  }

  /**
   * For each member, the fraction of the 2^32 token space for which it is the primary
   * (first) owner. Every member appears; the fractions sum to 1 (an empty ring gives an empty map).
   */
  ownership(): Map<string, number> {
    const out = new Map<string, number>();
    for (const id of this.#ids) out.set(id, 0);
    const tokens = this.#tokens;
    const len = tokens.length;
    for (let i = 0; i < len; i++) {
      const width = i === 0 ? TOKEN_SPACE - tokens[len - 1]! + tokens[0]! : tokens[i]! - tokens[i - 1]!;
      const id = this.#ids[this.#owners[i]!]!;
      out.set(id, out.get(id)! + width / TOKEN_SPACE);
    }
    return out;
  }

  /**
   * The ring as arcs of first ownership, for drawing it and for operators: in ascending
   * token order, each arc an inclusive token span [from, to] whose every token has `node` as
   * its first owner (the first replica of the flat preference list). Together they tile
   * 0 .. 2^32 - 1 exactly once; adjacent vnode ranges of one owner are joined. The range
   * that wraps past 2^32 - 1 is cut at 0, so the first and last arcs may have the same owner.
   * Each member's arcs add up to its share in ownership(). An empty ring has no arcs.
   */
  arcs(): RingArc[] {
    const tokens = this.#tokens;
    const len = tokens.length;
    const out: RingArc[] = [];
    if (len === 0) return out;
    const push = (owner: number, from: number, to: number) => {
      const node = this.#ids[owner]!;
      const last = out[out.length - 1];
      if (last && last.node === node) last.to = to;
      else out.push({ node, from, to });
    };
    // Vnode i owns (tokens[i - 1], tokens[i]]; the first one also owns the wrapping range.
    push(this.#owners[0]!, 0, tokens[0]!);
    for (let i = 1; i < len; i++) {
      // A second vnode on the same token owns nothing (the first of equal tokens is met first).
      if (tokens[i]! !== tokens[i - 1]!) push(this.#owners[i]!, tokens[i - 1]! + 1, tokens[i]!);
    }
    if (tokens[len - 1]! < TOKEN_SPACE - 1) push(this.#owners[0]!, tokens[len - 1]! + 1, TOKEN_SPACE - 1);
    return out;
  }

  /** A new ring with `m` added, or with the weight (data center, rack) of the existing member `m.id` replaced. */
  withMember(m: RingMember): Ring {
    const rest = this.members.filter((x) => x.id !== m.id);
    return new Ring([...rest, m], this.#options());
  }

  /** A new ring without member `id`; this ring itself when `id` is not a member. */
  withoutMember(id: string): Ring {
    if (!this.#ids.includes(id)) return this;
    return new Ring(
      this.members.filter((x) => x.id !== id),
      this.#options(),
    );
  }

  #options(): RingOptions {
    return this.replication === undefined ? { vnodesPerNode: this.vnodesPerNode } : { vnodesPerNode: this.vnodesPerNode, replication: this.replication };
  }

  /** Index of the first vnode whose token is >= `token`, wrapping to 0. REQUIRES: a non-empty ring. */
  #firstAtOrAfter(token: number): number {
    return firstAtOrAfter(this.#tokens, token);
  }
}

const EMPTY_LIST: readonly string[] = Object.freeze([]);
const EMPTY_PLACEMENT: Placement = Object.freeze({ all: EMPTY_LIST, byDc: Object.freeze([]) });

/** Largest replication factor of one data center. */
export const MAX_REPLICATION_FACTOR = 64;

/** Data center and rack names: 1-64 letters, digits, '.', '_' or '-'. */
export const TOPOLOGY_NAME = /^[A-Za-z0-9._-]{1,64}$/;

/**
 * Throws InvalidArgumentError unless `r` maps 1..64 data center names (TOPOLOGY_NAME) to
 * integers in 1..MAX_REPLICATION_FACTOR.
 */
export function checkReplication(r: unknown): asserts r is ReplicationMap {
  if (!r || typeof r !== 'object' || Array.isArray(r)) throw new InvalidArgumentError('replication must map data center names to replica counts');
  const entries = Object.entries(r as Record<string, unknown>);
  if (entries.length === 0 || entries.length > 64) throw new InvalidArgumentError('replication must name 1 to 64 data centers');
  for (const [dc, n] of entries) {
    if (!TOPOLOGY_NAME.test(dc)) throw new InvalidArgumentError(`data center name ${JSON.stringify(dc)} must be 1-64 letters, digits, '.', '_' or '-'`);
    if (typeof n !== 'number' || !Number.isInteger(n) || n < 1 || n > MAX_REPLICATION_FACTOR) {
      throw new InvalidArgumentError(`replication factor of data center ${dc} must be an integer in 1..${MAX_REPLICATION_FACTOR}, got ${String(n)}`);
    }
  }
}

/** Index of the first of the sorted `tokens` that is >= `token`, wrapping to 0. REQUIRES: non-empty. */
function firstAtOrAfter(tokens: Uint32Array, token: number): number {
  let lo = 0;
  let hi = tokens.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (tokens[mid]! < token) lo = mid + 1;
    else hi = mid;
  }
  return lo === tokens.length ? 0 : lo;
}

/** The token of vnode `i` of node `id`. */
export function vnodeToken(id: string, i: number): number {
  return murmurhash.v3(`${id}#${i}`, 0) >>> 0;
}

/** Number of vnodes of a member: round(vnodesPerNode * weight), at least 1. */
function vnodeCount(vnodesPerNode: number, weight: number): number {
  return Math.max(1, Math.round(vnodesPerNode * weight));
}

function checkMember(m: RingMember): RingMember {
  if (m === null || typeof m !== 'object') throw new InvalidArgumentError('a ring member must be an object');
  if (typeof m.id !== 'string' || m.id.length === 0) {
    throw new InvalidArgumentError('a ring member id must be a non-empty string');
  }
  const weight = m.weight ?? 1;
  if (typeof weight !== 'number' || !Number.isFinite(weight) || weight <= 0) {
    throw new InvalidArgumentError(`ring member ${JSON.stringify(m.id)}: weight must be a finite number > 0, got ${String(weight)}`);
  }
  for (const f of ['dc', 'rack'] as const) {
    const v = m[f];
    if (v !== undefined && (typeof v !== 'string' || !TOPOLOGY_NAME.test(v))) {
      throw new InvalidArgumentError(`ring member ${JSON.stringify(m.id)}: ${f} must be 1-64 letters, digits, '.', '_' or '-'`);
    }
  }
  const out: RingMember = { id: m.id, weight };
  if (m.dc !== undefined) out.dc = m.dc;
  if (m.rack !== undefined) out.rack = m.rack;
  return Object.freeze(out);
}

function checkToken(token: number): void {
  if (!Number.isInteger(token) || token < 0 || token >= TOKEN_SPACE) {
    throw new InvalidArgumentError(`a token must be an integer in 0 .. 2^32 - 1, got ${String(token)}`);
  }
}

/** Code-unit order, the same on every machine (unlike localeCompare). */
function compareStrings(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
