// The WAL format (log-format.md) on the in-memory file system: a torn tail is told from
// damage even when the torn write's own value holds bytes that look like a whole frame;
// damage before genuine frames is CORRUPTION naming file and offset; a directory of the
// format before still opens; the segment header's torn and damaged cases; frames in order.

import t from 'tap';
import { crc32 } from '../../../storage-server/engine/coding.js';
import { encodeManifest } from '../../../storage-server/engine/manifest.js';
import { writeRecord, recordSize } from '../../../storage-server/engine/record.js';
import type { EngineRecord } from '../../../storage-server/engine/index.js';
import { Engine, MemoryFileSystem } from '../../../storage-server/engine/index.js';
import type { EngineOptions, PendingFileOp } from '../../../storage-server/engine/index.js';

const DIR = '/db';
const b = (s: string) => Buffer.from(s);

async function memDir(): Promise<MemoryFileSystem> {
  const fs = new MemoryFileSystem();
  await fs.mkdirp(DIR);
  return fs;
}

async function onlyLog(fs: MemoryFileSystem): Promise<string> {
  const logs = (await fs.readdir(DIR)).filter((f) => f.endsWith('.log'));
  if (logs.length !== 1) throw new Error(`expected one segment, found ${logs.join(',')}`);
  return `${DIR}/${logs[0]}`;
}

function recordBytes(r: EngineRecord): Buffer {
  const buf = Buffer.alloc(recordSize(r));
  writeRecord(buf, 0, r);
  return buf;
}

/**
 * The frames a user could forge inside a value, knowing the format but not the segment's
 * secret salt: a format-1 frame (length, CRC of length and payload) and format-2 frames
 * (length, the index the next frame would carry, CRC under a guessed salt of 0).
 */
function forgedFrames(nextIndex: number): Buffer {
  const payload = recordBytes({ key: b('forged'), seq: 999, tombstone: false, expiresAtMs: 0, flags: 0, contentType: '', version: Buffer.alloc(0), value: b('not written by anyone') });
  const v1 = Buffer.alloc(8 + payload.length);
  v1.writeUInt32LE(payload.length, 0);
  payload.copy(v1, 8);
  v1.writeUInt32LE(crc32(payload, crc32(v1.subarray(0, 4))), 4);
  const v2 = Buffer.alloc(12 + payload.length);
  v2.writeUInt32LE(payload.length, 0);
  v2.writeUInt32LE(nextIndex, 4);
  payload.copy(v2, 12);
  v2.writeUInt32LE(crc32(payload, crc32(v2.subarray(0, 8), crc32(Buffer.alloc(4)))), 8);
  return Buffer.concat([v1, v2]);
}

t.test('a torn write whose value holds a whole valid-looking frame is a torn tail, not damage', async (t) => {
  const fs = await memDir();
  const opts: EngineOptions = { fs, sync: 'none', flushOnClose: false };
  const e = await Engine.open(DIR, opts);
  await e.put(b('before'), b('survives'));
  const forged = forgedFrames(2);
  const value = Buffer.concat([Buffer.alloc(64, 0x61), forged, Buffer.alloc(64, 0x62)]);
  await e.put(b('torn'), value);
  const wal = await onlyLog(fs);
  // The power goes while the second put's frame is being written: the disk got its first
  // bytes, up to just past the forged frames, and not the rest.
  const cut = fs.powerCut({
    dirs: (_d, p) => p.length,
    files: (file, pending: readonly PendingFileOp[]) => {
      if (file !== wal) return { ops: pending.length };
      const last = pending[pending.length - 1]!;
      if (last.kind !== 'write') throw new Error('expected the frame write last');
      const at = last.bytes.indexOf(forged) + forged.length + 10;
      return { ops: pending.length - 1, tornBytes: at };
    },
  });
  await e.close();
  const e2 = await Engine.open(DIR, { ...opts, fs: cut });
  t.same((await e2.get(b('before')))?.value, b('survives'), 'the write before the torn one survives');
  t.equal(await e2.get(b('torn')), undefined, 'the torn write is gone');
  t.equal(await e2.get(b('forged')), undefined, 'the forged frame was not replayed');
  t.ok(e2.stats().recoveredTornTailBytes > forged.length, `the tail was cut off (${e2.stats().recoveredTornTailBytes} bytes)`);
  await e2.close();
});

