// Chooses what to compact: universal (size-tiered) compaction over the list of tables,
// oldest first. Tables hold disjoint, increasing sequence ranges, so a compaction always
// takes a contiguous run and its output takes the run's place. Pure function.

export interface PickerOptions {
  /** Compact once there are this many tables. */
  triggerTables: number;
  /** A table joins the run when its size <= (sum of the run so far) * (100 + ratio) / 100. */
  sizeRatioPercent: number;
  /** Full compaction when the newer tables together exceed this percentage of the oldest. */
  maxSizeAmplificationPercent: number;
}

export interface Pick {
  /** First table of the run (inclusive). */
  start: number;
  /** One past the last table of the run. */
  end: number;
  reason: 'size-amplification' | 'size-ratio' | 'table-count';
}

/** `sizes` are table sizes in bytes, oldest first. Returns undefined when nothing needs doing. */
export function pickCompaction(sizes: readonly number[], o: PickerOptions): Pick | undefined {
  const n = sizes.length;
  if (n < Math.max(2, o.triggerTables)) return undefined;
  let newer = 0;
  for (let i = 1; i < n; i++) newer += sizes[i]!;
  if (newer * 100 > o.maxSizeAmplificationPercent * sizes[0]!) return { start: 0, end: n, reason: 'size-amplification' };
  let acc = sizes[n - 1]!;
  let i = n - 2;
  while (i >= 0 && sizes[i]! * 100 <= acc * (100 + o.sizeRatioPercent)) {
    acc += sizes[i]!;
    i--;
  }
  if (n - 1 - i >= 2) return { start: i + 1, end: n, reason: 'size-ratio' };
  // Too many tables and no natural run: merge the newest ones to get back under the trigger.
  return { start: n - (n - o.triggerTables + 2), end: n, reason: 'table-count' };
}
