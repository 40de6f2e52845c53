// The work of a compaction: mergeTables() reads a contiguous run of tables with raw
// cursors and writes the newest version of each key into one TableBuilder, copying records
// byte for byte (no decode, no re-encode); only a tombstone, or a value that has expired,
// is looked at more closely. compactToFile() wraps it into "write this output table".
// The engine (engine.ts) picks the run, runs the job on its own thread or on the
// compaction worker (compaction-thread.ts), installs the output and deletes the inputs.
// Runs on the caller's thread; one job per set of inputs.

import { bloomHash } from './bloom-filter.js';
import { compareBytes } from './coding.js';
import type { FileSystem } from './file-system.js';
import type { EngineRecord } from './record.js';
import { RECORD_TOMBSTONE } from './record.js';
import type { TableCursor, TableReader } from './table.js';
import type { ScanSource, TableProps } from './table.js';
import { TableBuilder } from './table.js';

const EMPTY = Buffer.alloc(0);

export interface MergeOptions {
  /** The tables to merge, oldest first. REQUIRES: the caller holds a ref on each. */
  inputs: readonly ScanSource[];
  /**
   * Per input, the data blocks to drop: quarantined blocks whose keys were repaired from
   * other replicas (their records are unreadable; the repair wrote newer versions).
   */
  skipBlocks?: readonly (readonly number[])[];
  /** Receives the merged records; the caller finishes it. */
  builder: TableBuilder;
  /** The time that decides expiry and tombstone grace. */
  nowMs: number;
  tombstoneGraceMs: number;
  /**
   * Whether some table older than the inputs may hold `key`. A tombstone past its grace is
   * dropped only when this is false, so a delete never uncovers an older value.
   */
  olderMayContain(key: Buffer): boolean;
  /** Polled between records; returning true aborts the merge (it throws `abortError()`). */
  shouldAbort(): boolean;
  abortError(): Error;
}

export interface MergeResult {
  /** Records written to the builder. */
  written: number;
  /** Tombstones (and expired values) dropped for good. */
  dropped: number;
}

/**
 * Merges `inputs` into `builder`: for every key the version with the highest sequence
 * number; an expired value becomes a tombstone dated at its expiry; a tombstone older than
 * the grace period that no older table may hold is dropped.
 */
export async function mergeTables(o: MergeOptions): Promise<MergeResult> {
  const b = o.builder;
  const live: TableCursor[] = [];
  for (let i = 0; i < o.inputs.length; i++) {
    const t = o.inputs[i]!;
    const skip = o.skipBlocks?.[i];
    const c = t.cursor(undefined, skip && skip.length > 0 ? new Set(skip) : undefined);
    await c.start();
    if (c.valid) live.push(c);
  }
  let written = 0;
  let dropped = 0;
  while (live.length > 0) {
    if (o.shouldAbort()) throw o.abortError();
    // The smallest key; of equal keys, the newest version.
    let w = live[0]!;
    for (let i = 1; i < live.length; i++) {
      const c = live[i]!;
      const cmp = compareBytes(c.buf, c.span.keyStart, c.span.keyEnd, w.buf, w.span.keyStart, w.span.keyEnd);
      if (cmp < 0 || (cmp === 0 && c.span.seq > w.span.seq)) w = c;
    }

    const s = w.span;
    let keep: 'raw' | EngineRecord | undefined = 'raw';
    if (s.bits & RECORD_TOMBSTONE) {
      if (o.nowMs - s.expiresAtMs >= o.tombstoneGraceMs && !o.olderMayContain(w.buf.subarray(s.keyStart, s.keyEnd))) keep = undefined;
    } else if (s.expiresAtMs > 0 && s.expiresAtMs <= o.nowMs) {
      // An expired value shadows older versions exactly like a tombstone from its expiry on.
      const r = w.decode();
      if (o.nowMs - r.expiresAtMs >= o.tombstoneGraceMs && !o.olderMayContain(r.key)) keep = undefined;
      else keep = { ...r, tombstone: true, value: EMPTY, flags: 0, contentType: '' };
    }
    if (keep === 'raw') b.addRaw(w.buf, s);
    else if (keep) b.add(keep);
    if (keep) written++;
    else dropped++;

    // Step past this key in every input that has it (the older versions are shadowed);
    // the winner last, since the others compare against its bytes.
    for (let i = 0; i < live.length; i++) {
      const c = live[i]!;
      if (c === w || compareBytes(c.buf, c.span.keyStart, c.span.keyEnd, w.buf, s.keyStart, s.keyEnd) !== 0) continue;
      const p = c.next();
      if (p) await p;
    }
    const p = w.next();
    if (p) await p;
    for (let i = live.length - 1; i >= 0; i--) {
      if (!live[i]!.valid) live.splice(i, 1);
    }
    if (b.needsDrain) await b.drain();
  }
  return { written, dropped };
}

/** What a compaction job needs besides its tables. Plain data (it crosses to the worker). */
export interface CompactionSettings {
  blockSizeBytes: number;
  bloomBitsPerKey: number;
  /** The time that decides expiry and tombstone grace (the engine's clock at the start). */
  nowMs: number;
  tombstoneGraceMs: number;
}

export interface CompactionOutcome {
  /** Records in the output table; 0 means no table was left (everything was dropped). */
  count: number;
  /** Tombstones and expired values dropped for good. */
  dropped: number;
}

/**
 * Merges `inputs` into a new table `file` (created; synced when finished). When every
 * record is dropped the file is removed again. On error the caller removes the file.
 * `older`: the tables older than the inputs (for dropping tombstones safely).
 */
export async function compactToFile(
  fs: FileSystem,
  file: string,
  inputs: readonly (ScanSource & { props: TableProps })[],
  older: readonly TableReader[],
  settings: CompactionSettings,
  /** Per input, data blocks to drop (see MergeOptions.skipBlocks). */
  skipBlocks: readonly (readonly number[])[] | undefined,
  /** Called before each write of the output; should give up waiting once shouldAbort() is true. */
  throttle: ((bytes: number) => Promise<void>) | undefined,
  shouldAbort: () => boolean,
  abortError: () => Error,
): Promise<CompactionOutcome> {
  const fh = await fs.open(file, 'create');
  const drainThrottle = throttle && (async (bytes: number) => {
    await throttle(bytes);
    if (shouldAbort()) throw abortError();
  });
  let count = 0;
  let dropped = 0;
  try {
    // The output holds at most the inputs' entries: its filter's key hashes are sized for
    // them once, not doubled as they come (a doubling held the old and new arrays at once).
    const expectedEntries = inputs.reduce((n, t) => n + t.props.entries, 0);
    const b = new TableBuilder(fh, { blockSizeBytes: settings.blockSizeBytes, bloomBitsPerKey: settings.bloomBitsPerKey, nowMs: settings.nowMs, expectedEntries }, drainThrottle);
    const result = await mergeTables({
      inputs,
      ...(skipBlocks ? { skipBlocks } : {}),
      builder: b,
      nowMs: settings.nowMs,
      tombstoneGraceMs: settings.tombstoneGraceMs,
      olderMayContain: (key) => {
        if (older.length === 0) return false;
        const h = bloomHash(key);
        return older.some((t) => t.mayContain(key, h));
      },
      shouldAbort,
      abortError,
    });
    dropped = result.dropped;
    count = b.count;
    if (count > 0) await b.finish();
  } finally {
    await fh.close();
  }
  if (count === 0) await fs.unlink(file);
  return { count, dropped };
}
