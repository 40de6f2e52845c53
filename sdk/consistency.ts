// Consistency levels and the replica counts they mean: for N replicas (quorumFor), and per
// data center for a cluster's replication settings (planFor: which data centers' replicas
// an operation asks, and how many must answer in each and in all). Pure functions.

import { InvalidConsistencyError, LocalDcRequiredError } from './errors.js';
import type { ReplicationMap } from './membership.js';

/**
 * How many replicas must answer (N replicas in one data center; the per-data-center meaning
 * is in planFor and storage-server/replication/README.md):
 * - `linearizable`: a majority, with the ABD protocol on top — a write first reads the
 *   newest version from a majority and stamps above it; a read writes what it returns back
 *   to a majority before returning. Last-write-wins mode only. With several data centers
 *   the majority is of every replica of every data center;
 * - `strong`: a majority for reads and writes (R = W = 2 of N = 3), so R + W > N; with
 *   several data centers, `localQuorum`;
 * - `eventual`: one (R = W = 1); with several data centers, `localOne`;
 * - `all`: every replica (of every data center);
 * - `quorum`: a majority of every replica of every data center (one data center: `strong`);
 * - `localQuorum`: a majority of the client's data center's replicas;
 * - `localOne`: one replica of the client's data center;
 * - `eachQuorum`: a majority of the replicas of each data center;
 * - `{ r, w }`: explicit counts, each in 1..N (an omitted one defaults to the majority);
 *   with several data centers, counts of the client's data center's replicas.
 */
export type Consistency =
  | 'linearizable'
  | 'strong'
  | 'eventual'
  | 'all'
  | 'quorum'
  | 'localQuorum'
  | 'localOne'
  | 'eachQuorum'
  | { r?: number; w?: number };

/** The named levels, as the SDK spells them. */
export const CONSISTENCY_LEVELS = ['linearizable', 'strong', 'eventual', 'all', 'quorum', 'localQuorum', 'localOne', 'eachQuorum'] as const;

export interface Quorum {
  r: number;
  w: number;
}

/** The R and W of `c` for `n` replicas; throws InvalidConsistencyError on anything else. */
export function quorumFor(c: Consistency, n: number): Quorum {
  const majority = Math.floor(n / 2) + 1;
  if (c === 'strong' || c === 'linearizable' || c === 'quorum' || c === 'localQuorum' || c === 'eachQuorum') return { r: majority, w: majority };
  if (c === 'eventual' || c === 'localOne') return { r: 1, w: 1 };
  if (c === 'all') return { r: n, w: n };
  if (c && typeof c === 'object' && !Array.isArray(c)) {
    const r = c.r ?? majority;
    const w = c.w ?? majority;
    const ok = (x: unknown) => typeof x === 'number' && Number.isInteger(x) && x >= 1 && x <= n;
    if (ok(r) && ok(w)) return { r, w };
  }
  throw new InvalidConsistencyError(c);
}

/**
 * Parses a Consistency header value (case-insensitive; `_` and `-` inside a level's name are
 * ignored, so `LOCAL_QUORUM` is `localQuorum`): `linearizable`, `strong`, `eventual` (or
 * `one`), `all`, `quorum`, `localQuorum`, `localOne`, `eachQuorum`, or explicit counts as
 * `r=2,w=1` (either may be left out) or the JSON `{"r": 2, "w": 1}`. Counts are checked
 * against N by quorumFor. Throws InvalidConsistencyError on anything else.
 */
export function parseConsistency(s: string): Consistency {
  const v = s.trim().toLowerCase();
  const name = /^[a-z_-]+$/.test(v) ? v.replace(/[_-]/g, '') : v;
  if (name === 'linearizable') return 'linearizable';
  if (name === 'strong') return 'strong';
  if (name === 'quorum') return 'quorum';
  if (name === 'eventual' || name === 'one') return 'eventual';
  if (name === 'all') return 'all';
  if (name === 'localquorum') return 'localQuorum';
  if (name === 'localone') return 'localOne';
  if (name === 'eachquorum') return 'eachQuorum';
  if (v.startsWith('{')) {
    let o: unknown;
    try {
      o = JSON.parse(v);
    } catch {
      throw new InvalidConsistencyError(s);
    }
    if (!o || typeof o !== 'object' || Array.isArray(o)) throw new InvalidConsistencyError(s);
    const keys = Object.keys(o);
    if (keys.length === 0 || keys.some((k) => k !== 'r' && k !== 'w')) throw new InvalidConsistencyError(s);
    const { r, w } = o as { r?: unknown; w?: unknown };
    return countsOf(s, r, w);
  }
  const m = /^(?:([rw])\s*=\s*(\d{1,3}))(?:\s*[,;]\s*([rw])\s*=\s*(\d{1,3}))?$/.exec(v);
  if (m && m[1] !== m[3]) {
    const counts: { r?: number; w?: number } = {};
    counts[m[1] as 'r' | 'w'] = Number(m[2]);
    if (m[3]) counts[m[3] as 'r' | 'w'] = Number(m[4]);
    return countsOf(s, counts.r, counts.w);
  }
  throw new InvalidConsistencyError(s);
}

