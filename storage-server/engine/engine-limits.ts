// The checks the engine makes on what it is asked to store. The bounds on keys and values are
// engine options (a server passes its data model's limits); a content type's bound is the
// record format's (its length is stored in one byte: record-format.md).

import { InvalidMetadataError, KeyEmptyError, KeyTooLargeError, ValueTooLargeError } from './engine-errors.js';

/** Longest content type a record can hold, in bytes. */
export const MAX_CONTENT_TYPE_BYTES = 255;

/** Throws KeyEmptyError / KeyTooLargeError unless 1 <= key.length <= limitBytes. */
export function checkKey(key: Uint8Array, limitBytes: number): void {
  if (key.length === 0) throw new KeyEmptyError();
  if (key.length > limitBytes) throw new KeyTooLargeError(key.length, limitBytes);
}

/** Throws ValueTooLargeError when the value exceeds limitBytes. */
export function checkValue(value: Uint8Array, limitBytes: number): void {
  if (value.length > limitBytes) throw new ValueTooLargeError(value.length, limitBytes);
}

/** Throws InvalidMetadataError for a content type that is too long or not printable ASCII. */
export function checkContentType(contentType: string): void {
  if (Buffer.byteLength(contentType) > MAX_CONTENT_TYPE_BYTES) {
    throw new InvalidMetadataError(`content type longer than ${MAX_CONTENT_TYPE_BYTES} bytes`);
  }
  // eslint-disable-next-line no-control-regex
  if (/[^\x20-\x7e]/.test(contentType)) throw new InvalidMetadataError('content type must be printable ASCII');
}
