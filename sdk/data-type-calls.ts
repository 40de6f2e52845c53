// The client's data-type calls (sdk/data-types.ts handles and the HTTP API use them): a
// fetch is a read whose answer must be a data type; an update is a write coordinated by
// one replica, which applies the operation as its own actor. Stateless between calls.

import type { CallCtx } from './call-context.js';
import type { ClientCore } from './client-core.js';
import type { Consistency, LevelPlan } from './consistency.js';
import { coordinatedWrite } from './coordinated-write.js';
import type { CrdtState, CrdtType } from './crdt/crdt-state.js';
import { crdtStateOf } from './crdt/crdt-object.js';
import { InvalidConsistencyError, WrongTypeError } from './errors.js';
import type { ReadPath } from './read-path.js';
import { liveSiblings } from './versioning/index.js';
import type { WireOp } from './wire/protocol.js';

/**
 * The consistency of a data-type call: any level but `linearizable`, which does not apply
 * (data-type updates are merged, never ordered: there is no newest version to read from a
 * majority or to stamp a write above; sdk/crdt/README.md).
 */
export function dataTypeLevel(level: Consistency): Consistency {
  if (level === 'linearizable') {
    const e = new InvalidConsistencyError('linearizable');
    e.message =
      "consistency 'linearizable' does not apply to data types: their updates are merged, not ordered (use strong, eventual, all or {r, w}; strong reads see every update acknowledged at strong)";
    throw e;
  }
  return level;
}

/** Reads the data type of `k` (RingkvClient.dataTypeFetch): undefined when none, WRONG_TYPE when another. */
export async function fetchDataType(
  core: ClientCore,
  reads: ReadPath,
  k: Buffer,
  expected: CrdtType | undefined,
  plan: LevelPlan,
  call: CallCtx,
): Promise<{ state: CrdtState } | undefined> {
  const obj = await reads.readWithRetries(k, plan, call);
  if (!obj) return undefined;
  if (obj.mode !== 'crdt') {
    if (liveSiblings(obj, core.clock.nowMs()).length === 0) return undefined;
    throw new WrongTypeError('plain value', expected ?? 'data type', 'fetch');
  }
  const state = crdtStateOf(obj);
  if (expected !== undefined && state.type !== expected) throw new WrongTypeError(state.type, expected, 'fetch');
  return { state };
}

/**
 * Applies the data-type operation `wire` (a DtUpdate of `k`) through a coordinating replica
 * (RingkvClient.dataTypeUpdate): a replica where another data type wins answers WRONG_TYPE.
 */
export async function updateDataType(
  core: ClientCore,
  k: Buffer,
  wire: WireOp,
  opName: string,
  plan: LevelPlan,
  countHints: boolean,
  call: CallCtx,
): Promise<{ state: CrdtState }> {
  const { obj } = await coordinatedWrite(core, k, wire, opName, plan.write, call, countHints, (node, res) =>
    res.ok && res.won === false ? { ok: false, code: 'WRONG_TYPE', msg: `${node} holds another data type under this key, which wins over this one` } : res,
  );
  return { state: crdtStateOf(obj) };
}
