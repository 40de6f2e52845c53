// A corrupt SSTable block is repaired from the replicas, with real processes: a 3-node
// cluster with data; n3 is stopped and three bytes flipped inside one data block of its
// table (found through the index, table-format.md); n3 starts, names the file and offset,
// and quarantines the block instead of turning anti-entropy off. Reads of every key succeed
// at eventual, strong and all (n3 answers SUSPECT_RANGE for the block's keys: the others
// serve them); `ringkv repair` repairs exactly that range, after which n3's own replica
// holds every key again (read with an internal batch Get); `ringkv compact` then drops the
// block and the bad table is gone. Last, with automatic repair on, a new corrupt block
// heals with no operator at all. And a block of counters (data types): increments of its
// keys go on (n3 refuses to coordinate them, another replica does) and none is lost once
// n3 coordinates again after the repair wrote over its copy.

import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import t from 'tap';
import { Ring } from '../../sdk/ring.js';
import type { StoredObject } from '../../sdk/versioning/index.js';
import { liveSiblings } from '../../sdk/versioning/index.js';
import { crdtValue, decodeCrdt } from '../../sdk/crdt/index.js';
import type { BatchResponse } from '../../sdk/wire/protocol.js';
import { OpType, PROTOCOL_VERSION, Routes } from '../../sdk/wire/protocol.js';
import { repairCheck } from '../../storage-server/cli/admin-commands.js';
import { getVarint } from '../../storage-server/engine/coding.js';
import { engineKeyOf } from '../../storage-server/replica-store.js';
import { CLI, metricSum, TestCluster } from '../helpers/cluster.js';

t.setTimeout(300_000);
const exec = promisify(execFile);

const KEYS = 1200;
const keyOf = (i: number) => `ck-${String(i).padStart(5, '0')}`;
const valueOf = (i: number, gen = 0) => `value-${gen}-${i}-`.padEnd(90, 'abcdefghij'[i % 10]!);

interface Block {
  file: string;
  index: number;
  offset: number;
  length: number;
  /** Engine keys: the block holds keys in (prevLast, last]. */
  prevLast: Buffer | undefined;
  last: Buffer;
}

/** The data blocks of an SSTable, from its footer and index (storage-server/engine/table-format.md). */
function blocksOf(file: string): Block[] {
  const buf = fs.readFileSync(file);
  const footer = buf.subarray(buf.length - 52);
  if (footer.subarray(44, 52).toString('latin1') !== 'RKVTABLE') throw new Error(`${file}: no table magic`);
  const indexOffset = Number(footer.readBigUInt64LE(24));
  const index = buf.subarray(indexOffset);
  const n = index.readUInt32LE(0);
  const cursor = { pos: 4 };
  const out: Block[] = [];
  let prev: Buffer | undefined;
  for (let i = 0; i < n; i++) {
    const kl = getVarint(index, cursor);
    const last = Buffer.from(index.subarray(cursor.pos, cursor.pos + kl));
    cursor.pos += kl;
    const offset = getVarint(index, cursor);
    const length = getVarint(index, cursor);
    out.push({ file, index: i, offset, length, prevLast: prev, last });
    prev = last;
  }
  return out;
}

/** Flips three bytes inside a middle data block of the largest table in `engineDir`; returns the block. */
function corruptOneBlock(engineDir: string): Block {
  const tables = fs.readdirSync(engineDir).filter((f) => f.endsWith('.sst'));
  if (tables.length === 0) throw new Error(`no table in ${engineDir}`);
  const file = path.join(engineDir, tables.sort((a, b) => fs.statSync(path.join(engineDir, b)).size - fs.statSync(path.join(engineDir, a)).size)[0]!);
  const blocks = blocksOf(file);
  const b = blocks[Math.floor(blocks.length / 2)]!;
  const fd = fs.openSync(file, 'r+');
  try {
    for (const at of [b.offset + 17, b.offset + Math.floor(b.length / 2), b.offset + b.length - 40]) {
      const one = Buffer.alloc(1);
      fs.readSync(fd, one, 0, 1, at);
      one[0]! ^= 0x5a;
      fs.writeSync(fd, one, 0, 1, at);
    }
  } finally {
    fs.closeSync(fd);
  }
  return b;
}

