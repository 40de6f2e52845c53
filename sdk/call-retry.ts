// A client call's attempts under its retry policy (the loop is sdk/retry.ts withRetry):
// each attempt routed afresh, all within the call's deadline; a write retried only when it
// cannot be applied twice. Stateless; each call's state is in its CallCtx.

import type { CallCtx } from './call-context.js';
import type { ClientCore } from './client-core.js';
import type { CallOptions, PutResult } from './client-types.js';
import { RingkvError } from './errors.js';
import { isRetryableError, resolveRetry, withRetry } from './retry.js';

/** Runs a call's attempts under its retry policy (sdk/retry.ts), each routed afresh, within its deadline. */
export function retrying<T>(core: ClientCore, call: CallCtx, opts: CallOptions, mayRetry: (err: unknown) => boolean, attempt: () => Promise<T>): Promise<T> {
  const base = core.settings.retry;
  const policy = opts.retry === undefined ? base : resolveRetry(opts.retry, base);
  if (policy.attempts <= 1) return attempt();
  return withRetry(
    policy,
    call,
    (err) => !core.closed && mayRetry(err),
    () => {
      call.ringChanged = false;
      return attempt();
    },
    () => void call.stats.retries++,
  );
}

/**
 * A write's attempts under its retry policy: a last-write-wins write is retried with its
 * version pinned (call.pinnedTs); a vector-clock write only when nothing was applied. The
 * error says `notApplied` only when no attempt may have been applied.
 */
export function retryingWrite(core: ClientCore, call: CallCtx, opts: CallOptions, attempt: () => Promise<PutResult>): Promise<PutResult> {
  let maybeApplied = false;
  const mayRetry = (err: unknown) => isRetryableError(err) && (core.settings.conflictMode === 'lww' || (err as RingkvError).notApplied);
  return retrying(core, call, opts, mayRetry, async () => {
    try {
      return await attempt();
    } catch (err) {
      if (err instanceof RingkvError) {
        if (!err.notApplied) maybeApplied = true;
        else if (maybeApplied) err.notApplied = false;
      }
      throw err;
    }
  });
}
