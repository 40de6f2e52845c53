// The storage engine's public surface: what the storage server (and the benchmark) use.

export { Engine } from './engine.js';
export type { EngineStats, IterateOptions, PutOptions, DeleteOptions, QuarantinedBlock, WriteOp } from './engine.js';
export type { EngineHealth, EngineState, EngineErrorInfo, ErrorSeverity, ErrorSource } from './engine-health.js';
export type { EngineOptions, SyncPolicy, BlockReadMode, EngineLogger } from './engine-options.js';
export { engineDefaults, resolveEngineOptions } from './engine-options.js';
export type { EngineRecord } from './record.js';
export { isLive } from './record.js';
export type { FileSystem, FileHandle, FileLock } from './file-system.js';
export { NodeFileSystem } from './file-system.js';
export { MemoryFileSystem } from './memory-file-system.js';
export type { DirOp, FaultRule, FileCut, FsOp, PendingFileOp, PowerCutOptions } from './memory-file-system.js';
