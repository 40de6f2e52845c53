// Bearer tokens of ringkv users: 256 random bits from node:crypto, shown once when made,
// kept only as their SHA-256 (storage-server/auth/README.md says why a fast hash is right
// for tokens of that entropy). Pure functions; safe to call from anywhere.

import crypto from 'node:crypto';

/** Every token starts with this, so that one found in a log or a repository is recognizable. */
export const TOKEN_PREFIX = 'rkv_';
/** Random bytes in a token (256 bits). */
export const TOKEN_RANDOM_BYTES = 32;
/** Longest Authorization header value looked at (a token is 47 characters). */
const MAX_TOKEN_CHARS = 256;

/** A new token: `rkv_` and 43 base64url characters of 32 random bytes. */
export function newToken(): string {
  return TOKEN_PREFIX + crypto.randomBytes(TOKEN_RANDOM_BYTES).toString('base64url');
}

/** The stored form of a token: SHA-256, lowercase hex. */
export function hashToken(token: string): string {
  return crypto.createHash('sha256').update(token, 'utf8').digest('hex');
}

/** True for a string shaped like a stored token hash. */
export function isTokenHash(x: unknown): x is string {
  return typeof x === 'string' && /^[0-9a-f]{64}$/.test(x);
}

/**
 * The token of an `Authorization: Bearer <token>` header: undefined without the header,
 * null when there is one that is not a bearer token of sane length (answered 401).
 */
export function bearerToken(header: string | string[] | undefined): string | undefined | null {
  if (header === undefined) return undefined;
  const h = Array.isArray(header) ? header[0] : header;
  if (h === undefined || h.length > MAX_TOKEN_CHARS + 7) return null;
  const m = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(h);
  return m ? m[1]! : null;
}
