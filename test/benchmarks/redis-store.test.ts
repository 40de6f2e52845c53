// The replicated Redis peer's reads go over connections of their own: a read is never
// queued behind a write's WAIT on a shared connection. A real redis-server on loopback
// with no replica, so every WAIT 1 blocks its connection until its timeout.

import t from 'tap';
import { startRedis, peerUnavailable } from '../../benchmarks/harness/peer-servers.js';
import { ProcessGroup } from '../../benchmarks/harness/processes.js';
import { RedisStore } from '../../benchmarks/harness/stores/redis-store.js';

const missing = peerUnavailable('redis-server');

t.test('with WAIT, a read answers while a write waits for replicas', { skip: missing ? `needs redis-server: ${missing}` : false }, async (t) => {
  const group = new ProcessGroup();
  t.teardown(() => group.stopAll());
  const peer = await startRedis(group, { replicas: 0, fsync: 'no' });
  t.teardown(() => peer.stop());
  const [host, port] = peer.endpoints[0]!.split(':');
  // One connection each way: before reads had their own, the read shared the write's.
  const store = await RedisStore.open({ name: 'redis-replicated', host: host!, port: Number(port), connections: 1, waitReplicas: 1, waitTimeoutMs: 3000 });
  t.teardown(() => store.close());

  const order: string[] = [];
  const write = store.update(Buffer.from('k'), Buffer.from('v1')).then(
    () => order.push('write ok'),
    (err: { code?: string }) => order.push(`write ${err.code ?? 'failed'}`),
  );
  const read = store.read(Buffer.from('k')).then((v) => {
    order.push('read');
    return v;
  });
  const v = await read;
  t.equal(v?.toString(), 'v1', 'the read sees the write (WAIT does not hold back the SET)');
  t.same(order, ['read'], 'the read answered while the WAIT still blocked the write connection');
  await write;
  t.same(order, ['read', 'write WAIT_TIMEOUT'], 'the WAIT then timed out: no replica acknowledged');
});

t.test('without WAIT, reads and writes share the connections', { skip: missing ? `needs redis-server: ${missing}` : false }, async (t) => {
  const group = new ProcessGroup();
  t.teardown(() => group.stopAll());
  const peer = await startRedis(group, { replicas: 0, fsync: 'no' });
  t.teardown(() => peer.stop());
  const [host, port] = peer.endpoints[0]!.split(':');
  const store = await RedisStore.open({ name: 'redis', host: host!, port: Number(port), connections: 2 });
  t.teardown(() => store.close());
  await store.update(Buffer.from('a'), Buffer.from('1'));
  t.equal((await store.read(Buffer.from('a')))?.toString(), '1');
  t.equal(store.readConnections.length, 2);
});
