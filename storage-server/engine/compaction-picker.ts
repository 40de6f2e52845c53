// Chooses what to compact: size-tiered compaction over the list of tables, oldest first.
// Tables hold disjoint, increasing sequence ranges, so a compaction always takes a
// contiguous run and its output takes the run's place. Pure function.
//
// Write amplification: a merge happens only when `minMergeTables` tables of similar size
// have gathered, so each byte is rewritten about once per size tier (tiers grow by a
// factor of about minMergeTables): log_minMergeTables(data / memtable) times, plus the
// full compactions of the size-amplification rule. The older rule ("merge the newest
// tables whenever there are more than the trigger") rewrote the second-newest table on
// every flush once no natural run existed, which grew without bound (quadratic in the
// number of flushes).

export interface PickerOptions {
  /** A run of at least this many similar-sized tables is merged. */
  minMergeTables: number;
  /** A table joins a run when its size <= (100 + ratio)% of the run's average table size. */
  sizeRatioPercent: number;
  /** Full compaction when the newer tables together exceed this percentage of the oldest. */
  maxSizeAmplificationPercent: number;
  /** With more tables than this, the cheapest contiguous run that gets back to it is merged. */
  maxTables: number;
}

export interface Pick {
  /** First table of the run (inclusive). */
  start: number;
  /** One past the last table of the run. */
  end: number;
  reason: 'size-amplification' | 'size-tier' | 'table-count';
}

/** `sizes` are table sizes in bytes, oldest first. Returns undefined when nothing needs doing. */
export function pickCompaction(sizes: readonly number[], o: PickerOptions): Pick | undefined {
  const n = sizes.length;
  if (n < 2) return undefined;

  // 1. Space: the newer tables may hold (up to) newer versions of everything in the oldest.
  let newer = 0;
  for (let i = 1; i < n; i++) newer += sizes[i]!;
  if (newer * 100 > o.maxSizeAmplificationPercent * sizes[0]!) return { start: 0, end: n, reason: 'size-amplification' };

  // 2. Size tiers: runs of similar sizes, from the newest; the newest run that is long enough.
  let end = n;
  while (end > 0) {
    let sum = sizes[end - 1]!;
    let start = end - 1;
    while (start > 0 && sizes[start - 1]! * 100 * (end - start) <= (100 + o.sizeRatioPercent) * sum) {
      start--;
      sum += sizes[start]!;
    }
    if (end - start >= o.minMergeTables) return { start, end, reason: 'size-tier' };
    end = start;
  }

  // 3. Too many tables for reads: merge the contiguous run of least bytes that gets back to maxTables.
  if (n > o.maxTables) {
    const width = n - o.maxTables + 1;
    let best = 0;
    let bestBytes = Infinity;
    let window = 0;
    for (let i = 0; i < n; i++) {
      window += sizes[i]!;
      if (i >= width) window -= sizes[i - width]!;
      if (i >= width - 1 && window < bestBytes) {
        bestBytes = window;
        best = i - width + 1;
      }
    }
    return { start: best, end: best + width, reason: 'table-count' };
  }
  return undefined;
}
