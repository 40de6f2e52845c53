// Engine benchmark: ringkv's storage engine against LevelDB (classic-level) in the same run,
// at the same durability, concurrency and cache size. Random puts, then random gets of
// present and of missing keys, compared like with like: each store's async get (file reads
// on libuv's thread pool) at --concurrency in flight, and, separately, gets that run on the
// calling thread one at a time (LevelDB's getSync; the engine's get with blockReadMode
// 'sync', awaited one by one, as the engine has no synchronous API). A table for people,
// one JSON line for machines (last), and the results file under benchmarks/results/.
// Single-threaded driver; stores run one at a time, never overlapping.
//
//   npm run bench:engine -- --keys 1000000 --runs 3

import { Command, InvalidArgumentError } from 'commander';
import { ClassicLevel } from 'classic-level';
import { rmSync } from 'node:fs';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Engine } from '../storage-server/engine/index.js';
import { machineInfo, saveResults, stamp } from './harness/report.js';
import { REPO_ROOT } from './harness/processes.js';
import { fmix32 as mix32 } from './harness/mix32.js';

const MiB = 1024 * 1024;
const KEY_BYTES = 16;
/** Missing keys carry an index at or above this in their last 8 bytes; present keys stay below it. */
const MISSING_BASE = 2 ** 40;

type StoreName = 'ringkv' | 'leveldb';
/**
 * put: async puts at --concurrency. get_hit / get_miss: each store's async get at
 * --concurrency, file reads on the thread pool. *_sync: gets on the calling thread, one at
 * a time (LevelDB getSync; the engine's get in blockReadMode 'sync', awaited one by one).
 */
type Phase = 'put' | 'get_hit' | 'get_miss' | 'get_hit_sync' | 'get_miss_sync';
const PHASES: readonly Phase[] = ['put', 'get_hit', 'get_miss', 'get_hit_sync', 'get_miss_sync'];
/** How each phase is driven, printed beside the table and saved with the results. */
const PHASE_METHOD: Record<Phase, string> = {
  put: 'async put, --concurrency in flight',
  get_hit: "async get of present keys, --concurrency in flight; ringkv blockReadMode 'async' (block reads on the thread pool), LevelDB get (every get on the thread pool)",
  get_miss: 'async get of missing keys, as get_hit',
  get_hit_sync: "get of present keys on the calling thread, one at a time: LevelDB getSync; ringkv get with blockReadMode 'sync' (readSync), each awaited before the next",
  get_miss_sync: 'get of missing keys on the calling thread, as get_hit_sync',
};
const STORES: readonly StoreName[] = ['ringkv', 'leveldb'];

interface Params {
  keys: number;
  syncKeys: number;
  reads: number;
  valueBytes: number;
  concurrency: number;
  runs: number;
  cacheBytes: number;
  memtableBytes: number;
  only: StoreName | undefined;
  seed: number;
}

/** Which get a store is opened for: its async get, or its get on the calling thread. */
type ReadPath = 'async' | 'sync';

/** The operations a phase drives; each store adapts its API to this. */
interface Store {
  put(key: Buffer, value: Buffer): Promise<void>;
  /** The value, or undefined when the key is missing (the store's async get). */
  get(key: Buffer): Promise<Buffer | undefined>;
  /**
   * A get whose work runs on the calling thread: LevelDB's getSync returns the value;
   * the engine (opened with blockReadMode 'sync') resolves a promise it never waits in.
   */
  getOnThread(key: Buffer): Buffer | undefined | Promise<Buffer | undefined>;
  close(): Promise<void>;
  /** One line of store internals worth printing after a run, if any. */
  describe(): string;
  /**
   * Write amplification so far: bytes written to tables (by flushes and compactions) per
   * byte of the live tables now; the WAL is not counted. Undefined when the store cannot tell.
   */
  writeAmp(): number | undefined;
}

interface PhaseResult {
  ops: number;
  seconds: number;
}

type RunResult = Record<Phase, PhaseResult> & { diskBytes: number; writeAmp: number | undefined; note: string };

// -----------------------------------------------------------------------------------------
// Keys and values

/**
 * Key `i`: 8 pseudo-random bytes (so writing i = 0, 1, 2 ... is random key order and
 * key ranges cannot rule a key out) followed by i itself (so keys are distinct).
 */
