// The capacity run (issue 16, "each node holds many times its RAM"): storage servers each
// started inside a memory cgroup of --memory-mib (128 MiB), written --data-multiple (10) times
// that in distinct keys and values through the SDK, then read back — a random sample of
// keys, a sample of never-written keys, and every key of a sample of token ranges (listed
// from a cursor, checked against the keys known to hash there) — every value checked byte
// for byte. Reports bytes written, disk used, the limit, the servers' peak RSS and cgroup
// charge, the OOM kills, write and read rates and p99s, and the errors (which must be 0).
// A table, one JSON line last, results saved under benchmarks/results/. Without a writable
// cgroup file system (root) it stops with a message, unless --no-require-limit.
//
//   npm run bench:capacity -- --memory-mib 128 --data-multiple 10

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Histogram } from 'hdr-histogram-js';
import { connect, Ring } from '../sdk/index.js';
import { PROTOCOL_VERSION, Routes } from '../sdk/wire/protocol.js';
import type { Consistency, RingkvClient } from '../sdk/index.js';
import { engineMemoryDefaults } from '../storage-server/memory-budget.js';
import type { CapacityFlags, CapacityResult, FitsResult, MemoryFigures, PhaseFigures } from './harness/capacity-data.js';
import { capacityIndex, capacityKey, capacityPassed, capacityProgram, capacityTable, capacityValue, checkValue, fitsKeysFor, keysFor } from './harness/capacity-data.js';
import { newHistogram, summarize } from './harness/latency-recorder.js';
import { MemoryLimit, processRss } from './harness/memory-limit.js';
import { ProcessGroup, REPO_ROOT } from './harness/processes.js';
import { machineInfo, saveResults, stamp } from './harness/report.js';
import { RingkvCluster } from './harness/ringkv-cluster.js';

const MiB = 1024 * 1024;

function log(line: string): void {
  process.stdout.write(`${line}\n`);
}

/** A small xorshift for the samples (deterministic per seed). */
function rng(seed: number): () => number {
  let x = (seed ^ 0x2545f491) >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 2 ** 32;
  };
}

function du(dir: string): number {
  let n = 0;
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) n += du(p);
    else if (e.isFile()) n += fs.statSync(p).size;
  }
  return n;
}

async function scrape(address: string): Promise<Record<string, number>> {
  const want = ['process_resident_memory_bytes', 'nodejs_heap_size_used_bytes', 'nodejs_heap_size_total_bytes', 'nodejs_external_memory_bytes', 'ringkv_engine_pinned_bytes', 'ringkv_engine_block_cache_bytes', 'ringkv_engine_memtable_bytes', 'ringkv_engine_tables', 'ringkv_engine_table_bytes', 'ringkv_engine_compactions', 'ringkv_engine_flushes'];
  const out: Record<string, number> = {};
  try {
    const text = await (await fetch(`http://${address}/metrics`, { signal: AbortSignal.timeout(5000) })).text();
    for (const line of text.split('\n')) {
      const m = /^([a-z_]+)(?:\{[^}]*\})? (\S+)$/.exec(line);
      if (m && want.includes(m[1]!)) out[m[1]!] = Number(m[2]);
    }
  } catch {
    // the server is gone: the report says so elsewhere
  }
  return out;
}

/** Runs `count` operations with `concurrency` in flight; `op(i)` returns an error code or undefined. */
async function phase(count: number, concurrency: number, bytesPerOp: number, op: (n: number) => Promise<string | undefined>, stop: () => boolean): Promise<PhaseFigures> {
  const h: Histogram = newHistogram();
  const codes: Record<string, number> = {};
  let next = 0;
  let errors = 0;
  let notRun = 0;
  const t0 = performance.now();
  let lastLog = t0;
  await Promise.all(
    Array.from({ length: Math.min(concurrency, count) }, async () => {
      while (next < count) {
        if (stop()) {
          // A server died (OOM-killed, say): the rest of the phase would only fail.
          notRun = count - next;
          codes['not-run'] = notRun;
          errors += notRun;
          next = count;
          break;
        }
        const n = next++;
        const s = performance.now();
        let code: string | undefined;
        try {
          code = await op(n);
        } catch (err) {
          code = (err as { code?: string }).code ?? (err as Error).name ?? 'Error';
        }
        const us = (performance.now() - s) * 1000;
        if (code) {
          errors++;
          codes[code] = (codes[code] ?? 0) + 1;
        } else h.recordValue(Math.max(1, Math.round(us)));
        const now = performance.now();
        if (now - lastLog > 10_000) {
          lastLog = now;
          log(`     ${n} / ${count} (${Math.round((n / ((now - t0) / 1000)) || 0)} ops/s, ${errors} errors)`);
        }
      }
    }),
  );
  const seconds = (performance.now() - t0) / 1000;
  const s = summarize(h);
  // Operations not run (a server died) count as errors, not in the rates.
  const ran = count - notRun;
  return { ops: ran, seconds: Math.round(seconds * 10) / 10, opsPerSec: ran / seconds, mibPerSec: (ran * bytesPerOp) / MiB / seconds, p50Ms: s.p50Ms, p99Ms: s.p99Ms, maxMs: s.maxMs, errors, errorCodes: codes };
}

