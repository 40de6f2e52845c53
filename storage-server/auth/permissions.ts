// Permissions of ringkv users, in the style of etcd's roles and Redis's ACL key patterns:
// a role holds grants, each a key prefix with permissions `read`, `write` and `admin`; a
// user holds roles. A Principal is a user's roles compiled into one list of grants, asked
// `can(perm, key)` per operation. Prefixes compare as bytes (`app:` never covers `app2:`);
// the empty prefix covers every key and is the only one `admin` may be granted on
// (storage-server/auth/README.md). Pure data and functions.

import { InvalidArgumentError } from '../../sdk/errors.js';

export type Perm = 'read' | 'write' | 'admin';
export const PERMS: readonly Perm[] = ['read', 'write', 'admin'];

/** A key prefix and what may be done to the keys it covers. `prefix` '' is every key. */
export interface Grant {
  prefix: string;
  perms: Perm[];
}

/** Most grants one role may hold. */
export const MAX_GRANTS_PER_ROLE = 256;
/** Longest prefix, in bytes (keys are at most 256 bytes). */
export const MAX_PREFIX_BYTES = 256;

/** Names of users and roles: 1-64 letters, digits, '.', '_', '-' or '@'. */
export const NAME_RE = /^[A-Za-z0-9._@-]{1,64}$/;

export function checkName(what: 'user' | 'role', name: unknown): string {
  if (typeof name !== 'string' || !NAME_RE.test(name)) {
    throw new InvalidArgumentError(`a ${what} name is 1-64 letters, digits, '.', '_', '-' or '@'; got ${JSON.stringify(name)}`);
  }
  return name;
}

/**
 * Parses a permission list as the CLI takes it: `read`, `write`, `readwrite` (both), `admin`,
 * or several separated by commas. Sorted, without repeats.
 */
export function parsePerms(text: string): Perm[] {
  const out = new Set<Perm>();
  for (const part of text.split(',').map((s) => s.trim().toLowerCase())) {
    if (part === 'readwrite' || part === 'rw') {
      out.add('read');
      out.add('write');
    } else if ((PERMS as readonly string[]).includes(part)) out.add(part as Perm);
    else throw new InvalidArgumentError(`unknown permission ${JSON.stringify(part)}: read, write, readwrite or admin`);
  }
  if (out.size === 0) throw new InvalidArgumentError('no permission given: read, write, readwrite or admin');
  return PERMS.filter((p) => out.has(p));
}

/** Checks one grant (as stored or received); throws InvalidArgumentError. */
export function checkGrant(g: unknown): Grant {
  if (!g || typeof g !== 'object') throw new InvalidArgumentError('a grant is {prefix, perms}');
  const { prefix, perms } = g as { prefix?: unknown; perms?: unknown };
  if (typeof prefix !== 'string' || Buffer.byteLength(prefix, 'utf8') > MAX_PREFIX_BYTES) {
    throw new InvalidArgumentError(`a grant's prefix is a string of at most ${MAX_PREFIX_BYTES} bytes`);
  }
  if (!Array.isArray(perms) || perms.length === 0 || !perms.every((p) => (PERMS as readonly unknown[]).includes(p))) {
    throw new InvalidArgumentError('a grant\'s perms are a non-empty list of read, write, admin');
  }
  if (perms.includes('admin') && prefix !== '') {
    throw new InvalidArgumentError(`admin is granted on every key only (--all), not on the prefix ${JSON.stringify(prefix)}: admin operations (repair, decommission, users) span the whole cluster`);
  }
  return { prefix, perms: PERMS.filter((p) => perms.includes(p)) };
}

/** How the CLI and listings show a prefix: the empty one as `(all keys)`. */
export function describePrefix(prefix: string): string {
  return prefix === '' ? '(all keys)' : JSON.stringify(prefix);
}

interface CompiledGrant {
  prefix: Buffer;
  read: boolean;
  write: boolean;
}

/** A user with its roles' grants, ready to answer per operation. Immutable. */
export class Principal {
  readonly admin: boolean;
  private readonly grants: CompiledGrant[];

  constructor(
    readonly user: string,
    readonly roles: readonly string[],
    /** The grants of the roles, as given. */
    readonly grantList: readonly Grant[],
  ) {
    const grants = grantList;
    this.admin = grants.some((g) => g.prefix === '' && g.perms.includes('admin'));
    // admin implies read and write on every key; an empty-prefix grant covers every key.
    this.grants = grants.map((g) => ({
      prefix: Buffer.from(g.prefix, 'utf8'),
      read: g.perms.includes('read') || g.perms.includes('admin'),
      write: g.perms.includes('write') || g.perms.includes('admin'),
    }));
  }

  /** True when one of the grants covering `key` (a byte prefix of it) gives `perm`. */
  can(perm: 'read' | 'write', key: Uint8Array): boolean {
    for (const g of this.grants) {
      if (!(perm === 'read' ? g.read : g.write)) continue;
      if (g.prefix.length <= key.length && g.prefix.equals(key.subarray(0, g.prefix.length))) return true;
    }
    return false;
  }
}
