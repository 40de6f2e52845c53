// Model-based property test of the engine: random sequences of put / delete / concurrent
// puts / get / scan / flush / compact / reopen / clock moves / power cuts, run against the
// real engine on the in-memory file system and compared with a Map, under each sync
// policy. A power cut is armed to strike before the n-th next file-system operation (in
// the middle of a write, a rotation, a flush, a compaction, a manifest update, an open...),
// pessimistic or seeded-random (memory-file-system.ts); after it the engine is reopened on
// what the disk held (odd seeds also reorder unsynced directory changes) and must hold
// exactly the writes of some prefix of the issued ones:
// at least every write acknowledged before the cut under 'always' and 'batch', at least
// every write followed by a completed flush()/close() under 'none' (all it promises).
// fast-check shrinks failures and prints the seed. RINGKV_SEED=<n> reruns a seed;
// RINGKV_RUNS=<n> (default 120, about 10 s) runs more sequences. Half the sequences run with
// WAL segments preallocated and recycled (walRecycleSegments 2, log format 3).

import fc from 'fast-check';
import t from 'tap';
import { ManualClock } from '../../../sdk/clock.js';
import { Engine, MemoryFileSystem } from '../../../storage-server/engine/index.js';
import type { EngineOptions, SyncPolicy } from '../../../storage-server/engine/index.js';

interface ModelValue {
  value: string;
  expiresAtMs: number;
}
/** One issued write: a put (value) or a delete (value undefined). */
interface Write {
  key: string;
  value: string | undefined;
  expiresAtMs: number;
}
interface Model {
  /** The state after every write issued so far (the engine applies writes in call order). */
  data: Map<string, ModelValue>;
  /** Every write issued since the test began, in call order (cut back to what survives a power cut). */
  history: Write[];
  /** history[0, acked) were acknowledged. */
  acked: number;
  /** history[0, durable) were acknowledged before a flush()/close() that has completed. */
  durable: number;
  clock: ManualClock;
}
interface PendingCut {
  fs: MemoryFileSystem;
  what: string;
  acked: number;
  durable: number;
  issued: number;
}
interface Real {
  fs: MemoryFileSystem;
  engine: Engine;
  opts: EngineOptions;
  sync: SyncPolicy;
  /** A power cut strikes before this many more file-system operations. */
  armed: { left: number; seed: number | undefined } | undefined;
  cut: PendingCut | undefined;
  cuts: number;
}

const DIR = '/db';
const KEYS = [...Array.from({ length: 24 }, (_, i) => `k${String(i).padStart(2, '0')}`), 'a', 'zz', 'k\u00ff'];
const keyArb = fc.constantFrom(...KEYS);
const valueArb = fc.string({ maxLength: 300 });

function isLive(v: ModelValue | undefined, nowMs: number): v is ModelValue {
  return v !== undefined && (v.expiresAtMs === 0 || v.expiresAtMs > nowMs);
}

function live(m: Model, k: string): string | undefined {
  const v = m.data.get(k);
  return isLive(v, m.clock.nowMs()) ? v.value : undefined;
}

function apply(data: Map<string, ModelValue>, w: Write): void {
  if (w.value === undefined) data.delete(w.key);
  else data.set(w.key, { value: w.value, expiresAtMs: w.expiresAtMs });
}

/** Watches file-system operations of `r.fs` for the armed power cut. */
function watch(m: Model, r: Real): void {
  const fs = r.fs;
  fs.faultHook = (op, file) => {
    if (!r.armed || fs !== r.fs || --r.armed.left > 0) return;
    const seed = r.armed.seed;
    r.armed = undefined;
    // Odd seeds let directory changes reach the disk in any order, even ones in order.
    const dirOrder = seed !== undefined && seed % 2 === 1 ? 'any' : 'prefix';
    r.cut = {
      fs: fs.powerCut(seed === undefined ? {} : { seed, dirOrder }),
      what: `power cut (${seed === undefined ? 'pessimistic' : `seed ${seed}, directory changes in ${dirOrder} order`}) before ${op} ${file}`,
      acked: m.acked,
      durable: m.durable,
      issued: m.history.length,
    };
  };
}

