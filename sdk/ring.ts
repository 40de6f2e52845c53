// The consistent-hash ring: nodes placed on a 32-bit token circle through weighted virtual
// nodes, and the preference-list lookups that route a key to its replicas. Immutable once
// built (withMember / withoutMember return new rings); share freely: lookups are synchronous.

import murmurhash from 'murmurhash';
import { InvalidArgumentError } from './errors.js';

/** One physical node of the ring. */
export interface RingMember {
  /** The node id; non-empty and unique within a ring. */
  id: string;
  /** Relative capacity; default 1.0. The node gets round(vnodesPerNode * weight) vnodes, at least 1. */
  weight?: number;
}

/** Options of a Ring. */
export interface RingOptions {
  /** Virtual nodes of a member of weight 1.0; a positive integer. Default {@link DEFAULT_VNODES_PER_NODE}. */
  vnodesPerNode?: number;
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

  /** A new ring with `m` added, or with the weight of the existing member `m.id` replaced. */
  withMember(m: RingMember): Ring {
    const rest = this.members.filter((x) => x.id !== m.id);
    return new Ring([...rest, m], { vnodesPerNode: this.vnodesPerNode });
  }

  /** A new ring without member `id`; this ring itself when `id` is not a member. */
  withoutMember(id: string): Ring {
    if (!this.#ids.includes(id)) return this;
    return new Ring(
      this.members.filter((x) => x.id !== id),
      { vnodesPerNode: this.vnodesPerNode },
    );
  }

  /** Index of the first vnode whose token is >= `token`, wrapping to 0. REQUIRES: a non-empty ring. */
  #firstAtOrAfter(token: number): number {
    const tokens = this.#tokens;
    let lo = 0;
    let hi = tokens.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (tokens[mid]! < token) lo = mid + 1;
      else hi = mid;
    }
    return lo === tokens.length ? 0 : lo;
  }
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
  return Object.freeze({ id: m.id, weight });
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
