// The cross-DC replication queue on its own (real disk, a manual clock): oldest first, one
// entry per key (a newer write merges in and keeps its place), an acknowledgement removes
// the entry — or moves it to the tail when a newer write merged in meanwhile — the byte
// bound drops (and counts) what does not fit, entries past the age limit expire and count
// as dropped, destinations are independent, and everything survives a close and reopen.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import t from 'tap';
import type { Test } from 'tap';
import { ManualClock } from '../../../sdk/clock.js';
import type { StoredObject } from '../../../sdk/versioning/index.js';
import type { EngineLogger } from '../../../storage-server/engine/index.js';
import { queuedAtMs, ReplQueue } from '../../../storage-server/replication/repl-queue.js';
import type { ReplQueueOptions } from '../../../storage-server/replication/repl-queue.js';

const quiet: EngineLogger = { debug() {}, info() {}, warn() {}, error() {} };
const HOUR = 3600_000;

function tmpDir(t: Test): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ringkv-repl-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function obj(value: string, ts: number, tombstone = false): StoredObject {
  return { mode: 'lww', siblings: [{ value: Buffer.from(value), tombstone, expiresAtMs: 0, contentType: '', flags: 0, ts, writer: 'w' }], context: {} };
}

async function open(t: Test, dir: string, clock: ManualClock, o: Partial<ReplQueueOptions> = {}): Promise<ReplQueue> {
  const q = await ReplQueue.open(dir, { maxBytesPerDc: 1 << 20, maxAgeMs: HOUR, sync: 'batch', clock, log: quiet, ...o });
  t.teardown(() => q.close().catch(() => undefined));
  return q;
}

const keysOf = async (q: ReplQueue, dc: string) => (await q.peek(dc, 100)).map((e) => e.key.toString());

t.test('oldest first, one entry per key, acknowledgements', async (t) => {
  const clock = new ManualClock();
  const q = await open(t, tmpDir(t), clock);
  t.equal(await q.enqueue('west', Buffer.from('k1'), obj('a', 1)), 'queued');
  clock.advance(1);
  t.equal(await q.enqueue('west', Buffer.from('k2'), obj('b', 2)), 'queued');
  clock.advance(1);
  t.equal(await q.enqueue('west', Buffer.from('k3'), obj('c', 3)), 'queued');
  t.same(await keysOf(q, 'west'), ['k1', 'k2', 'k3']);
  t.equal(q.pendingCount('west'), 3);
  // A newer write of k1 merges into its entry, which keeps its place.
  t.equal(await q.enqueue('west', Buffer.from('k1'), obj('a2', 10)), 'merged');
  const first = await q.peek('west', 10);
  t.same(first.map((e) => e.key.toString()), ['k1', 'k2', 'k3']);
  t.equal(first[0]!.obj.siblings[0]!.value.toString(), 'a2', 'the entry holds the merged (newer) version');
  t.equal(await q.enqueue('west', Buffer.from('k1'), obj('old', 5)), 'merged', 'an older write changes nothing');
  t.equal((await q.peek('west', 1))[0]!.obj.siblings[0]!.value.toString(), 'a2');
  t.equal(q.pendingCount('west'), 3);
  t.equal(queuedAtMs(first[0]!.seq), 1_700_000_000_000, 'a sequence number says when it was queued');
  // Acknowledged as shipped: k2 leaves.
  await q.ack(first[1]!);
  t.same(await keysOf(q, 'west'), ['k1', 'k3']);
  // k1 was shipped, but a newer write merged in meanwhile: it moves to the tail, queued now.
  clock.advance(100);
  await q.enqueue('west', Buffer.from('k1'), obj('a3', 20));
  await q.ack(first[0]!);
  const after = await q.peek('west', 10);
  t.same(after.map((e) => e.key.toString()), ['k3', 'k1'], 'the newer write is still to ship, at the tail');
  t.equal(after[1]!.obj.siblings[0]!.value.toString(), 'a3');
  t.equal(queuedAtMs(after[1]!.seq), clock.nowMs(), 'queued again now');
  await q.ack(after[0]!);
  await q.ack(after[1]!);
  t.equal(q.pendingCount('west'), 0);
  t.equal(q.pendingBytes('west'), 0);
  t.same(await keysOf(q, 'west'), []);
  // A stale acknowledgement of an entry already gone changes nothing.
  await q.ack(after[1]!);
  t.equal(q.counters.acked, 3);
  // The cursor of peek.
  for (let i = 0; i < 5; i++) await q.enqueue('west', Buffer.from(`c${i}`), obj('x', 30 + i));
  const page1 = await q.peek('west', 2);
  const page2 = await q.peek('west', 2, page1[1]!.seq);
  t.same([...page1, ...page2].map((e) => e.key.toString()), ['c0', 'c1', 'c2', 'c3']);
});

