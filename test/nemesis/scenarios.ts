// The nemesis scenarios: which nemesis, at which consistency level, with which workload.
// Registers at `linearizable` and `strong` under every nemesis; registers at `eventual`
// (convergence after healing) under a few; unique inserts at `strong`; vector clocks,
// counters and data-type sets under kill and a partition (counters also at `eventual`).
// Pure data.

import type { NemesisName } from './nemeses.js';
import type { WorkloadName } from './workloads.js';

export type Level = 'linearizable' | 'strong' | 'eventual';

export interface Scenario {
  /** "<nemesis>/<level>/<workload>": what --only matches. */
  name: string;
  nemesis: NemesisName;
  level: Level;
  workload: WorkloadName;
}

function scenario(nemesis: NemesisName, level: Level, workload: WorkloadName): Scenario {
  return { name: `${nemesis}/${level}/${workload}`, nemesis, level, workload };
}

const EVERY_NEMESIS: NemesisName[] = [
  'kill',
  'pause',
  'partition-isolate',
  'partition-halves',
  'partition-bridge',
  'client-skew',
  'server-skew',
  'disk-full',
];

export const SCENARIOS: readonly Scenario[] = [
  ...EVERY_NEMESIS.flatMap((n) => [scenario(n, 'linearizable', 'register'), scenario(n, 'strong', 'register')]),
  ...(['kill', 'partition-halves', 'disk-full'] as const).map((n) => scenario(n, 'eventual', 'register')),
  ...(['kill', 'partition-halves'] as const).map((n) => scenario(n, 'strong', 'insert')),
  ...(['kill', 'partition-halves'] as const).map((n) => scenario(n, 'strong', 'vclock')),
  ...(['kill', 'partition-halves'] as const).map((n) => scenario(n, 'strong', 'counter')),
  scenario('kill', 'eventual', 'counter'),
  ...(['kill', 'partition-halves'] as const).map((n) => scenario(n, 'strong', 'dt-set')),
];

/**
 * The scenarios `--only` selects: a comma-separated list of patterns, each matching names
 * that contain it ("client-skew/strong") or, with '*', glob-like ("kill*register").
 */
export function selectScenarios(only: string | undefined, all: readonly Scenario[] = SCENARIOS): Scenario[] {
  if (!only) return [...all];
  const pats = only
    .split(',')
    .map((p) => p.trim())
    .filter(Boolean)
    .map((p) => (p.includes('*') ? new RegExp(`^${p.split('*').map(escapeRe).join('.*')}$`) : p));
  return all.filter((s) => pats.some((p) => (typeof p === 'string' ? s.name.includes(p) : p.test(s.name))));
}

function escapeRe(s: string): string {
  return s.replace(/[.+?^${}()|[\]\\/]/g, '\\$&');
}
