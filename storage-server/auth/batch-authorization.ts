// Permission checks of a batch sent by a user (an SDK client with a token): every operation
// against its key's prefix — a Get needs `read`, every other operation `write` (operation
// types added later are writes until listed here), and a write that answers with the key's
// value (CoordinatedPut, DtUpdate) `read` too — answered one by one, PERMISSION_DENIED
// for those refused. A read repair (a Merge without hintFor) from a user who may read the
// key but not write it is a repair, not a write: the node asks the key's other live replicas
// for their copies, and when the caller's object adds nothing to what they and this node
// hold together, it stores that union — never the caller's object
// (storage-server/auth/README.md, "Read repair by readers"). Stateless; deps are injected.

import type { StoredObject } from '../../sdk/versioning/index.js';
import { mergeObjects, objectsEqual } from '../../sdk/versioning/index.js';
import type { WireOp, WireResult } from '../../sdk/wire/protocol.js';
import { OpType } from '../../sdk/wire/protocol.js';
import type { Principal } from './permissions.js';

/** The permission an operation needs on its key (beside `read` for those in ANSWERS_WITH_OBJECT). */
export function opPermission(op: WireOp): 'read' | 'write' {
  return (op as { t?: unknown }).t === OpType.Get ? 'read' : 'write';
}

/**
 * Writes whose answer carries the key's object (every sibling's value, a data type's whole
 * state): they need `read` too, or a write-only user could read through them.
 */
const ANSWERS_WITH_OBJECT: ReadonlySet<unknown> = new Set([OpType.CoordinatedPut, OpType.DtUpdate]);

export interface BatchVerdicts {
  /** Per operation: the answer of a refused one, or undefined when it may go on. */
  refused: (WireResult | undefined)[];
  /** Indexes of read repairs by a reader that must be confirmed with the other replicas. */
  repairs: number[];
}

/** Decides every operation of a user's batch. */
export function authorizeOps(principal: Principal, ops: readonly WireOp[]): BatchVerdicts {
  const refused: (WireResult | undefined)[] = new Array(ops.length);
  const repairs: number[] = [];
  for (let i = 0; i < ops.length; i++) {
    const op = ops[i] as WireOp | undefined;
    const key = (op as { key?: unknown } | undefined)?.key;
    if (!op || typeof op !== 'object' || !(key instanceof Uint8Array)) {
      refused[i] = { ok: false, code: 'MALFORMED_REQUEST', msg: 'an operation needs a key' };
      continue;
    }
    const perm = opPermission(op);
    if (principal.can(perm, key) && (!ANSWERS_WITH_OBJECT.has(op.t) || principal.can('read', key))) continue;
    if (op.t === OpType.Merge && op.hintFor === undefined && principal.can('read', key)) {
      repairs.push(i);
      continue;
    }
    const what = principal.can(perm, key) ? 'read (this write answers with the value)' : perm;
    refused[i] = {
      ok: false,
      code: 'PERMISSION_DENIED',
      msg: `user ${principal.user} may not ${what} ${JSON.stringify(Buffer.from(key).toString('utf8'))}`,
    };
  }
  return { refused, repairs };
}

export interface RepairSources {
  /** This node's copy of the key (null: none). */
  local(key: Buffer): Promise<StoredObject | null>;
  /** The copies the key's other live replicas hold, fetched by this node (failures: left out). */
  peers(keys: Buffer[]): Promise<(StoredObject | null)[][]>;
}

/**
 * For each read repair (key, object) of a reader: the object to store instead — the union
 * of the copies this node and the key's other live replicas hold — when the caller's object
 * adds nothing to that union; undefined (refused) when it does, or there is no copy.
 */
export async function confirmRepairs(items: { key: Buffer; obj: StoredObject }[], sources: RepairSources): Promise<(StoredObject | undefined)[]> {
  if (items.length === 0) return [];
  const keys = items.map((x) => x.key);
  const [locals, remote] = await Promise.all([Promise.all(keys.map((k) => sources.local(k).catch(() => null))), sources.peers(keys)]);
  return items.map((item, i) => {
    try {
      let union: StoredObject | undefined = locals[i] ?? undefined;
      for (const copy of remote[i] ?? []) if (copy) union = mergeObjects(union, copy);
      if (!union) return undefined;
      return objectsEqual(mergeObjects(union, item.obj), union) ? union : undefined;
    } catch {
      // A malformed object, or one of another conflict mode: not confirmed.
      return undefined;
    }
  });
}