function cutNow(m: Model, r: Real, seed: number | undefined): void {
  r.armed = { left: 1, seed };
  r.fs.faultHook!('readdir', '(between commands)');
}

/**
 * After every command: when a power cut struck, abandon the engine (as a machine losing
 * power would; it is closed on its own, now unrelated, file system), reopen on what the
 * disk held, find the prefix of the issued writes it holds and continue from there.
 */
async function settle(m: Model, r: Real): Promise<void> {
  const cut = r.cut;
  if (!cut) return;
  r.cut = undefined;
  await r.engine.close().catch(() => undefined);
  r.fs = cut.fs;
  watch(m, r);
  try {
    r.engine = await Engine.open(DIR, { ...r.opts, fs: r.fs });
  } catch (err) {
    throw new Error(`${cut.what}: reopen failed: ${(err as Error).message}`);
  }
  r.cuts++;
  const got = new Map<string, string>();
  for await (const rec of r.engine.iterate()) got.set(rec.key.toString(), `${rec.value.toString()}@${rec.expiresAtMs}`);
  const lowest = r.sync === 'none' ? cut.durable : cut.acked;
  const now = m.clock.nowMs();
  const state = new Map<string, ModelValue>();
  const describe = (s: Map<string, ModelValue>) =>
    [...s].filter(([, v]) => isLive(v, now)).map(([k, v]) => `${k}=${v.value.slice(0, 8)}@${v.expiresAtMs}`).sort().join(' ');
  const matches = (): boolean => {
    let n = 0;
    for (const [k, v] of state) {
      if (!isLive(v, now)) continue;
      n++;
      if (got.get(k) !== `${v.value}@${v.expiresAtMs}`) return false;
    }
    return n === got.size;
  };
  for (let p = 0; p <= cut.issued; p++) {
    if (p > 0) apply(state, m.history[p - 1]!);
    if (p < lowest || !matches()) continue;
    // The engine holds exactly the first p writes: the others are gone for good.
    m.history.length = p;
    m.data = state;
    m.acked = m.durable = p; // open put everything it replayed into a table
    return;
  }
  throw new Error(
    `${cut.what} (sync '${r.sync}'): the reopened engine holds no prefix of the ${cut.issued} issued writes at least ${lowest} long ` +
      `(${cut.acked} acknowledged, ${cut.durable} flushed).\n  engine:   ${[...got].map(([k, v]) => `${k}=${v.slice(0, 8)}@${v.split('@').pop()}`).sort().join(' ')}\n  expected: ${describe(state)}`,
  );
}

/** Issues `writes` at once (one group commit, when the policy groups) and waits for them all. */
async function issue(m: Model, r: Real, writes: Write[]): Promise<void> {
  const ps = writes.map((w) => {
    const at = m.history.length;
    m.history.push(w);
    apply(m.data, w);
    const p =
      w.value === undefined
        ? r.engine.delete(Buffer.from(w.key))
        : r.engine.put(Buffer.from(w.key), Buffer.from(w.value), w.expiresAtMs ? { expiresAtMs: w.expiresAtMs } : {});
    return p.then(() => {
      m.acked = Math.max(m.acked, at + 1);
    });
  });
  await Promise.all(ps);
}

abstract class Cmd implements fc.AsyncCommand<Model, Real> {
  check = () => true;
  abstract act(m: Model, r: Real): Promise<void>;
  async run(m: Model, r: Real): Promise<void> {
    await this.act(m, r);
    await settle(m, r);
  }
  abstract toString(): string;
}

class PutCmd extends Cmd {
  constructor(readonly k: string, readonly v: string, readonly ttlMs: number | undefined) {
    super();
  }
  async act(m: Model, r: Real) {
    await issue(m, r, [{ key: this.k, value: this.v, expiresAtMs: this.ttlMs ? m.clock.nowMs() + this.ttlMs : 0 }]);
  }
  toString = () => `put(${this.k}, ${JSON.stringify(this.v).slice(0, 20)}, ttl=${this.ttlMs})`;
}

