// Listing (kv.keys(), kv.entries()) needs protocol 6, the version that numbers its scan
// route. A node of an older release answers the route 404 ROUTE_NOT_FOUND (a release before
// the route) or 400 PROTOCOL_MISMATCH (protocol 5, which had the route but speaks 1..5), and
// the listing fails at once with a ProtocolMismatchError naming the node, its address and
// version — not with a generic quorum failure. On a real cluster of three nodes holding one
// replica each, node n2's scan pages are answered by a listener that answers as those
// releases' servers did (their router's 404, their version check's message, which carried
// no details), encoded by the server's own error writer. A real node answers a scan of a
// version above its own PROTOCOL_MISMATCH with the versions it speaks as details. With
// RINGKV_OLD_SERVER_CLIS (comma-separated paths of older builds' dist/storage-server/cli/
// ringkv.js), the listing also meets real nodes of those releases.

import { spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import t from 'tap';
import type { Test } from 'tap';
import { connect } from '../../sdk/client.js';
import { ProtocolMismatchError, RingkvError } from '../../sdk/errors.js';
import { olderNodeError } from '../../sdk/protocol-support.js';
import { HttpTransport } from '../../sdk/transport.js';
import type { Transport } from '../../sdk/transport.js';
import { PROTOCOL_OF_ROUTE, PROTOCOL_VERSION, Routes } from '../../sdk/wire/protocol.js';
import { sendError } from '../../storage-server/http/respond.js';
import { freePort, TestCluster } from '../helpers/cluster.js';

t.setTimeout(180_000);

/** What a node of an older release answers to POST /internal/v1/scan from this client. */
const OLD_ANSWERS: Record<string, () => RingkvError> = {
  // Releases before the route (protocol 4 and the first of 5): the router's answer.
  'a release before the scan route (404)': () => new RingkvError('ROUTE_NOT_FOUND', `no route POST ${Routes.scan}`),
  // Protocol 5 with the route: its version check, whose error carried no details.
  'a release of protocol 5 (PROTOCOL_MISMATCH)': () => new RingkvError('PROTOCOL_MISMATCH', `protocol version ${PROTOCOL_VERSION} is not supported (this side speaks 1..5)`),
};

/** A listener on 127.0.0.1 that answers every request with `answer()`, written as a node writes errors; counts the requests. */
async function oldScanRoute(t: Test, answer: () => RingkvError): Promise<{ address: string; requests: () => number }> {
  let requests = 0;
  const server = http.createServer((req, res) => {
    requests++;
    req.resume();
    req.on('end', () => sendError(res, answer(), 'msgpack'));
  });
  const port = await freePort();
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return { address: `127.0.0.1:${port}`, requests: () => requests };
}

/** Sends the scan pages meant for `from` to `to`; everything else as it was. */
class ScanRedirect implements Transport {
  constructor(
    private readonly inner: Transport,
    private readonly from: string,
    private readonly to: string,
  ) {}
  call<T>(address: string, route: string, body: unknown, opts: { timeoutMs: number; method?: 'GET' | 'POST' }): Promise<T> {
    return this.inner.call<T>(route === Routes.scan && address === this.from ? this.to : address, route, body, opts);
  }
  close(): Promise<void> {
    return this.inner.close();
  }
}

/** The error a listing ended with (undefined: it listed everything) and the keys it handed out first. */
async function listUntilFailure(kv: { keys(): AsyncIterable<string> }): Promise<{ err: unknown; keys: string[] }> {
  const keys: string[] = [];
  try {
    for await (const k of kv.keys()) keys.push(k);
    return { err: undefined, keys };
  } catch (err) {
    return { err, keys };
  }
}

t.test('a node of an older release fails the listing with a typed error naming it and its version', async (t) => {
  // One replica per key: each node holds its own third of the ranges, so the listing must read n2.
  const cluster = await TestCluster.start(t, { nodes: 3, args: ['--replication', '1'] });
  await cluster.waitForMembers(3, 'up', 20_000);
  const writer = await cluster.client<string>({ valueEncoding: 'utf8' });
  await writer.putMany(Array.from({ length: 60 }, (_, i) => ({ key: `lp:${i}`, value: `v${i}` })));
  const n2 = cluster.node('n2').address;

  for (const [release, answer] of Object.entries(OLD_ANSWERS)) {
    await t.test(release, async (t) => {
      const old = await oldScanRoute(t, answer);
      const kv = await cluster.client<string>({ valueEncoding: 'utf8', transport: new ScanRedirect(new HttpTransport(), n2, old.address) });
      const { err, keys } = await listUntilFailure(kv);
      t.ok(err instanceof ProtocolMismatchError, `the listing fails with a ProtocolMismatchError (got ${(err as Error)?.constructor?.name}: ${(err as Error)?.message})`);
      const e = err as ProtocolMismatchError;
      t.equal(e.code, 'PROTOCOL_MISMATCH', 'code PROTOCOL_MISMATCH');
      t.match(
        e.details,
        { node: 'n2', address: n2, route: Routes.scan, needsProtocol: PROTOCOL_OF_ROUTE.scan, nodeProtocol: 5, nodeAnswer: answer().code },
        `details name the node, its address, its version (5) and the one needed (6): ${JSON.stringify(e.details)}`,
      );
      t.match(e.message, new RegExp(`node n2 \\(${n2.replace(/\./g, '\\.')}\\).*protocol`), `the message names the node: ${e.message}`);
      t.match(e.message, /upgrade every server before its clients/, 'and says what to do');
      t.equal(old.requests(), 1, 'at once: the older node was asked once, not again and again');
      t.ok(keys.length < 60, `the listing stopped there (${keys.length} keys handed out before)`);
    });
  }

  await t.test('a node of this release lists every key through the same client code', async (t) => {
    const kv = await cluster.client<string>({ valueEncoding: 'utf8', transport: new ScanRedirect(new HttpTransport(), n2, n2) });
    const { err, keys } = await listUntilFailure(kv);
    t.equal(err, undefined, 'no error');
    t.equal(keys.filter((k) => k.startsWith('lp:')).length, 60, 'every key listed');
  });

  await t.test('a node answers a scan of a version above its own with the versions it speaks', async (t) => {
    const transport = new HttpTransport();
    t.teardown(() => transport.close());
    const err = await transport.call(n2, Routes.scan, { v: PROTOCOL_VERSION + 1, spans: [[0, 1000]], limit: 10 }, { timeoutMs: 5000 }).then(
      () => undefined,
      (e: unknown) => e as RingkvError,
    );
    t.equal(err?.code, 'PROTOCOL_MISMATCH', 'PROTOCOL_MISMATCH');
    t.same(err?.details, { min: 1, max: PROTOCOL_VERSION }, `details: the versions it speaks (1..${PROTOCOL_VERSION})`);
    const named = olderNodeError(err, { node: 'n2', address: n2, route: Routes.scan, what: 'listing', sentProtocol: PROTOCOL_VERSION + 1, routeProtocol: PROTOCOL_OF_ROUTE.scan });
    t.match(named?.details, { nodeProtocol: PROTOCOL_VERSION, needsProtocol: PROTOCOL_VERSION + 1 }, 'which a client of a later protocol names in its error');
  });
});

const oldClis = (process.env.RINGKV_OLD_SERVER_CLIS ?? '').split(',').filter((p) => p.length > 0);
t.test('real nodes of older releases', { skip: oldClis.length === 0 ? 'set RINGKV_OLD_SERVER_CLIS to dist/storage-server/cli/ringkv.js of older builds to run it' : false }, async (t) => {
  for (const cli of oldClis) {
    await t.test(cli, async (t) => {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ringkv-old-'));
      const port = await freePort();
      const child = spawn(process.execPath, [cli, 'server', '--id', 'old1', '--host', '127.0.0.1', '--port', String(port), '--data', dir, '--replication', '1', '--log-level', 'warn'], {
        stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
      });
      t.teardown(() => {
        child.kill('SIGKILL');
        fs.rmSync(dir, { recursive: true, force: true });
      });
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`${cli} did not start in 60 s`)), 60_000);
        child.on('message', (m: { type?: string }) => m?.type === 'ready' && (clearTimeout(timer), resolve()));
        child.once('exit', (code) => (clearTimeout(timer), reject(new Error(`${cli} exited (${code})`))));
      });
      const kv = await connect({ seeds: [`127.0.0.1:${port}`], timeoutMs: 3000 });
      t.teardown(() => kv.close());
      const { err } = await listUntilFailure({ keys: () => kv.keys() as AsyncIterable<string> });
      t.ok(err instanceof ProtocolMismatchError, `a ProtocolMismatchError: ${(err as Error)?.message}`);
      t.match((err as ProtocolMismatchError).details, { node: 'old1', nodeProtocol: 5, needsProtocol: 6 }, JSON.stringify((err as ProtocolMismatchError).details));
    });
  }
});