/**
 * The comparison set, in the same run: a second server under the same limit (its own
 * cgroup), written `--fits-multiple` x its block cache, then the same get-hit and get-miss
 * phases (values checked). Runs after the big server has stopped, so the two never share
 * the cores.
 */
async function runFits(f: CapacityFlags, limitBytes: number, limited: boolean): Promise<FitsResult | undefined> {
  const blockCacheBytes = engineMemoryDefaults(limited ? limitBytes : os.totalmem()).blockCacheSizeBytes;
  const keys = fitsKeysFor(f.fitsMultiple, f.valueSize, blockCacheBytes);
  if (keys === 0) return undefined;
  const perKey = capacityKey(0).length + f.valueSize;
  const limit = limited ? MemoryLimit.open(limitBytes, `ringkv-capacity-${process.pid}-fits`, []) : undefined;
  if (limited && !limit) throw new Error('capacity-bench: could not make the second memory cgroup for the set that fits');
  const group = new ProcessGroup();
  const uninstall = group.installCleanup();
  log(`   the set that fits: ${keys} keys (${((keys * perKey) / MiB).toFixed(1)} MiB, ${f.fitsMultiple}x a ${(blockCacheBytes / MiB).toFixed(0)} MiB block cache) on a second server under the same limit`);
  const cluster = await new RingkvCluster({
    nodes: 1,
    group,
    args: ['--replication', '1'],
    ...(f.mallocArenaMax > 0 ? { env: { MALLOC_ARENA_MAX: String(f.mallocArenaMax) } } : {}),
    ...(limit ? { commandPrefix: () => limit.commandPrefix() } : {}),
  }).launch();
  let kv: RingkvClient<Buffer> | undefined;
  try {
    kv = await connect({ seeds: cluster.addresses, valueEncoding: 'bytes', timeoutMs: f.timeoutMs });
    const c = kv;
    const dead = () => !cluster.running(cluster.nodes[0]!.id);
    const opts = { consistency: f.consistency as Consistency };
    const write = await phase(keys, f.concurrency, perKey, async (i) => {
      await c.put(capacityKey(i), capacityValue(i, f.valueSize, f.seed), opts);
      return undefined;
    }, dead);
    // Flushed and compacted into one table, so the reads go through the block cache (at
    // 0.25x the cache the set would otherwise stay in the memtable), then one pass over
    // every key so that the cache holds them all.
    await cluster.call(cluster.nodes[0]!.id, Routes.admin, { v: PROTOCOL_VERSION, action: 'compact' }, 120_000);
    await phase(keys, f.concurrency, perKey, async (i) => ((await c.get(capacityKey(i), opts)) ? undefined : 'missing'), dead);
    const pick = rng(f.seed + 2);
    const verify = { missing: 0, mismatch: 0 };
    const readHit = await phase(f.readSample, f.concurrency, perKey, async () => {
      const i = Math.floor(pick() * keys);
      const v = checkValue(i, (await c.get(capacityKey(i), opts))?.value, f.valueSize, f.seed);
      if (v === 'ok') return undefined;
      verify[v]++;
      return v;
    }, dead);
    const readMiss = await phase(f.missSample, f.concurrency, 0, async (n) => ((await c.get(capacityKey(keys + n), opts)) === undefined ? undefined : 'unexpected-value'), dead);
    log(`   fits: wrote ${keys} keys (${write.errors} errors), read ${f.readSample} (${readHit.opsPerSec.toFixed(0)} ops/s, p99 ${readHit.p99Ms.toFixed(1)} ms) and ${f.missSample} never written (${readMiss.opsPerSec.toFixed(0)} ops/s, p99 ${readMiss.p99Ms.toFixed(1)} ms)`);
    const serverMetrics = await scrape(cluster.nodes[0]!.address);
    const n = cluster.nodes[0]!;
    const exit = cluster.running(n.id) ? null : `${n.id} ${n.proc!.child.signalCode ?? n.proc!.child.exitCode}`;
    return { keys, bytesWritten: keys * perKey, blockCacheBytes, readHit, readMiss, verifyErrors: verify.missing + verify.mismatch + write.errors, oomKills: limit ? limit.read().oomKills : 0, serverExit: exit, serverMetrics };
  } finally {
    await kv?.close().catch(() => undefined);
    await cluster.stopAll();
    await group.stopAll();
    limit?.release();
    uninstall();
  }
}

