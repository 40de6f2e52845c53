// Crash test on a real directory: a child process (crash-writer.ts) writes with 32
// concurrent writers under `sync: 'batch'` and a 64 KiB memtable (so flushes and
// compactions run all the time) and is SIGKILLed at a random moment; this process reopens
// the directory, checks every acknowledged write against a model, and starts the next
// child on the same directory. Rounds run one after another; nothing here is concurrent
// except the child itself. Some rounds arm their kill only once the child reports a
// finished compaction, so kills amid compactions happen however slow the machine (on a
// loaded one, the compaction worker booting tsx outlasts whole timed rounds). SIGKILL
// loses the process, not the page cache, so this covers process crashes (torn WAL tails,
// interrupted flushes, compactions and opens), not power loss (it passes with every
// fdatasync removed) — power cuts are engine-model.test.ts's and wal-rotation.test.ts's,
// on memory-file-system.ts's model. Seeded: the seed fixes
// the workload and the kill delays, prints itself, and RINGKV_SEED=<n> reruns it (the
// exact kill point still depends on timing). Odd rounds run with WAL segments preallocated
// and recycled (walRecycleSegments 2), so the directory moves between log formats 2 and 3.

import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { Engine } from '../../../storage-server/engine/index.js';
import type { Readable } from 'node:stream';
import { allKeys, checkValue, KEYS_PER_WRITER, keyName, opsFor, prng, WRITERS, writerOf } from './crash-workload.js';
import type { WorkOp } from './crash-workload.js';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const REPO_ROOT = path.resolve(HERE, '../../..');
const WRITER_SCRIPT = path.join(HERE, 'crash-writer.ts');

/**
 * Kills while the writers run; every OPEN_KILL_EVERY-th round instead kills during
 * Engine.open, and the round COMPACTION_ROUND_AT of every OPEN_KILL_EVERY is a write kill
 * armed after the child's first finished compaction rather than when its writes begin.
 */
const WRITE_KILLS = Number(process.env.RINGKV_CRASH_ROUNDS ?? 22);
const OPEN_KILL_EVERY = 5;
const COMPACTION_ROUND_AT = 2;
/** Kill delay after the child reports its engine open (or its first compaction): log-uniform in [min, max] ms. */
const WRITE_KILL_MS = [5, 1500] as const;
/** Kill delay after the child reports it is about to open the engine: uniform in [0, max] ms. */
const OPEN_KILL_MAX_MS = 30;
/**
 * A child that neither dies nor gets killed within this is a test failure: a hang, or in a
 * compaction round no compaction finishing. Generous: on a loaded 2-core machine a child
 * took over 10 s to boot tsx in its compaction worker and finish a first merge.
 */
const CHILD_DEADLINE_MS = 90_000;

type RoundMode = 'open' | 'write' | 'compaction';

/** What the model knows of a key: the state the last acknowledged write left. */
interface KeyState {
  present: boolean;
  version: number;
}

interface ChildRun {
  killedAfterMs: number;
  sawOpen: boolean;
  sawReady: boolean;
  acks: number;
  /** Last stats line: flushes, compactions, walSyncs, writeGroups, tables. */
  stats: number[];
  errorLine: string | undefined;
  problems: string[];
  exit: { code: number | null; signal: NodeJS.Signals | null };
  stderr: string;
}

function describe(present: boolean, version: number | undefined): string {
  return present ? `v${version}` : 'absent';
}

// Bounded by the rounds' count and each child's deadline: on a loaded 2-core machine the
// rounds took over 120 s (each child boots tsx), so the file gets more than the default.
t.setTimeout(900_000);

