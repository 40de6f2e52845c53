// retries.ts — retries with back-off: a read at `all` that meets an unreachable replica
// fails without them and succeeds with them, within the call's timeout. The failure is
// injected through the client's transport seam (the first request to one node is refused,
// as a flaky network would), so the example runs against a healthy cluster.
//
// Run against `npm start`'s cluster:  npm run build && node dist/examples/retries.js

import assert from 'node:assert/strict';
import { connect, HttpTransport, NodeUnavailableError, RETRYABLE_CODES } from 'ringkv';
import type { Transport, TransportCallOptions } from 'ringkv';

/** The real transport, but the next `failures` requests to `address` are refused. */
class FlakyNetwork implements Transport {
  private readonly inner = new HttpTransport();
  failures = 0;
  address = '';
  call<T>(address: string, path: string, body: unknown, opts: TransportCallOptions): Promise<T> {
    if (address === this.address && path.endsWith('/batch') && this.failures > 0) {
      this.failures--;
      return Promise.reject(new NodeUnavailableError(address, 'connection refused (injected)'));
    }
    return this.inner.call<T>(address, path, body, opts);
  }
  close(): Promise<void> {
    return this.inner.close();
  }
}

const seeds = (process.env.RINGKV_SEEDS ?? '127.0.0.1:7001').split(',');
const net = new FlakyNetwork();
// Every call of this client may be tried 4 times, 50 ms apart at first (doubling, jittered).
const kv = await connect({ seeds, valueEncoding: 'utf8', transport: net, retry: { attempts: 4, backoffMs: 50 } });
try {
  console.log(`retried codes: ${[...RETRYABLE_CODES].join(', ')}`);
  await kv.put('example:retry', 'still here', { consistency: 'all' });
  net.address = kv.cluster.addressOf(kv.replicasOf('example:retry')[0]!);

  net.failures = 1;
  const noRetry = await kv.get('example:retry', { consistency: 'all', retry: false }).catch((e: NodeUnavailableError) => e.code);
  console.log(`without retries: ${String(noRetry)}`);
  assert.equal(noRetry, 'QUORUM_NOT_MET');

  let retries = 0;
  kv.on('operation', (m) => (retries = m.retries));
  net.failures = 2;
  const got = await kv.get('example:retry', { consistency: 'all' });
  console.log(`with retries: ${JSON.stringify(got?.value)} after ${retries} retries`);
  assert.equal(got?.value, 'still here');
  assert.equal(retries, 2);
} finally {
  await kv.close();
}
