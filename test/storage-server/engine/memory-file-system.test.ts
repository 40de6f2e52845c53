// The in-memory file system's power-cut model and fault injection: unsynced writes and
// unsynced directory changes are what a cut may lose, synced ones never; a random cut
// keeps only prefixes; an injected fsync failure loses the pending writes for good.

import t from 'tap';
import { MemoryFileSystem } from '../../../storage-server/engine/index.js';

const b = (s: string) => Buffer.from(s);

async function fresh(): Promise<MemoryFileSystem> {
  const fs = new MemoryFileSystem();
  await fs.mkdirp('/d');
  return fs;
}

function errnoOf(fn: () => void): unknown {
  try {
    fn();
    return undefined;
  } catch (err) {
    return (err as { details?: { errno?: string } }).details?.errno;
  }
}

async function contents(fs: MemoryFileSystem, file: string): Promise<string | undefined> {
  return (await fs.exists(file)) ? (await fs.readFile(file)).toString() : undefined;
}

t.test('a pessimistic cut keeps synced bytes under synced names, nothing else', async (t) => {
  const fs = await fresh();
  const h = await fs.open('/d/a', 'create');
  h.writeSync(b('hello '), 0);
  await h.sync();
  t.equal(await contents(fs.powerCut(), '/d/a'), undefined, 'the name was never synced: the file is lost');
  await fs.syncDir('/d');
  h.writeSync(b('world'), 6);
  t.equal(await contents(fs, '/d/a'), 'hello world', 'reads see unsynced bytes');
  t.equal(await contents(fs.powerCut(), '/d/a'), 'hello ', 'the unsynced append is dropped');
  await h.sync();
  t.equal(await contents(fs.powerCut(), '/d/a'), 'hello world', 'synced: it survives');
  await h.truncate(2);
  t.equal(await contents(fs.powerCut(), '/d/a'), 'hello world', 'an unsynced truncation is undone');
  t.equal(await contents(fs, '/d/a'), 'he', 'the original is untouched by the cuts');
});

t.test('unsynced renames and unlinks are undone by a cut; a synced directory keeps them', async (t) => {
  const fs = await fresh();
  await fs.writeFileSync('/d/M', b('old'));
  await fs.syncDir('/d');
  await fs.writeFileSync('/d/M.tmp', b('new'));
  await fs.rename('/d/M.tmp', '/d/M');
  let cut = fs.powerCut();
  t.equal(await contents(cut, '/d/M'), 'old', 'the rename did not reach the disk: the old file is back');
  t.same(await cut.readdir('/d'), ['M'], 'and the temp file was never created');
  cut = fs.powerCut({ dirs: () => 1 });
  t.same(await cut.readdir('/d'), ['M', 'M.tmp'], 'keeping one of two pending changes: the temp exists, not yet renamed');
  t.equal(await contents(cut, '/d/M.tmp'), 'new', 'its contents were synced');
  await fs.syncDir('/d');
  t.equal(await contents(fs.powerCut(), '/d/M'), 'new');
  await fs.unlink('/d/M');
  t.equal(await contents(fs.powerCut(), '/d/M'), 'new', 'an unsynced unlink is undone');
  await fs.syncDir('/d');
  t.equal(await contents(fs.powerCut(), '/d/M'), undefined);
});