/** The user keys (of those written, named by `name`) that lie in block `b`. */
function keysIn(b: Block, name: (i: number) => string = keyOf): number[] {
  const out: number[] = [];
  for (let i = 0; i < KEYS; i++) {
    const ek = engineKeyOf(Buffer.from(name(i)), Ring.tokenOf(Buffer.from(name(i))));
    if ((b.prevLast === undefined || Buffer.compare(ek, b.prevLast) > 0) && Buffer.compare(ek, b.last) <= 0) out.push(i);
  }
  return out;
}

/** n's own replica of each key, by an internal batch Get: the value, or the error code. */
async function replicaValues(c: TestCluster, id: string, keys: number[]): Promise<Map<number, string>> {
  const out = new Map<number, string>();
  for (let at = 0; at < keys.length; at += 500) {
    const chunk = keys.slice(at, at + 500);
    const res = await c.call<BatchResponse>(id, Routes.batch, { v: PROTOCOL_VERSION, ops: chunk.map((i) => ({ t: OpType.Get, key: Buffer.from(keyOf(i)) })) }, 20_000);
    chunk.forEach((i, j) => {
      const r = res.results[j]!;
      if (!r.ok) out.set(i, r.code);
      else out.set(i, (r.obj ? liveSiblings(r.obj as StoredObject, Date.now())[0]?.value.toString() : undefined) ?? '(missing)');
    });
  }
  return out;
}

async function waitFor(what: string, fn: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      if (await fn()) return;
    } catch (err) {
      last = err;
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`timed out waiting for ${what}${last ? `: ${(last as Error).message}` : ''}`);
}

interface Status {
  merkleReady: boolean;
  quarantine: { id: string; file: string; offset: number; repaired: boolean }[];
}

/** Restarts n3 and waits until it is merkle-ready and every node sees it up (repair skips nodes it thinks down). */
async function restartN3(c: TestCluster, extraEnv: Record<string, string> = {}): Promise<void> {
  await c.restart('n3', [], extraEnv);
  await waitFor(
    'n3 up everywhere and its Merkle leaves built',
    async () => {
      const st = await c.call<Status>('n3', Routes.status, undefined);
      if (!st.merkleReady) return false;
      for (const id of ['n1', 'n2']) if ((await c.view(id)).members.find((m) => m.id === 'n3')?.state !== 'up') return false;
      return true;
    },
    30_000,
  );
}

