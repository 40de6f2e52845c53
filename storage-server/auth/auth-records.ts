// The records of the user table (users and roles, live or removed) and the one order that
// decides between two versions of a record on every node: a newer generation wins (a user
// or role made again after a removal), then, within a generation, a removal wins over
// anything (a revocation never comes back), then the later stamp. Stamps are hybrid-clock
// timestamps with the coordinating node's id as tie-break. The format is written down in
// storage-server/auth/README.md. Pure data and functions.

import crypto from 'node:crypto';
import { InvalidArgumentError } from '../../sdk/errors.js';
import type { Grant } from './permissions.js';
import { checkGrant, MAX_GRANTS_PER_ROLE, NAME_RE } from './permissions.js';
import { isTokenHash } from './tokens.js';

/** Most roles one user may hold. */
export const MAX_ROLES_PER_USER = 64;

interface RecordBase {
  name: string;
  /** Generation: the stamp of the `add` that made this user or role (ts, then node id). */
  genTs: number;
  genBy: string;
  /** Stamp of this version: a hybrid-clock timestamp and the node that made it. */
  ts: number;
  by: string;
  /** A removal (tombstone): the fields below are absent. */
  deleted: boolean;
}

export interface UserRecord extends RecordBase {
  kind: 'user';
  /** SHA-256 (hex) of the user's token. */
  tokenHash?: string;
  roles?: string[];
}

export interface RoleRecord extends RecordBase {
  kind: 'role';
  grants?: Grant[];
}

export type AuthRecord = UserRecord | RoleRecord;

/** The identity of a record in the table: `user:<name>` or `role:<name>`. */
export function recordKey(r: Pick<AuthRecord, 'kind' | 'name'>): string {
  return `${r.kind}:${r.name}`;
}

function cmp(a: number | string, b: number | string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * Orders two versions of one record: > 0 when `a` supersedes `b`, < 0 when `b` supersedes
 * `a`, 0 when they are the same version. A newer generation wins; within one generation a
 * removal wins over any update (a token rotation or a grant made concurrently with the
 * removal cannot revive it); else the later stamp.
 */
export function compareVersions(a: AuthRecord, b: AuthRecord): number {
  return (
    cmp(a.genTs, b.genTs) ||
    cmp(a.genBy, b.genBy) ||
    cmp(a.deleted ? 1 : 0, b.deleted ? 1 : 0) ||
    cmp(a.ts, b.ts) ||
    cmp(a.by, b.by)
  );
}

const NODE_ID_RE = /^[A-Za-z0-9._-]{1,64}$/;

function stamp(x: unknown): x is number {
  return typeof x === 'number' && Number.isSafeInteger(x) && x > 0;
}

/** Checks a record received from a peer or read from disk; throws InvalidArgumentError. */
export function checkRecord(x: unknown): AuthRecord {
  if (!x || typeof x !== 'object') throw new InvalidArgumentError('an auth record is a map');
  const r = x as Record<string, unknown>;
  if (r.kind !== 'user' && r.kind !== 'role') throw new InvalidArgumentError(`unknown auth record kind ${JSON.stringify(r.kind)}`);
  if (typeof r.name !== 'string' || !NAME_RE.test(r.name)) throw new InvalidArgumentError(`bad auth record name ${JSON.stringify(r.name)}`);
  if (!stamp(r.genTs) || !stamp(r.ts) || r.ts < r.genTs) throw new InvalidArgumentError(`auth record ${r.name}: bad stamps`);
  if (typeof r.genBy !== 'string' || !NODE_ID_RE.test(r.genBy) || typeof r.by !== 'string' || !NODE_ID_RE.test(r.by)) {
    throw new InvalidArgumentError(`auth record ${r.name}: bad node ids`);
  }
  if (typeof r.deleted !== 'boolean') throw new InvalidArgumentError(`auth record ${r.name}: deleted must be a boolean`);
  const base = { name: r.name, genTs: r.genTs, genBy: r.genBy, ts: r.ts, by: r.by, deleted: r.deleted };
  if (r.kind === 'user') {
    if (r.deleted) return { kind: 'user', ...base };
    if (!isTokenHash(r.tokenHash)) throw new InvalidArgumentError(`user ${r.name}: bad token hash`);
    const roles = r.roles ?? [];
    if (!Array.isArray(roles) || roles.length > MAX_ROLES_PER_USER || !roles.every((x) => typeof x === 'string' && NAME_RE.test(x))) {
      throw new InvalidArgumentError(`user ${r.name}: roles must be at most ${MAX_ROLES_PER_USER} role names`);
    }
    return { kind: 'user', ...base, tokenHash: r.tokenHash, roles: [...new Set(roles as string[])].sort() };
  }
  if (r.deleted) return { kind: 'role', ...base };
  const grants = r.grants ?? [];
  if (!Array.isArray(grants) || grants.length > MAX_GRANTS_PER_ROLE) throw new InvalidArgumentError(`role ${r.name}: at most ${MAX_GRANTS_PER_ROLE} grants`);
  return { kind: 'role', ...base, grants: grants.map(checkGrant) };
}

/**
 * A digest of a table: SHA-256 over the sorted (key, generation, removal, stamp) of every
 * record. A stamp names one version made once by one node, so equal digests mean equal
 * tables. Hex.
 */
export function tableDigest(records: Iterable<AuthRecord>): string {
  const lines: string[] = [];
  for (const r of records) lines.push(`${recordKey(r)}\t${r.genTs}\t${r.genBy}\t${r.deleted ? 1 : 0}\t${r.ts}\t${r.by}`);
  lines.sort();
  return crypto.createHash('sha256').update(lines.join('\n')).digest('hex');
}
