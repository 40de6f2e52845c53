// The cluster-wide settings must be the same on every node: a node started with another
// --replication (or data centers the cluster does not have) than its seeds refuses to start
// with SETTINGS_MISMATCH, and one with the same settings joins. Real processes on loopback.

import t from 'tap';
import { TestCluster } from '../helpers/cluster.js';

t.test('a node with other cluster settings than its seeds refuses to start', async (t) => {
  const c = await TestCluster.start(t, { nodes: 2 });
  for (const args of [
    ['--replication', '2'],
    ['--vnodes', '64'],
    ['--dc', 'east', '--replication', 'east:3,west:3'],
  ]) {
    const err = await c.addNode(args).then(
      () => undefined,
      (e: Error) => e,
    );
    t.ok(err, `${args.join(' ')}: did not start`);
    t.match(err?.message, /SETTINGS_MISMATCH|must be the same on every node/, `${args.join(' ')}: refused for its settings`);
  }
  const ok = await c.addNode();
  t.ok(c.running(ok.id), 'a node with the same settings starts');
});
