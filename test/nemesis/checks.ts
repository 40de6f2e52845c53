// Which checkers judge a scenario: linearizable level -> linearizability; strong -> the
// strong contract (and linearizability, printed as information only); inserts -> set
// completeness; vector clocks -> the vector-clock checker; counters -> the counter checker;
// data-type sets -> the add-wins set checker. Eventual registers (and eventual counters, in
// addition) are judged by convergence (convergence.ts). Pure, apart from the checkers' own work.

import type { CheckResult, HistoryOp } from './history.js';
import { checkAddWinsSet, checkCounters, checkLinearizability, checkSetCompleteness, checkStrongContract, checkVectorClocks } from './checkers/index.js';
import type { Scenario } from './scenarios.js';

export interface CheckOutcome {
  result: CheckResult;
  /** Printed, never a failure: e.g. linearizability of a strong run, which promises less. */
  informational: boolean;
}

export interface FinalState {
  /** Inserts: the final read of every attempted key. */
  finalReads?: Map<string, string | null>;
  /** Vector clocks: the final siblings of every key. */
  finalSiblings?: Map<string, string[]>;
  /** Counters: the final value of every key. */
  finalCounters?: Map<string, number>;
  /** Data-type sets: the final members of every key. */
  finalMembers?: Map<string, string[]>;
  /** When the final reads were invoked (ms since the run's start). */
  finalReadsInvokedMs?: number;
}

/** Every operation of a scenario's history is at the scenario's level (final reads included). */
export function runChecks(sc: Scenario, history: HistoryOp[], final: FinalState): CheckOutcome[] {
  if (sc.workload === 'insert') {
    return [{ result: checkSetCompleteness(history, final.finalReads ?? new Map()), informational: false }];
  }
  if (sc.workload === 'vclock') {
    const opts = final.finalReadsInvokedMs !== undefined ? { finalReadsInvokedMs: final.finalReadsInvokedMs } : {};
    return [{ result: checkVectorClocks(history, final.finalSiblings ?? new Map(), opts), informational: false }];
  }
  // At eventual a read may miss acknowledged updates; it may never see more than was sent.
  const readsSeeAcknowledged = sc.level !== 'eventual';
  if (sc.workload === 'counter') return [{ result: checkCounters(history, final.finalCounters ?? new Map(), { readsSeeAcknowledged }), informational: false }];
  if (sc.workload === 'dt-set') return [{ result: checkAddWinsSet(history, final.finalMembers ?? new Map(), { readsSeeAcknowledged }), informational: false }];
  if (sc.level === 'linearizable') return [{ result: checkLinearizability(history), informational: false }];
  if (sc.level === 'strong') {
    return [
      { result: checkStrongContract(history), informational: false },
      { result: checkLinearizability(history), informational: true },
    ];
  }
  return [];
}
