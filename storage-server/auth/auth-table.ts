// One node's copy of the user table: users, roles and their removals, kept in memory and in
// the AUTH file of the data directory (JSON, replaced atomically: temp file, fsync, rename,
// directory fsync; format in storage-server/auth/README.md). Records merge by the order of
// auth-records.ts, so every node that has seen the same records holds the same table
// whatever the order they came in. Tokens are looked up by their hash; the principal a
// token stands for is cached for at most cacheTtlMs and the cache is emptied on every
// change. Single-threaded: merge() changes memory at once and resolves once the change is
// on disk (writes are chained, one at a time).

import fs from 'node:fs';
import path from 'node:path';
import { LRUCache } from 'lru-cache';
import type { Clock } from '../../sdk/clock.js';
import { CorruptionError } from '../../sdk/errors.js';
import { HLC_TICKS_PER_MS, hlcToWallMs } from '../../sdk/hlc.js';
import type { Logger } from '../logger.js';
import type { AuthRecord, RoleRecord, UserRecord } from './auth-records.js';
import { checkRecord, compareVersions, recordKey, tableDigest } from './auth-records.js';
import type { Grant } from './permissions.js';
import { Principal } from './permissions.js';
import { hashToken } from './tokens.js';

export const AUTH_FILE_FORMAT = 1;

export interface AuthTableOptions {
  /** The AUTH file, and where a new one is written before it replaces it. */
  file: string;
  tmp: string;
  clock: Clock;
  log: Logger;
  /** How long a token's principal may be served from the cache (0: not cached). */
  cacheTtlMs: number;
  /** Removals older than this are forgotten (the cluster's tombstoneGraceMs). */
  tombstoneRetentionMs: number;
}

/** Most principals cached at once. */
const CACHE_ENTRIES = 10_000;

export class AuthTable {
  private readonly records = new Map<string, AuthRecord>();
  private byTokenHash = new Map<string, UserRecord>();
  private readonly cache: LRUCache<string, Principal> | undefined;
  private digestMemo: string | undefined;
  private writing: Promise<void> = Promise.resolve();
  /** The largest stamp issued or seen: new stamps go above it (a hybrid clock). */
  private lastTs = 0;
  private readonly listeners: (() => void)[] = [];
  readonly counters = { merged: 0, writes: 0, writeFailures: 0, cacheHits: 0, cacheMisses: 0, collected: 0 };

  private constructor(private readonly o: AuthTableOptions) {
    if (o.cacheTtlMs > 0) this.cache = new LRUCache<string, Principal>({ max: CACHE_ENTRIES, ttl: o.cacheTtlMs, ttlAutopurge: false });
  }