t.test('damage inside the log before genuine frames is CORRUPTION with file and offset', async (t) => {
  for (const where of ['payload', 'length'] as const) {
    const fs = await memDir();
    const e = await Engine.open(DIR, { fs, flushOnClose: false });
    for (let i = 0; i < 10; i++) await e.put(b(`key-${i}`), b(`value-${i}-`.padEnd(100, 'x')));
    await e.close();
    const wal = await onlyLog(fs);
    const raw = Buffer.from(fs.rawFile(wal));
    const at = raw.indexOf(b('value-3-'));
    if (where === 'payload') raw[at + 20]! ^= 0x01;
    else {
      // Frame 3's length field: its record starts 3 bytes before its key (bits, seq, key
      // length), behind a frame header of 12 bytes (format 2) or 8 (format 1).
      const frameHeader = raw.subarray(0, 8).equals(b('RINGKVWL')) ? 12 : 8;
      raw.writeUInt32LE(0x00ffffff, raw.lastIndexOf(b('key-3'), at) - 3 - frameHeader);
    }
    fs.setRawFile(wal, raw);
    await t.rejects(Engine.open(DIR, { fs }), { code: 'CORRUPTION', details: { file: wal } }, `a damaged ${where} in frame 3 of 10`);
    t.same(fs.rawFile(wal), raw, 'the damaged segment is left as it was');
  }
});

