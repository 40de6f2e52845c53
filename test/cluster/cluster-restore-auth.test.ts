// A whole cluster with TLS required and authentication on, restored from its snapshots
// (README "Backups"), with real processes and the real CLI: the users and roles of the
// snapshots' time come back with the data — an application's token reads its keys on every
// node, the admin's token still administers — and a user added after the snapshots is gone.
// Each node's user table lives in its data directory (AUTH), so a snapshot must carry it:
// when every node is restored there is no peer left to learn it from.

import fs from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { connect } from '../../sdk/client.js';
import { Routes } from '../../sdk/wire/protocol.js';
import { skipWithoutOpenssl } from '../helpers/certs.js';
import type { CliRun } from '../helpers/run-cli.js';
import { runRingkv } from '../helpers/run-cli.js';
import { startSecureCluster } from '../helpers/secure-cluster.js';

t.setTimeout(180_000);

const skip = skipWithoutOpenssl();

t.test('an authenticated cluster restored whole keeps the users and roles of its snapshots', { skip }, async (t) => {
  const s = await startSecureCluster(t, { nodes: 3 });
  const { c, certs } = s;
  const n1 = certs.node('n1');
  // The CLI speaks TLS with n1's certificate and the admin's token, as an operator on n1's host.
  const ringkv = (args: string[]): Promise<CliRun> =>
    runRingkv([...args, '--seeds', c.addresses.join(','), '--tls-ca', certs.caFile, '--tls-cert', n1.certFile, '--tls-key', n1.keyFile], {
      timeoutMs: 120_000,
      env: { RINGKV_TOKEN: s.adminToken },
    });

  await s.role('app-rw', { 'app:': ['read', 'write'] });
  const app = await s.user('app', ['app-rw']);
  const kv = await connect({ seeds: c.addresses, valueEncoding: 'utf8', tls: { ca: certs.ca }, auth: { token: app }, timeoutMs: 10_000 });
  t.teardown(() => kv.close());
  await kv.put('app:k', 'before the snapshot', { consistency: 'all' });

  const snap = await ringkv(['snapshot', '--name', 's1']);
  t.equal(snap.code, 0, 'ringkv snapshot --name s1', { stdout: snap.stdout, stderr: snap.stderr });
  const snapDirs = new Map<string, string>();
  for (const line of snap.stdout.split('\n')) {
    const m = /^(n\d): (\S+) \(/.exec(line);
    if (m) snapDirs.set(m[1]!, m[2]!);
  }
  t.same([...snapDirs.keys()].sort(), ['n1', 'n2', 'n3'], 'every node took s1');
  const late = await s.user('late', ['app-rw']);

  await Promise.all(c.nodes.map((n) => c.stop(n.id)));
  for (const n of c.nodes) {
    fs.cpSync(snapDirs.get(n.id)!, path.join(c.dir, 'backup', n.id), { recursive: true });
    fs.rmSync(n.dataDir, { recursive: true, force: true });
  }
  const restores = await Promise.all(c.nodes.map((n) => runRingkv(['restore', '--from', path.join(c.dir, 'backup', n.id), '--data', n.dataDir, '--whole-cluster'])));
  restores.forEach((r, i) => t.equal(r.code, 0, `ringkv restore ${c.nodes[i]!.id} --whole-cluster`, { stdout: r.stdout, stderr: r.stderr }));
  await Promise.all(c.nodes.map((n) => c.restart(n.id)));
  await c.waitForMembers(3, 'up', 30_000);

  const statusOn = async (id: string, token: string) => (await s.request(id, { path: Routes.members, token, headers: { accept: 'application/json' } })).status;
  const everywhere = (token: string) => Promise.all(c.nodes.map((n) => statusOn(n.id, token)));
  t.same(await everywhere(app), [200, 200, 200], "the application's token is taken by every node");
  t.same(await everywhere(s.adminToken), [200, 200, 200], "and the admin's");
  t.same(await everywhere(late), [401, 401, 401], 'a user added after the snapshots is gone');
  const kv2 = await connect({ seeds: c.addresses, valueEncoding: 'utf8', tls: { ca: certs.ca }, auth: { token: app }, timeoutMs: 10_000 });
  t.teardown(() => kv2.close());
  t.equal((await kv2.get('app:k', { consistency: 'all' }))?.value, 'before the snapshot', 'the application reads its key at all');
  await kv2.put('app:after', 'written after the restore', { consistency: 'all' });
  t.equal((await kv2.get('app:after', { consistency: 'all' }))?.value, 'written after the restore', 'and writes');
  const listed = await ringkv(['user', 'list']);
  t.equal(listed.code, 0, 'ringkv user list', { stdout: listed.stdout, stderr: listed.stderr });
  t.match(listed.stdout, /\bapp\b/, 'the admin lists the users: app is there');
});
