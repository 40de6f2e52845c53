// The versioning package: the stored object and its record codec, last-write-wins, and
// dotted version vectors. Re-exports only; every function here is pure. See ./versioning.md.

export type { Dot, RecordFields, Sibling, StoredObject, VersionVector } from './stored-object.js';
export {
  CONTEXT_TOKEN_FORMAT,
  MAX_CONTEXT_TOKEN_CHARS,
  VERSION_FORMAT,
  decodeContextToken,
  encodeContextToken,
  fromRecordFields,
  liveSiblings,
  maxTs,
  mergeObjects,
  toRecordFields,
  versionString,
} from './stored-object.js';
export { lwwCompare, lwwMerge } from './lww.js';
export {
  compareDots,
  contextCounter,
  contextCovers,
  contextsEqual,
  dvvDescends,
  dvvSync,
  dvvUpdate,
  joinContext,
  nextCounter,
  objectsEqual,
} from './dvv.js';