t.test('a seeded random cut keeps a prefix of the pending writes, possibly torn or zero-filled', async (t) => {
  const fs = await fresh();
  const h = await fs.open('/d/log', 'create');
  await fs.syncDir('/d');
  h.writeSync(b('AAAA'), 0);
  await h.sync();
  const writes = ['BBBB', 'CCCC', 'DDDD'];
  writes.forEach((w, i) => h.writeSync(b(w), 4 + 4 * i));
  const full = 'AAAA' + writes.join('');
  const seen = new Set<string>();
  let unstable = 0;
  for (let seed = 0; seed < 300; seed++) {
    const got = (await contents(fs.powerCut({ seed }), '/d/log'))!;
    if (got !== (await contents(fs.powerCut({ seed }), '/d/log'))) unstable++;
    // What a disk may hold: the synced part, then a prefix of the later writes, where the
    // last kept write may be torn and the rest of its range zeros.
    const zeros = got.indexOf('\0');
    const data = zeros < 0 ? got : got.slice(0, zeros);
    if (!full.startsWith(data) || data.length < 4 || (zeros >= 0 && !/^\0+$/.test(got.slice(zeros)))) {
      t.fail(`seed ${seed}: impossible state ${JSON.stringify(got)}`);
    }
    seen.add(zeros < 0 ? (data.length % 4 === 0 ? `whole ${data.length / 4}` : 'torn') : 'zero-filled');
  }
  t.equal(unstable, 0, 'the same seed gives the same cut');
  for (const kind of ['whole 1', 'whole 2', 'whole 3', 'whole 4', 'torn', 'zero-filled']) t.ok(seen.has(kind), `seen: ${kind}`);
});

t.test('a failed fsync loses the pending writes for good (fsyncgate); faults carry errnos', async (t) => {
  const fs = await fresh();
  const h = await fs.open('/d/f', 'create');
  await fs.syncDir('/d');
  h.writeSync(b('lost'), 0);
  const remove = fs.injectFault({ op: 'sync', file: '/d/f', errno: 'EIO', times: 1 });
  await t.rejects(h.sync(), { code: 'IO_ERROR', details: { errno: 'EIO', op: 'sync' } });
  remove();
  t.equal(await contents(fs, '/d/f'), 'lost', 'still readable from the page cache');
  h.writeSync(b('kept'), 4);
  await h.sync();
  t.equal(await contents(fs.powerCut(), '/d/f'), '\0\0\0\0kept', 'the later fsync did not bring the lost bytes back');

  fs.injectFault({ op: 'write', file: /\.log$/, errno: 'ENOSPC', after: 1, times: 1 });
  const w = await fs.open('/d/1.log', 'create');
  w.writeSync(b('one'), 0);
  t.equal(errnoOf(() => w.writeSync(b('two'), 3)), 'ENOSPC', 'the second write fails');
  w.writeSync(b('three'), 3);
  t.equal(await contents(fs, '/d/1.log'), 'onethree', 'the refused write wrote nothing; the rule retired');
  fs.injectFault({ op: 'open', errno: 'EMFILE' });
  await t.rejects(fs.open('/d/x', 'create'), { code: 'IO_ERROR', message: /EMFILE/ });
  t.equal(await fs.exists('/d/x'), false, 'a refused open creates nothing');
  fs.clearFaults();
  await fs.open('/d/x', 'create');
});

t.test('processCrash keeps everything written, synced or not', async (t) => {
  const fs = await fresh();
  const h = await fs.open('/d/p', 'create');
  h.writeSync(b('unsynced'), 0);
  t.equal(await contents(fs.processCrash(), '/d/p'), 'unsynced');
  t.equal(await contents(fs.powerCut(), '/d/p'), undefined);
});

t.test("dirOrder 'any': a seeded cut may keep a later directory change without an earlier one", async (t) => {
  const fs = await fresh();
  await fs.writeFileSync('/d/one', b('1'));
  await fs.writeFileSync('/d/two', b('2'));
  const seen = new Set<string>();
  for (let seed = 0; seed < 64; seed++) {
    seen.add((await fs.powerCut({ seed }).readdir('/d')).join(','));
    seen.add(`any:${(await fs.powerCut({ seed, dirOrder: 'any' }).readdir('/d')).join(',')}`);
  }
  t.notOk(seen.has('two'), 'in order (the default), never the second creation without the first');
  t.ok(seen.has('any:two'), "with dirOrder 'any', the second creation alone");
  t.ok(seen.has('') && seen.has('one') && seen.has('one,two'), 'prefixes');
});
