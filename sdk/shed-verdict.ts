// Whether a quorum fell short because replicas shed load. A replica sheds when it (503
// OVERLOADED from its admission control) or the client's queue for it (sdk/batcher.ts) could
// not answer within the call's time; nothing was done there. When the quorum would have been
// met had the shedding replicas answered, the caller gets OVERLOADED (retryable, with a
// retry-after hint) instead of QUORUM_NOT_MET or TIMEOUT: the cluster is busy, not broken.
// Pure functions.

import type { RingkvError } from './errors.js';
import { ErrorCodes, OverloadedError } from './errors.js';

/** A replica's failure, as quorum calls collect them. */
export interface ShedFailure {
  node: string;
  error: RingkvError | Error;
}

/** True when `err` is a refusal for load (the replica or the client's queue shed the operation). */
export function isShed(err: unknown): boolean {
  return (err as RingkvError | undefined)?.code === ErrorCodes.OVERLOADED;
}

/** The retry-after hint of a shed error, in seconds (1 when it gives none). */
export function retryAfterSecOf(err: unknown): number {
  const v = Number((err as RingkvError | undefined)?.details?.retryAfterSec);
  return Number.isFinite(v) && v >= 0 ? v : 1;
}

/**
 * The OVERLOADED error for a quorum of `required` that has `succeeded` answers and `open`
 * replicas still able to answer, when it is short only because of replicas that shed (with
 * their answers it would be met); undefined when other failures make it short anyway or none
 * shed. The hint is when enough of the shed replicas expect to take work again.
 */
export function overloadedIfShed(
  opName: string,
  required: number,
  succeeded: number,
  open: number,
  failures: readonly ShedFailure[],
): OverloadedError | undefined {
  const shed = failures.filter((f) => isShed(f.error));
  if (shed.length === 0 || succeeded + open + shed.length < required) return undefined;
  const missing = Math.max(1, Math.min(shed.length, required - succeeded - open));
  const hints = shed.map((f) => retryAfterSecOf(f.error)).sort((a, b) => a - b);
  const retryAfterSec = hints[missing - 1]!;
  return new OverloadedError(
    `${opName}: ${shed.length} replica${shed.length === 1 ? '' : 's'} shed the operation for load (${shed.map((f) => f.node).join(', ')}); ${succeeded} of the ${required} required answered; retry after ${retryAfterSec} s`,
    retryAfterSec,
    { op: opName, required, succeeded, failed: failures.length, shed: shed.map((f) => f.node) },
  );
}
