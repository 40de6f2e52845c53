// The cluster process helpers the tests and the benchmarks share (benchmarks/harness/
// ringkv-cluster.ts, processes.ts), on real processes: ports come from below the kernel's
// ephemeral range, a start that fails stops what it had started, and stopAll leaves no
// process and no data directory behind, also after a kill -9 and a restart.

import fs from 'node:fs';
import t from 'tap';
import { ProcessGroup, freePort } from '../../benchmarks/harness/processes.js';
import { RingkvCluster } from '../../benchmarks/harness/ringkv-cluster.js';
import { alive } from './run-bench.js';

function ephemeralLow(): number | undefined {
  try {
    return Number(fs.readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]);
  } catch {
    return undefined;
  }
}

const low = ephemeralLow();
const noRange = (low === undefined || low - 20_000 < 2048) && 'no Linux ephemeral range with room below it to check against';

t.test('free ports are picked below the ephemeral range', { skip: noRange }, async (t) => {
  const ports = await Promise.all(Array.from({ length: 20 }, () => freePort()));
  t.same(ports.filter((p) => p < 20_000 || p >= low!), [], `every port in [20000, ${low!})`);
  t.ok(new Set(ports).size > 1, 'not one fixed port');
});

t.test('a start that fails stops the nodes it had started and removes the data', async (t) => {
  const group = new ProcessGroup();
  t.teardown(() => group.stopAll(1000));
  // n2 refuses an unknown flag and exits; n1 is started alongside it.
  const c = new RingkvCluster({ nodes: 2, group, nodeArgs: (n) => (n.id === 'n2' ? ['--no-such-flag'] : []) });
  const err = await c.launch().then(
    () => undefined,
    (e: Error) => e,
  );
  t.match(err?.message, /node n2 exited/, 'the start fails, naming the node');
  t.equal(group.pids.length, 2, 'both processes were started');
  t.same(group.pids.filter(alive), [], 'neither runs any more');
  t.notOk(fs.existsSync(c.dir), 'the data directory is removed');
});

t.test('stopAll stops every process the cluster started, restarted ones too', async (t) => {
  const group = new ProcessGroup();
  t.teardown(() => group.stopAll(1000));
  const c = await new RingkvCluster({ nodes: 2, group, stopSignal: 'SIGKILL' }).launch();
  t.ok(c.running('n1') && c.running('n2'), 'both nodes run');
  t.match(c.nodes[0]!.address, /^127\.0\.0\.1:\d+$/, 'on 127.0.0.1');
  await c.kill('n2');
  t.notOk(c.running('n2'), 'kill -9 ends n2');
  await c.restart('n2');
  t.ok(c.running('n2'), 'n2 runs again');
  await c.waitForMembers(2, 'up', 30_000);
  t.equal(group.pids.length, 3, 'two nodes and the restarted one');
  await c.stopAll();
  t.same(group.pids.filter(alive), [], 'no process left');
  t.equal(c.nodes[0]!.proc!.child.signalCode, 'SIGKILL', 'ended by the stop signal asked for');
  t.notOk(fs.existsSync(c.dir), 'the data directory is removed');
});
