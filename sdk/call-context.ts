// One call's state, handed down to every request it makes: its deadline (monotonic ms),
// its abort signal, what it did so far (its `operation` event) and what its attempts share.
// A call's context belongs to that call; its requests run concurrently and only add to it.

import { monotonicNowMs } from './batcher.js';
import type { CallStats, ClientEvents } from './client-events.js';
import { newCallStats } from './client-events.js';
import type { CallOptions } from './client-types.js';
import type { Consistency } from './consistency.js';
import { AbortedError, InvalidArgumentError, TimeoutError } from './errors.js';

/** One call's deadline (monotonic ms) and cancellation, handed down to every request it makes. */
export interface CallCtx {
  timeoutMs: number;
  deadline: number;
  signal: AbortSignal | undefined;
  /** Set when a replica refused one of the call's writes with RING_CHANGED (the attempt routes again). */
  ringChanged: boolean;
  /** What the call did so far (its `operation` event). */
  stats: CallStats;
  /** A last-write-wins write's timestamp once stamped: a retry sends the same version again. */
  pinnedTs?: number;
}

/** The deadline and signal of a call (default timeout `defaultTimeoutMs`); throws ABORTED when the signal already fired. */
export function newCallCtx(op: string, opts: CallOptions, defaultTimeoutMs: number): CallCtx {
  const timeoutMs = opts.timeoutMs ?? defaultTimeoutMs;
  if (!(Number.isFinite(timeoutMs) && timeoutMs > 0)) throw new InvalidArgumentError('timeoutMs must be a positive number');
  const signal = opts.signal;
  if (signal !== undefined && !(signal instanceof AbortSignal)) throw new InvalidArgumentError('signal must be an AbortSignal');
  if (signal?.aborted) {
    const e = new AbortedError(op, signal.reason);
    e.notApplied = true;
    throw e;
  }
  return { timeoutMs, deadline: monotonicNowMs() + timeoutMs, signal, ringChanged: false, stats: newCallStats() };
}

/** A context for background work (late repairs): `timeoutMs` from now, no signal; counted in `parent`'s stats. */
export function backgroundCallCtx(timeoutMs: number, parent?: CallCtx): CallCtx {
  return { timeoutMs, deadline: monotonicNowMs() + timeoutMs, signal: undefined, ringChanged: false, stats: parent?.stats ?? newCallStats() };
}

/** Milliseconds left before the call's deadline (may be <= 0). */
export function remaining(call: CallCtx): number {
  return Math.floor(call.deadline - monotonicNowMs());
}

/** Reports the end of a call on the `operation` event. */
export async function observed<T>(events: ClientEvents, op: 'get' | 'put' | 'delete', level: Consistency, call: CallCtx, p: Promise<T>): Promise<T> {
  const name = typeof level === 'string' ? level : `r${level.r ?? ''}w${level.w ?? ''}`;
  try {
    const v = await p;
    events.operationDone(op, name, call.stats, undefined);
    return v;
  } catch (err) {
    events.operationDone(op, name, call.stats, err);
    throw err;
  }
}

/** Rejects with ABORTED as soon as `signal` fires (the work goes on, its result unused). */
export function abortable<T>(p: Promise<T>, signal: AbortSignal | undefined, op: string): Promise<T> {
  if (!signal) return p;
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(new AbortedError(op, signal.reason));
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (e: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(e);
      },
    );
  });
}

/** Rejects with TIMEOUT when `p` has not settled within `ms` (the work goes on, its result unused). */
export function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const t = setTimeout(() => reject(new TimeoutError('operation', ms)), ms);
    p.then(
      (v) => {
        clearTimeout(t);
        resolve(v);
      },
      (e) => {
        clearTimeout(t);
        reject(e);
      },
    );
  });
}
