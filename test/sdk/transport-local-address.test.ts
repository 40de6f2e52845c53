// HttpTransport's localAddress: connections leave from the given source address (a real
// HTTP server on 127.0.0.1 reports the peer address it saw), and from the system's choice
// without it.

import http from 'node:http';
import type { AddressInfo } from 'node:net';
import t from 'tap';
import { HttpTransport } from '../../sdk/transport.js';
import { encodeMessage, MSGPACK_CONTENT_TYPE } from '../../sdk/wire/protocol.js';

async function echoPeerServer(): Promise<{ server: http.Server; address: string }> {
  const server = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      res.writeHead(200, { 'content-type': MSGPACK_CONTENT_TYPE });
      res.end(encodeMessage({ peer: req.socket.remoteAddress }));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { server, address: `127.0.0.1:${(server.address() as AddressInfo).port}` };
}

t.test('connections leave from localAddress when it is given', async (t) => {
  const { server, address } = await echoPeerServer();
  t.teardown(() => new Promise<void>((r) => server.close(() => r())));
  const from = new HttpTransport({ localAddress: '127.0.0.42' });
  const plain = new HttpTransport();
  t.teardown(async () => {
    await from.close();
    await plain.close();
  });
  const a = await from.call<{ peer: string }>(address, '/x', undefined, { timeoutMs: 2000 });
  t.equal(a.peer, '127.0.0.42', 'the server saw the configured source address');
  const b = await plain.call<{ peer: string }>(address, '/x', undefined, { timeoutMs: 2000 });
  t.equal(b.peer, '127.0.0.1', 'without it, the system chooses');
});