t.test('a corrupt block on one replica: reads go around it, one repair round restores it, a compaction drops it', async (t) => {
  // No automatic repair rounds: the reads below meet the corrupt block, and `ringkv repair` repairs it.
  const c = await TestCluster.start(t, { nodes: 3, env: { RINGKV_REPAIR_INTERVAL_MS: '0' } });
  const kv = await c.client<string>({ valueEncoding: 'utf8', readRepair: false, timeoutMs: 20_000 });
  const all = Array.from({ length: KEYS }, (_, i) => i);
  for (let at = 0; at < KEYS; at += 100) await Promise.all(all.slice(at, at + 100).map((i) => kv.put(keyOf(i), valueOf(i), { consistency: 'all' })));

  await c.stop('n3'); // flushes its memtable into a table
  const engineDir = path.join(c.node('n3').dataDir, 'engine');
  const bad = corruptOneBlock(engineDir);
  const affected = keysIn(bad);
  t.ok(affected.length > 0, `the damaged block ${bad.index} of ${path.basename(bad.file)} (offset ${bad.offset}) holds ${affected.length} of the keys`);

  await restartN3(c);
  t.pass('n3 started and built its Merkle leaves despite the corrupt block');
  const log = c.log('n3').join('\n');
  t.match(log, new RegExp(`${path.basename(bad.file)}.*"offset":${bad.offset}|"offset":${bad.offset}.*${path.basename(bad.file)}`), 'its log names the file and the offset');
  let st = await c.call<Status>('n3', Routes.status, undefined);
  t.same(st.quarantine.map((q) => [path.basename(q.file), q.offset, q.repaired]), [[path.basename(bad.file), bad.offset, false]], 'its status lists the quarantined block');
  const health = await fetch(`http://${c.node('n3').address}/health`);
  const hb = (await health.json()) as { status: string; suspectRanges: number };
  t.equal(health.status, 200, '/health: 200 (it serves reads and writes)');
  t.same([hb.status, hb.suspectRanges], ['degraded', 1], '/health: degraded, one suspect range');
  const { stdout: statusOut } = await exec(process.execPath, [CLI, 'status', '--json', '--seeds', c.addresses.join(',')]);
  const n3Status = (JSON.parse(statusOut) as { nodes: { id: string; suspectRanges: number }[] }).nodes.find((n) => n.id === 'n3');
  t.equal(n3Status?.suspectRanges, 1, '`ringkv status` shows the suspect range');

  // n3 answers the block's keys with SUSPECT_RANGE, the others normally.
  let own = await replicaValues(c, 'n3', all);
  t.same([...new Set(affected.map((i) => own.get(i)))], ['SUSPECT_RANGE'], `n3 answers the ${affected.length} keys of the block SUSPECT_RANGE`);
  t.equal(all.filter((i) => !affected.includes(i) && own.get(i) !== valueOf(i)).length, 0, 'and every other key correctly');

  // Reads succeed at every level; the block's keys are read several times at eventual, so n3 is asked.
  const suspectBefore = metricSum(await c.metrics('n3'), 'ringkv_suspect_gets');
  for (const consistency of ['eventual', 'strong', 'all'] as const) {
    let wrong = 0;
    for (let at = 0; at < KEYS; at += 100) {
      const got = await Promise.all(all.slice(at, at + 100).map((i) => kv.get(keyOf(i), { consistency })));
      got.forEach((g, j) => {
        if (g?.value !== valueOf(at + j)) wrong++;
      });
    }
    for (let round = 0; round < 5; round++) {
      const got = await Promise.all(affected.map((i) => kv.get(keyOf(i), { consistency })));
      got.forEach((g, j) => {
        if (g?.value !== valueOf(affected[j]!)) wrong++;
      });
    }
    t.equal(wrong, 0, `every key reads correctly at ${consistency}`);
  }
  t.ok(metricSum(await c.metrics('n3'), 'ringkv_suspect_gets') > suspectBefore, 'n3 was asked for the block\'s keys and sent the readers elsewhere');

  const before = await repairCheck(c.addresses);
  t.notOk(before.allAgree, 'repair --check: the suspect range does not agree (its hashes are poisoned)');

  // One repair round, run by an operator.
  const { stdout: repairOut } = await exec(process.execPath, [CLI, 'repair', '--seeds', c.addresses.join(',')], { timeout: 120_000 });
  t.match(repairOut, /repair done/, '`ringkv repair` works');
  own = await replicaValues(c, 'n3', all);
  const stillWrong = all.filter((i) => own.get(i) !== valueOf(i));
  t.same(stillWrong.map((i) => `${keyOf(i)}: ${own.get(i)}`), [], 'after one round every key on n3 is correct (its own replica, read directly)');
  st = await c.call<Status>('n3', Routes.status, undefined);
  t.same(st.quarantine.map((q) => q.repaired), [true], 'the block is marked repaired');
  t.ok(metricSum(await c.metrics('n3'), 'ringkv_repair_suspect_ranges_repaired') >= 1, 'counted in /metrics');
  t.ok((await repairCheck(c.addresses)).allAgree, 'repair --check: every range agrees again');

  // A compaction drops the block; the bad table is gone.
  const { stdout: compactOut } = await exec(process.execPath, [CLI, 'compact', '--node', 'n3', '--seeds', c.addresses.join(',')], { timeout: 120_000 });
  t.match(compactOut, /n3: \d+ tables -> \d+/, '`ringkv compact` ran on n3');
  t.notOk(fs.existsSync(bad.file), `${path.basename(bad.file)} is gone`);
  st = await c.call<Status>('n3', Routes.status, undefined);
  t.same(st.quarantine, [], 'nothing is quarantined any more');
  t.equal(metricSum(await c.metrics('n3'), 'ringkv_engine_corrupt_blocks_dropped'), 1, 'the dropped block is counted');
  own = await replicaValues(c, 'n3', all);
  t.equal(all.filter((i) => own.get(i) !== valueOf(i)).length, 0, 'every key on n3 is still correct after the compaction');

  // With automatic repair on, a new corrupt block heals without an operator.
  await c.stop('n3');
  const bad2 = corruptOneBlock(engineDir);
  const affected2 = keysIn(bad2);
  await restartN3(c, { RINGKV_REPAIR_INTERVAL_MS: String(10 * 60_000) });
  await waitFor(
    'n3 to repair its new suspect range by itself',
    async () => {
      const s = await c.call<Status>('n3', Routes.status, undefined);
      return s.quarantine.length === 1 && s.quarantine.every((q) => q.repaired);
    },
    60_000,
  );
  own = await replicaValues(c, 'n3', all);
  t.equal(all.filter((i) => own.get(i) !== valueOf(i)).length, 0, `the ${affected2.length} keys of a second corrupt block were repaired with no operator`);
});

