// Tests of the node's dot counter (storage-server/dot-counter.ts) on a real temp directory:
// the ACTOR file's format, a counter is handed out only once the file's bound covers it (so
// a reopen without close — a crash — never hands one out again), a kill -9 of a process
// issuing counters loses none of that, epochs change the actor durably; and on the
// in-memory file system: power cuts at random points (only synced data, and seeded parts of
// what was pending, survive) and a failed fsync. Prints its seed; rerun with RINGKV_SEED=<seed>.

import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import type { Test } from 'tap';
import { ErrorCodes } from '../../sdk/errors.js';
import { ACTOR_FILE_FORMAT, DotCounter, parseActorFile } from '../../storage-server/dot-counter.js';
import { prepareDataDir } from '../../storage-server/data-dir.js';
import { MemoryFileSystem } from '../../storage-server/engine/index.js';
import { SeededRandom, testSeed } from '../sdk/seeded-random.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const CHILD = path.join(here, 'dot-counter-child.ts');
const REPO_ROOT = path.resolve(here, '../..');

function tempDir(t: Test): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ringkv-dots-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function open(dir: string, opts: { leaseBlock?: number; newEpoch?: () => string } = {}): Promise<DotCounter> {
  const layout = prepareDataDir(dir);
  return DotCounter.open(layout.actorFile, layout.actorTempFile, 'n1', opts);
}

function onDisk(dir: string): { epoch: string; bound: number } {
  const file = path.join(dir, 'ACTOR');
  return parseActorFile(fs.readFileSync(file, 'utf8'), file);
}

