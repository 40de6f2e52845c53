// A server bound to one specific address talks to its peers from that address (so a peer
// or a firewall sees the address it advertises); bound to 0.0.0.0 or a host name, it lets
// the system choose. The real server process gossips to a seed that records who called.

import http from 'node:http';
import type { AddressInfo } from 'node:net';
import t from 'tap';
import { outgoingTransportOptions } from '../../storage-server/peer-transport.js';
import { TestCluster } from '../helpers/cluster.js';

t.setTimeout(60_000);

t.test('outgoingTransportOptions: a source address only for a specific IP', async (t) => {
  t.same(outgoingTransportOptions('127.0.0.11'), { localAddress: '127.0.0.11' });
  t.same(outgoingTransportOptions('10.1.2.3'), { localAddress: '10.1.2.3' });
  t.same(outgoingTransportOptions('::1'), { localAddress: '::1' });
  t.same(outgoingTransportOptions('0.0.0.0'), {});
  t.same(outgoingTransportOptions('::'), {});
  t.same(outgoingTransportOptions('localhost'), {});
});

t.test('a server bound to 127.0.0.23 gossips to its seed from 127.0.0.23', async (t) => {
  const seen = new Set<string>();
  const seed = http.createServer((req, res) => {
    seen.add(req.socket.remoteAddress ?? '');
    req.resume();
    res.writeHead(503).end();
  });
  await new Promise<void>((r) => seed.listen(0, '127.0.0.1', r));
  t.teardown(() => new Promise<void>((r) => seed.close(() => r())));
  const seedAddress = `127.0.0.1:${(seed.address() as AddressInfo).port}`;
  await TestCluster.start(t, { nodes: 1, hosts: ['127.0.0.23'], args: ['--seeds', seedAddress] });
  const deadline = Date.now() + 15_000;
  while (seen.size === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
  t.same([...seen], ['127.0.0.23'], 'every request the seed got came from the bind address');
});
