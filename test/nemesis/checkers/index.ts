// The nemesis suite's checkers: each judges a recorded history (../history.ts) and returns a
// CheckResult. All are pure functions of their inputs; see ./README.md for what each decides.

export { checkLinearizability, DEFAULT_MAX_STATES_PER_KEY, LINEARIZABILITY } from './linearizability.js';
export type { LinearizabilityOptions } from './linearizability.js';
export { checkStrongContract, STRONG_CONTRACT } from './strong-contract.js';
export type { StrongContractOptions } from './strong-contract.js';
export { checkSetCompleteness, SET_COMPLETENESS } from './set-completeness.js';
export { checkVectorClocks, VECTOR_CLOCK } from './vector-clock.js';
export type { VectorClockOptions } from './vector-clock.js';
export { checkCounters, COUNTER } from './counter.js';
export type { CounterOptions } from './counter.js';
export { checkAddWinsSet, ADD_WINS_SET } from './add-wins-set.js';
export type { AddWinsSetOptions } from './add-wins-set.js';
export { splitByKey } from './per-key.js';
