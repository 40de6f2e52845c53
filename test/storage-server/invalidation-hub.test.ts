// The invalidation hub over real sockets: an HTTP server on 127.0.0.1 hands subscriptions to
// the hub, and the SDK's HttpTransport.stream() reads the frames. Hello first, invalidations
// of tracked keys only (once: a key is untracked when sent), the tracking bounds (the oldest
// key is dropped and sent), refusal past maxSubscribers, heartbeats, and closeAll().

import http from 'node:http';
import type { AddressInfo } from 'node:net';
import t from 'tap';
import type { Test } from 'tap';
import { InvalidationHub } from '../../storage-server/invalidation-hub.js';
import type { InvalidationHubOptions } from '../../storage-server/invalidation-hub.js';
import { HttpTransport } from '../../sdk/transport.js';
import { decodeMessage, PROTOCOL_VERSION, Routes } from '../../sdk/wire/protocol.js';
import type { InvalidationMessage, SubscribeRequest } from '../../sdk/wire/invalidation-stream.js';
import { sendError } from '../../storage-server/http/respond.js';

async function hubServer(t: Test, o: Partial<InvalidationHubOptions> = {}): Promise<{ hub: InvalidationHub; address: string }> {
  const hub = new InvalidationHub('n1', o);
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      try {
        hub.subscribe(req, res, decodeMessage<SubscribeRequest>(Buffer.concat(chunks)));
      } catch (err) {
        sendError(res, err, 'msgpack');
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(async () => {
    hub.closeAll();
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  });
  return { hub, address: `127.0.0.1:${(server.address() as AddressInfo).port}` };
}

/** Opens a stream; messages collect in `got`. */
function open(t: Test, address: string, heartbeatMs = 60_000) {
  const tr = new HttpTransport();
  const ctl = new AbortController();
  const got: InvalidationMessage[] = [];
  const done = tr.stream!(address, Routes.invalidations, { v: PROTOCOL_VERSION, from: 'test', heartbeatMs }, { signal: ctl.signal, idleTimeoutMs: 120_000, onMessage: (m) => got.push(m as InvalidationMessage) });
  t.teardown(async () => {
    ctl.abort();
    await done.catch(() => undefined);
    await tr.close();
  });
  return { got, done, ctl };
}

async function until(what: string, cond: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

const k = (s: string) => Buffer.from(s);
const invs = (got: InvalidationMessage[]) => got.filter((m) => m.t === 'inv').flatMap((m) => (m as { keys: Buffer[] }).keys.map((x) => x.toString()));

t.test('hello, then invalidations of the keys tracked for the stream, once each', async (t) => {
  const { hub, address } = await hubServer(t);
  const s = open(t, address);
  await until('hello', () => s.got.length > 0);
  const hello = s.got[0]!;
  t.equal(hello.t, 'hello');
  const sid = (hello as { sid: string }).sid;
  t.ok(sid.length >= 16, 'an unguessable stream id');
  t.notOk(hub.track('nope', k('a')), 'an unknown stream tracks nothing');
  t.ok(hub.track(sid, k('a')));
  t.ok(hub.track(sid, k('b')));
  t.equal(hub.trackedKeys, 2);
  hub.keyChanged(k('a'));
  hub.keyChanged(k('zzz'));
  await until('an invalidation', () => invs(s.got).length > 0);
  t.same(invs(s.got), ['a'], 'a, not the untracked key');
  hub.keyChanged(k('a'));
  hub.keyChanged(k('b'));
  await until('b', () => invs(s.got).includes('b'));
  t.same(invs(s.got), ['a', 'b'], 'a was untracked when sent: not sent again');
  t.equal(hub.trackedKeys, 0);
});

t.test('a key changed many times in one turn goes out once per stream, in one frame', async (t) => {
  const { hub, address } = await hubServer(t);
  const s1 = open(t, address);
  const s2 = open(t, address);
  await until('hellos', () => s1.got.length > 0 && s2.got.length > 0);
  const sid = (x: { got: InvalidationMessage[] }) => (x.got[0] as { sid: string }).sid;
  for (const key of ['x', 'y']) {
    hub.track(sid(s1), k(key));
    hub.track(sid(s2), k(key));
  }
  hub.keyChanged(k('x'));
  hub.keyChanged(k('y'));
  hub.keyChanged(k('x'));
  await until('both', () => invs(s1.got).length === 2 && invs(s2.got).length === 2);
  t.equal(s1.got.filter((m) => m.t === 'inv').length, 1, 'one frame');
  t.same(invs(s1.got), ['x', 'y']);
  t.same(invs(s2.got), ['x', 'y']);
});

t.test('bounds: the oldest tracked key is dropped and sent; streams past the limit are refused', async (t) => {
  const { hub, address } = await hubServer(t, { maxTrackedKeysPerSubscriber: 3, maxSubscribers: 1 });
  const s = open(t, address);
  await until('hello', () => s.got.length > 0);
  const sid = (s.got[0] as { sid: string }).sid;
  for (const key of ['k1', 'k2', 'k3', 'k4']) hub.track(sid, k(key));
  await until('the eviction', () => invs(s.got).length > 0);
  t.same(invs(s.got), ['k1'], 'k1 was dropped from tracking and sent: the client must not keep it');
  t.equal(hub.trackedKeys, 3);
  t.equal(hub.counters.evictions, 1);

  const second = open(t, address);
  await t.rejects(second.done, { code: 'OVERLOADED' }, 'a second stream is refused');
});

t.test('the global bound takes from the stream tracking most', async (t) => {
  const { hub, address } = await hubServer(t, { maxTrackedKeys: 4 });
  const a = open(t, address);
  const b = open(t, address);
  await until('hellos', () => a.got.length > 0 && b.got.length > 0);
  const sid = (x: { got: InvalidationMessage[] }) => (x.got[0] as { sid: string }).sid;
  for (const key of ['a1', 'a2', 'a3']) hub.track(sid(a), k(key));
  hub.track(sid(b), k('b1'));
  hub.track(sid(b), k('b2'));
  await until('the eviction', () => invs(a.got).length > 0);
  t.same(invs(a.got), ['a1']);
  t.same(invs(b.got), []);
  t.equal(hub.trackedKeys, 4);
});

t.test('heartbeats; closeAll ends every stream', async (t) => {
  const { hub, address } = await hubServer(t);
  const s = open(t, address, 100);
  await until('heartbeats', () => s.got.filter((m) => m.t === 'hb').length >= 2, 5000);
  t.equal((s.got[0] as { heartbeatMs: number }).heartbeatMs, 100);
  t.equal(hub.subscribers, 1);
  hub.closeAll();
  await s.done;
  t.pass('the stream ended');
  t.equal(hub.subscribers, 0);
});

t.test('a client that goes away is dropped with its keys', async (t) => {
  const { hub, address } = await hubServer(t);
  const s = open(t, address);
  await until('hello', () => s.got.length > 0);
  hub.track((s.got[0] as { sid: string }).sid, k('gone'));
  s.ctl.abort();
  await s.done;
  await until('the drop', () => hub.subscribers === 0);
  t.equal(hub.trackedKeys, 0);
});
