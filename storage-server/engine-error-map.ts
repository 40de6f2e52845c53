// Where the engine's errors (engine/engine-errors.ts) become the SDK's typed errors: the
// engine stands alone and has its own error classes, whose codes are the SDK's strings for
// the same conditions, so the mapping keeps code, message, details and cause, and a write the
// engine refused up front stays `notApplied`. Pure functions.

import { EngineError } from './engine/engine-errors.js';
import type { ErrorCode } from '../sdk/errors.js';
import { InternalError, isErrorCode, RingkvError } from '../sdk/errors.js';

/** The SDK error for an engine error (same code); undefined for anything else. */
export function fromEngineError(err: unknown): RingkvError | undefined {
  if (!(err instanceof EngineError)) return undefined;
  const code: ErrorCode = isErrorCode(err.code) ? err.code : 'INTERNAL';
  const e = new RingkvError(code, err.message, err.details, { cause: err });
  e.notApplied = err.notApplied;
  return e;
}

/** Anything thrown, as a RingkvError: SDK errors as they are, engine errors mapped, the rest INTERNAL. */
export function asRingkvError(err: unknown): RingkvError {
  if (err instanceof RingkvError) return err;
  return fromEngineError(err) ?? new InternalError((err as Error)?.message ?? String(err), err);
}