function makeKey(i: number, seed: number): Buffer {
  const k = Buffer.allocUnsafe(KEY_BYTES);
  const lo = i >>> 0;
  const hi = Math.floor(i / 2 ** 32);
  k.writeUInt32BE(mix32(lo ^ mix32(hi ^ seed)), 0);
  k.writeUInt32BE(mix32(lo + 0x9e3779b9 + mix32(hi + seed)), 4);
  k.writeUInt32BE(hi, 8);
  k.writeUInt32BE(lo, 12);
  return k;
}

/**
 * Value `i`: i in the first 8 bytes, then a slice of a fixed 1 MiB random pool at an
 * offset derived from i. Values do not compress (neighbours in a block share nothing),
 * and a get can be checked exactly without storing what was written.
 */
class Values {
  private static readonly POOL_BYTES = MiB;
  private readonly pool: Buffer;
  constructor(readonly bytes: number) {
    if (bytes < 8) throw new InvalidArgumentError('--value-bytes must be at least 8');
    this.pool = Buffer.allocUnsafe(Values.POOL_BYTES + bytes);
    const rnd = prng(0x2545f491);
    for (let i = 0; i < this.pool.length; i++) this.pool[i] = (rnd() * 256) | 0;
  }
  private offset(i: number): number {
    return mix32((i >>> 0) ^ mix32(Math.floor(i / 2 ** 32))) % Values.POOL_BYTES;
  }
  make(i: number): Buffer {
    const v = Buffer.allocUnsafe(this.bytes);
    const at = this.offset(i);
    this.pool.copy(v, 8, at, at + this.bytes - 8);
    v.writeUInt32BE(Math.floor(i / 2 ** 32), 0);
    v.writeUInt32BE(i >>> 0, 4);
    return v;
  }
  check(i: number, v: Buffer | undefined): boolean {
    if (v === undefined || v.length !== this.bytes) return false;
    const at = this.offset(i);
    return v.readUInt32BE(0) === Math.floor(i / 2 ** 32) && v.readUInt32BE(4) === i >>> 0 && v.compare(this.pool, at, at + this.bytes - 8, 8) === 0;
  }
}

/** A small seeded PRNG (mulberry32) for the read order. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

// -----------------------------------------------------------------------------------------
// Stores

async function openRingkv(dir: string, p: Params, sync: boolean, reads: ReadPath): Promise<Store> {
  const engine = await Engine.open(dir, {
    sync: sync ? 'batch' : 'none',
    blockCacheSizeBytes: p.cacheBytes,
    memtableSizeBytes: p.memtableBytes,
    blockReadMode: reads,
  });
  return {
    put: (key, value) => engine.put(key, value),
    get: async (key) => (await engine.get(key))?.value,
    getOnThread: async (key) => (await engine.get(key))?.value,
    close: () => engine.close(),
    describe: () => {
      const s = engine.stats();
      return (
        `ringkv: ${s.tableCount} tables, ${s.flushes} flushes (${(s.flushBytesWritten / MiB).toFixed(0)} MiB), ` +
        `${s.compactions} compactions (${(s.compactionBytesWritten / MiB).toFixed(0)} MiB written), ${s.writeStalls} write stalls, ` +
        `${s.writeGroups} write groups for ${s.writes} writes, ${s.walSyncs} WAL syncs`
      );
    },
    writeAmp: () => {
      const s = engine.stats();
      return s.tableBytes > 0 ? (s.flushBytesWritten + s.compactionBytesWritten) / s.tableBytes : undefined;
    },
  };
}

async function openLeveldb(dir: string, p: Params, sync: boolean, _reads: ReadPath): Promise<Store> {
  const db = new ClassicLevel<Buffer, Buffer>(dir, { keyEncoding: 'buffer', valueEncoding: 'buffer' });
  await db.open({ cacheSize: p.cacheBytes, writeBufferSize: p.memtableBytes });
  const writeOptions = { sync };
  return {
    put: (key, value) => db.put(key, value, writeOptions),
    get: (key) => db.get(key),
    getOnThread: (key) => db.getSync(key),
    close: () => db.close(),
    describe: () => {
      const w = leveldbWrites(db.getProperty('leveldb.stats'));
      return w ? `leveldb: ${w.files} tables (${w.sizeMiB} MB), ${w.writtenMiB} MB written to tables by flushes and compactions` : '';
    },
    writeAmp: () => {
      const w = leveldbWrites(db.getProperty('leveldb.stats'));
      return w && w.sizeMiB > 0 ? w.writtenMiB / w.sizeMiB : undefined;
    },
  };
}

/**
 * From LevelDB's "leveldb.stats" property (one row per level: Level, Files, Size(MB),
 * Time(sec), Read(MB), Write(MB)): live tables and their size, and the bytes written to
 * tables (a flush's output is counted at the level it was placed in, so flushes and
 * compactions cannot be told apart; their sum can).
 */
