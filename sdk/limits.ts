// Size limits of the data model and the checks that enforce them. Shared by the SDK,
// the HTTP API and the storage engine so that every entry point rejects the same input
// with the same typed error.

import { InvalidArgumentError, InvalidMetadataError, KeyEmptyError, KeyTooLargeError, ValueTooLargeError } from './errors.js';

/** Largest key, in bytes. */
export const MAX_KEY_BYTES = 256;
/** Largest value, in bytes (1 MiB). */
export const MAX_VALUE_BYTES = 1024 * 1024;
/** Largest content-type string, in bytes. */
export const MAX_CONTENT_TYPE_BYTES = 255;
/** Longest time to live, in seconds: 20 years (Cassandra's limit too). */
export const MAX_TTL_SECONDS = 20 * 365 * 24 * 3600;

/**
 * Returns `ttl` (seconds) when it is a number in (0, MAX_TTL_SECONDS]; throws
 * InvalidArgumentError otherwise — strings, booleans and arrays included.
 */
export function checkTtl(ttl: unknown): number {
  if (typeof ttl !== 'number' || !Number.isFinite(ttl) || ttl <= 0 || ttl > MAX_TTL_SECONDS) {
    throw new InvalidArgumentError(
      `ttl must be a number of seconds in (0, ${MAX_TTL_SECONDS}] (20 years), got ${typeof ttl === 'number' ? String(ttl) : JSON.stringify(ttl) ?? typeof ttl}`,
    );
  }
  return ttl;
}

/**
 * Longest node id a message may name (the wire's `hintFor`), in UTF-8 bytes: hint keys
 * store the id's length in one byte (storage-server/handoff/README.md).
 */
export const MAX_NODE_ID_BYTES = 255;

/** Throws KeyEmptyError / KeyTooLargeError unless 1 <= key.length <= limitBytes (default 256). */
export function checkKey(key: Uint8Array, limitBytes = MAX_KEY_BYTES): void {
  if (key.length === 0) throw new KeyEmptyError();
  if (key.length > limitBytes) throw new KeyTooLargeError(key.length, limitBytes);
}

/** Throws ValueTooLargeError when the value exceeds 1 MiB. */
export function checkValue(value: Uint8Array): void {
  if (value.length > MAX_VALUE_BYTES) throw new ValueTooLargeError(value.length, MAX_VALUE_BYTES);
}

/** Throws InvalidMetadataError for a content type that is too long or not printable ASCII. */
export function checkContentType(contentType: string): void {
  if (Buffer.byteLength(contentType) > MAX_CONTENT_TYPE_BYTES) {
    throw new InvalidMetadataError(`content type longer than ${MAX_CONTENT_TYPE_BYTES} bytes`);
  }
  // eslint-disable-next-line no-control-regex
  if (/[^\x20-\x7e]/.test(contentType)) throw new InvalidMetadataError('content type must be printable ASCII');
}

/**
 * Throws InvalidArgumentError unless `id` is a string of 1..255 UTF-8 bytes that reads back
 * as itself from UTF-8 (no lone surrogates). Lengths are in bytes, not UTF-16 units.
 */
export function checkNodeId(id: unknown, what = 'node id'): asserts id is string {
  if (typeof id !== 'string' || id.length === 0) throw new InvalidArgumentError(`${what} must be a non-empty string`);
  const b = Buffer.from(id, 'utf8');
  if (b.length > MAX_NODE_ID_BYTES) {
    throw new InvalidArgumentError(`${what} is ${b.length} bytes in UTF-8; at most ${MAX_NODE_ID_BYTES}`, { bytes: b.length, limitBytes: MAX_NODE_ID_BYTES });
  }
  if (b.toString('utf8') !== id) throw new InvalidArgumentError(`${what} is not well-formed Unicode`);
}
