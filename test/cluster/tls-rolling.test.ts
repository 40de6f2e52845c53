// Moving a running 3-node cluster from plain HTTP to TLS node by node under a continuous
// `strong` write load, in the order storage-server/tls/README.md gives: every node restarted
// into `transitional` one by one, then every node into `required` one by one. The writers:
// an application deployed with the CA and its certificate before the move (tls with
// allowPlain: plain to nodes still off, TLS to the others) writing throughout; an old plain
// client writing until every node accepts TLS (its operator then moves it to TLS); and a
// TLS-only client started once every node accepts TLS. No operation may fail, and every
// acknowledged write must be readable at `all` at the end.

import t from 'tap';
import type { RingkvClient } from '../../sdk/client.js';
import { connect } from '../../sdk/client.js';
import type { HttpTransport } from '../../sdk/transport.js';
import { makeTestCerts, skipWithoutOpenssl, tlsArgs } from '../helpers/certs.js';
import { metricSum, TestCluster } from '../helpers/cluster.js';

// About a minute on an idle 2-core machine; the bound leaves room for a busy one.
t.setTimeout(150_000);

const skip = skipWithoutOpenssl();

/** Writes at `strong` from `loops` loops until stopped; records every acknowledged write. */
function writeLoad(kv: RingkvClient<string>, prefix: string, loops: number) {
  const acked = new Map<string, string>();
  const failures: string[] = [];
  let stop = false;
  let seq = 0;
  const running = Array.from({ length: loops }, async () => {
    while (!stop) {
      const i = seq++;
      const key = `${prefix}-${i}`;
      try {
        await kv.put(key, `v${i}`, { consistency: 'strong' });
        acked.set(key, `v${i}`);
      } catch (err) {
        const cause = (err as Error).cause as Error | undefined;
        failures.push(`${key}: ${(err as Error).message}${cause ? ` (${cause.message})` : ''}`);
      }
      // A steady load, not a flood: the 2-core machine also runs the restarts.
      await new Promise((r) => setTimeout(r, 4));
    }
  });
  return {
    acked,
    failures,
    /** Resolves once `n` more writes have been acknowledged (the load kept flowing). */
    async progressed(n: number, timeoutMs = 20_000): Promise<void> {
      const target = acked.size + n;
      const deadline = Date.now() + timeoutMs;
      while (acked.size < target) {
        if (Date.now() > deadline) throw new Error(`${prefix}: only ${acked.size} of ${target} writes acknowledged in ${timeoutMs} ms; failures: ${failures.slice(0, 3).join('; ')}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    },
    async stop(): Promise<void> {
      stop = true;
      await Promise.all(running);
    },
  };
}

t.test('off → transitional → required, node by node, under a strong write load', { skip }, async (t) => {
  const ids = ['n1', 'n2', 'n3'];
  const certs = makeTestCerts(ids, ['app']);
  t.teardown(() => certs.cleanup());
  const c = await TestCluster.start(t, { nodes: 3, tls: { ca: certs.ca, ...certs.node('n1') } });
  const app = certs.client('app');

  const clients: RingkvClient<string>[] = [];
  /**
   * Waits until every node and every client sees `id` up, advertising `mode`, and no client
   * avoids it: what an operator waits for (ringkv status, then the clients' membership
   * refresh) before restarting the next node, so that never two replicas are out at once.
   */
  const waitForMode = async (id: string, mode: string) => {
    const deadline = Date.now() + 30_000;
    let last = '';
    while (Date.now() < deadline) {
      try {
        const views = await Promise.all(ids.map((x) => c.view(x)));
        const nodesSee = views.every((v) => v.members.some((m) => m.id === id && m.state === 'up' && (m.tls ?? 'off') === mode));
        const clientsSee = clients.every((kv) => {
          const m = kv.cluster.member(id);
          return m?.state === 'up' && (m.tls ?? 'off') === mode && !kv.avoidedNodes.includes(id);
        });
        if (nodesSee && clientsSee) return;
        last = JSON.stringify(views.map((v) => v.members.map((m) => `${m.id}:${m.state}:${m.tls ?? 'off'}`)));
        last += ` clients: ${JSON.stringify(clients.map((kv) => [kv.cluster.member(id), kv.avoidedNodes]))}`;
      } catch (err) {
        last = (err as Error).message;
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`not every node sees ${id} up in ${mode} mode: ${last}`);
  };

  // The application, deployed with the CA and its certificate before the move.
  const moving = await connect({ seeds: c.addresses, valueEncoding: 'utf8', timeoutMs: 3000, tls: { ca: certs.ca, ...app, allowPlain: true } });
  t.teardown(() => moving.close());
  // An old client that knows nothing of TLS.
  const plain = await connect({ seeds: c.addresses, valueEncoding: 'utf8', timeoutMs: 3000 });
  t.teardown(() => plain.close());
  clients.push(moving, plain);
  const movingLoad = writeLoad(moving, 'moving', 2);
  const plainLoad = writeLoad(plain, 'plain', 1);
  await movingLoad.progressed(50);
  await plainLoad.progressed(50);
  const transportOf = (kv: RingkvClient<string>) => (kv as unknown as { transport: HttpTransport }).transport;
  t.same(c.addresses.map((a) => transportOf(moving).schemeFor(a)), ['http', 'http', 'http'], 'before the move the application speaks plain HTTP');

  // Step 1: every node into transitional, one at a time.
  for (const id of ids) {
    await c.restartGraceful(id, tlsArgs(certs, id, 'transitional'));
    await waitForMode(id, 'transitional');
    await movingLoad.progressed(50);
    await plainLoad.progressed(50);
  }
  // Every node accepts TLS: the application has moved to it from the view alone.
  const deadline = Date.now() + 15_000;
  while (c.addresses.some((a) => transportOf(moving).schemeFor(a) !== 'https') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
  t.same(c.addresses.map((a) => transportOf(moving).schemeFor(a)), ['https', 'https', 'https'], 'the application speaks TLS to every transitional node');
  for (const id of ids) {
    const m = await c.metrics(id);
    t.ok(metricSum(m, 'ringkv_connections_accepted_total', { transport: 'tls' }) > 0, `${id} takes TLS connections (from its peers and the application)`);
  }

  // The old client's operator moves it to TLS before any node requires it: it stops, and a
  // client that speaks only TLS starts — possible now that every node accepts TLS.
  await plainLoad.stop();
  clients.splice(clients.indexOf(plain), 1);
  const tlsOnly = await connect({ seeds: c.addresses, valueEncoding: 'utf8', timeoutMs: 3000, tls: { ca: certs.ca, ...app } });
  t.teardown(() => tlsOnly.close());
  clients.push(tlsOnly);
  const tlsLoad = writeLoad(tlsOnly, 'tls', 1);
  await tlsLoad.progressed(50);

  // Step 2: every node into required, one at a time.
  for (const id of ids) {
    await c.restartGraceful(id, tlsArgs(certs, id, 'required'));
    await waitForMode(id, 'required');
    await movingLoad.progressed(50);
    await tlsLoad.progressed(50);
  }
  await movingLoad.stop();
  await tlsLoad.stop();

  t.same(plainLoad.failures.slice(0, 5), [], `the plain client: no failed write (${plainLoad.acked.size} acknowledged)`);
  t.same(movingLoad.failures.slice(0, 5), [], `the moving application: no failed write (${movingLoad.acked.size} acknowledged)`);
  t.same(tlsLoad.failures.slice(0, 5), [], `the TLS-only client: no failed write (${tlsLoad.acked.size} acknowledged)`);

  // Every acknowledged write, read back at `all` over TLS.
  const reader = await connect({ seeds: c.addresses, valueEncoding: 'utf8', timeoutMs: 10_000, tls: { ca: certs.ca, ...app } });
  t.teardown(() => reader.close());
  const all = [...plainLoad.acked, ...movingLoad.acked, ...tlsLoad.acked];
  const wrong: string[] = [];
  for (let i = 0; i < all.length; i += 500) {
    const chunk = all.slice(i, i + 500);
    const got = await Promise.all(chunk.map(([k]) => reader.get(k, { consistency: 'all' })));
    chunk.forEach(([k, v], j) => {
      if (got[j]?.value !== v) wrong.push(`${k}: wrote ${v}, read ${got[j]?.value}`);
    });
  }
  t.same(wrong.slice(0, 10), [], `all ${all.length} acknowledged writes read back at all`);

  // The move is done: the nodes refuse plain HTTP.
  const res = await fetch(`http://${c.addresses[0]}/health`);
  t.equal(res.status, 426, 'plain HTTP is refused once every node requires TLS');
});