async function main(): Promise<number> {
  const program = capacityProgram();
  program.parse();
  const f = program.opts<CapacityFlags>();
  const when = new Date();
  const machine = machineInfo();
  const limitBytes = Math.round(f.memoryMib * MiB);
  const why: string[] = [];
  const limits: MemoryLimit[] = [];
  for (let i = 0; i < f.nodes; i++) {
    const l = MemoryLimit.open(limitBytes, `ringkv-capacity-${process.pid}-n${i + 1}`, why);
    if (!l) break;
    limits.push(l);
  }
  if (limits.length < f.nodes) {
    for (const l of limits) l.release();
    limits.length = 0;
    const msg = `capacity-bench: cannot make a memory cgroup (needs root and a writable cgroup file system): ${why.join('; ')}`;
    if (f.requireLimit) {
      log(`${msg}\n   skipped; --no-require-limit runs without the limit`);
      return 0;
    }
    log(`${msg}\n   running WITHOUT a memory limit (--no-require-limit)`);
  }
  const keys = keysFor(f);
  const replication = Math.min(3, f.nodes);
  const perKey = capacityKey(0).length + f.valueSize;
  log(
    `capacity-bench: ${f.nodes} node(s), replication ${replication}, each under ${limits.length ? `${f.memoryMib} MiB (cgroup v${limits[0]!.version}, ${limits[0]!.dir})` : 'no limit'}; ` +
      `${keys} keys x ${f.valueSize} B = ${((keys * perKey) / MiB).toFixed(0)} MiB (${f.dataMultiple}x) at ${f.consistency}; ${machine.cores} cores, node ${machine.node}`,
  );

  const group = new ProcessGroup();
  const uninstall = group.installCleanup();
  process.once('exit', () => limits.forEach((l) => l.release()));
  const cluster = await new RingkvCluster({
    nodes: f.nodes,
    group,
    args: ['--replication', String(replication)],
    ...(f.mallocArenaMax > 0 ? { env: { MALLOC_ARENA_MAX: String(f.mallocArenaMax) } } : {}),
    ...(limits.length ? { commandPrefix: (n) => limits[Number(n.id.slice(1)) - 1]!.commandPrefix() } : {}),
  }).launch();
  const pids = cluster.nodes.map((n) => n.proc!.child.pid!);
  // Sampling: the highest RSS and anonymous charge of any node, and the series over the run.
  const mem = { peakRss: 0, peakAnon: 0, peakCharged: 0 };
  const series: { t: number; phase: string; writtenMiB: number; rssMiB: number; anonMiB: number | null; heapMiB?: number; externalMiB?: number; blockCacheMiB?: number; memtableMiB?: number; pinnedMiB?: number; tables?: number }[] = [];
  let phaseName = 'write';
  let written = 0;
  const t0 = Date.now();
  const sample = () => {
    let rss = 0;
    let anon: number | null = null;
    for (const [i, pid] of pids.entries()) {
      const r = processRss(pid);
      if (r) {
        rss = Math.max(rss, r.rssBytes);
        if (Number.isFinite(r.peakRssBytes)) mem.peakRss = Math.max(mem.peakRss, r.peakRssBytes);
      }
      const l = limits[i];
      if (l) {
        const m = l.read();
        anon = Math.max(anon ?? 0, m.anonBytes);
        mem.peakAnon = Math.max(mem.peakAnon, m.anonBytes);
        mem.peakCharged = Math.max(mem.peakCharged, m.peakBytes ?? m.currentBytes);
      }
    }
    return { rss, anon };
  };
  const sampler = setInterval(sample, 200);
  const seriesTimer = setInterval(() => {
    void (async () => {
      const s = sample();
      const m = await scrape(cluster.nodes[0]!.address);
      series.push({
        t: Math.round((Date.now() - t0) / 1000),
        phase: phaseName,
        writtenMiB: Math.round((written * perKey) / MiB),
        rssMiB: Math.round(s.rss / MiB),
        anonMiB: s.anon === null ? null : Math.round(s.anon / MiB),
        ...(m.nodejs_heap_size_used_bytes !== undefined ? { heapMiB: Math.round(m.nodejs_heap_size_used_bytes / MiB) } : {}),
        ...(m.nodejs_external_memory_bytes !== undefined ? { externalMiB: Math.round(m.nodejs_external_memory_bytes / MiB) } : {}),
        ...(m.ringkv_engine_block_cache_bytes !== undefined ? { blockCacheMiB: Math.round(m.ringkv_engine_block_cache_bytes / MiB) } : {}),
        ...(m.ringkv_engine_memtable_bytes !== undefined ? { memtableMiB: Math.round(m.ringkv_engine_memtable_bytes / MiB) } : {}),
        ...(m.ringkv_engine_pinned_bytes !== undefined ? { pinnedMiB: Math.round((m.ringkv_engine_pinned_bytes / MiB) * 10) / 10 } : {}),
        ...(m.ringkv_engine_tables !== undefined ? { tables: m.ringkv_engine_tables } : {}),
      });
      const last = series[series.length - 1]!;
      log(`   t=${last.t}s ${last.phase}: written ${last.writtenMiB} MiB, RSS ${last.rssMiB} MiB, anon ${last.anonMiB ?? '-'} MiB, heap ${last.heapMiB ?? '-'} MiB, external ${last.externalMiB ?? '-'} MiB (block cache ${last.blockCacheMiB ?? '-'}, memtables ${last.memtableMiB ?? '-'}), pinned ${last.pinnedMiB ?? '-'} MiB, tables ${last.tables ?? '-'}`);
    })();
  }, 5000);

  let kv: RingkvClient<Buffer> | undefined;
  let result: CapacityResult | undefined;
  let exitCode = 0;
  try {
    kv = await connect({ seeds: cluster.addresses, valueEncoding: 'bytes', timeoutMs: f.timeoutMs });
    const c = kv;
    const dead = () => cluster.nodes.some((n) => !cluster.running(n.id));
    const opts = { consistency: f.consistency as Consistency };
    log(`   writing ${keys} keys ...`);
    const write = await phase(keys, f.concurrency, perKey, async (i) => {
      await c.put(capacityKey(i), capacityValue(i, f.valueSize, f.seed), opts);
      written++;
      return undefined;
    }, dead);
    const diskAfterWrite = cluster.nodes.reduce((s, n) => s + du(n.dataDir), 0);
    log(`   wrote ${keys} keys in ${write.seconds} s (${write.opsPerSec.toFixed(0)} ops/s, ${write.errors} errors); disk ${(diskAfterWrite / MiB).toFixed(0)} MiB`);

    phaseName = 'read';
    const pick = rng(f.seed + 1);
    const verify = { missing: 0, mismatch: 0 };
    const readHit = await phase(f.readSample, f.concurrency, perKey, async () => {
      const i = Math.floor(pick() * keys);
      const r = await c.get(capacityKey(i), opts);
      const v = checkValue(i, r?.value, f.valueSize, f.seed);
      if (v === 'ok') return undefined;
      verify[v]++;
      return v;
    }, dead);
    const readMiss = await phase(f.missSample, f.concurrency, 0, async (n) => {
      const r = await c.get(capacityKey(keys + n), opts);
      return r === undefined ? undefined : 'unexpected-value';
    }, dead);
    log(`   read ${f.readSample} written keys (${readHit.opsPerSec.toFixed(0)} ops/s, ${readHit.errors} errors) and ${f.missSample} never written (${readMiss.errors} errors)`);

    // Ranges: list from a random token; every written key whose token lies in the listed
    // span must come back, with its value, and nothing else.
    phaseName = 'ranges';
    const rt = performance.now();
    let rangeErrors = 0;
    let rangeKeys = 0;
    const tokens = f.ranges > 0 ? Uint32Array.from({ length: keys }, (_, i) => Ring.tokenOf(capacityKey(i))) : new Uint32Array(0);
    for (let r = 0; r < f.ranges; r++) {
      const from = Math.floor(pick() * 2 ** 32);
      const seen = new Set<number>();
      let lastToken = from;
      if (dead()) {
        rangeErrors++;
        continue;
      }
      try {
        for await (const e of c.entries({ cursor: `l1.${from.toString(16)}`, pageSize: 500 })) {
          const i = capacityIndex(e.key);
          const token = Ring.tokenOf(e.keyBytes);
          if (i === undefined || i >= keys || seen.has(i) || token < lastToken) rangeErrors++;
          else if (checkValue(i, e.value, f.valueSize, f.seed) !== 'ok') {
            rangeErrors++;
            verify.mismatch++;
          }
          if (i !== undefined) seen.add(i);
          lastToken = token;
          if (seen.size >= f.rangeKeys) break;
        }
      } catch (err) {
        log(`     range from token ${from.toString(16)} failed: ${(err as Error).message}`);
        rangeErrors++;
        continue;
      }
      // Every key hashing into [from, lastToken) must have been listed.
      let expected = 0;
      for (let i = 0; i < keys; i++) {
        const t = tokens[i]!;
        if (t >= from && t < lastToken) {
          expected++;
          if (!seen.has(i)) {
            rangeErrors++;
            verify.missing++;
          }
        }
      }
      rangeKeys += seen.size;
      log(`     range from token ${from.toString(16)}: ${seen.size} keys listed up to ${lastToken.toString(16)}, ${expected} expected below it`);
    }
    const ranges = { ranges: f.ranges, keys: rangeKeys, errors: rangeErrors, seconds: Math.round((performance.now() - rt) / 100) / 10 };

    clearInterval(sampler);
    clearInterval(seriesTimer);
    sample();
    const serverMetrics = await scrape(cluster.nodes[0]!.address);
    const readings = limits.map((l) => l.read());
    const exits = cluster.nodes.filter((n) => !cluster.running(n.id)).map((n) => `${n.id} ${n.proc!.child.signalCode ?? n.proc!.child.exitCode}`);
    const memory: MemoryFigures = {
      limitBytes: limits.length ? limitBytes : null,
      peakRssBytes: mem.peakRss,
      peakAnonBytes: limits.length ? mem.peakAnon : null,
      peakChargedBytes: limits.length ? Math.max(mem.peakCharged, ...readings.map((x) => x.peakBytes ?? 0)) : null,
      oomKills: readings.reduce((s, x) => s + x.oomKills, 0),
      serverExit: exits.length ? exits.join(', ') : null,
    };
    const diskBytes = cluster.nodes.reduce((s, n) => s + du(n.dataDir), 0);
    result = {
      nodes: f.nodes,
      replication,
      keys,
      valueBytes: f.valueSize,
      bytesWritten: written * perKey,
      diskBytes,
      dataMultipleOfLimit: limits.length ? Math.round(((written * perKey) / limitBytes) * 10) / 10 : null,
      write,
      readHit,
      readMiss,
      ranges,
      verifyErrors: verify.missing + verify.mismatch,
      memory,
      serverMetrics,
    };
  } finally {
    clearInterval(sampler);
    clearInterval(seriesTimer);
    await kv?.close().catch(() => undefined);
    await cluster.stopAll();
    await group.stopAll();
    for (const l of limits) l.release();
    uninstall();
  }
  if (result && f.fitsMultiple > 0) {
    const fits = await runFits(f, limitBytes, limits.length > 0);
    if (fits) result.fits = fits;
  }
  log('');
  log(capacityTable(result));
  const passed = capacityPassed(result);
  log(`\n${passed ? 'PASS' : 'FAIL'}: ${result.verifyErrors} values wrong or missing, ${result.memory.oomKills} OOM kills${result.memory.serverExit ? `, server exited: ${result.memory.serverExit}` : ''}; single run; load average ${machineInfo().loadAverage.join(' ')}`);
  const line: Record<string, unknown> = { scenario: 'capacity', passed, ...result, consistency: f.consistency, singleRun: true, cores: machine.cores };
  if (f.save) {
    const files = saveResults(f.resultsDir, `${stamp(when)}-capacity-${f.nodes}node-${f.memoryMib}mib-x${f.dataMultiple}-${machine.cores}cores`, {
      date: when.toISOString(),
      command: `npm run bench:capacity -- ${process.argv.slice(2).join(' ')}`.trim(),
      machine,
      params: f,
      cgroup: limits.length ? { version: limits[0]!.version } : null,
      serverEnv: { MALLOC_ARENA_MAX: f.mallocArenaMax > 0 ? String(f.mallocArenaMax) : (process.env.MALLOC_ARENA_MAX ?? null) },
      series,
      table: capacityTable(result).split('\n'),
      json: line,
    });
    log(`\nsaved ${files.map((x) => path.relative(process.cwd(), x)).join(', ')}`);
    line.resultsFile = path.relative(REPO_ROOT, files[0]!);
  }
  log(JSON.stringify(line));
  if (!passed) exitCode = 1;
  return exitCode;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`capacity-bench: ${(err as Error)?.stack ?? String(err)}\n`);
    process.exit(2);
  },
);