t.test('destinations are independent', async (t) => {
  const clock = new ManualClock();
  const q = await open(t, tmpDir(t), clock);
  await q.enqueue('east', Buffer.from('k'), obj('e', 1));
  await q.enqueue('west', Buffer.from('k'), obj('w', 1));
  await q.enqueue('west', Buffer.from('j'), obj('w', 1));
  t.equal(q.pendingCount('east'), 1);
  t.equal(q.pendingCount('west'), 2);
  await q.ack((await q.peek('east', 1))[0]!);
  t.equal(q.pendingCount('east'), 0);
  t.equal(q.pendingCount('west'), 2);
  await t.rejects(q.enqueue('bad dc', Buffer.from('k'), obj('x', 1)), { code: 'INVALID_ARGUMENT' });
});

t.test('the byte bound drops and counts what does not fit; the age limit expires and counts', async (t) => {
  const clock = new ManualClock();
  const q = await open(t, tmpDir(t), clock, { maxBytesPerDc: 2000, maxAgeMs: 60_000 });
  const value = 'v'.repeat(300);
  const outcomes: string[] = [];
  for (let i = 0; i < 10; i++) outcomes.push(await q.enqueue('west', Buffer.from(`k${i}`), obj(value, i + 1)));
  const queued = outcomes.filter((o) => o === 'queued').length;
  t.ok(queued > 0 && queued < 10, `${queued} of 10 fit`);
  t.equal(q.dropped('west'), 10 - queued, 'every write that did not fit is counted');
  t.ok(q.pendingBytes('west') <= 2000, 'within the bound');
  // A merge into a queued key at no more bytes still fits.
  t.equal(await q.enqueue('west', Buffer.from('k0'), obj(value, 100)), 'merged');
  t.equal(q.dropped('west'), 10 - queued);
  // Past the age limit: the entries expire unshipped and count as dropped.
  clock.advance(60_001);
  t.equal(q.pendingCount('west'), 0);
  t.equal(q.pendingBytes('west'), 0);
  t.equal(q.dropped('west'), 10, 'expired entries count as dropped too');
  t.same(await q.peek('west', 100), []);
  // The key's slot is free again: a new write is queued afresh.
  t.equal(await q.enqueue('west', Buffer.from('k0'), obj(value, 200)), 'queued');
  q.sweep();
  t.equal(q.pendingCount('west'), 1);
});

t.test('the queue survives a close and reopen', async (t) => {
  const clock = new ManualClock();
  const dir = tmpDir(t);
  const q = await ReplQueue.open(dir, { maxBytesPerDc: 1 << 20, maxAgeMs: HOUR, sync: 'always', clock, log: quiet });
  for (let i = 0; i < 20; i++) {
    clock.advance(1);
    await q.enqueue('west', Buffer.from(`k${i}`), obj(`v${i}`, i + 1, i % 5 === 0));
  }
  await q.ack((await q.peek('west', 1))[0]!);
  const before = await q.peek('west', 100);
  await q.close();
  const r = await open(t, dir, clock);
  const after = await r.peek('west', 100);
  t.same(after.map((e) => [e.key.toString(), e.seq]), before.map((e) => [e.key.toString(), e.seq]), 'the same entries in the same order');
  t.ok(after.some((e) => e.obj.siblings[0]!.tombstone), 'deletes are queued like writes');
  t.equal(r.pendingCount('west'), 19);
  // New entries go after the reopened ones, and merges find their entries.
  clock.set(clock.nowMs() - 10_000); // even with the clock stepped back
  await r.enqueue('west', Buffer.from('new'), obj('n', 99));
  t.equal((await keysOf(r, 'west')).at(-1), 'new');
  t.equal(await r.enqueue('west', Buffer.from('k3'), obj('k3-newer', 1000)), 'merged');
  t.equal(r.pendingCount('west'), 20);
});
