// WAL segments preallocated and recycled (walRecycleSegments, log format 3 in log-format.md)
// on the in-memory file system: frames of another log number left behind the log by the
// file's previous life are never replayed, even checksum-valid under the same salt; the
// engine reuses retired files and replays them right after a power cut; a torn write into
// a zero-filled tail; damage inside a format-3 segment is still CORRUPTION; the pool's bound.
// (Power cuts anywhere with recycling on: wal-rotation.test.ts and engine-model.test.ts.)

import t from 'tap';
import { crc32 } from '../../../storage-server/engine/coding.js';
import { encodeManifest } from '../../../storage-server/engine/manifest.js';
import { recordSize, writeRecord } from '../../../storage-server/engine/record.js';
import type { EngineRecord, EngineOptions, PendingFileOp } from '../../../storage-server/engine/index.js';
import { Engine, MemoryFileSystem } from '../../../storage-server/engine/index.js';

const DIR = '/db';
const b = (s: string) => Buffer.from(s);

async function memDir(): Promise<MemoryFileSystem> {
  const fs = new MemoryFileSystem();
  await fs.mkdirp(DIR);
  return fs;
}

const rec = (k: string, v: string, seq: number): EngineRecord => ({
  key: b(k),
  seq,
  tombstone: false,
  expiresAtMs: 0,
  flags: 0,
  contentType: '',
  version: Buffer.alloc(0),
  value: b(v),
});

function u64(n: number): Buffer {
  const x = Buffer.alloc(8);
  x.writeUInt32LE(n % 2 ** 32, 0);
  x.writeUInt32LE(Math.floor(n / 2 ** 32), 4);
  return x;
}

/** A format-3 segment header (log-format.md): magic, version 3, salt, number, CRC-32. */
function v3Header(number: number, salt: number): Buffer {
  const h = Buffer.alloc(28);
  b('RINGKVWL').copy(h, 0);
  h.writeUInt32LE(3, 8);
  h.writeUInt32LE(salt, 12);
  u64(number).copy(h, 16);
  h.writeUInt32LE(crc32(h.subarray(0, 24)), 24);
  return h;
}

/** A format-3 frame: length, index, log number u64, CRC-32 over the salt, those 16 bytes and the payload. */
function v3Frame(salt: number, logNumber: number, index: number, records: EngineRecord[]): Buffer {
  const payload = Buffer.concat(
    records.map((r) => {
      const buf = Buffer.alloc(recordSize(r));
      writeRecord(buf, 0, r);
      return buf;
    }),
  );
  const f = Buffer.alloc(20 + payload.length);
  f.writeUInt32LE(payload.length, 0);
  f.writeUInt32LE(index, 4);
  u64(logNumber).copy(f, 8);
  payload.copy(f, 20);
  const saltBytes = Buffer.alloc(4);
  saltBytes.writeUInt32LE(salt, 0);
  f.writeUInt32LE(crc32(payload, crc32(f.subarray(0, 16), crc32(saltBytes))), 16);
  return f;
}

function withManifest(fs: MemoryFileSystem, logNumber: number): void {
  fs.setRawFile(`${DIR}/MANIFEST`, encodeManifest({ format: 2, nextFileNumber: 20, lastSeq: 0, logNumber, tables: [] }));
}

const SALT = 0x5eed1234;

/**
 * Segment 5 as a recycled file leaves it: this life's frames 0 and 1, then — from the
 * file's previous life as segment 3, under the same salt (the 1 in 2^32 case the salt
 * alone would miss) and at the very next indexes — two frames that are whole and
 * checksum-valid. `staleLog` is the log number they carry.
 */
function recycledSegment(staleLog: number): Buffer {
  return Buffer.concat([
    v3Header(5, SALT),
    v3Frame(SALT, 5, 0, [rec('a', 'new', 11)]),
    v3Frame(SALT, 5, 1, [rec('b', 'new', 12)]),
    v3Frame(SALT, staleLog, 2, [rec('stale', 'from the previous life', 7)]),
    v3Frame(SALT, staleLog, 3, [rec('a', 'old', 8)]),
    Buffer.alloc(64), // zeros of the preallocation
  ]);
}

