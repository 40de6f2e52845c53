// The workloads: YCSB's core workloads A, B, C and F, the design's own 2:1 mix, and
// counter increments (ringkv's counter data type beside Redis INCR), as operation
// proportions, and the per-operation chooser that draws from them. Pure data and a
// single-threaded chooser.

import type { SeededRandom } from './key-chooser.js';

/** What one operation of a workload does. RMW reads a record and writes it back changed; incr adds 1 to a counter. */
export type OpKind = 'read' | 'update' | 'rmw' | 'incr';
export const OP_KINDS: readonly OpKind[] = ['read', 'update', 'rmw', 'incr'];

export interface Workload {
  name: WorkloadName;
  description: string;
  /** Proportions of each kind; they add up to 1. */
  proportions: Record<OpKind, number>;
  /** The keys are counters: nothing is loaded first (a counter starts at 0), and only stores with increments take part. */
  counters?: boolean;
}

export type WorkloadName = 'a' | 'b' | 'c' | 'f' | 'mix' | 'counter';

export const WORKLOADS: Record<WorkloadName, Workload> = {
  a: { name: 'a', description: 'YCSB A: 50% read, 50% update', proportions: { read: 0.5, update: 0.5, rmw: 0, incr: 0 } },
  b: { name: 'b', description: 'YCSB B: 95% read, 5% update', proportions: { read: 0.95, update: 0.05, rmw: 0, incr: 0 } },
  c: { name: 'c', description: 'YCSB C: 100% read', proportions: { read: 1, update: 0, rmw: 0, incr: 0 } },
  f: { name: 'f', description: 'YCSB F: 50% read, 50% read-modify-write', proportions: { read: 0.5, update: 0, rmw: 0.5, incr: 0 } },
  mix: { name: 'mix', description: 'ringkv design mix: 2 reads : 1 write', proportions: { read: 2 / 3, update: 1 / 3, rmw: 0, incr: 0 } },
  counter: { name: 'counter', description: 'counter increments: 100% incr by 1 (ringkv counters, Redis INCRBY)', proportions: { read: 0, update: 0, rmw: 0, incr: 1 }, counters: true },
};

export function parseWorkload(s: string): Workload {
  const w = WORKLOADS[s.toLowerCase() as WorkloadName];
  if (!w) throw new RangeError(`unknown workload "${s}" (one of ${Object.keys(WORKLOADS).join(', ')})`);
  return w;
}

/** Draws operation kinds in a workload's proportions. */
export class OpChooser {
  private readonly readUpTo: number;
  private readonly updateUpTo: number;
  private readonly rmwUpTo: number;
  constructor(
    workload: Workload,
    private readonly rng: SeededRandom,
  ) {
    this.readUpTo = workload.proportions.read;
    this.updateUpTo = workload.proportions.read + workload.proportions.update;
    this.rmwUpTo = this.updateUpTo + workload.proportions.rmw;
  }

  next(): OpKind {
    const u = this.rng.next();
    if (u < this.readUpTo) return 'read';
    if (u < this.updateUpTo) return 'update';
    if (u < this.rmwUpTo) return 'rmw';
    return 'incr';
  }
}