function leveldbWrites(stats: string): { files: number; sizeMiB: number; writtenMiB: number } | undefined {
  let files = 0;
  let sizeMiB = 0;
  let writtenMiB = 0;
  let rows = 0;
  for (const line of stats.split('\n')) {
    const cols = line.trim().split(/\s+/).map(Number);
    if (cols.length !== 6 || !cols.every(Number.isFinite)) continue;
    files += cols[1]!;
    sizeMiB += cols[2]!;
    writtenMiB += cols[5]!;
    rows++;
  }
  return rows > 0 ? { files, sizeMiB, writtenMiB } : undefined;
}

// -----------------------------------------------------------------------------------------
// Driver

/**
 * Runs fn(0) ... fn(n - 1) with `concurrency` calls in flight: a fixed set of workers
 * pulling the next index, so a million operations allocate no per-operation closures
 * or queue entries (which a general limiter such as p-limit would).
 */
async function pool(n: number, concurrency: number, fn: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < n) await fn(next++);
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, n) }, worker));
}

async function timed(ops: number, body: () => Promise<void>): Promise<PhaseResult> {
  const t0 = performance.now();
  await body();
  return { ops, seconds: (performance.now() - t0) / 1000 };
}

async function dirBytes(dir: string): Promise<number> {
  let total = 0;
  for (const name of await fs.readdir(dir)) total += (await fs.stat(path.join(dir, name))).size;
  return total;
}

/** Data directories in use, removed on Ctrl-C too. */
const liveDirs = new Set<string>();
process.once('SIGINT', () => {
  for (const d of liveDirs) rmSync(d, { recursive: true, force: true });
  process.exit(130);
});

/** Runs fn(0) ... fn(n - 1) one at a time; awaits only what returns a promise. */
async function serial(n: number, fn: (i: number) => void | Promise<void>): Promise<void> {
  for (let i = 0; i < n; i++) {
    const r = fn(i);
    if (r instanceof Promise) await r;
  }
}

async function runStore(name: StoreName, p: Params, sync: boolean, run: number): Promise<RunResult> {
  const keys = sync ? p.syncKeys : p.keys;
  const values = new Values(p.valueBytes);
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), `ringkv-bench-${name}-`));
  liveDirs.add(dir);
  const open = (reads: ReadPath) => (name === 'ringkv' ? openRingkv : openLeveldb)(dir, p, sync, reads);
  try {
    const seed = p.seed + run;
    const rnd = prng(seed ^ 0x5bd1e995);
    const hits = Uint32Array.from({ length: p.reads }, () => Math.floor(rnd() * keys));
    const checkHit = (i: number, v: Buffer | undefined): void => {
      if (!values.check(i, v)) throw new Error(`${name}: get of present key #${i} returned ${v ? `a wrong ${v.length}-byte value` : 'nothing'}`);
    };
    const checkMiss = (v: Buffer | undefined): void => {
      if (v !== undefined) throw new Error(`${name}: get of a missing key returned a ${v.length}-byte value`);
    };

    // Puts, then the store's own write figures (its counters start at open).
    let store = await open('async');
    let put: PhaseResult;
    let writeAmp: number | undefined;
    let note: string;
    try {
      put = await timed(keys, () => pool(keys, p.concurrency, (i) => store.put(makeKey(i, seed), values.make(i))));
      writeAmp = store.writeAmp();
      note = store.describe();
    } finally {
      await store.close();
    }

    // Each read pair starts from a store reopened for its read path (both stores alike:
    // cold block cache, the last memtable replayed from the log).
    store = await open('async');
    let getHit: PhaseResult;
    let getMiss: PhaseResult;
    try {
      getHit = await timed(p.reads, () =>
        pool(p.reads, p.concurrency, async (j) => {
          const i = hits[j]!;
          checkHit(i, await store.get(makeKey(i, seed)));
        }),
      );
      getMiss = await timed(p.reads, () => pool(p.reads, p.concurrency, async (j) => checkMiss(await store.get(makeKey(MISSING_BASE + hits[j]!, seed)))));
    } finally {
      await store.close();
    }

    store = await open('sync');
    let getHitSync: PhaseResult;
    let getMissSync: PhaseResult;
    try {
      const s = store;
      getHitSync = await timed(p.reads, () =>
        serial(p.reads, (j) => {
          const i = hits[j]!;
          const v = s.getOnThread(makeKey(i, seed));
          return v instanceof Promise ? v.then((x) => checkHit(i, x)) : checkHit(i, v);
        }),
      );
      getMissSync = await timed(p.reads, () =>
        serial(p.reads, (j) => {
          const v = s.getOnThread(makeKey(MISSING_BASE + hits[j]!, seed));
          return v instanceof Promise ? v.then(checkMiss) : checkMiss(v);
        }),
      );
    } finally {
      await store.close();
    }
    return { put, get_hit: getHit, get_miss: getMiss, get_hit_sync: getHitSync, get_miss_sync: getMissSync, diskBytes: await dirBytes(dir), writeAmp, note };
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
    liveDirs.delete(dir);
  }
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

