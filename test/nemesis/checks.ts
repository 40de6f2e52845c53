// Which checkers judge a scenario: linearizable level -> linearizability; strong -> the
// strong contract (and linearizability, printed as information only); inserts -> set
// completeness; vector clocks -> the vector-clock checker. Eventual registers are judged by
// convergence (convergence.ts). Pure, apart from the checkers' own work.

import type { CheckResult, HistoryOp } from './history.js';
import { checkLinearizable, checkSetCompleteness, checkStrongContract, checkVectorClock } from './checkers-placeholder.js';
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
}

export async function runChecks(sc: Scenario, history: HistoryOp[], final: FinalState): Promise<CheckOutcome[]> {
  if (sc.workload === 'insert') {
    return [{ result: await checkSetCompleteness(history, final.finalReads ?? new Map()), informational: false }];
  }
  if (sc.workload === 'vclock') {
    return [{ result: await checkVectorClock(history, final.finalSiblings ?? new Map()), informational: false }];
  }
  if (sc.level === 'linearizable') return [{ result: await checkLinearizable(history), informational: false }];
  if (sc.level === 'strong') {
    return [
      { result: await checkStrongContract(history), informational: false },
      { result: await checkLinearizable(history), informational: true },
    ];
  }
  return [];
}
