// Listing (kv.keys(), kv.entries()) on two data centers of three real server processes with
// two replicas each, so that a node holds only part of the keys: every range is read from a
// replica of the range as the ring places it per data center, from the client's own data
// center first. Checks that both sides list every key written, and that the pages of a
// client in east are read from east's nodes only while they are up.

import t from 'tap';
import { HttpTransport } from '../../sdk/transport.js';
import type { Transport } from '../../sdk/transport.js';
import { Routes } from '../../sdk/wire/protocol.js';
import { DcCluster } from '../helpers/dc-cluster.js';

/** A transport that records the addresses its scan pages were read from. */
class RecordingTransport implements Transport {
  readonly addresses = new Set<string>();
  constructor(private readonly inner: Transport) {}
  call<T>(address: string, path: string, body: unknown, opts: { timeoutMs: number; method?: 'GET' | 'POST' }): Promise<T> {
    if (path === Routes.scan) this.addresses.add(address);
    return this.inner.call<T>(address, path, body, opts);
  }
  close(): Promise<void> {
    return this.inner.close();
  }
}

t.test('listing with two data centers of three nodes and two replicas each', async (t) => {
  const dc = await DcCluster.start(t, {
    dcs: [
      { name: 'east', nodes: 3, rf: 2 },
      { name: 'west', nodes: 3, rf: 2 },
    ],
    env: { RINGKV_REPL_RETRY_MAX_MS: '500', RINGKV_FULL_SYNC_INTERVAL_MS: '0' },
  });
  const recording = new RecordingTransport(new HttpTransport());
  t.teardown(() => recording.close());
  const east = await dc.client<string>('east', { valueEncoding: 'utf8', transport: recording });
  const west = await dc.client<string>('west', { valueEncoding: 'utf8' });
  const keys = Array.from({ length: 300 }, (_, i) => `k:${String(i).padStart(3, '0')}`);
  for (let i = 0; i < keys.length; i += 50) {
    await Promise.all(keys.slice(i, i + 50).map((k) => east.put(k, `v-${k}`, { consistency: 'eachQuorum', timeoutMs: 20_000 })));
  }

  const listedEast: string[] = [];
  for await (const k of east.keys({ pageSize: 40 })) listedEast.push(k);
  t.same(listedEast.sort(), keys, 'east lists every key written');
  const eastAddresses = new Set(dc.nodesOf('east').map((n) => n.address));
  t.ok(recording.addresses.size > 0 && [...recording.addresses].every((a) => eastAddresses.has(a)), `east's pages came from east's nodes (${[...recording.addresses].join(', ')})`);

  const listedWest: string[] = [];
  for await (const e of west.entries({ pageSize: 40 })) {
    if (e.value !== `v-${e.key}`) t.fail(`${e.key}: ${e.value}`);
    listedWest.push(e.key);
  }
  t.same(listedWest.sort(), keys, 'west lists every key with its value');
});
