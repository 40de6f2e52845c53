// The conflict-free data types (counter, add-wins set, LWW register, map with flags): pure
// state, operations, merge, value, encoding and context tokens. Re-exports only; every
// function here is pure. Semantics: ./README.md; encoding: ./crdt-format.md.

export type {
  AppliedOp,
  CounterOp,
  CrdtOp,
  CrdtState,
  CrdtType,
  CrdtValue,
  DeferredRemove,
  FieldKey,
  FieldType,
  FieldUpdate,
  FlagOp,
  MapOp,
  NestedOp,
  RegisterOp,
  SetOp,
  Store,
} from './crdt-state.js';
export type { Dot, VersionVector } from './dots.js';
export { CRDT_TYPES, FIELD_TYPES, TYPE_CODES } from './crdt-state.js';
export type { CrdtOptions, ResolvedCrdtOptions } from './crdt.js';
export {
  MAX_FIELD_NAME_BYTES,
  crdtApply,
  crdtEqual,
  crdtHasApplied,
  crdtMerge,
  crdtSettle,
  crdtValue,
  crdtView,
  emptyCrdt,
  foldActor,
  resolveCrdtOptions,
} from './crdt.js';
export {
  CRDT_CONTEXT_FORMAT,
  CRDT_FORMAT,
  MAX_CRDT_CONTEXT_CHARS,
  MAX_MAP_DEPTH,
  crdtEncodedSize,
  decodeCrdt,
  decodeCrdtContext,
  encodeCrdt,
  encodeCrdtContext,
} from './crdt-codec.js';
export { DEFAULT_MAX_OP_IDS, DEFAULT_OP_WINDOW_MS, MAX_OP_ID_BYTES } from './op-window.js';