t.test('frames of another log number behind the log are not replayed, even checksum-valid under the same salt', async (t) => {
  for (const last of [true, false]) {
    const fs = await memDir();
    withManifest(fs, 5);
    fs.setRawFile(`${DIR}/000005.log`, recycledSegment(3));
    if (!last) fs.setRawFile(`${DIR}/000006.log`, Buffer.concat([v3Header(6, SALT + 1), v3Frame(SALT + 1, 6, 0, [rec('c', 'next', 13)]), Buffer.alloc(40)]));
    const where = last ? 'the last segment' : 'a segment before the last';
    const e = await Engine.open(DIR, { fs, walRecycleSegments: 1 });
    t.same((await e.get(b('a')))?.value, b('new'), `${where}: this life's frames are replayed`);
    t.same((await e.get(b('b')))?.value, b('new'));
    t.equal(await e.get(b('stale')), undefined, `${where}: the previous life's frames are not`);
    t.equal(e.stats().recoveredWalRecords, last ? 2 : 3);
    t.equal(e.stats().recoveredTornTailBytes, 0, `${where}: the end of a recycled segment is no torn write`);
    if (!last) t.same((await e.get(b('c')))?.value, b('next'), 'the next segment is replayed too');
    await e.close();
  }
  // The same bytes carrying this segment's log number are replayed: the log number is the
  // only thing that kept them out above.
  const fs = await memDir();
  withManifest(fs, 5);
  fs.setRawFile(`${DIR}/000005.log`, recycledSegment(5));
  const e = await Engine.open(DIR, { fs });
  t.same((await e.get(b('stale')))?.value, b('from the previous life'), 'control: with log number 5 those frames are valid and replayed');
  t.same((await e.get(b('a')))?.value, b('old'));
  t.equal(e.stats().recoveredWalRecords, 4);
  await e.close();
});

t.test('damage inside a format-3 segment is still CORRUPTION; a torn last frame of the last one is cut off', async (t) => {
  const seg5 = (flip: number | undefined) => {
    const frames = [v3Frame(SALT, 5, 0, [rec('a', '1', 1)]), v3Frame(SALT, 5, 1, [rec('b', '2', 2)]), v3Frame(SALT, 5, 2, [rec('c', '3', 3)])];
    if (flip !== undefined) frames[flip]![frames[flip]!.length - 1]! ^= 0x01;
    return Buffer.concat([v3Header(5, SALT), ...frames, Buffer.alloc(100)]);
  };
  const seg6 = Buffer.concat([v3Header(6, SALT + 1), v3Frame(SALT + 1, 6, 0, [rec('d', '4', 4)]), Buffer.alloc(100)]);
  const open = async (flip: number | undefined, withNext: boolean) => {
    const fs = await memDir();
    withManifest(fs, 5);
    fs.setRawFile(`${DIR}/000005.log`, seg5(flip));
    if (withNext) fs.setRawFile(`${DIR}/000006.log`, seg6);
    return Engine.open(DIR, { fs });
  };
  await t.rejects(open(1, false), { code: 'CORRUPTION', details: { file: `${DIR}/000005.log` } }, 'a flipped byte in frame 1 of 3 (frame 2 after it)');
  await t.rejects(open(2, true), { code: 'CORRUPTION', message: /before the last/ }, 'a flipped byte in the last frame of a segment before the last');
  const e = await open(2, false);
  t.equal(e.stats().recoveredWalRecords, 2, 'the last frame of the last segment, damaged: a torn write');
  t.ok(e.stats().recoveredTornTailBytes > 0, `counted as torn (${e.stats().recoveredTornTailBytes} bytes)`);
  t.equal(await e.get(b('c')), undefined);
  await e.close();
  const whole = await open(undefined, true);
  t.equal(whole.stats().recoveredWalRecords, 4, 'control: undamaged, both segments replay whole');
  await whole.close();
});

const key = (i: number) => b(`key-${String(i).padStart(4, '0')}`);
const val = (i: number, gen: number) => b(`gen-${gen}-value-${i}-`.padEnd(200, String.fromCharCode(97 + (i % 26))));
const small: EngineOptions = { memtableSizeBytes: 8192, memtableJitterPercent: 0, autoCompaction: false, walRecycleSegments: 2 };