function countsOf(given: string, r: unknown, w: unknown): { r?: number; w?: number } {
  const ok = (x: unknown) => x === undefined || (typeof x === 'number' && Number.isInteger(x) && x >= 1);
  if (!ok(r) || !ok(w)) throw new InvalidConsistencyError(given);
  const out: { r?: number; w?: number } = {};
  if (r !== undefined) out.r = r as number;
  if (w !== undefined) out.w = w as number;
  return out;
}

/** How many of the replicas asked must answer: in each data center named, and in all. */
export interface Requirement {
  /** The data centers whose replicas are asked (the client's own first). */
  dcs: readonly string[];
  /** Answers needed within a data center (a data center not listed needs none). */
  perDc: ReadonlyMap<string, number>;
  /** Answers needed in all. */
  total: number;
}

/** What a level means for one cluster: the requirement of its reads, writes and read write-backs. */
export interface LevelPlan {
  read: Requirement;
  write: Requirement;
  /**
   * Where a read that needs two or more answers makes sure the value it returns is held
   * before it returns it (the write-back): a majority of the client's data center
   * (`strong`, `localQuorum`, counts), of each data center (`eachQuorum`, `all`), or of
   * every replica (`quorum`, `linearizable`). Undefined for a read of one answer.
   */
  writeBack: Requirement | undefined;
  /** True when the level reaches replicas of another data center than the client's. */
  crossDc: boolean;
}

function majorityOf(n: number): number {
  return Math.floor(n / 2) + 1;
}

/**
 * The plan of level `c` in a cluster replicated as `replication`, for a client in data center
 * `localDc`. With one data center, every level means what quorumFor says for its N (and
 * `localDc` may be left out). With several, `localDc` is required (LocalDcRequiredError,
 * never guessed) and must be one of them; `strong` is `localQuorum`, `eventual` is
 * `localOne`, counts are counts of the local data center's replicas. Throws
 * InvalidConsistencyError for an unknown level or counts out of range.
 */
export function planFor(c: Consistency, replication: ReplicationMap, localDc: string | undefined): LevelPlan {
  const dcs = Object.keys(replication).sort();
  let local = localDc;
  if (dcs.length > 1) {
    if (local === undefined) throw new LocalDcRequiredError(dcs);
    if (!(local in replication)) throw new LocalDcRequiredError(dcs, local);
  } else if (local === undefined || !(local in replication)) local = dcs[0]!;
  const rfLocal = replication[local]!;
  const others = dcs.filter((d) => d !== local);
  const everyDc = [local, ...others];
  const total = dcs.reduce((a, d) => a + replication[d]!, 0);
  const localOnly = (n: number): Requirement => ({ dcs: [local!], perDc: new Map([[local!, n]]), total: n });
  const each = (f: (rf: number) => number): Requirement => {
    const perDc = new Map(everyDc.map((d) => [d, f(replication[d]!)] as const));
    let sum = 0;
    for (const n of perDc.values()) sum += n;
    return { dcs: everyDc, perDc, total: sum };
  };
  const global = (): Requirement => ({ dcs: everyDc, perDc: new Map(), total: majorityOf(total) });
  const multi = dcs.length > 1;
  switch (c) {
    case 'strong':
    case 'localQuorum': {
      const q = localOnly(majorityOf(rfLocal));
      return { read: q, write: q, writeBack: q.total >= 2 ? q : undefined, crossDc: false };
    }
    case 'eventual':
    case 'localOne': {
      const q = localOnly(1);
      return { read: q, write: q, writeBack: undefined, crossDc: false };
    }
    case 'eachQuorum': {
      const q = each(majorityOf);
      return { read: q, write: q, writeBack: q.total >= 2 ? q : undefined, crossDc: multi };
    }
    case 'quorum':
    case 'linearizable': {
      const q = global();
      return { read: q, write: q, writeBack: q.total >= 2 ? q : undefined, crossDc: multi };
    }
    case 'all': {
      const q = each((rf) => rf);
      const back = each(majorityOf);
      return { read: q, write: q, writeBack: q.total >= 2 ? back : undefined, crossDc: multi };
    }
    default: {
      const { r, w } = quorumFor(c, rfLocal);
      const back = localOnly(majorityOf(rfLocal));
      return { read: localOnly(r), write: localOnly(w), writeBack: r >= 2 ? back : undefined, crossDc: false };
    }
  }
}