class DelCmd extends Cmd {
  constructor(readonly k: string) {
    super();
  }
  async act(m: Model, r: Real) {
    await issue(m, r, [{ key: this.k, value: undefined, expiresAtMs: 0 }]);
  }
  toString = () => `del(${this.k})`;
}

/** Several writes issued in one turn of the event loop: a group commit (one frame) under 'batch' and 'none'. */
class ManyCmd extends Cmd {
  constructor(readonly ops: [string, string | undefined][]) {
    super();
  }
  async act(m: Model, r: Real) {
    await issue(m, r, this.ops.map(([key, value]) => ({ key, value, expiresAtMs: 0 })));
  }
  toString = () => `many(${this.ops.map(([k, v]) => (v === undefined ? `del ${k}` : `${k}=${JSON.stringify(v).slice(0, 8)}`)).join(', ')})`;
}

class GetCmd extends Cmd {
  constructor(readonly k: string) {
    super();
  }
  async act(m: Model, r: Real) {
    const got = await r.engine.get(Buffer.from(this.k));
    const want = live(m, this.k);
    if ((got?.value.toString() ?? undefined) !== want) {
      throw new Error(`get(${this.k}) = ${got?.value.toString()} but the model has ${want}`);
    }
  }
  toString = () => `get(${this.k})`;
}

class ScanCmd extends Cmd {
  constructor(readonly from: string, readonly to: string) {
    super();
  }
  async act(m: Model, r: Real) {
    const got: string[] = [];
    for await (const rec of r.engine.iterate({ gte: Buffer.from(this.from), lt: Buffer.from(this.to) })) {
      got.push(`${rec.key.toString()}=${rec.value.toString()}`);
    }
    const lo = Buffer.from(this.from);
    const hi = Buffer.from(this.to);
    const want = [...m.data.keys()]
      .filter((k) => Buffer.compare(Buffer.from(k), lo) >= 0 && Buffer.compare(Buffer.from(k), hi) < 0 && live(m, k) !== undefined)
      .sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)))
      .map((k) => `${k}=${live(m, k)}`);
    if (JSON.stringify(got) !== JSON.stringify(want)) throw new Error(`scan [${this.from}, ${this.to}) = ${got} but the model has ${want}`);
  }
  toString = () => `scan(${this.from}, ${this.to})`;
}

class FlushCmd extends Cmd {
  async act(m: Model, r: Real) {
    const upTo = m.acked;
    await r.engine.flush();
    m.durable = Math.max(m.durable, upTo);
  }
  toString = () => 'flush';
}

class CompactCmd extends Cmd {
  async act(m: Model, r: Real) {
    const upTo = m.acked;
    await r.engine.compact(); // flushes first
    m.durable = Math.max(m.durable, upTo);
  }
  toString = () => 'compact';
}

class ReopenCmd extends Cmd {
  async act(m: Model, r: Real) {
    const upTo = m.acked;
    await r.engine.close(); // flushes
    m.durable = Math.max(m.durable, upTo);
    r.engine = await Engine.open(DIR, { ...r.opts, fs: r.fs });
  }
  toString = () => 'reopen';
}

/** Arms a power cut before the `afterOps`-th next file-system operation (0: now, between commands). */
class PowerCutCmd extends Cmd {
  constructor(readonly afterOps: number, readonly seed: number | undefined) {
    super();
  }
  async act(m: Model, r: Real) {
    if (this.afterOps === 0) cutNow(m, r, this.seed);
    else if (!r.armed && !r.cut) r.armed = { left: this.afterOps, seed: this.seed };
  }
  toString = () => `powerCut(after ${this.afterOps} ops, ${this.seed === undefined ? 'pessimistic' : `seed ${this.seed}`})`;
}

class TickCmd extends Cmd {
  constructor(readonly ms: number) {
    super();
  }
  async act(m: Model) {
    m.clock.advance(this.ms);
  }
  toString = () => `tick(${this.ms})`;
}