t.test('the engine reuses retired segment files; after a power cut a recycled segment replays only its own frames', async (t) => {
  const fs = await memDir();
  const e = await Engine.open(DIR, { ...small, fs });
  t.equal(e.stats().walSegmentsPreallocated, 1, 'the first segment is a new file filled with zeros');
  t.ok(fs.rawFile(`${DIR}/${(await fs.readdir(DIR)).find((f) => f.endsWith('.log'))}`).length >= 8192, 'preallocated to the memtable size');
  for (let gen = 0; gen < 4; gen++) for (let i = 0; i < 60; i++) await e.put(key(i), val(i, gen));
  await e.flush(); // the next segment takes a retired file
  const s = e.stats();
  t.ok(s.walSegmentsRecycled >= 3, `segments made from retired files: ${s.walSegmentsRecycled} (preallocated: ${s.walSegmentsPreallocated})`);
  t.ok(s.walSegmentsKept <= 2, `at most walRecycleSegments files kept (${s.walSegmentsKept})`);
  const logs = (await fs.readdir(DIR)).filter((f) => f.endsWith('.log'));
  t.ok(logs.length <= 1 + s.immutableMemtables + 2, `segment files: the live ones and at most 2 kept (${logs.join(' ')})`);
  await e.put(key(0), b('after the flush'));
  await e.put(key(1), b('after the flush too'));
  const current = logs.sort().at(-1)!;
  const raw = fs.rawFile(`${DIR}/${current}`);
  t.ok(raw.includes(b('gen-')), `the current segment ${current} still holds frames of its previous life behind its own`);

  const cut = fs.powerCut(); // 'batch': every acknowledged write was synced
  await e.close();
  const e2 = await Engine.open(DIR, { ...small, fs: cut });
  t.equal(e2.stats().recoveredWalRecords, 2, 'only the two frames of its own life are replayed');
  t.equal(e2.stats().recoveredTornTailBytes, 0);
  t.same((await e2.get(key(0)))?.value, b('after the flush'));
  t.same((await e2.get(key(1)))?.value, b('after the flush too'));
  let wrong = 0;
  for (let i = 2; i < 60; i++) if (!(await e2.get(key(i)))?.value.equals(val(i, 3))) wrong++;
  t.equal(wrong, 0, 'every other key holds its last value');
  t.ok(e2.stats().walSegmentsRecycled >= 1, 'open too made its segment from a kept file');
  await e2.close();
});

t.test('a torn write into a preallocated (zero-filled) tail is cut off; the writes before it stay', async (t) => {
  for (const tornBytes of [6, 100]) {
    const fs = await memDir();
    const opts: EngineOptions = { fs, sync: 'none', flushOnClose: false, walRecycleSegments: 1 };
    const e = await Engine.open(DIR, opts);
    t.equal(e.stats().walSegmentsPreallocated, 1);
    await e.put(b('before'), b('survives'));
    await e.put(b('torn'), Buffer.alloc(2000, 0x74));
    const wal = `${DIR}/${(await fs.readdir(DIR)).find((f) => f.endsWith('.log'))}`;
    // The power goes while the second frame is written: its first `tornBytes` reach the disk.
    const cut = fs.powerCut({
      dirs: (_d, p) => p.length,
      files: (file, pending: readonly PendingFileOp[]) => (file === wal ? { ops: pending.length - 1, tornBytes } : { ops: pending.length }),
    });
    await e.close();
    const e2 = await Engine.open(DIR, { ...opts, fs: cut });
    t.same((await e2.get(b('before')))?.value, b('survives'), `${tornBytes} bytes torn: the write before survives`);
    t.equal(await e2.get(b('torn')), undefined, 'the torn write is gone');
    t.equal(e2.stats().recoveredWalRecords, 1);
    if (tornBytes >= 20) t.ok(e2.stats().recoveredTornTailBytes > 2000, `its whole frame header reached the disk: a torn write (${e2.stats().recoveredTornTailBytes} bytes)`);
    else t.equal(e2.stats().recoveredTornTailBytes, 0, "a frame header cut before its log number reads as the end of the log (zeros)");
    await e2.close();
  }
});

t.test('walRecycleSegments is validated; a preallocation left by a crash is removed at open', async (t) => {
  for (const bad of [-1, 65, 1.5]) {
    await t.rejects(Engine.open(DIR, { fs: await memDir(), walRecycleSegments: bad }), { code: 'INVALID_ARGUMENT', message: /walRecycleSegments/ });
  }
  const fs = await memDir();
  await (await Engine.open(DIR, { fs })).close();
  fs.setRawFile(`${DIR}/WAL.tmp`, Buffer.alloc(4096));
  const e = await Engine.open(DIR, { fs });
  t.notOk((await fs.readdir(DIR)).includes('WAL.tmp'), 'WAL.tmp is gone');
  await e.close();
});