t.test('a new data directory gets a random epoch; the ACTOR file is as documented', async (t) => {
  const dir = tempDir(t);
  const dots = await open(dir);
  t.match(dots.actor, /^n1#[0-9a-f]{8}$/, 'the actor is <node id>#<8 hex digits>');
  const text = fs.readFileSync(path.join(dir, 'ACTOR'), 'utf8');
  t.equal(text, `${ACTOR_FILE_FORMAT}\nepoch ${dots.actor.slice(3)}\nbound 0\n`, 'created durably at once, bound 0');
  t.notOk(fs.existsSync(path.join(dir, 'ACTOR.tmp')), 'no temp file left');
  const other = await open(tempDir(t));
  t.not(other.actor, dots.actor, 'another directory, another epoch');
  t.same(await dots.issue(), [dots.actor, 1], 'the first counter is 1');
  t.equal(onDisk(dir).bound, 1 + 10_000, 'a block of 10,000 reserved by default');
});

t.test('a reopen without close (a crash) never hands out a counter again, and each counter is durable before it is handed out', async (t) => {
  const dir = tempDir(t);
  const issued = new Set<number>();
  let max = 0;
  let actor = '';
  for (let round = 0; round < 5; round++) {
    // A new DotCounter on the same directory, the previous one dropped without any close.
    const dots = await open(dir, { leaseBlock: 7 });
    if (round === 0) actor = dots.actor;
    t.equal(dots.actor, actor, `round ${round}: the same actor after a reopen`);
    const before = onDisk(dir).bound;
    t.ok(before >= max, `round ${round}: the bound on disk (${before}) covers every counter handed out (${max})`);
    // Sequential issues: the file must cover each one when its promise resolves.
    for (let i = 0; i < 20; i++) {
      const [a, c] = await dots.issue();
      t.equal(a, actor);
      if (issued.has(c) || c <= max) return t.fail(`round ${round}: counter ${c} handed out again (max so far ${max})`);
      if (onDisk(dir).bound < c) return t.fail(`round ${round}: counter ${c} handed out while the file's bound is ${onDisk(dir).bound}`);
      issued.add(c);
      max = c;
    }
    // Concurrent issues: distinct, and all covered once they resolved.
    const many = await Promise.all(Array.from({ length: 50 }, () => dots.issue()));
    for (const [, c] of many) {
      if (issued.has(c) || c <= max) return t.fail(`round ${round}: concurrent counter ${c} handed out again`);
      issued.add(c);
    }
    max = Math.max(max, ...many.map(([, c]) => c));
    t.ok(onDisk(dir).bound >= max, `round ${round}: the bound covers the concurrent counters`);
  }
  t.equal(issued.size, 5 * 70, 'every counter distinct');
});

t.test('the counter lifts to what the contexts hold, and a counter past the safe integers is refused', async (t) => {
  const dir = tempDir(t);
  const dots = await open(dir, { leaseBlock: 100 });
  t.same((await dots.issue(() => 500))[1], 500, 'atLeast above the node counter');
  t.ok(onDisk(dir).bound >= 500, 'and made durable');
  t.same((await dots.issue(() => 3))[1], 501, 'atLeast below it does not lower it');
  let seen = '';
  await dots.issue((a) => {
    seen = a;
    return 1;
  });
  t.equal(seen, dots.actor, 'atLeast is asked for the actor the dot belongs to');
  await t.rejects(dots.issue(() => Number.MAX_SAFE_INTEGER + 2), { code: ErrorCodes.INVALID_ARGUMENT });
  t.same((await dots.issue())[1], 503, 'a refused counter is not taken');
});

t.test('a new epoch is a new actor, durably; the counter goes on', async (t) => {
  const dir = tempDir(t);
  const dots = await open(dir);
  const first = dots.actor;
  await dots.issue();
  await dots.issue();
  await dots.renewEpoch();
  t.not(dots.actor, first, 'a new actor');
  t.equal(onDisk(dir).epoch, dots.actor.slice(3), 'the file holds the new epoch');
  t.same(await dots.issue(), [dots.actor, 3], 'the counter goes on under the new actor');
  const again = await open(dir);
  t.equal(again.actor, dots.actor, 'a reopen keeps the new epoch');
  t.ok((await again.issue())[1] > 3);
  // An ACTOR file deleted (or an empty disk): a new actor, which is always safe.
  fs.rmSync(path.join(dir, 'ACTOR'));
  const fresh = await open(dir);
  t.not(fresh.actor, dots.actor, 'no ACTOR file: a new epoch');
  t.same((await fresh.issue())[1], 1, 'that has issued nothing');
  // An epoch source that repeats cannot make the same actor twice.
  let n = 0;
  const stuck = await open(tempDir(t), { newEpoch: () => (n++ < 3 ? 'aaaaaaaa' : 'bbbbbbbb') });
  t.equal(stuck.actor, 'n1#aaaaaaaa');
  await stuck.renewEpoch();
  t.equal(stuck.actor, 'n1#bbbbbbbb');
});

t.test('a damaged ACTOR file is refused with CORRUPTION', async (t) => {
  for (const text of ['', 'ringkv-actor 2\nepoch 0011aabb\nbound 5\n', `${ACTOR_FILE_FORMAT}\nepoch 0011AABB\nbound 5\n`, `${ACTOR_FILE_FORMAT}\nepoch 0011aabb\nbound 05\n`, `${ACTOR_FILE_FORMAT}\nepoch 0011aabb\nbound 99999999999999999\n`, `${ACTOR_FILE_FORMAT}\nepoch 0011aabb\nbound 5`]) {
    const dir = tempDir(t);
    prepareDataDir(dir);
    fs.writeFileSync(path.join(dir, 'ACTOR'), text);
    await t.rejects(open(dir), { code: ErrorCodes.CORRUPTION }, JSON.stringify(text));
  }
});

t.test('power cuts at random points (in-memory file system): what survives covers every counter handed out before the cut', async (t) => {
  const seed = testSeed();
  t.comment(`seed ${seed} (rerun with RINGKV_SEED=${seed})`);
  const rnd = new SeededRandom(seed);
  let midWrite = 0;
  for (let round = 0; round < 150; round++) {
    const fsys = new MemoryFileSystem();
    await fsys.mkdirp('/node');
    const dots = await DotCounter.open('/node/ACTOR', '/node/ACTOR.tmp', 'n1', { fs: fsys, leaseBlock: 5 });
    let handedOut = 0;
    let cut: { fs: MemoryFileSystem; handedOut: number; op: string } | undefined;
    const cutAt = 1 + rnd.int(30);
    const cutOpts = { seed: rnd.uint32(), dirOrder: round % 2 === 0 ? ('prefix' as const) : ('any' as const) };
    let ops = 0;
    // The cut is taken inside an operation, before it runs: possibly in the middle of a
    // rewrite of the file (temp written, not synced, not renamed...).
    fsys.faultHook = (op, file) => {
      if (++ops === cutAt && !cut) cut = { fs: fsys.powerCut(cutOpts), handedOut, op: `${op} ${file}` };
    };
    for (let batch = 0; batch < 10; batch++) {
      const got = await Promise.all(Array.from({ length: 1 + rnd.int(4) }, () => dots.issue()));
      handedOut = Math.max(handedOut, ...got.map(([, c]) => c));
    }
    fsys.faultHook = undefined;
    cut ??= { fs: fsys.powerCut(cutOpts), handedOut, op: 'after the last issue' };
    if (cut.op.includes('ACTOR')) midWrite++;
    const after = await DotCounter.open('/node/ACTOR', '/node/ACTOR.tmp', 'n1', { fs: cut.fs, leaseBlock: 5 });
    const where = `round ${round}, cut at ${cut.op} (${JSON.stringify(cutOpts)})`;
    if (after.actor !== dots.actor) return t.fail(`${where}: the epoch did not survive (${after.actor} vs ${dots.actor})`);
    const next = (await after.issue())[1];
    if (next <= cut.handedOut) return t.fail(`${where}: counter ${next} handed out again (${cut.handedOut} was before the cut)`);
  }
  t.ok(midWrite > 50, `${midWrite} of 150 cuts fell inside a rewrite of the ACTOR file; every one kept the epoch and a bound above what was handed out`);
});

t.test('a failed fsync of the new ACTOR file fails the issue; the counter is never handed out', async (t) => {
  const fsys = new MemoryFileSystem();
  await fsys.mkdirp('/node');
  const dots = await DotCounter.open('/node/ACTOR', '/node/ACTOR.tmp', 'n1', { fs: fsys, leaseBlock: 3 });
  t.same((await dots.issue())[1], 1);
  t.same((await dots.issue())[1], 2);
  t.same((await dots.issue())[1], 3);
  t.same((await dots.issue())[1], 4, 'bound 4 (1 + 3)');
  const heal = fsys.injectFault({ op: 'sync', file: 'ACTOR.tmp', errno: 'EIO' });
  await t.rejects(dots.issue(), { code: ErrorCodes.IO_ERROR }, 'counter 5 needs a new bound: its fsync fails, so does the issue');
  await t.rejects(dots.issue(), { code: ErrorCodes.IO_ERROR }, 'and counter 6');
  const cut = fsys.powerCut();
  heal();
  t.same((await dots.issue())[1], 7, 'once the disk is back, the next counter is above the failed ones (a fresh temp file)');
  t.equal(parseActorFile(fsys.powerCut().rawFile('/node/ACTOR').toString(), 'ACTOR').bound, 8, 'under a durable bound (5 + 3, asked for by the failed issue)');
  const after = await DotCounter.open('/node/ACTOR', '/node/ACTOR.tmp', 'n1', { fs: cut, leaseBlock: 3 });
  t.same((await after.issue())[1], 5, 'after a power cut during the failure: 5 and 6 were never handed out, so 5 is new');
});

t.test('kill -9 of a process handing out counters: no counter it handed out is handed out again', async (t) => {
  const dir = tempDir(t);
  prepareDataDir(dir);
  const handedOut = new Set<number>();
  let actor = '';
  for (let round = 0; round < 3; round++) {
    const child = spawn(process.execPath, ['--import', 'tsx', CHILD, dir, '13'], { cwd: REPO_ROOT, stdio: ['ignore', 'ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr!.setEncoding('utf8').on('data', (s: string) => {
      if (stderr.length < 10_000) stderr += s;
    });
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    const lines: string[] = [];
    let partial = '';
    let count = 0;
    let max = 0;
    const enough = new Promise<void>((resolve, reject) => {
      const deadline = setTimeout(() => reject(new Error(`round ${round}: the child handed out ${count} counters in 60 s; stderr: ${stderr}`)), 60_000);
      (child.stdio[3] as NodeJS.ReadableStream).setEncoding('utf8');
      (child.stdio[3] as NodeJS.ReadableStream).on('data', (s: string) => {
        const parts = (partial + s).split('\n');
        partial = parts.pop()!;
        for (const line of parts) {
          lines.push(line);
          if (line.startsWith('E ')) {
            clearTimeout(deadline);
            reject(new Error(`round ${round}: child failed: ${line}`));
          } else if (line.startsWith('A ')) {
            if (round === 0) actor = line.slice(2);
            else if (line.slice(2) !== actor) reject(new Error(`round ${round}: actor ${line.slice(2)}, was ${actor}`));
          } else if (line.startsWith('I ')) {
            const c = Number(line.slice(2));
            if (handedOut.has(c)) reject(new Error(`round ${round}: counter ${c} handed out again`));
            handedOut.add(c);
            max = Math.max(max, c);
            // Kill mid-run, at a count that is not a multiple of the lease block.
            if (++count === 500 + round * 37) {
              clearTimeout(deadline);
              resolve();
            }
          }
        }
      });
    });
    try {
      await enough;
    } finally {
      child.kill('SIGKILL');
      await exited;
    }
    t.ok(onDisk(dir).bound >= max, `round ${round}: killed after ${count} counters (max ${max}); the bound on disk is ${onDisk(dir).bound}`);
  }
  const dots = await open(dir);
  t.equal(dots.actor, actor, 'the same actor throughout');
  const next = (await dots.issue())[1];
  t.ok(next > Math.max(...handedOut), `the next counter (${next}) is above all ${handedOut.size} handed out`);
});
