// Retries with back-off for operations that are safe to do again: one call's attempts, all
// within the call's deadline. Which failures are retried, and why a retried write does not
// write twice, is written out at RETRYABLE_CODES and in the README. Pure functions and one
// async loop per call; nothing shared between calls.

import type { ErrorCode } from './errors.js';
import { InvalidArgumentError, RingkvError } from './errors.js';
import { monotonicNowMs } from './batcher.js';
import { isShed, retryAfterSecOf } from './shed-verdict.js';

/** Retries of one call (or, given to connect(), of every call). */
export interface RetryOptions {
  /**
   * Most attempts in all, the first one included: 1 never retries. Default 1 (off) for
   * the client, so that an application opts in.
   */
  attempts?: number;
  /**
   * Back-off before the second attempt, in ms; it doubles each time, with full jitter (a
   * random wait between 0 and the bound, so that clients that failed together do not come
   * back together), up to `maxBackoffMs`. Default 50 ms.
   */
  backoffMs?: number;
  /** Ceiling of one back-off, in ms. Default 1000 ms. */
  maxBackoffMs?: number;
}

/** A validated retry policy. */
export interface RetryPolicy {
  attempts: number;
  backoffMs: number;
  maxBackoffMs: number;
}

export const DEFAULT_RETRY: RetryPolicy = Object.freeze({ attempts: 1, backoffMs: 50, maxBackoffMs: 1000 });

/**
 * The codes a retry may cure: the cluster could not do the operation now (too few replicas
 * answered, a node unreachable or shedding load, a replica's disk refusing writes for a
 * while, a quarantined block, a ring change under way). Never retried: argument errors
 * (INVALID_*, KEY_*, VALUE_TOO_LARGE, WRONG_TYPE, LOCAL_DC_REQUIRED), ABORTED, CLOSED, authentication and
 * permission errors, CLOCK_SKEW, CORRUPTION, INTERNAL — the same call would fail again.
 * TIMEOUT is retried only while the call's own deadline leaves time (a replica's request
 * timed out inside it).
 */
export const RETRYABLE_CODES: ReadonlySet<ErrorCode> = new Set<ErrorCode>([
  'QUORUM_NOT_MET',
  'NODE_UNAVAILABLE',
  'UNAVAILABLE',
  'OVERLOADED',
  'TIMEOUT',
  'DEADLINE_EXCEEDED',
  'WRITE_REFUSED',
  'WRITE_FAILED',
  'SUSPECT_RANGE',
  'RING_CHANGED',
]);

/** True when `err` is a failure a later attempt may not meet. */
export function isRetryableError(err: unknown): boolean {
  return err instanceof RingkvError && RETRYABLE_CODES.has(err.code);
}

/** Fills defaults over `base` and validates; throws INVALID_ARGUMENT on a bad value. */
export function resolveRetry(o: RetryOptions | false | undefined, base: RetryPolicy = DEFAULT_RETRY): RetryPolicy {
  if (o === false) return { ...base, attempts: 1 };
  if (o === undefined) return base;
  if (typeof o !== 'object' || o === null) throw new InvalidArgumentError('retry must be { attempts, backoffMs, maxBackoffMs } or false');
  const attempts = o.attempts ?? base.attempts;
  const backoffMs = o.backoffMs ?? base.backoffMs;
  const maxBackoffMs = o.maxBackoffMs ?? Math.max(base.maxBackoffMs, backoffMs);
  if (!(Number.isInteger(attempts) && attempts >= 1 && attempts <= 100)) throw new InvalidArgumentError('retry.attempts must be an integer from 1 to 100');
  if (!(Number.isFinite(backoffMs) && backoffMs >= 0)) throw new InvalidArgumentError('retry.backoffMs must be a non-negative number');
  if (!(Number.isFinite(maxBackoffMs) && maxBackoffMs >= backoffMs)) throw new InvalidArgumentError('retry.maxBackoffMs must be a number >= backoffMs');
  return { attempts, backoffMs, maxBackoffMs };
}

/** The wait before attempt `next` (2, 3, ...): full jitter under backoffMs * 2^(next - 2), capped. */
export function backoffDelayMs(p: RetryPolicy, next: number, random: () => number = Math.random): number {
  const bound = Math.min(p.maxBackoffMs, p.backoffMs * 2 ** Math.max(0, next - 2));
  return Math.floor(random() * bound);
}

/**
 * The wait before attempt `next` after `err`: the jittered back-off, and after OVERLOADED at
 * least the retry-after the refusal asked for (a node or the client's queue shedding load is
 * given the time it said it needs; when that leaves no time for another attempt within the
 * call's deadline, the loop fails at once with the OVERLOADED error).
 */
export function retryDelayMs(p: RetryPolicy, next: number, err: unknown, random: () => number = Math.random): number {
  const backoff = backoffDelayMs(p, next, random);
  return isShed(err) ? Math.max(backoff, Math.ceil(retryAfterSecOf(err) * 1000)) : backoff;
}

/** What the loop needs of a call: its deadline (monotonic ms) and cancellation. */
export interface RetryCall {
  deadline: number;
  signal: AbortSignal | undefined;
}

/** Time an attempt needs at least to be worth starting. */
const MIN_ATTEMPT_MS = 5;

/**
 * Runs `attempt` until it succeeds, fails with an error `mayRetry` refuses, the policy's
 * attempts are spent, the call's deadline leaves no time for a wait and another attempt,
 * or the call is aborted; then throws the last error. `onRetry` is told each retry.
 */
export async function withRetry<T>(
  policy: RetryPolicy,
  call: RetryCall,
  mayRetry: (err: unknown) => boolean,
  attempt: (n: number) => Promise<T>,
  onRetry?: (n: number, err: unknown) => void,
): Promise<T> {
  for (let n = 1; ; n++) {
    try {
      return await attempt(n);
    } catch (err) {
      if (n >= policy.attempts || !mayRetry(err) || call.signal?.aborted) throw err;
      const waitMs = retryDelayMs(policy, n + 1, err);
      if (call.deadline - monotonicNowMs() < waitMs + MIN_ATTEMPT_MS) throw err;
      if (waitMs > 0) await sleep(waitMs, call.signal);
      if (call.signal?.aborted) throw err;
      onRetry?.(n + 1, err);
    }
  }
}

function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
  });
}