/** n's own replica of each counter, by an internal batch Get: its value, or the error code. */
async function replicaCounters(c: TestCluster, id: string, keys: string[]): Promise<Map<string, number | string>> {
  const res = await c.call<BatchResponse>(id, Routes.batch, { v: PROTOCOL_VERSION, ops: keys.map((k) => ({ t: OpType.Get, key: Buffer.from(k) })) }, 20_000);
  const out = new Map<string, number | string>();
  keys.forEach((k, j) => {
    const r = res.results[j]!;
    if (!r.ok) out.set(k, r.code);
    else if (!r.obj) out.set(k, '(missing)');
    else if (r.obj.mode !== 'crdt') out.set(k, `(${r.obj.mode})`);
    else out.set(k, crdtValue(decodeCrdt(r.obj.siblings[0]!.value)) as number);
  });
  return out;
}

t.test('a corrupt block of counters: n3 refuses to coordinate their increments, and none is lost when it coordinates again after the repair', async (t) => {
  const c = await TestCluster.start(t, { nodes: 3, env: { RINGKV_REPAIR_INTERVAL_MS: '0' } });
  const kv = await c.client({ timeoutMs: 20_000 });
  const name = (i: number) => `cc-${String(i).padStart(5, '0')}`;
  const all = Array.from({ length: KEYS }, (_, i) => i);
  // One increment of every counter on every replica; the first replica of each key's
  // preference list coordinates it, so n3 holds events of its own actor for a third of them.
  for (let at = 0; at < KEYS; at += 100) await Promise.all(all.slice(at, at + 100).map((i) => kv.counter(name(i)).increment(1, { consistency: 'all' })));

  await c.stop('n3');
  const bad = corruptOneBlock(path.join(c.node('n3').dataDir, 'engine'));
  const affected = keysIn(bad, name).map(name);
  const headed = affected.filter((k) => kv.replicasOf(k)[0] === 'n3');
  t.ok(headed.length > 0, `the damaged block holds ${affected.length} counters, ${headed.length} of which n3 coordinates first`);
  await restartN3(c);
  t.same([...new Set((await replicaCounters(c, 'n3', affected)).values())], ['SUSPECT_RANGE'], 'n3 answers the block\'s counters SUSPECT_RANGE');

  // A second increment of each: n3 refuses to coordinate it (its copy held its own events
  // 1.., which it would number again), another replica does, and the result is merged into
  // n3 too: that write over the unreadable copy retires n3's actor.
  await Promise.all(affected.map((k) => kv.counter(k).increment(1, { consistency: 'all' })));
  // A third: n3 coordinates the keys it heads again, from the repaired state.
  await Promise.all(affected.map((k) => kv.counter(k).increment(1, { consistency: 'all' })));
  const values = await Promise.all(affected.map((k) => kv.counter(k).value({ consistency: 'all' })));
  t.same(affected.filter((_, j) => values[j] !== 3).map((k, j) => `${k}: ${values[j]}`), [], 'every counter of the block reads 3 at all');

  const { stdout } = await exec(process.execPath, [CLI, 'repair', '--seeds', c.addresses.join(',')], { timeout: 120_000 });
  t.match(stdout, /repair done/);
  for (const id of ['n1', 'n2', 'n3']) {
    const own = await replicaCounters(c, id, affected);
    t.same(affected.filter((k) => own.get(k) !== 3).map((k) => `${k}: ${own.get(k)}`), [], `${id}'s own replica of every counter of the block holds 3`);
  }
  const others = all.map(name).filter((k) => !affected.includes(k)).slice(0, 200);
  t.same([...new Set((await replicaCounters(c, 'n3', others)).values())], [1], 'the other counters on n3 are untouched');
});
