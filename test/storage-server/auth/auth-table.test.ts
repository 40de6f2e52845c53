// The user table of one node (storage-server/auth/auth-table.ts, auth-records.ts) on a real
// temp directory: versions of records delivered in any order to several tables converge to
// the same table and digest (seeded; rerun with RINGKV_SEED=<seed>); a removal beats any
// update of its generation and a user made again beats the removal; the table survives a
// reopen (mode 0600) and is dropped on request; a removed or rotated token is refused at
// once despite the cache; removals are forgotten after the retention and not taken back.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import t from 'tap';
import type { Test } from 'tap';
import { ManualClock } from '../../../sdk/clock.js';
import type { AuthRecord, UserRecord } from '../../../storage-server/auth/auth-records.js';
import { compareVersions, recordKey } from '../../../storage-server/auth/auth-records.js';
import { AuthTable } from '../../../storage-server/auth/auth-table.js';
import { hashToken, newToken } from '../../../storage-server/auth/tokens.js';
import { SeededRandom, testSeed } from '../../sdk/seeded-random.js';

const quiet = { info() {}, warn() {}, error() {}, debug() {} };
const DAY = 24 * 3600 * 1000;

function open(t: Test, clock = new ManualClock(), discard = false, dir?: string): { table: AuthTable; dir: string } {
  const d = dir ?? fs.mkdtempSync(path.join(os.tmpdir(), 'ringkv-auth-'));
  if (!dir) t.teardown(() => fs.rmSync(d, { recursive: true, force: true }));
  const table = AuthTable.open({ file: path.join(d, 'AUTH'), tmp: path.join(d, 'AUTH.tmp'), clock, log: quiet, cacheTtlMs: 5000, tombstoneRetentionMs: 10 * DAY }, discard);
  return { table, dir: d };
}

const user = (name: string, genTs: number, ts: number, o: Partial<UserRecord> = {}): UserRecord => ({
  kind: 'user',
  name,
  genTs,
  genBy: 'n1',
  ts,
  by: 'n1',
  deleted: false,
  tokenHash: hashToken(`token-of-${name}-${ts}`),
  roles: ['r'],
  ...o,
});

t.test('records delivered in any order converge to one table', async (t) => {
  const seed = testSeed();
  t.comment(`seed ${seed} (RINGKV_SEED=${seed} to rerun)`);
  const rnd = new SeededRandom(seed);
  // Versions of six records by three coordinators: adds, updates, removals, re-adds,
  // stamped now (removals older than the retention are another test's matter).
  const clock = new ManualClock();
  const base = clock.nowMs() * 1000;
  const versions: AuthRecord[] = [];
  for (let i = 0; i < 200; i++) {
    const name = `u${rnd.int(6)}`;
    const by = `n${1 + rnd.int(3)}`;
    const genTs = base + rnd.int(5) * 100 + 1;
    const ts = genTs + rnd.int(50);
    const deleted = rnd.next() < 0.25;
    versions.push(deleted ? { kind: 'user', name, genTs, genBy: by, ts, by, deleted: true } : user(name, genTs, ts, { genBy: by, by }));
  }
  const tables = [open(t, clock).table, open(t, clock).table, open(t, clock).table];
  for (const table of tables) {
    const order = [...versions];
    for (let i = order.length - 1; i > 0; i--) {
      const j = rnd.int(i + 1);
      [order[i], order[j]] = [order[j]!, order[i]!];
    }
    // In batches of random size, as pushes and pulls deliver them.
    while (order.length > 0) await table.merge(order.splice(0, 1 + rnd.int(10)));
  }
  t.equal(tables[1]!.digest, tables[0]!.digest, 'same digest on every table');
  t.equal(tables[2]!.digest, tables[0]!.digest);
  t.same(tables[1]!.list().sort((a, b) => (recordKey(a) < recordKey(b) ? -1 : 1)), tables[0]!.list().sort((a, b) => (recordKey(a) < recordKey(b) ? -1 : 1)), 'same records');
  // And each record holds the greatest version delivered.
  for (const r of tables[0]!.list()) {
    const best = versions.filter((v) => recordKey(v) === recordKey(r)).reduce((a, b) => (compareVersions(a, b) >= 0 ? a : b));
    t.equal(compareVersions(r, best), 0, `${recordKey(r)} holds the greatest version`);
  }
});

