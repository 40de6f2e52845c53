// What a failed write may have left behind: each replica's answer or failure says whether
// the write may have been applied there, and the write's error says `notApplied` only when
// none may have. One WriteEffects per write attempt; its requests only set it to true.

import type { WireResult } from './wire/protocol.js';
import { QuorumNotMetError, RingkvError, isNotAppliedCode } from './errors.js';

/** What a write's requests may have done: whether any replica may have applied it. */
export interface WriteEffects {
  maybeApplied: boolean;
}

/** Notes what a replica's answer to a write means for the write's outcome. */
export function noteEffect(effects: WriteEffects, res: WireResult): WireResult {
  // An answer that refused the write, or that says a newer version is held there, leaves
  // nothing behind; any other answer (ok, an I/O failure) may have.
  if (res.ok ? res.won !== false : !isNotAppliedCode(res.code)) effects.maybeApplied = true;
  return res;
}

/** Notes a request that failed without an answer (timeout, unreachable): it may have been applied. */
export function noteFailure(effects: WriteEffects, err: unknown): void {
  if (!(err instanceof RingkvError && isNotAppliedCode(err.code))) effects.maybeApplied = true;
}

/** Marks a write's error with whether the write is known not to have been applied anywhere. */
export function markOutcome(err: unknown, effects: WriteEffects): unknown {
  if (err instanceof RingkvError) err.notApplied = !effects.maybeApplied;
  return err;
}

/** A write that failed for its quorum because a replica refused it as WRONG_TYPE fails with WRONG_TYPE. */
export function typedCause(err: unknown): unknown {
  if (err instanceof QuorumNotMetError && err.cause instanceof RingkvError && err.cause.code === 'WRONG_TYPE') return err.cause;
  return err;
}
