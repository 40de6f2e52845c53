// Range scan for listing: answers a page of this replica's live keys in token spans to a
// client (the SDK's keys() / entries(), `ringkv export`) on Routes.scan, which the access
// policy opens to clients — unlike Routes.stream, which moves whole ranges between nodes.
// Each page reads a bounded number of stored keys, so a prefix that matches little cannot
// hold the node for long. Reads only; safe to run beside writes (the engine's iterator).

import type { ScanRequest, ScanResponse } from '../../sdk/wire/protocol.js';
import { MESSAGE_VERSION } from '../../sdk/wire/protocol.js';
import { MalformedRequestError } from '../../sdk/errors.js';
import type { StoredObject } from '../../sdk/versioning/index.js';
import type { ReplicaStore } from '../replica-store.js';
import { toObject } from '../replica-store.js';

/** Most entries one page returns. */
export const MAX_SCAN_PAGE_ENTRIES = 10_000;
/** Most stored keys one page reads (matching or not) before it answers with `next`. */
export const MAX_SCAN_PAGE_READS = 10_000;
/** Most value bytes one page returns (a page ends early past this). */
const MAX_SCAN_PAGE_BYTES = 4 * 1024 * 1024;

/**
 * One page of the live keys of `req.spans` (already checked as spans) in token order; with
 * `canRead`, only the keys it allows (a user's read permissions).
 */
export async function serveScan(store: ReplicaStore, req: ScanRequest, canRead?: (key: Buffer) => boolean): Promise<ScanResponse> {
  const limit = Math.min(Math.max(1, Number.isInteger(req.limit) ? req.limit : 0), MAX_SCAN_PAGE_ENTRIES);
  if (req.after !== undefined && (!req.after || !(req.after.key instanceof Uint8Array) || !Number.isInteger(req.after.span) || req.after.span < 0)) {
    throw new MalformedRequestError('after must be {span, key}');
  }
  if (req.prefix !== undefined && !(req.prefix instanceof Uint8Array)) throw new MalformedRequestError('prefix must be bytes');
  const prefix = req.prefix ? Buffer.from(req.prefix.buffer, req.prefix.byteOffset, req.prefix.byteLength) : undefined;
  const keysOnly = req.keysOnly === true;
  const entries: { key: Buffer; obj: StoredObject }[] = [];
  let reads = 0;
  let bytes = 0;
  let spanIndex = req.after?.span ?? 0;
  let after = req.after ? Buffer.from(req.after.key) : undefined;
  for (; spanIndex < req.spans.length; spanIndex++) {
    const [from, to] = req.spans[spanIndex]!;
    for await (const e of store.scan(from, to, after ? { afterKey: after } : {})) {
      reads++;
      if ((!prefix || (e.key.length >= prefix.length && prefix.equals(e.key.subarray(0, prefix.length)))) && (!canRead || canRead(e.key))) {
        const obj = toObject(e.record);
        // Tombstones are left out here; expiry is the client's to judge (its clock).
        if (obj.siblings.some((s) => !s.tombstone)) {
          entries.push({ key: e.key, obj: keysOnly ? withoutValues(obj) : obj });
          bytes += e.key.length + (keysOnly ? 0 : e.record.value.length);
        }
      }
      if (entries.length >= limit || reads >= MAX_SCAN_PAGE_READS || bytes >= MAX_SCAN_PAGE_BYTES) {
        return { v: MESSAGE_VERSION.scan, entries, next: { span: spanIndex, key: e.key } };
      }
    }
    after = undefined;
  }
  return { v: MESSAGE_VERSION.scan, entries };
}

const EMPTY = Buffer.alloc(0);

function withoutValues(obj: StoredObject): StoredObject {
  return { ...obj, siblings: obj.siblings.map((s) => ({ ...s, value: EMPTY })) };
}