t.test('a removal beats every update of its generation; a user made again beats the removal', async (t) => {
  const { table } = open(t);
  const token = newToken();
  await table.merge([user('alice', 100, 100, { tokenHash: hashToken(token) })]);
  t.equal(table.authenticate(token)?.user, 'alice');
  const removal: UserRecord = { kind: 'user', name: 'alice', genTs: 100, genBy: 'n1', ts: 150, by: 'n2', deleted: true };
  await table.merge([removal]);
  t.equal(table.authenticate(token), undefined, 'the token is refused at once (the cache is emptied)');
  // A rotation made concurrently elsewhere, stamped later than the removal, arrives after it.
  const lateRotation = user('alice', 100, 900, { by: 'n3', tokenHash: hashToken(token) });
  t.same(await table.merge([lateRotation]), [], 'the rotation does not revive the removed user');
  t.equal(table.authenticate(token), undefined);
  const again = newToken();
  await table.merge([user('alice', 1000, 1000, { tokenHash: hashToken(again) })]);
  t.equal(table.authenticate(again)?.user, 'alice', 'a user made again (a new generation) is live');
  t.equal(table.authenticate(token), undefined, 'with its new token only');
});

t.test('a rotated token is refused at once; roles give grants by name', async (t) => {
  const { table } = open(t);
  const old = newToken();
  await table.merge([
    { kind: 'role', name: 'r', genTs: 10, genBy: 'n1', ts: 10, by: 'n1', deleted: false, grants: [{ prefix: 'app:', perms: ['read'] }] },
    user('bob', 20, 20, { tokenHash: hashToken(old) }),
  ]);
  const p = table.authenticate(old)!;
  t.ok(p.can('read', Buffer.from('app:1')));
  t.notOk(p.can('write', Buffer.from('app:1')));
  t.equal(table.authenticate(old), p, 'served from the cache');
  const next = newToken();
  await table.merge([user('bob', 20, 30, { tokenHash: hashToken(next) })]);
  t.equal(table.authenticate(old), undefined, 'the old token is refused at once');
  t.equal(table.authenticate(next)?.user, 'bob');
  await table.merge([{ kind: 'role', name: 'r', genTs: 10, genBy: 'n1', ts: 40, by: 'n1', deleted: true }]);
  t.notOk(table.authenticate(next)!.can('read', Buffer.from('app:1')), 'a removed role gives nothing');
});

t.test('the table survives a reopen, is private, and can be dropped', async (t) => {
  const clock = new ManualClock();
  const { table, dir } = open(t, clock);
  const token = newToken();
  await table.merge([user('carol', 5, 5, { tokenHash: hashToken(token) })]);
  const file = path.join(dir, 'AUTH');
  t.equal(fs.statSync(file).mode & 0o777, 0o600, 'AUTH is readable by its owner only');
  t.notMatch(fs.readFileSync(file, 'utf8'), token, 'the token itself is not stored');
  const again = open(t, clock, false, dir).table;
  t.equal(again.digest, table.digest, 'the same table after a reopen');
  t.equal(again.authenticate(token)?.user, 'carol');
  t.ok(again.nextStamp() > 5, 'new stamps go above the stored ones');
  const dropped = open(t, clock, true, dir).table;
  t.equal(dropped.size, 0, 'discarded on request (a node back after a long outage)');
  fs.writeFileSync(file, '{"format":1,"records":[{"kind":"user"}]}');
  t.throws(() => open(t, clock, false, dir), { code: 'CORRUPTION' }, 'a damaged file stops the start');
});

t.test('removals are forgotten after the retention, and not taken back from a peer', async (t) => {
  const clock = new ManualClock(1_700_000_000_000);
  const { table } = open(t, clock);
  const tsNow = () => clock.nowMs() * 1000;
  const removal: UserRecord = { kind: 'user', name: 'dave', genTs: tsNow() - 10, genBy: 'n1', ts: tsNow(), by: 'n1', deleted: true };
  await table.merge([removal]);
  t.equal(await table.collectGarbage(), 0, 'kept while young');
  clock.advance(10 * DAY + 1000);
  t.equal(await table.collectGarbage(), 1, 'forgotten after the retention');
  t.same(await table.merge([removal]), [], 'an old removal from a peer that kept it is not taken back');
  t.equal(table.size, 0);
});
