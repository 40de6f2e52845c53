// The retry policy without servers: option validation and defaults, the back-off bound
// (doubling, capped, full jitter), and the loop — which errors it retries, that it stops
// at the attempt count, at the deadline and on abort.

import t from 'tap';
import { backoffDelayMs, DEFAULT_RETRY, isRetryableError, resolveRetry, retryDelayMs, withRetry } from '../../sdk/retry.js';
import { InvalidArgumentError, KeyTooLargeError, LocalDcRequiredError, NodeUnavailableError, OverloadedError, QuorumNotMetError, SettingsMismatchError } from '../../sdk/errors.js';
import { monotonicNowMs } from '../../sdk/batcher.js';

t.test('options', async (t) => {
  t.same(resolveRetry(undefined), DEFAULT_RETRY, 'off by default');
  t.same(resolveRetry({ attempts: 3 }), { attempts: 3, backoffMs: 50, maxBackoffMs: 1000 });
  t.same(resolveRetry(false, { attempts: 5, backoffMs: 10, maxBackoffMs: 100 }).attempts, 1, 'false turns the client policy off for a call');
  t.same(resolveRetry({ backoffMs: 5 }, { attempts: 5, backoffMs: 10, maxBackoffMs: 100 }), { attempts: 5, backoffMs: 5, maxBackoffMs: 100 }, 'a call overrides field by field');
  for (const bad of [{ attempts: 0 }, { attempts: 1.5 }, { attempts: 101 }, { backoffMs: -1 }, { backoffMs: 100, maxBackoffMs: 10 }]) {
    t.throws(() => resolveRetry(bad), { code: 'INVALID_ARGUMENT' }, JSON.stringify(bad));
  }
});

t.test('back-off: doubling under full jitter, capped', async (t) => {
  const p = { attempts: 10, backoffMs: 50, maxBackoffMs: 300 };
  t.same([2, 3, 4, 5, 6].map((n) => backoffDelayMs(p, n, () => 0.999999)), [49, 99, 199, 299, 299]);
  t.equal(backoffDelayMs(p, 4, () => 0), 0, 'the jitter reaches down to 0');
});

t.test('which errors are retried', async (t) => {
  t.ok(isRetryableError(new QuorumNotMetError('get', 2, 1, 1)));
  t.ok(isRetryableError(new NodeUnavailableError('n1', 'down')));
  t.notOk(isRetryableError(new KeyTooLargeError(300, 256)));
  t.notOk(isRetryableError(new InvalidArgumentError('x')));
  t.notOk(isRetryableError(new Error('not a ringkv error')));
  // Several data centers: a data center short of its quorum may answer later; a client that
  // named no (or an unknown) data center, or nodes with other settings, would fail again.
  t.ok(isRetryableError(new QuorumNotMetError('put', 2, 1, 1, undefined, 'west')));
  t.notOk(isRetryableError(new LocalDcRequiredError(['east', 'west'])));
  t.notOk(isRetryableError(new SettingsMismatchError('other replication')));
});

t.test('the loop', async (t) => {
  const policy = { attempts: 4, backoffMs: 1, maxBackoffMs: 2 };
  const far = { deadline: monotonicNowMs() + 60_000, signal: undefined };
  let n = 0;
  t.equal(await withRetry(policy, far, isRetryableError, async () => (++n < 3 ? Promise.reject(new QuorumNotMetError('get', 2, 1, 1)) : 'ok')), 'ok');
  t.equal(n, 3, 'two failures, then success');
  n = 0;
  await t.rejects(withRetry(policy, far, isRetryableError, async () => (n++, Promise.reject(new QuorumNotMetError('get', 2, 1, 1)))), { code: 'QUORUM_NOT_MET' });
  t.equal(n, 4, 'stops after `attempts`');
  n = 0;
  await t.rejects(withRetry(policy, far, isRetryableError, async () => (n++, Promise.reject(new KeyTooLargeError(300, 256)))), { code: 'KEY_TOO_LARGE' });
  t.equal(n, 1, 'an error no retry cures is thrown at once');
  n = 0;
  const near = { deadline: monotonicNowMs() + 1, signal: undefined };
  await t.rejects(withRetry({ attempts: 10, backoffMs: 50, maxBackoffMs: 50 }, near, isRetryableError, async () => (n++, Promise.reject(new QuorumNotMetError('get', 2, 1, 1)))));
  t.equal(n, 1, 'no retry when the deadline leaves no time for one');
  n = 0;
  const ac = new AbortController();
  const aborting = { deadline: monotonicNowMs() + 60_000, signal: ac.signal };
  await t.rejects(withRetry({ attempts: 10, backoffMs: 10_000, maxBackoffMs: 10_000 }, aborting, isRetryableError, async () => (n++, setTimeout(() => ac.abort(), 5), Promise.reject(new QuorumNotMetError('get', 2, 1, 1)))));
  t.equal(n, 1, 'an abort during the back-off ends the loop');
});

t.test('OVERLOADED: retried after at least its retry-after, or not at all when that leaves no time', async (t) => {
  const p = { attempts: 5, backoffMs: 50, maxBackoffMs: 1000 };
  t.equal(retryDelayMs(p, 2, new OverloadedError('busy', 0.3), () => 0.5), 300, 'the hint, above the jittered back-off (25)');
  t.equal(retryDelayMs(p, 2, new OverloadedError('busy', 0.01), () => 0.5), 25, 'the back-off, above a shorter hint');
  t.equal(retryDelayMs(p, 2, new QuorumNotMetError('get', 2, 1, 1), () => 0.5), 25, 'other errors: the back-off alone');
  t.ok(isRetryableError(new OverloadedError('busy', 1)));
  // The loop: a hint of 1 s within a call of 400 ms fails at once, with the OVERLOADED error.
  let n = 0;
  const call = { deadline: monotonicNowMs() + 400, signal: undefined };
  const started = monotonicNowMs();
  await t.rejects(withRetry(p, call, isRetryableError, async () => (n++, Promise.reject(new OverloadedError('busy', 1)))), { code: 'OVERLOADED' });
  t.equal(n, 1, 'one attempt: the node asked for more time than the call has');
  t.ok(monotonicNowMs() - started < 400, 'failed before its deadline, not at it');
  // A hint that fits: the next attempt comes after it.
  n = 0;
  const times: number[] = [];
  const roomy = { deadline: monotonicNowMs() + 10_000, signal: undefined };
  t.equal(await withRetry(p, roomy, isRetryableError, async () => (times.push(monotonicNowMs()), ++n < 2 ? Promise.reject(new OverloadedError('busy', 0.2)) : 'ok')), 'ok');
  t.ok(times[1]! - times[0]! >= 199, `the retry waited the 200 ms asked (${(times[1]! - times[0]!).toFixed(0)} ms)`);
});
