// The manifest (engine-format.md) on the in-memory file system: replaced atomically under a
// power cut at every step; never naming a file whose name is not on disk; a torn or
// damaged manifest is CORRUPTION; what open does with a leftover MANIFEST.tmp; versions.

import t from 'tap';
import { Engine, MemoryFileSystem } from '../../../storage-server/engine/index.js';
import type { DirOp } from '../../../storage-server/engine/index.js';
import type { Manifest } from '../../../storage-server/engine/manifest.js';
import { decodeManifest, encodeManifest, readManifest, writeManifest } from '../../../storage-server/engine/manifest.js';

const DIR = '/db';
const b = (s: string) => Buffer.from(s);
const m = (tables: number[], format = 2): Manifest => ({ format, nextFileNumber: 20, lastSeq: 100 + tables.length, logNumber: 9 + tables.length, tables });

async function memDir(): Promise<MemoryFileSystem> {
  const fs = new MemoryFileSystem();
  await fs.mkdirp(DIR);
  return fs;
}

t.test('a power cut at any step of a replacement leaves the old manifest or the new one', async (t) => {
  const fs = await memDir();
  const before = m([1, 2]);
  const after = m([1, 2, 3]);
  await writeManifest(fs, DIR, before);
  const cuts: { fs: MemoryFileSystem; what: string }[] = [];
  fs.faultHook = (op, file) => {
    const what = `before ${op} ${file}`;
    cuts.push({ fs: fs.powerCut(), what: `${what}, pessimistic` });
    for (let seed = 0; seed < 20; seed++) {
      cuts.push({ fs: fs.powerCut({ seed }), what: `${what}, seed ${seed}` });
      cuts.push({ fs: fs.powerCut({ seed, dirOrder: 'any' }), what: `${what}, seed ${seed} in any order` });
    }
  };
  await writeManifest(fs, DIR, after);
  fs.faultHook = undefined;
  cuts.push({ fs: fs.powerCut(), what: 'after the replacement, pessimistic' });
  const outcomes = new Map<string, number>();
  for (const c of cuts) {
    let got: string;
    try {
      got = JSON.stringify((await readManifest(c.fs, DIR))?.tables);
    } catch (err) {
      got = `error: ${(err as Error).message}`;
    }
    outcomes.set(got, (outcomes.get(got) ?? 0) + 1);
    if (got !== JSON.stringify(before.tables) && got !== JSON.stringify(after.tables)) t.fail(`${c.what}: ${got}`);
  }
  t.ok(outcomes.has('[1,2]') && outcomes.has('[1,2,3]'), `old or new, never anything else (${JSON.stringify([...outcomes])})`);
  t.same((await readManifest(fs.powerCut(), DIR))?.tables, after.tables, 'once writeManifest returned, the new one is durable');
});

t.test('a table the manifest names has its name on disk when the manifest does', async (t) => {
  // The worst order POSIX allows: the manifest's rename reaches the disk, the new table's
  // name (created just before) does not.
  const fs = await memDir();
  const e = await Engine.open(DIR, { fs, autoCompaction: false });
  await e.put(b('k'), b('v'));
  const cuts: MemoryFileSystem[] = [];
  fs.faultHook = (op, file) => {
    if (op !== 'syncDir') return;
    cuts.push(fs.powerCut({ dirs: (_d, pending: readonly DirOp[]) => pending.map((p) => !(p.kind === 'link' && p.name.endsWith('.sst'))) }));
    void file;
  };
  await e.flush();
  fs.faultHook = undefined;
  await e.close();
  t.ok(cuts.length > 0, `${cuts.length} cuts before a directory sync`);
  for (const [i, cut] of cuts.entries()) {
    const e2 = await Engine.open(DIR, { fs: cut }).catch((err: Error) => err);
    if (e2 instanceof Error) {
      t.fail(`cut ${i}: ${e2.message}`);
      continue;
    }
    t.same((await e2.get(b('k')))?.value, b('v'), `cut ${i}: the write is there`);
    await e2.close();
  }
});