/** A format-1 frame (log format 1: length, CRC-32 of length and payload, payload). */
function v1Frame(records: EngineRecord[]): Buffer {
  const payload = Buffer.concat(records.map(recordBytes));
  const f = Buffer.alloc(8 + payload.length);
  f.writeUInt32LE(payload.length, 0);
  payload.copy(f, 8);
  f.writeUInt32LE(crc32(payload, crc32(f.subarray(0, 4))), 4);
  return f;
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

t.test('a directory of the format before (manifest 1, log format 1) opens and is rewritten in format 2', async (t) => {
  const fs = await memDir();
  fs.setRawFile(`${DIR}/MANIFEST`, encodeManifest({ format: 1, nextFileNumber: 5, lastSeq: 0, logNumber: 3, tables: [] }));
  fs.setRawFile(`${DIR}/000002.log`, v1Frame([rec('flushed', 'long ago', 1)])); // below logNumber: deleted
  fs.setRawFile(`${DIR}/000003.log`, Buffer.concat([v1Frame([rec('a', '1', 1), rec('b', '2', 2)]), v1Frame([rec('a', '3', 3)])]));
  const last = Buffer.concat([v1Frame([rec('c', '4', 4)]), v1Frame([rec('d', '5', 5)])]);
  fs.setRawFile(`${DIR}/000004.log`, last.subarray(0, last.length - 2)); // its last frame torn
  const e = await Engine.open(DIR, { fs });
  t.same((await e.get(b('a')))?.value, b('3'));
  t.same((await e.get(b('b')))?.value, b('2'));
  t.same((await e.get(b('c')))?.value, b('4'));
  t.equal(await e.get(b('d')), undefined, 'the torn frame of the last segment is cut off');
  t.equal(await e.get(b('flushed')), undefined, 'a segment below logNumber is not replayed');
  t.equal(e.stats().recoveredWalRecords, 4);
  t.equal(e.stats().lastSeq, 4);
  await e.put(b('e'), b('6'));
  const files = await fs.readdir(DIR);
  const logs = files.filter((f) => f.endsWith('.log'));
  t.same(logs.length, 1, `the old segments are gone (${files.join(' ')})`);
  t.same(fs.rawFile(`${DIR}/${logs[0]}`).subarray(0, 8), b('RINGKVWL'), 'the new segment is format 2');
  t.match((await fs.readFile(`${DIR}/MANIFEST`)).toString(), /^RINGKV-MANIFEST 2\n/, 'the manifest is format 2');
  await e.close();
  const e2 = await Engine.open(DIR, { fs });
  t.same((await e2.get(b('e')))?.value, b('6'));
  t.same((await e2.get(b('a')))?.value, b('3'));
  await e2.close();
});

/** A directory with one format-2 segment holding `n` frames, left by a process that died (nothing flushed). */
async function segmentOf(n: number): Promise<{ fs: MemoryFileSystem; wal: string; raw: Buffer }> {
  const fs = await memDir();
  const e = await Engine.open(DIR, { fs, flushOnClose: false });
  for (let i = 0; i < n; i++) await e.put(b(`key-${i}`), b(`value-${i}`));
  await e.close();
  const wal = await onlyLog(fs);
  return { fs, wal, raw: Buffer.from(fs.rawFile(wal)) };
}

t.test('the segment header: torn while being created, damaged, another segment, an unknown version', async (t) => {
  // A segment whose header did not reach the disk whole (a crash while it was created) is a
  // torn tail when it is the last and holds nothing more.
  for (const keep of [0, 5, 20, 27]) {
    const { fs, wal, raw } = await segmentOf(0);
    fs.setRawFile(wal, raw.subarray(0, keep));
    const e = await Engine.open(DIR, { fs });
    t.equal(e.stats().recoveredTornTailBytes, keep, `a header cut to ${keep} bytes: torn, cut off`);
    await e.close();
  }
  {
    const { fs, wal } = await segmentOf(0);
    fs.setRawFile(wal, Buffer.alloc(28)); // its size reached the disk, its bytes did not
    const e = await Engine.open(DIR, { fs });
    t.equal(e.stats().recoveredTornTailBytes, 28, 'a zero-filled header: torn');
    await e.close();
  }
  const cases: [string, (raw: Buffer) => void, RegExp][] = [
    ['a flipped magic byte', (raw) => (raw[2]! ^= 0x20), /magic/],
    ['a flipped salt byte', (raw) => (raw[13]! ^= 0x01), /header checksum/],
    [
      'another segment number',
      (raw) => {
        raw.writeUInt32LE(raw.readUInt32LE(16) + 1, 16);
        raw.writeUInt32LE(crc32(raw.subarray(0, 24)), 24);
      },
      /names segment/,
    ],
    [
      'format version 4',
      (raw) => {
        raw.writeUInt32LE(4, 8);
        raw.writeUInt32LE(crc32(raw.subarray(0, 24)), 24);
      },
      /format version 4 is not one this engine reads/,
    ],
  ];
  for (const [what, damage, message] of cases) {
    const { fs, wal, raw } = await segmentOf(3);
    damage(raw);
    fs.setRawFile(wal, raw);
    await t.rejects(Engine.open(DIR, { fs }), { code: 'CORRUPTION', message }, `${what} before frames: CORRUPTION`);
  }
});

t.test('frames count only in order: a repeated frame before later ones is damage; at the end, a torn tail', async (t) => {
  const { fs, wal, raw } = await segmentOf(4);
  // Frame boundaries: header 28, then each frame's length field + 12.
  const starts: number[] = [];
  for (let p = 28; p < raw.length; p += 12 + raw.readUInt32LE(p)) starts.push(p);
  t.equal(starts.length, 4);
  const frame = (i: number) => raw.subarray(starts[i]!, starts[i + 1] ?? raw.length);
  // Frame 1 in the place of frame 2: whole and checksum-valid, but not the next index.
  fs.setRawFile(wal, Buffer.concat([frame(0), frame(1), frame(1), frame(3)].map((f, i) => (i === 0 ? Buffer.concat([raw.subarray(0, 28), f]) : f))));
  await t.rejects(Engine.open(DIR, { fs }), { code: 'CORRUPTION' }, 'a repeated frame before a later one');
  fs.setRawFile(wal, Buffer.concat([raw, frame(1)]));
  const e = await Engine.open(DIR, { fs });
  t.equal(e.stats().recoveredWalRecords, 4, 'a repeated frame at the end is not replayed');
  t.equal(e.stats().recoveredTornTailBytes, frame(1).length);
  await e.close();
});
