// Generates register histories that are linearizable by construction, for the checkers' tests:
// clients run random operations on a simulated register per key, each taking effect at a random
// instant inside its interval (unknown writes: later or never; failed writes: never). Test helper.

import type { HistoryOp, OpFunction, Outcome } from './history.js';
import type { SeededRandom } from '../sdk/seeded-random.js';

export interface SimulationOptions {
  ops: number;
  keys: number;
  clients: number;
  /** Probabilities for each operation (defaults in parentheses). Read (0.5), delete (0.1). */
  pRead?: number;
  pDelete?: number;
  /** Of writes and deletes: unknown (0.1), fail (0.05). Of reads: unknown (0.05). */
  pUnknownWrite?: number;
  pFailWrite?: number;
  pUnknownRead?: number;
  /** Durations are 1..maxDurationMs (10), gaps between a client's ops 0..maxGapMs (5). */
  maxDurationMs?: number;
  maxGapMs?: number;
  /** Values written are drawn from this pool (duplicates) instead of unique `v<id>`. */
  valuePool?: readonly string[];
  /** Share of operations that hang (0), lasting 1..longDurationMs (500): a partition's timeouts. */
  pLong?: number;
  longDurationMs?: number;
}

export function simulateRegisterHistory(rnd: SeededRandom, o: SimulationOptions): HistoryOp[] {
  const pRead = o.pRead ?? 0.5;
  const pDelete = o.pDelete ?? 0.1;
  const pUnknownWrite = o.pUnknownWrite ?? 0.1;
  const pFailWrite = o.pFailWrite ?? 0.05;
  const pUnknownRead = o.pUnknownRead ?? 0.05;
  const maxDuration = o.maxDurationMs ?? 10;
  const maxGap = o.maxGapMs ?? 5;
  const pLong = o.pLong ?? 0;
  const longDuration = o.longDurationMs ?? 500;
  const free = new Array<number>(o.clients).fill(0);
  const ops: HistoryOp[] = [];
  const effects: { at: number; op: HistoryOp }[] = [];
  for (let id = 1; id <= o.ops; id++) {
    let c = 0;
    for (let k = 1; k < o.clients; k++) if (free[k]! < free[c]!) c = k;
    const invokeMs = free[c]!;
    const completeMs = invokeMs + 1 + rnd.int(rnd.chance(pLong) ? longDuration : maxDuration);
    free[c] = completeMs + rnd.int(maxGap + 1);
    const key = `k${rnd.int(o.keys)}`;
    const u = rnd.next();
    const f: OpFunction = u < pRead ? 'read' : u < pRead + pDelete ? 'delete' : 'write';
    let outcome: Outcome = 'ok';
    const v = rnd.next();
    if (f === 'read') {
      if (v < pUnknownRead) outcome = 'unknown';
    } else if (v < pUnknownWrite) outcome = 'unknown';
    else if (v < pUnknownWrite + pFailWrite) outcome = 'fail';
    const op: HistoryOp = { id, process: `c${c + 1}`, f, key, value: f === 'write' ? (o.valuePool === undefined ? `v${id}` : rnd.pick(o.valuePool)) : null, invokeMs, completeMs, outcome };
    ops.push(op);
    const inside = invokeMs + rnd.next() * (completeMs - invokeMs);
    if (outcome === 'ok') effects.push({ at: inside, op });
    else if (outcome === 'unknown' && f !== 'read' && rnd.chance(0.5)) {
      // Took effect after all, possibly well after the client gave up.
      effects.push({ at: invokeMs + rnd.next() * 3 * (completeMs - invokeMs + maxDuration), op });
    }
  }
  effects.sort((a, b) => a.at - b.at);
  const register = new Map<string, string | null>();
  for (const { op } of effects) {
    if (op.f === 'read') op.value = register.get(op.key) ?? null;
    else register.set(op.key, op.value);
  }
  return ops;
}

/** Changes one ok read's value (in place) to something else; returns it, or undefined when there is no ok read. */
export function mutateOneRead(rnd: SeededRandom, ops: HistoryOp[]): HistoryOp | undefined {
  const reads = ops.filter((x) => x.f === 'read' && x.outcome === 'ok');
  if (reads.length === 0) return undefined;
  const r = rnd.pick(reads);
  const choices: (string | null)[] = [null, 'never-written', ...ops.filter((x) => x.key === r.key && x.f === 'write').map((x) => x.value)];
  const others = choices.filter((c) => c !== r.value);
  r.value = rnd.pick(others);
  return r;
}