const commands = [
  fc.tuple(keyArb, valueArb, fc.option(fc.integer({ min: 1, max: 5000 }), { nil: undefined })).map(([k, v, ttl]) => new PutCmd(k, v, ttl)),
  fc.tuple(keyArb, valueArb).map(([k, v]) => new PutCmd(k, v, undefined)),
  keyArb.map((k) => new DelCmd(k)),
  fc.array(fc.tuple(keyArb, fc.option(valueArb, { nil: undefined, freq: 4 })), { minLength: 2, maxLength: 6 }).map((ops) => new ManyCmd(ops)),
  keyArb.map((k) => new GetCmd(k)),
  fc.tuple(keyArb, keyArb).map(([a, b]) => new ScanCmd(a < b ? a : b, a < b ? b : a)),
  fc.constant(new FlushCmd()),
  fc.constant(new CompactCmd()),
  fc.constant(new ReopenCmd()),
  fc.tuple(fc.integer({ min: 0, max: 60 }), fc.option(fc.integer({ min: 0, max: 2 ** 31 - 1 }), { nil: undefined })).map(([n, seed]) => new PowerCutCmd(n, seed)),
  fc.tuple(fc.integer({ min: 0, max: 60 }), fc.option(fc.integer({ min: 0, max: 2 ** 31 - 1 }), { nil: undefined })).map(([n, seed]) => new PowerCutCmd(n, seed)),
  fc.integer({ min: 1, max: 4000 }).map((ms) => new TickCmd(ms)),
];

t.test('engine matches a Map model under random operations and power cuts, under every sync policy', async (t) => {
  const seed = Number(process.env.RINGKV_SEED ?? Date.now() % 2 ** 31);
  t.comment(`seed ${seed} (rerun with RINGKV_SEED=${seed})`);
  const totals = { runs: 0, executed: 0, cuts: 0 };
  const perPolicy = { always: 0, batch: 0, none: 0 };
  let recycledRuns = 0;
  await fc.assert(
    fc.asyncProperty(fc.commands(commands, { maxCommands: 150, size: 'max' }), fc.constantFrom<SyncPolicy>('always', 'batch', 'none'), fc.constantFrom(0, 2), async (cmds, sync, walRecycleSegments) => {
      const clock = new ManualClock();
      const fs = new MemoryFileSystem();
      await fs.mkdirp(DIR);
      const opts: EngineOptions = {
        sync,
        clock,
        memtableSizeBytes: 4096,
        compactionTriggerTables: 3,
        compactionRateBytesPerSec: 0,
        blockSizeBytes: 256,
        tombstoneGraceMs: 3000,
        walRecycleSegments,
      };
      const model: Model = { data: new Map(), history: [], acked: 0, durable: 0, clock };
      const real: Real = { fs, engine: await Engine.open(DIR, { ...opts, fs }), opts, sync, armed: undefined, cut: undefined, cuts: 0 };
      watch(model, real);
      try {
        await fc.asyncModelRun(() => ({ model, real }), cmds);
        // A cut still armed strikes now; then every key agrees, and a full scan agrees.
        if (real.armed) {
          cutNow(model, real, real.armed.seed);
          await settle(model, real);
        }
        for (const k of KEYS) await new GetCmd(k).run(model, real);
        await new ScanCmd('', '\u00ff\u00ff').run(model, real);
        totals.executed += [...cmds].length;
        totals.cuts += real.cuts;
      } finally {
        await real.engine.close().catch(() => undefined);
      }
      totals.runs++;
      perPolicy[sync]++;
      if (walRecycleSegments > 0) recycledRuns++;
    }),
    { seed, numRuns: Number(process.env.RINGKV_RUNS ?? 120) },
  );
  t.ok(totals.runs > 0, `ran ${totals.runs} sequences (${JSON.stringify(perPolicy)}, ${recycledRuns} with WAL segments recycled)`);
  t.ok(totals.executed > totals.runs * 10, `ran ${totals.executed} commands`);
  t.ok(totals.cuts > totals.runs, `reopened after ${totals.cuts} power cuts`);
});