t.test('acknowledged writes survive SIGKILL at random moments, round after round', async (t) => {
  const seed = Number(process.env.RINGKV_SEED ?? Math.floor(Math.random() * 2 ** 31));
  t.comment(`seed ${seed} (rerun with RINGKV_SEED=${seed})`);
  const rnd = prng(seed);
  const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'ringkv-crash-'));
  let child: ChildProcess | undefined;
  t.teardown(async () => {
    if (child && child.exitCode === null && child.signalCode === null) {
      const exited = once(child, 'exit');
      child.kill('SIGKILL');
      await exited;
    }
    await fsp.rm(dir, { recursive: true, force: true });
  });

  const keys = allKeys();
  const model = new Map<string, KeyState>(keys.map((k) => [k, { present: false, version: 0 }]));
  // next[w]: the write number writer w issues next (its first unacknowledged one).
  const next: number[] = new Array<number>(WRITERS).fill(1);

  const apply = (ops: readonly WorkOp[]): void => {
    for (const op of ops) model.set(op.key, { present: op.type === 'put', version: op.version });
  };

  /** walRecycleSegments of this round's child and reopen: odd rounds recycle WAL segments (log format 3). */
  let recycle = 0;

  /** Starts a child on `dir`, SIGKILLs it after the delay, and applies its acks to the model. */
  const runChild = async (mode: RoundMode, delayMs: number): Promise<ChildRun> => {
    const c = spawn(process.execPath, ['--import', 'tsx', WRITER_SCRIPT, dir, String(seed), next.join(','), String(recycle)], {
      cwd: REPO_ROOT,
      stdio: ['ignore', 'pipe', 'pipe', 'pipe'],
    });
    child = c;
    const run: ChildRun = {
      killedAfterMs: 0,
      sawOpen: false,
      sawReady: false,
      acks: 0,
      stats: [0, 0, 0, 0, 0],
      errorLine: undefined,
      problems: [],
      exit: { code: null, signal: null },
      stderr: '',
    };
    let killTimer: NodeJS.Timeout | undefined;
    const armKill = (): void => {
      if (killTimer) return;
      const armedAt = performance.now();
      killTimer = setTimeout(() => {
        run.killedAfterMs = performance.now() - armedAt;
        c.kill('SIGKILL');
      }, delayMs);
    };
    const deadline = setTimeout(() => {
      run.problems.push(
        `child neither died nor was killed within ${CHILD_DEADLINE_MS} ms` +
          (mode === 'compaction' && !killTimer ? ` (it finished no compaction: ${run.stats[0]} flushes, ${run.stats[4]} tables)` : ''),
      );
      c.kill('SIGKILL');
    }, CHILD_DEADLINE_MS);

    c.stdout!.resume();
    c.stderr!.setEncoding('utf8').on('data', (s: string) => {
      if (run.stderr.length < 20_000) run.stderr += s;
    });
    let partial = '';
    const onLine = (line: string): void => {
      const kind = line[0];
      if (kind === 'A') {
        const [, ws, ss] = line.split(' ');
        const w = Number(ws);
        const s = Number(ss);
        if (!(w >= 0 && w < WRITERS) || s !== next[w]) {
          run.problems.push(`child acknowledged ${line} but writer ${w} was at write ${next[w]}`);
          return;
        }
        apply(opsFor(seed, w, s));
        next[w] = s + 1;
        run.acks++;
      } else if (kind === 'S') {
        run.stats = line.split(' ').slice(1).map(Number);
        if (mode === 'compaction' && run.stats[1]! > 0) armKill();
      } else if (kind === 'O') {
        run.sawOpen = true;
        if (mode === 'open') armKill();
      } else if (kind === 'R') {
        run.sawReady = true;
        if (mode === 'write') armKill();
      } else if (kind === 'E') {
        run.errorLine = line;
      } else {
        run.problems.push(`unknown report line ${JSON.stringify(line)}`);
      }
    };
    (c.stdio[3] as Readable).setEncoding('latin1').on('data', (chunk: string) => {
      const lines = (partial + chunk).split('\n');
      partial = lines.pop()!;
      for (const line of lines) onLine(line);
    });
    const [code, signal] = (await once(c, 'close')) as [number | null, NodeJS.Signals | null];
    clearTimeout(killTimer);
    clearTimeout(deadline);
    if (partial) run.problems.push(`torn report line ${JSON.stringify(partial)}`); // writeSync lines are whole
    run.exit = { code, signal };
    child = undefined;
    return run;
  };

  /** Reopens `dir` and checks it against the model; resolves the in-flight writes into the model. */
  const verify = async (issued: boolean): Promise<{ problems: string[]; walRecords: number; tornBytes: number; tables: number; live: number }> => {
    const problems: string[] = [];
    let engine: Engine;
    try {
      engine = await Engine.open(dir, { sync: 'batch', memtableSizeBytes: 64 * 1024, walRecycleSegments: recycle });
    } catch (err) {
      return { problems: [`Engine.open failed: ${(err as Error & { code?: string }).code ?? ''} ${(err as Error).stack}`], walRecords: 0, tornBytes: 0, tables: 0, live: 0 };
    }
    const stats = engine.stats();
    try {
      // A full scan completes, in strictly increasing key order, and every record is whole.
      const observed = new Map<string, number>();
      let prev: Buffer | undefined;
      for await (const rec of engine.iterate()) {
        const key = rec.key.toString('latin1');
        if (prev && Buffer.compare(prev, rec.key) >= 0) problems.push(`scan yielded ${key} after ${prev.toString('latin1')}`);
        prev = Buffer.from(rec.key);
        if (writerOf(key) < 0) {
          problems.push(`scan yielded a key the workload never writes: ${JSON.stringify(key)}`);
          continue;
        }
        const v = checkValue(key, rec.value, rec.version);
        if (typeof v === 'string') problems.push(`scan: ${key}: ${v}`);
        else observed.set(key, v);
      }
      // Point reads agree with the scan.
      for (const key of keys) {
        const rec = await engine.get(Buffer.from(key, 'latin1'));
        const v = rec ? checkValue(key, rec.value, rec.version) : undefined;
        if (typeof v === 'string') problems.push(`get: ${key}: ${v}`);
        else if (v !== observed.get(key)) problems.push(`get(${key}) = ${describe(v !== undefined, v)} but the scan has ${describe(observed.has(key), observed.get(key))}`);
      }
      // Every key holds what its last acknowledged write left, or what the writer's one
      // write in flight would leave; that write's keys all agree (batches are atomic).
      for (let w = 0; w < WRITERS; w++) {
        const pending = issued ? opsFor(seed, w, next[w]!) : [];
        const applied: string[] = [];
        const notApplied: string[] = [];
        for (let n = 0; n < KEYS_PER_WRITER; n++) {
          const key = keyName(w, n);
          const want = model.get(key)!;
          const got = observed.get(key);
          const op = pending.find((p) => p.key === key);
          const isOld = want.present ? got === want.version : got === undefined;
          const isNew = op ? (op.type === 'put' ? got === op.version : got === undefined) : false;
          if (!isOld && !isNew) {
            problems.push(
              `${key}: found ${describe(got !== undefined, got)}, the last acknowledged write left ${describe(want.present, want.version)}` +
                (op ? ` and the write in flight would leave ${describe(op.type === 'put', op.version)}` : ' and no write to it was in flight'),
            );
          } else if (isNew && !isOld) applied.push(key);
          else if (isOld && !isNew && op) notApplied.push(key);
        }
        if (applied.length > 0 && notApplied.length > 0) {
          problems.push(`writer ${w} batch ${next[w]} is half there: applied to ${applied.join(' ')}, not to ${notApplied.join(' ')}`);
        }
        if (applied.length > 0) apply(pending);
        // The in-flight write is decided now (recovery flushed the WAL to a table); its number is never reused.
        next[w]! += 1;
      }
      const live = observed.size;
      return { problems, walRecords: stats.recoveredWalRecords, tornBytes: stats.recoveredTornTailBytes, tables: stats.tableCount, live };
    } finally {
      await engine.close();
    }
  };

  const totals = { writeKills: 0, openKills: 0, compactionKills: 0, acks: 0, flushes: 0, compactions: 0, walSyncs: 0, walRecords: 0, tornBytes: 0 };
  const started = performance.now();
  for (let round = 0; totals.writeKills < WRITE_KILLS; round++) {
    const phase = round % OPEN_KILL_EVERY;
    recycle = round % 2 === 1 ? 2 : 0;
    const mode: RoundMode = phase === OPEN_KILL_EVERY - 1 ? 'open' : phase === COMPACTION_ROUND_AT ? 'compaction' : 'write';
    const delayMs =
      mode === 'open' ? rnd() * OPEN_KILL_MAX_MS : WRITE_KILL_MS[0] * Math.exp(rnd() * Math.log(WRITE_KILL_MS[1] / WRITE_KILL_MS[0]));
    const run = await runChild(mode, delayMs);
    if (run.exit.signal !== 'SIGKILL') {
      t.fail(`round ${round}: the child ended by itself (code ${run.exit.code}, signal ${run.exit.signal}) [seed ${seed}]`, {
        report: run.errorLine,
        stderr: run.stderr,
      });
      break;
    }
    if (run.errorLine) {
      t.fail(`round ${round}: the child reported an error before it was killed [seed ${seed}]`, { report: run.errorLine, stderr: run.stderr });
      break;
    }
    const v = await verify(run.sawReady);
    const problems = [...run.problems, ...v.problems];
    const [flushes = 0, compactions = 0, walSyncs = 0] = run.stats;
    totals.acks += run.acks;
    totals.flushes += flushes;
    totals.compactions += compactions;
    totals.walSyncs += walSyncs;
    totals.walRecords += v.walRecords;
    totals.tornBytes += v.tornBytes;
    if (mode === 'open') totals.openKills++;
    else totals.writeKills++;
    if (mode === 'compaction') totals.compactionKills++;
    const what =
      `round ${round}: killed ${run.killedAfterMs.toFixed(0)} ms after ${mode === 'open' ? 'opening began' : mode === 'compaction' ? 'its first compaction' : 'writes began'}` +
      ` (${run.acks} acks, ${flushes} flushes, ${compactions} compactions); reopened with ${v.walRecords} WAL records replayed,` +
      ` ${v.tornBytes} torn bytes cut, ${v.tables} tables, ${v.live} live keys`;
    if (!t.same(problems.slice(0, 20), [], `${what}${problems.length > 20 ? ` (${problems.length} problems)` : ''} [seed ${seed}]`)) break;
  }
  t.comment(
    `${totals.writeKills} kills during writes (${totals.compactionKills} after a compaction) + ${totals.openKills} during open in ${((performance.now() - started) / 1000).toFixed(1)} s: ` +
      `${totals.acks} acknowledged writes, ${totals.walSyncs} WAL syncs, ${totals.flushes} flushes, ${totals.compactions} compactions, ` +
      `${totals.walRecords} WAL records replayed, ${totals.tornBytes} torn bytes`,
  );
  t.ok(totals.writeKills >= 20, `at least 20 kills during writes (${totals.writeKills})`);
  t.ok(totals.acks > 1000, `writes were acknowledged (${totals.acks})`);
  t.ok(totals.flushes > 0 && totals.compactions > 0, `flushes (${totals.flushes}) and compactions (${totals.compactions}) ran during the rounds`);
});
