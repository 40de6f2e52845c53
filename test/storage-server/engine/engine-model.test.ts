// Model-based property test of the engine: random sequences of put / delete / get / scan /
// flush / compact / reopen / power-loss crash / clock moves, run against the real engine
// on the in-memory file system and compared with a Map. fast-check shrinks failures and
// prints the seed.

import fc from 'fast-check';
import t from 'tap';
import { ManualClock } from '../../../sdk/clock.js';
import { Engine, MemoryFileSystem } from '../../../storage-server/engine/index.js';
import type { EngineOptions } from '../../../storage-server/engine/index.js';

interface ModelValue {
  value: string;
  expiresAtMs: number;
}
interface Model {
  data: Map<string, ModelValue>;
  clock: ManualClock;
}
interface Real {
  fs: MemoryFileSystem;
  engine: Engine;
  opts: EngineOptions;
}

const DIR = '/db';
const keyArb = fc.constantFrom(...Array.from({ length: 24 }, (_, i) => `k${String(i).padStart(2, '0')}`), 'a', 'zz', 'k\u00ff');
const valueArb = fc.string({ maxLength: 300 });

function live(m: Model, k: string): string | undefined {
  const v = m.data.get(k);
  if (!v) return undefined;
  if (v.expiresAtMs !== 0 && v.expiresAtMs <= m.clock.nowMs()) return undefined;
  return v.value;
}

class PutCmd implements fc.AsyncCommand<Model, Real> {
  constructor(readonly k: string, readonly v: string, readonly ttlMs: number | undefined) {}
  check = () => true;
  async run(m: Model, r: Real) {
    await r.engine.put(Buffer.from(this.k), Buffer.from(this.v), this.ttlMs ? { ttlMs: this.ttlMs } : {});
    m.data.set(this.k, { value: this.v, expiresAtMs: this.ttlMs ? m.clock.nowMs() + this.ttlMs : 0 });
  }
  toString = () => `put(${this.k}, ${JSON.stringify(this.v).slice(0, 20)}, ttl=${this.ttlMs})`;
}

class DelCmd implements fc.AsyncCommand<Model, Real> {
  constructor(readonly k: string) {}
  check = () => true;
  async run(m: Model, r: Real) {
    await r.engine.delete(Buffer.from(this.k));
    m.data.delete(this.k);
  }
  toString = () => `del(${this.k})`;
}

class GetCmd implements fc.AsyncCommand<Model, Real> {
  constructor(readonly k: string) {}
  check = () => true;
  async run(m: Model, r: Real) {
    const got = await r.engine.get(Buffer.from(this.k));
    const want = live(m, this.k);
    if ((got?.value.toString() ?? undefined) !== want) {
      throw new Error(`get(${this.k}) = ${got?.value.toString()} but the model has ${want}`);
    }
  }
  toString = () => `get(${this.k})`;
}

class ScanCmd implements fc.AsyncCommand<Model, Real> {
  constructor(readonly from: string, readonly to: string) {}
  check = () => true;
  async run(m: Model, r: Real) {
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

class FlushCmd implements fc.AsyncCommand<Model, Real> {
  check = () => true;
  async run(_m: Model, r: Real) {
    await r.engine.flush();
  }
  toString = () => 'flush';
}

class CompactCmd implements fc.AsyncCommand<Model, Real> {
  check = () => true;
  async run(_m: Model, r: Real) {
    await r.engine.compact();
  }
  toString = () => 'compact';
}

class ReopenCmd implements fc.AsyncCommand<Model, Real> {
  check = () => true;
  async run(_m: Model, r: Real) {
    await r.engine.close();
    r.engine = await Engine.open(DIR, { ...r.opts, fs: r.fs });
  }
  toString = () => 'reopen';
}

/** Power loss: only synced data under synced names survives. Every acknowledged write must be there. */
class CrashCmd implements fc.AsyncCommand<Model, Real> {
  check = () => true;
  async run(_m: Model, r: Real) {
    const crashed = r.fs.powerCut();
    // The old engine is abandoned, as a killed process would be (its lock lives in the old fs).
    r.fs = crashed;
    r.engine = await Engine.open(DIR, { ...r.opts, fs: r.fs });
  }
  toString = () => 'crash';
}

class TickCmd implements fc.AsyncCommand<Model, Real> {
  constructor(readonly ms: number) {}
  check = () => true;
  async run(m: Model) {
    m.clock.advance(this.ms);
  }
  toString = () => `tick(${this.ms})`;
}

const commands = [
  fc.tuple(keyArb, valueArb, fc.option(fc.integer({ min: 1, max: 5000 }), { nil: undefined })).map(([k, v, ttl]) => new PutCmd(k, v, ttl)),
  fc.tuple(keyArb, valueArb).map(([k, v]) => new PutCmd(k, v, undefined)),
  keyArb.map((k) => new DelCmd(k)),
  keyArb.map((k) => new GetCmd(k)),
  fc.tuple(keyArb, keyArb).map(([a, b]) => new ScanCmd(a < b ? a : b, a < b ? b : a)),
  fc.constant(new FlushCmd()),
  fc.constant(new CompactCmd()),
  fc.constant(new ReopenCmd()),
  fc.constant(new CrashCmd()),
  fc.integer({ min: 1, max: 4000 }).map((ms) => new TickCmd(ms)),
];

t.test('engine matches a Map model under random operations', async (t) => {
  const seed = Number(process.env.RINGKV_SEED ?? Date.now() % 2 ** 31);
  t.comment(`seed ${seed} (rerun with RINGKV_SEED=${seed})`);
  let runs = 0;
  let executed = 0;
  await fc.assert(
    fc.asyncProperty(fc.commands(commands, { maxCommands: 150, size: 'max' }), fc.constantFrom<'always' | 'batch'>('always', 'batch'), async (cmds, sync) => {
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
      };
      const real: Real = { fs, engine: await Engine.open(DIR, { ...opts, fs }), opts };
      try {
        const model: Model = { data: new Map(), clock };
        await fc.asyncModelRun(() => ({ model, real }), cmds);
        // Finally every key agrees, and a full scan agrees.
        for (const k of ['a', 'zz', 'k\u00ff', ...Array.from({ length: 24 }, (_, i) => `k${String(i).padStart(2, '0')}`)]) {
          await new GetCmd(k).run(model, real);
        }
        await new ScanCmd('', '\u00ff\u00ff').run(model, real);
        executed += [...cmds].length;
      } finally {
        await real.engine.close().catch(() => undefined);
      }
      runs++;
    }),
    { seed, numRuns: Number(process.env.RINGKV_RUNS ?? 60) },
  );
  t.ok(runs > 0, `ran ${runs} sequences`);
  t.ok(executed > runs * 10, `ran ${executed} commands`);
});
