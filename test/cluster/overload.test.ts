// Hostile and unlucky clients against real server processes: slow senders of headers and
// of bodies are cut within the configured timeouts, and a flood of connections beyond the
// cap is refused with 503 OVERLOADED while a client connected before keeps being served.

import net from 'node:net';
import t from 'tap';
import { TestCluster } from '../helpers/cluster.js';

t.setTimeout(180_000);

const HEADERS_TIMEOUT_MS = 1000;
const RECEIVE_TIMEOUT_MS = 2000;
const MAX_CONNECTIONS = 64;

interface Probe {
  socket: net.Socket;
  received: string;
  closedAt: number | undefined;
}

function open(address: string): Promise<Probe> {
  const [host, port] = address.split(':');
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: host!, port: Number(port) }, () => resolve(p));
    const p: Probe = { socket, received: '', closedAt: undefined };
    socket.on('data', (d) => (p.received += d.toString('latin1')));
    socket.on('close', () => (p.closedAt ??= Date.now()));
    socket.on('error', () => undefined);
    socket.once('error', reject);
  });
}

async function until(fn: () => boolean, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (fn()) return true;
    await new Promise((r) => setTimeout(r, 50));
  }
  return fn();
}

t.test('overload', async (t) => {
  const c = await TestCluster.start(t, {
    nodes: 3,
    env: {
      RINGKV_HEADERS_TIMEOUT_MS: String(HEADERS_TIMEOUT_MS),
      RINGKV_REQUEST_RECEIVE_TIMEOUT_MS: String(RECEIVE_TIMEOUT_MS),
      RINGKV_MAX_CONNECTIONS: String(MAX_CONNECTIONS),
    },
  });
  const target = c.nodes[0]!.address;

  await t.test('slow senders of headers are cut within the headers timeout', async (t) => {
    const started = Date.now();
    const probes = await Promise.all(Array.from({ length: 20 }, () => open(target)));
    for (const p of probes) p.socket.write('GET /api/v1/kv/slow HTTP/1.1\r\nHost: x\r\n');
    const trickle = setInterval(() => {
      for (const p of probes) if (!p.closedAt) p.socket.write('X');
    }, 300);
    const allClosed = await until(() => probes.every((p) => p.closedAt !== undefined), HEADERS_TIMEOUT_MS * 5);
    clearInterval(trickle);
    t.ok(allClosed, `all 20 closed (${probes.filter((p) => p.closedAt).length})`);
    const worst = Math.max(...probes.map((p) => (p.closedAt ?? Date.now()) - started));
    t.ok(worst < HEADERS_TIMEOUT_MS * 4, `the last one within ${worst} ms`);
    t.ok(probes.some((p) => p.received.startsWith('HTTP/1.1 408')), 'answered 408 Request Timeout');
  });

  await t.test('slow senders of bodies are cut within the request timeout', async (t) => {
    const started = Date.now();
    const probes = await Promise.all(Array.from({ length: 20 }, () => open(target)));
    for (const p of probes) p.socket.write('PUT /api/v1/kv/slow-body HTTP/1.1\r\nHost: x\r\ncontent-type: application/octet-stream\r\ncontent-length: 1000\r\n\r\n');
    const trickle = setInterval(() => {
      for (const p of probes) if (!p.closedAt) p.socket.write('b');
    }, 300);
    const allClosed = await until(() => probes.every((p) => p.closedAt !== undefined), RECEIVE_TIMEOUT_MS * 5);
    clearInterval(trickle);
    t.ok(allClosed, 'all 20 closed');
    const worst = Math.max(...probes.map((p) => (p.closedAt ?? Date.now()) - started));
    t.ok(worst < RECEIVE_TIMEOUT_MS * 3, `the last one within ${worst} ms`);
    t.ok(probes.some((p) => p.received.startsWith('HTTP/1.1 408')), 'answered 408');
    const kv = await c.client<string>({ valueEncoding: 'utf8' });
    t.equal(await kv.get('slow-body', { consistency: 'all' }), undefined, 'nothing was written');
  });

  await t.test('a connection flood beyond the cap is refused with 503 while a connected client keeps being served', async (t) => {
    const kv = await c.client<string>({ valueEncoding: 'utf8', seeds: [target] });
    // Warm the client's keep-alive connections to every node before the flood.
    await Promise.all(Array.from({ length: 64 }, (_, i) => kv.put(`flood-${i}`, 'v', { consistency: 'all' })));
    const flood: Probe[] = [];
    let stop = false;
    // Keep the pressure up: the headers timeout closes idle flood sockets, so open new ones.
    const flooding = (async () => {
      while (!stop) {
        const batch = await Promise.all(Array.from({ length: 50 }, () => open(target).catch(() => undefined)));
        for (const p of batch) if (p) flood.push(p);
        await new Promise((r) => setTimeout(r, 100));
        if (flood.length > 2000) break;
      }
    })();
    let served = 0;
    let failed = 0;
    const deadline = Date.now() + 4000;
    while (Date.now() < deadline) {
      const i = served + failed;
      try {
        await kv.put(`during-${i}`, `v${i}`, { consistency: 'all' });
        if ((await kv.get(`during-${i}`, { consistency: 'all' }))?.value === `v${i}`) served++;
        else failed++;
      } catch {
        failed++;
      }
    }
    stop = true;
    await flooding;
    const refused = flood.filter((p) => p.received.startsWith('HTTP/1.1 503')).length;
    t.ok(refused > 0, `${refused} of ${flood.length} flood connections were refused with 503`);
    t.match(flood.find((p) => p.received.startsWith('HTTP/1.1 503'))?.received ?? '', /"code":"OVERLOADED"/, 'with the OVERLOADED code');
    t.ok(served > 20 && failed === 0, `the connected client was served throughout (${served} ok, ${failed} failed)`);
    for (const p of flood) p.socket.destroy();
    const metrics = await c.metrics(c.nodes[0]!.id);
    t.match(metrics, /ringkv_connections_limit\{node="n1"\} 64/, 'the cap is reported');
    // After the flood, new connections are served again.
    const after = await c.client<string>({ valueEncoding: 'utf8', seeds: [target] });
    t.equal((await after.get('flood-1'))?.value, 'v');
  });
});