t.test('a torn or damaged manifest is CORRUPTION, at every length and every byte', async (t) => {
  const good = encodeManifest(m([4, 7]));
  let wrong = 0;
  for (let n = 0; n < good.length - 1; n++) {
    try {
      decodeManifest(good.subarray(0, n), 'MANIFEST');
      wrong++;
      t.fail(`cut to ${n} bytes: decoded`);
    } catch (err) {
      if ((err as { code?: string }).code !== 'CORRUPTION') wrong++;
    }
  }
  for (let i = 0; i < good.length - 1; i++) {
    const bad = Buffer.from(good);
    bad[i]! ^= 0x01;
    try {
      decodeManifest(bad, 'MANIFEST');
      wrong++;
      t.fail(`byte ${i} flipped: decoded`);
    } catch (err) {
      if ((err as { code?: string }).code !== 'CORRUPTION') wrong++;
    }
  }
  t.equal(wrong, 0, `${2 * (good.length - 1)} damaged manifests, each CORRUPTION`);
  // Through open: a damaged manifest beside data is refused, the data left alone.
  const fs = await memDir();
  const e = await Engine.open(DIR, { fs });
  await e.put(b('k'), b('v'));
  await e.close();
  const raw = Buffer.from(fs.rawFile(`${DIR}/MANIFEST`));
  fs.setRawFile(`${DIR}/MANIFEST`, raw.subarray(0, raw.length - 5));
  await t.rejects(Engine.open(DIR, { fs }), { code: 'CORRUPTION', message: /manifest/ });
  fs.setRawFile(`${DIR}/MANIFEST`, raw);
  const again = await Engine.open(DIR, { fs });
  t.same((await again.get(b('k')))?.value, b('v'));
  await again.close();
});

t.test('a leftover MANIFEST.tmp: deleted beside a manifest, never promoted in place of one', async (t) => {
  {
    const fs = await memDir();
    const e = await Engine.open(DIR, { fs });
    await e.put(b('k'), b('v'));
    await e.close();
    fs.setRawFile(`${DIR}/MANIFEST.tmp`, b('half a manif'));
    const e2 = await Engine.open(DIR, { fs });
    t.same((await e2.get(b('k')))?.value, b('v'), 'beside a manifest: opens');
    t.notOk(await fs.exists(`${DIR}/MANIFEST.tmp`), 'and the temp file is deleted');
    await e2.close();
    // A whole temp manifest whose rename was lost, and no MANIFEST: the directory is refused.
    fs.setRawFile(`${DIR}/MANIFEST.tmp`, fs.rawFile(`${DIR}/MANIFEST`));
    await fs.unlink(`${DIR}/MANIFEST`);
    await t.rejects(Engine.open(DIR, { fs }), { code: 'MANIFEST_MISSING' }, 'without a manifest, beside data files: MANIFEST_MISSING');
    t.ok(await fs.exists(`${DIR}/MANIFEST.tmp`), 'nothing was deleted');
  }
  {
    // The very first manifest's rename was lost: no data files yet, so the directory is new.
    const fs = await memDir();
    fs.setRawFile(`${DIR}/MANIFEST.tmp`, encodeManifest(m([], 2)));
    const e = await Engine.open(DIR, { fs });
    t.same(await fs.readdir(DIR), ['000001.log', 'MANIFEST'], 'an empty directory with a temp manifest opens as new');
    await e.close();
  }
});

t.test('versions: 1 and 2 are read (header and format field agreeing), others are CORRUPTION', async (t) => {
  t.same(decodeManifest(encodeManifest(m([3], 1)), 'M').tables, [3], 'format 1');
  t.same(decodeManifest(encodeManifest(m([3], 2)), 'M').tables, [3], 'format 2');
  const text = encodeManifest(m([3], 2)).toString();
  const reject = (what: string, s: string, re: RegExp) => t.throws(() => decodeManifest(b(s), 'M'), { code: 'CORRUPTION', message: re }, what);
  reject('version 3', text.replace('RINGKV-MANIFEST 2', 'RINGKV-MANIFEST 3'), /unsupported format version 3/);
  reject('version 0', text.replace('RINGKV-MANIFEST 2', 'RINGKV-MANIFEST 0'), /unsupported format version 0/);
  reject('header 2, format 1', encodeManifest(m([3], 1)).toString().replace('RINGKV-MANIFEST 1', 'RINGKV-MANIFEST 2'), /format 1 in a version 2 header/);
  reject('no header', text.replace('RINGKV-MANIFEST', 'LEVELDB-MANIFEST'), /missing header/);
  // Through open.
  const fs = await memDir();
  fs.setRawFile(`${DIR}/MANIFEST`, b(text.replace('RINGKV-MANIFEST 2', 'RINGKV-MANIFEST 3')));
  await t.rejects(Engine.open(DIR, { fs }), { code: 'CORRUPTION', message: /unsupported format version 3/ });
  const e = await Engine.open(DIR, { fs: await memDir() });
  t.match((await e.options.fs.readFile(`${DIR}/MANIFEST`)).toString(), /^RINGKV-MANIFEST 2\n\{"format":2,/, 'a new directory gets format 2');
  await e.close();
});
