// Bloom filter benchmark: the engine's own filter (storage-server/engine/bloom-filter.ts,
// raw bytes inside each SSTable, used in place) against the `bloom-filters` package's
// BloomFilter (export/import through JSON), at the same key count and target
// false-positive rate. Measures build time, serialized size, load time (bytes → a filter
// ready to query), query throughput and the measured false-positive rate; prints a table
// for people, then one JSON line for machines (last). Single-threaded; each timing is the
// median of --repeats runs.
//
//   npm run bench:bloom -- --keys 100000

import bloomFilters from 'bloom-filters';
import { Command, InvalidArgumentError } from 'commander';
import os from 'node:os';
import { bloomHash, bloomMayContain, buildBloomFilter } from '../storage-server/engine/bloom-filter.js';
import { crc32 } from '../storage-server/engine/coding.js';
import { fmix32 as mix32 } from './harness/mix32.js';

// bloom-filters is CommonJS: its named exports come through the default import.
const { BloomFilter } = bloomFilters;
type BloomFilter = InstanceType<typeof BloomFilter>;

const KEY_BYTES = 16;

/** Key i of set `set`: 8 pseudo-random bytes, then the set and i (distinct across sets). */
function makeKey(set: number, i: number): Buffer {
  const k = Buffer.allocUnsafe(KEY_BYTES);
  k.writeUInt32BE(mix32(i ^ mix32(set + 0x9e3779b9)), 0);
  k.writeUInt32BE(mix32(i + 0x7f4a7c15 + set), 4);
  k.writeUInt32BE(set, 8);
  k.writeUInt32BE(i, 12);
  return k;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/** Median wall time of `repeats` calls of fn, in ms; the last call's result is returned too. */
function time<T>(repeats: number, fn: () => T): { ms: number; result: T } {
  const times: number[] = [];
  let result!: T;
  for (let r = 0; r < repeats; r++) {
    const t0 = performance.now();
    result = fn();
    times.push(performance.now() - t0);
  }
  return { ms: median(times), result };
}

/** What each filter implementation offers the benchmark. */
interface Contender<F> {
  name: string;
  build(keys: Buffer[]): F;
  serialize(f: F): Buffer;
  load(bytes: Buffer): F;
  /** Counts the keys the filter says "maybe" to. */
  countMaybe(f: F, keys: Buffer[]): number;
}

interface Result {
  name: string;
  build_ms: number;
  serialized_bytes: number;
  bits_per_key: number;
  load_ms: number;
  queries_per_sec: number;
  fp_rate: number;
  false_negatives: number;
}

function engineContender(bitsPerKey: number): Contender<Buffer> {
  return {
    name: `engine (${bitsPerKey} bits/key)`,
    build(keys) {
      const hashes = new Uint32Array(keys.length);
      for (let i = 0; i < keys.length; i++) hashes[i] = bloomHash(keys[i]!);
      return buildBloomFilter(hashes, keys.length, bitsPerKey);
    },
    // Stored form inside a table: the filter bytes, then a CRC-32 (table-format.md).
    serialize(f) {
      const out = Buffer.allocUnsafe(f.length + 4);
      f.copy(out, 0);
      out.writeUInt32LE(crc32(f), f.length);
      return out;
    },
    // What TableReader.open does with the block it read: verify the CRC, use the bytes in place.
    load(bytes) {
      const body = bytes.subarray(0, bytes.length - 4);
      if (crc32(body) !== bytes.readUInt32LE(bytes.length - 4)) throw new Error('filter checksum mismatch');
      return body;
    },
    countMaybe(f, keys) {
      let n = 0;
      for (let i = 0; i < keys.length; i++) if (bloomMayContain(f, bloomHash(keys[i]!))) n++;
      return n;
    },
  };
}

function libraryContender(fpRate: number): Contender<BloomFilter> {
  return {
    name: `bloom-filters BloomFilter (${fpRate})`,
    build(keys) {
      const f = BloomFilter.create(keys.length, fpRate);
      for (const k of keys) f.add(k);
      return f;
    },
    // Its documented export: saveAsJSON(), stored as UTF-8 JSON text.
    serialize(f) {
      return Buffer.from(JSON.stringify(f.saveAsJSON()), 'utf8');
    },
    load(bytes) {
      return BloomFilter.fromJSON(JSON.parse(bytes.toString('utf8'))) as BloomFilter;
    },
    countMaybe(f, keys) {
      let n = 0;
      for (const k of keys) if (f.has(k)) n++;
      return n;
    },
  };
}

function measure<F>(c: Contender<F>, present: Buffer[], absent: Buffer[], queries: Buffer[], repeats: number): Result {
  const build = time(repeats, () => c.build(present));
  const bytes = c.serialize(build.result);
  const load = time(repeats, () => c.load(bytes));
  const f = load.result;
  const q = time(repeats, () => c.countMaybe(f, queries));
  const hits = c.countMaybe(f, present);
  const fps = c.countMaybe(f, absent);
  return {
    name: c.name,
    build_ms: Number(build.ms.toFixed(2)),
    serialized_bytes: bytes.length,
    bits_per_key: Number(((bytes.length * 8) / present.length).toFixed(2)),
    load_ms: Number(load.ms.toFixed(3)),
    queries_per_sec: Math.round(queries.length / (q.ms / 1000)),
    fp_rate: Number((fps / absent.length).toFixed(5)),
    false_negatives: present.length - hits,
  };
}

function positiveInt(v: string): number {
  const n = Number(v.replace(/_/g, ''));
  if (!Number.isSafeInteger(n) || n <= 0) throw new InvalidArgumentError('expected a positive integer');
  return n;
}

function main(): void {
  const o = new Command()
    .name('bloom-bench')
    .description("the engine's bloom filter vs the bloom-filters package: build, size, load, query, false positives")
    .option('--keys <n>', 'keys in the filter', positiveInt, 100_000)
    .option('--absent <n>', 'absent keys probed to measure the false-positive rate', positiveInt, 200_000)
    .option('--queries <n>', 'lookups timed for throughput (half present, half absent)', positiveInt, 200_000)
    .option('--bits-per-key <n>', "the engine filter's bits per key (the engine's default is 10)", positiveInt, 10)
    .option('--fp-rate <x>', "bloom-filters' target false-positive rate", (v: string) => Number(v), 0.01)
    .option('--repeats <n>', 'runs of each timing; the median is reported', positiveInt, 5)
    .parse()
    .opts<{ keys: number; absent: number; queries: number; bitsPerKey: number; fpRate: number; repeats: number }>();
  if (!(o.fpRate > 0 && o.fpRate < 1)) throw new InvalidArgumentError('--fp-rate must be in (0, 1)');

  const present = Array.from({ length: o.keys }, (_, i) => makeKey(1, i));
  const absent = Array.from({ length: o.absent }, (_, i) => makeKey(2, i));
  const queries = Array.from({ length: o.queries }, (_, i) => (i % 2 === 0 ? present[(i >>> 1) % present.length]! : absent[(i >>> 1) % absent.length]!));

  console.log(
    `bloom filter benchmark ${new Date().toISOString()} — ${os.cpus()[0]?.model ?? 'unknown CPU'}, node ${process.version}; ` +
      `${o.keys.toLocaleString('en-US')} ${KEY_BYTES}-byte keys, ${o.absent.toLocaleString('en-US')} absent keys for the FP rate, ` +
      `${o.queries.toLocaleString('en-US')} timed lookups (half present); medians of ${o.repeats}`,
  );
  const engine = measure(engineContender(o.bitsPerKey), present, absent, queries, o.repeats);
  const library = measure(libraryContender(o.fpRate), present, absent, queries, o.repeats);

  const header = ['filter', 'build ms', 'size bytes', 'bits/key', 'load ms', 'lookups/s', 'FP rate', 'false neg.'];
  const rows = [engine, library].map((r) => [
    r.name,
    r.build_ms.toFixed(2),
    r.serialized_bytes.toLocaleString('en-US'),
    r.bits_per_key.toFixed(2),
    r.load_ms.toFixed(3),
    r.queries_per_sec.toLocaleString('en-US'),
    `${(r.fp_rate * 100).toFixed(3)}%`,
    String(r.false_negatives),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const fmt = (r: string[]): string => r.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  console.log('');
  console.log(fmt(header));
  console.log(widths.map((w) => '-'.repeat(w)).join('  '));
  for (const r of rows) console.log(fmt(r));
  console.log(
    'size: the stored form (engine: bit array + k byte + CRC-32; bloom-filters: its saveAsJSON() as UTF-8). ' +
      'load: stored bytes to a queryable filter (engine: CRC check, then used in place; bloom-filters: UTF-8 decode, JSON.parse, fromJSON).',
  );

  // Ratios: how many times better the engine's filter is (> 1: the engine's is better).
  const r3 = (x: number) => Number(x.toFixed(3));
  console.log(
    JSON.stringify({
      engine,
      bloom_filters: library,
      engine_better_by: {
        build: r3(library.build_ms / engine.build_ms),
        size: r3(library.serialized_bytes / engine.serialized_bytes),
        load: r3(library.load_ms / engine.load_ms),
        query: r3(engine.queries_per_sec / library.queries_per_sec),
        fp_rate: r3(library.fp_rate / engine.fp_rate),
      },
      params: { keys: o.keys, absent: o.absent, queries: o.queries, key_bytes: KEY_BYTES, bits_per_key: o.bitsPerKey, fp_rate: o.fpRate, repeats: o.repeats },
      machine: { cpu: os.cpus()[0]?.model ?? null, node: process.version },
    }),
  );
}

main();