  /**
   * Reads the node's table from its AUTH file (none: empty). With `discard`, starts empty
   * and says so: a node back from an outage longer than the tombstone retention may hold
   * users whose removals its peers have forgotten, so it takes the table from its peers.
   */
  static open(o: AuthTableOptions, discard = false): AuthTable {
    const t = new AuthTable(o);
    if (discard) {
      if (fs.existsSync(o.file)) o.log.warn({ file: o.file }, 'auth table dropped: this node was away longer than removals are kept; it takes the table from its peers');
      return t;
    }
    let text: string;
    try {
      text = fs.readFileSync(o.file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return t;
      throw err;
    }
    let v: { format?: unknown; records?: unknown };
    try {
      v = JSON.parse(text) as typeof v;
    } catch (err) {
      throw new CorruptionError(`the auth table is not JSON: ${(err as Error).message}`, { file: o.file });
    }
    if (!v || v.format !== AUTH_FILE_FORMAT || !Array.isArray(v.records)) throw new CorruptionError(`the auth table has an unknown format: ${text.slice(0, 100)}`, { file: o.file });
    for (const x of v.records) {
      let r: AuthRecord;
      try {
        r = checkRecord(x);
      } catch (err) {
        throw new CorruptionError(`the auth table holds a bad record: ${(err as Error).message}`, { file: o.file });
      }
      t.records.set(recordKey(r), r);
      if (r.ts > t.lastTs) t.lastTs = r.ts;
    }
    t.reindex();
    return t;
  }

  get size(): number {
    return this.records.size;
  }

  /** Users and roles not removed. */
  get liveCounts(): { users: number; roles: number; removed: number } {
    let users = 0;
    let roles = 0;
    let removed = 0;
    for (const r of this.records.values()) {
      if (r.deleted) removed++;
      else if (r.kind === 'user') users++;
      else roles++;
    }
    return { users, roles, removed };
  }

  /** The digest peers compare (auth-records.ts tableDigest). */
  get digest(): string {
    this.digestMemo ??= tableDigest(this.records.values());
    return this.digestMemo;
  }

  /** Every record, removals included. */
  list(): AuthRecord[] {
    return [...this.records.values()];
  }

  get(kind: 'user', name: string): UserRecord | undefined;
  get(kind: 'role', name: string): RoleRecord | undefined;
  get(kind: 'user' | 'role', name: string): AuthRecord | undefined {
    return this.records.get(`${kind}:${name}`);
  }

  /** Called after every change of the table (in memory). */
  onChange(f: () => void): void {
    this.listeners.push(f);
  }

  /**
   * A stamp for a new version made by this node: above every stamp it has issued or seen
   * and above `floor` (the version it replaces), so that it supersedes it whatever the clocks say.
   */
  nextStamp(floor = 0): number {
    const wall = Math.floor(this.o.clock.nowMs()) * HLC_TICKS_PER_MS;
    const ts = Math.max(wall, this.lastTs + 1, floor + 1);
    this.lastTs = ts;
    return ts;
  }

  /**
   * The principal `token` stands for, or undefined when no live user holds it. Served from
   * the cache for at most cacheTtlMs; the cache is emptied whenever the table changes.
   */
  authenticate(token: string): Principal | undefined {
    const h = hashToken(token);
    const hit = this.cache?.get(h);
    if (hit) {
      this.counters.cacheHits++;
      return hit;
    }
    this.counters.cacheMisses++;
    const user = this.byTokenHash.get(h);
    if (!user) return undefined;
    const p = this.principalOf(user);
    this.cache?.set(h, p);
    return p;
  }

  /** A live user's principal: the grants of the live roles it holds. */
  principalOf(user: UserRecord): Principal {
    const grants: Grant[] = [];
    const roles: string[] = [];
    for (const name of user.roles ?? []) {
      const role = this.get('role', name);
      if (!role || role.deleted) continue;
      roles.push(name);
      grants.push(...(role.grants ?? []));
    }
    return new Principal(user.name, roles, grants);
  }

  /**
   * Merges records (from a peer, or made here): each is taken when it supersedes this
   * node's version. Removals older than the retention are not taken back when this node has
   * forgotten them. Resolves with the records taken once they are on disk.
   */
  async merge(incoming: readonly AuthRecord[]): Promise<AuthRecord[]> {
    const taken: AuthRecord[] = [];
    const horizon = this.horizonTs();
    for (const r of incoming) {
      const k = recordKey(r);
      const mine = this.records.get(k);
      if (mine ? compareVersions(r, mine) <= 0 : r.deleted && r.ts < horizon) continue;
      this.records.set(k, r);
      if (r.ts > this.lastTs) this.lastTs = r.ts;
      taken.push(r);
    }
    if (taken.length > 0) {
      this.counters.merged += taken.length;
      this.changed();
      await this.persist();
    }
    return taken;
  }

  /** Forgets removals older than the retention; resolves with how many. */
  async collectGarbage(): Promise<number> {
    const horizon = this.horizonTs();
    let n = 0;
    for (const [k, r] of this.records) {
      if (r.deleted && r.ts < horizon) {
        this.records.delete(k);
        n++;
      }
    }
    if (n > 0) {
      this.counters.collected += n;
      this.changed();
      await this.persist();
    }
    return n;
  }

  /** Waits for writes in progress (at shutdown). */
  async flush(): Promise<void> {
    await this.writing.catch(() => undefined);
  }

  private horizonTs(): number {
    return (this.o.clock.nowMs() - this.o.tombstoneRetentionMs) * HLC_TICKS_PER_MS;
  }

  private changed(): void {
    this.digestMemo = undefined;
    this.reindex();
    this.cache?.clear();
    for (const f of this.listeners) f();
  }

  private reindex(): void {
    const m = new Map<string, UserRecord>();
    for (const r of this.records.values()) if (r.kind === 'user' && !r.deleted && r.tokenHash) m.set(r.tokenHash, r);
    this.byTokenHash = m;
  }

  /** Writes the table as it is now, after the writes before it. */
  private persist(): Promise<void> {
    const next = this.writing.catch(() => undefined).then(() => this.write());
    this.writing = next;
    return next;
  }

  private async write(): Promise<void> {
    const body = `${JSON.stringify({ format: AUTH_FILE_FORMAT, records: [...this.records.values()] })}\n`;
    try {
      const fh = await fs.promises.open(this.o.tmp, 'w', 0o600);
      try {
        await fh.writeFile(body);
        await fh.datasync();
      } finally {
        await fh.close();
      }
      await fs.promises.rename(this.o.tmp, this.o.file);
      const dir = await fs.promises.open(path.dirname(this.o.file), 'r');
      try {
        await dir.sync();
      } finally {
        await dir.close();
      }
      this.counters.writes++;
    } catch (err) {
      this.counters.writeFailures++;
      this.o.log.warn({ err: (err as Error).message }, 'could not write the auth table');
      throw err;
    }
  }
}

/** Wall-clock milliseconds of a record's stamp (for listings). */
export function stampMs(ts: number): number {
  return hlcToWallMs(ts);
}