interface Summary {
  /** Median ops/s and µs/op (1e6 / ops/s: wall time per operation at the given concurrency) per phase. */
  phases: Record<Phase, { ops_per_sec: number; us_per_op: number }>;
  /** ops/s of every run, in run order (the spread says how far to trust the median). */
  perRun: Record<Phase, number[]>;
  keys: number;
  disk_bytes: number;
  /** Median write amplification at the end of a run (bytes written to tables per byte of live tables), if known. */
  write_amp: number | null;
}

function summarize(runs: RunResult[], keys: number): Summary {
  const phases = {} as Summary['phases'];
  const perRun = {} as Summary['perRun'];
  for (const ph of PHASES) {
    perRun[ph] = runs.map((r) => Math.round(r[ph].ops / r[ph].seconds));
    const opsPerSec = median(runs.map((r) => r[ph].ops / r[ph].seconds));
    phases[ph] = { ops_per_sec: Math.round(opsPerSec), us_per_op: Number((1e6 / opsPerSec).toFixed(2)) };
  }
  const amps = runs.map((r) => r.writeAmp).filter((w): w is number => w !== undefined);
  return {
    phases,
    perRun,
    keys,
    disk_bytes: Math.round(median(runs.map((r) => r.diskBytes))),
    write_amp: amps.length > 0 ? Number(median(amps).toFixed(2)) : null,
  };
}

function ratios(a: Summary | undefined, b: Summary | undefined): Record<Phase, number | null> {
  const r = {} as Record<Phase, number | null>;
  for (const ph of PHASES) r[ph] = a && b ? Number((a.phases[ph].ops_per_sec / b.phases[ph].ops_per_sec).toFixed(3)) : null;
  return r;
}

function fmtInt(n: number): string {
  return Math.round(n).toLocaleString('en-US');
}

function positiveInt(v: string): number {
  const n = Number(v.replace(/_/g, ''));
  if (!Number.isSafeInteger(n) || n <= 0) throw new InvalidArgumentError('expected a positive integer');
  return n;
}

