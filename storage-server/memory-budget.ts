// The engine's memory defaults for the memory a server may use: on a host or in a container
// (cgroup) with little memory, the block cache and the memtables are sized down from the
// fixed defaults (64 MiB, 8 MiB) so that they, Node's own ~60-90 MiB (heaps of the main and
// compaction threads, code, buffers) and the tables' pinned filters and indexes fit. A
// layer under the config file, environment and flags: a setting given there wins. Pure.

const MiB = 1024 * 1024;

/** Share of the memory the block cache gets by default (at most the fixed 64 MiB). */
export const BLOCK_CACHE_SHARE = 1 / 16;
/** Share of the memory each memtable gets by default (at most the fixed 8 MiB; up to 3 live at once). */
export const MEMTABLE_SHARE = 1 / 32;

/**
 * The memory the process may use, bytes: the least of its cgroup limit
 * (`process.constrainedMemory()`, 0 or absurdly large when there is none) and the host's.
 */
export function availableMemoryBytes(constrained: number | undefined, totalBytes: number): number {
  return constrained !== undefined && constrained > 0 && constrained < totalBytes ? constrained : totalBytes;
}

/**
 * blockCacheSizeBytes and memtableSizeBytes for `memoryBytes` of memory: 1/16 and 1/32 of it,
 * at least 1 MiB each and at most the fixed defaults — so a host of 1 GiB or more keeps
 * 64 MiB and 8 MiB, and a 128 MiB container gets 8 MiB and 4 MiB. (At 1/8, 16 MiB, a server
 * holding 6.5x its 128 MiB was OOM-killed during a large compaction: bench:capacity.)
 */
export function engineMemoryDefaults(memoryBytes: number): { blockCacheSizeBytes: number; memtableSizeBytes: number } {
  const clamp = (x: number, hi: number) => Math.max(MiB, Math.min(hi, Math.floor(x / MiB) * MiB));
  return { blockCacheSizeBytes: clamp(memoryBytes * BLOCK_CACHE_SHARE, 64 * MiB), memtableSizeBytes: clamp(memoryBytes * MEMTABLE_SHARE, 8 * MiB) };
}