async function main(): Promise<void> {
  const cli = new Command()
    .name('engine-bench')
    .description('ringkv storage engine vs LevelDB (classic-level): random puts, then gets of present and missing keys')
    .option('--keys <n>', 'keys to write (sync-off rows)', positiveInt, 1_000_000)
    .option('--sync-keys <n>', 'keys to write in the sync-on rows (default: --keys, at most 200,000)', positiveInt)
    .option('--reads <n>', 'gets of present keys, and again of missing keys', positiveInt, 100_000)
    .option('--value-bytes <n>', 'value size in bytes (keys are 16 bytes)', positiveInt, 100)
    .option('--concurrency <n>', 'operations in flight', positiveInt, 64)
    .option('--runs <n>', 'repeat the whole benchmark and report medians', positiveInt, 1)
    .option('--cache-bytes <n>', 'block cache of both stores', positiveInt, 8 * MiB)
    .option('--memtable-bytes <n>', 'memtable (ringkv memtableSizeBytes, LevelDB writeBufferSize) of both stores', positiveInt, 4 * MiB)
    .option('--only <store>', 'run one store: ringkv or leveldb', (v: string) => {
      if (v !== 'ringkv' && v !== 'leveldb') throw new InvalidArgumentError('expected ringkv or leveldb');
      return v;
    })
    .option('--seed <n>', 'seed of the key set and read order', positiveInt, 1)
    .option('--results-dir <dir>', 'where the results file is saved', path.join(REPO_ROOT, 'benchmarks/results'))
    .option('--no-save', 'do not save the results file')
    .parse();
  const o = cli.opts<{
    keys: number;
    syncKeys?: number;
    reads: number;
    valueBytes: number;
    concurrency: number;
    runs: number;
    cacheBytes: number;
    memtableBytes: number;
    only?: StoreName;
    seed: number;
    resultsDir: string;
    save: boolean;
  }>();
  const p: Params = {
    keys: o.keys,
    syncKeys: o.syncKeys ?? Math.min(o.keys, 200_000),
    reads: o.reads,
    valueBytes: o.valueBytes,
    concurrency: o.concurrency,
    runs: o.runs,
    cacheBytes: o.cacheBytes,
    memtableBytes: o.memtableBytes,
    only: o.only,
    seed: o.seed,
  };
  const stores = p.only ? [p.only] : STORES;
  const when = new Date();
  const date = when.toISOString();
  const machine = machineInfo();
  const cores = machine.cores;
  const threadpool = Number(process.env.UV_THREADPOOL_SIZE ?? 4);
  /** Everything printed, kept for the results file. */
  const out: string[] = [];
  const say = (line: string): void => {
    out.push(line);
    console.log(line);
  };

  say(`engine benchmark ${date} — ${cores} cores, ${machine.cpu}, node ${process.version}, tmp ${os.tmpdir()}, load average ${machine.loadAverage.join(' ')}`);
  say(
    `keys ${fmtInt(p.keys)} (sync on: ${fmtInt(p.syncKeys)}${p.syncKeys < p.keys ? ': a put that waits for fsync is ~10× slower, so fewer keys by default; --sync-keys to change' : ''}) × ` +
      `(${KEY_BYTES} B key + ${p.valueBytes} B value), random order; reads ${fmtInt(p.reads)} present + ${fmtInt(p.reads)} missing, async and on the calling thread; ` +
      `${p.concurrency} ops in flight (async phases); block cache ${p.cacheBytes / MiB} MiB and memtable ${p.memtableBytes / MiB} MiB for both; ` +
      `${p.runs} run(s)${p.runs > 1 ? ', medians' : ' (single run)'}`,
  );
  say(
    `sync off: ringkv sync 'none', LevelDB sync: false. sync on: ringkv sync 'batch' (group commit), LevelDB sync: true ` +
      `per put (${threadpool} libuv threads, so at most ${threadpool} LevelDB puts share a sync). Both use 10-bit bloom filters; LevelDB compresses with Snappy (default) but the values do not compress.`,
  );
  for (const ph of PHASES) say(`  ${ph}: ${PHASE_METHOD[ph]}`);
  say('  each pair of read phases starts on a store closed and reopened after the puts (cold block cache).');

  const results: Record<'off' | 'on', Partial<Record<StoreName, RunResult[]>>> = { off: {}, on: {} };
  for (let run = 0; run < p.runs; run++) {
    for (const mode of ['off', 'on'] as const) {
      // Alternate which store goes first, so neither always meets a warmer or cooler machine.
      const order = run % 2 === 0 ? stores : [...stores].reverse();
      for (const name of order) {
        const r = await runStore(name, p, mode === 'on', run);
        (results[mode][name] ??= []).push(r);
        const line = PHASES.map((ph) => `${ph} ${fmtInt(r[ph].ops / r[ph].seconds)}/s`).join(', ');
        const amp = r.writeAmp === undefined ? '' : `; write amp ${r.writeAmp.toFixed(2)}`;
        say(`  run ${run + 1}/${p.runs} sync ${mode} ${name.padEnd(7)} ${line}; ${(r.diskBytes / MiB).toFixed(1)} MiB on disk${amp}${r.note ? `; ${r.note}` : ''}`);
      }
    }
  }
  const loadAfter = os.loadavg().map((x) => Math.round(x * 100) / 100);

  const summary = (mode: 'off' | 'on', name: StoreName): Summary | undefined => {
    const rs = results[mode][name];
    return rs ? summarize(rs, mode === 'on' ? p.syncKeys : p.keys) : undefined;
  };
  const off = { ringkv: summary('off', 'ringkv'), leveldb: summary('off', 'leveldb') };
  const on = { ringkv: summary('on', 'ringkv'), leveldb: summary('on', 'leveldb') };
  const offRatio = ratios(off.ringkv, off.leveldb);
  const onRatio = ratios(on.ringkv, on.leveldb);

  say('');
  const header = ['sync', 'keys', 'phase', 'store', 'ops/s', 'µs/op', 'ringkv/leveldb', ...(p.runs > 1 ? ['runs min–max ops/s'] : [])];
  const rows: string[][] = [];
  for (const [mode, set, ratio] of [
    ['off', off, offRatio],
    ['on', on, onRatio],
  ] as const) {
    for (const ph of PHASES) {
      for (const name of STORES) {
        const s = set[name];
        if (!s) continue;
        rows.push([
          mode,
          fmtInt(s.keys),
          ph,
          name,
          fmtInt(s.phases[ph].ops_per_sec),
          s.phases[ph].us_per_op.toFixed(2),
          name === 'leveldb' && ratio[ph] !== null ? `${ratio[ph]!.toFixed(2)}×` : '',
          ...(p.runs > 1 ? [`${fmtInt(Math.min(...s.perRun[ph]))}–${fmtInt(Math.max(...s.perRun[ph]))}`] : []),
        ]);
      }
    }
  }
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const fmtRow = (r: string[]): string => r.map((c, i) => (i >= 4 ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join('  ');
  const table = [fmtRow(header), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(fmtRow)];
  for (const l of table) say(l);
  say('µs/op = 1e6 / (ops/s): wall time per operation with all of them in flight (one at a time in the _sync phases), not the latency of one.');
  say(`${p.runs > 1 ? `medians of ${p.runs} runs` : 'single run'}; load average ${machine.loadAverage.join(' ')} before, ${loadAfter.join(' ')} after.`);

  const flat = (s: Summary | undefined) => {
    if (!s) return null;
    const ops = {} as Record<Phase, number>;
    const us = {} as Record<Phase, number>;
    for (const ph of PHASES) {
      ops[ph] = s.phases[ph].ops_per_sec;
      us[ph] = s.phases[ph].us_per_op;
    }
    return { ...ops, us_per_op: us, runs: s.perRun, keys: s.keys, disk_bytes: s.disk_bytes, write_amp: s.write_amp };
  };
  const line: Record<string, unknown> = {
    ringkv: flat(off.ringkv),
    leveldb: flat(off.leveldb),
    ratio: offRatio,
    sync: { keys: p.syncKeys, ringkv: flat(on.ringkv), leveldb: flat(on.leveldb), ratio: onRatio },
    params: {
      keys: p.keys,
      reads: p.reads,
      key_bytes: KEY_BYTES,
      value_bytes: p.valueBytes,
      concurrency: p.concurrency,
      runs: p.runs,
      cache_bytes: p.cacheBytes,
      memtable_bytes: p.memtableBytes,
      seed: p.seed,
      stat: p.runs > 1 ? 'median' : 'single',
    },
    machine: { cores, cpu: machine.cpu, node: process.version, platform: `${os.platform()} ${os.release()}`, uv_threadpool_size: threadpool, load_average: { before: machine.loadAverage, after: loadAfter } },
    date,
  };
  if (o.save) {
    const [file] = saveResults(o.resultsDir, `${stamp(when)}-engine-${cores}cores`, {
      date,
      command: `npm run bench:engine -- ${process.argv.slice(2).join(' ')}`.trim(),
      machine: { ...machine, loadAverageAfter: loadAfter, uvThreadpoolSize: threadpool },
      params: p,
      phases: PHASE_METHOD,
      runs: results,
      summary: { off, on, ratio: { off: offRatio, on: onRatio } },
      table,
      output: out,
      json: line,
    });
    say(`saved ${path.relative(process.cwd(), file!)}`);
    line.resultsFile = path.relative(REPO_ROOT, file!);
  }
  console.log(JSON.stringify(line));
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
