// The memtable against a Map model: random keys (shared prefixes, zero bytes, keys that are
// prefixes of others, lengths 1..40) written in groups through reserve/commit, overwritten
// and deleted; gets return the newest version, sorted order equals Buffer.compare order
// (the radix sort), range() bounds hold, and flush spans decode to the same records.

import fc from 'fast-check';
import t from 'tap';
import { bloomHash } from '../../../storage-server/engine/bloom-filter.js';
import { Memtable } from '../../../storage-server/engine/memtable.js';
import type { EngineRecord } from '../../../storage-server/engine/record.js';
import { decodeRecord, RecordSpan, recordSize, writeRecord } from '../../../storage-server/engine/record.js';

const EMPTY = Buffer.alloc(0);

function rec(key: Buffer, seq: number, value: string, tombstone = false): EngineRecord {
  return { key, seq, tombstone, expiresAtMs: tombstone ? 1000 : 0, flags: 0, contentType: '', version: EMPTY, value: tombstone ? EMPTY : Buffer.from(value) };
}

/** Writes a group the way the engine's leader does: one reserve, encode, commit. */
function writeGroup(m: Memtable, records: EngineRecord[]): void {
  const bytes = records.reduce((s, r) => s + recordSize(r), 0);
  const area = m.reserve(8 + bytes);
  let end = area.start + 8;
  for (const r of records) end = writeRecord(area.buf, end, r);
  m.commit(area.buf, area.start + 8, end);
}

// Keys from a small alphabet with common prefixes, so radix digits tie often.
const keyArb = fc
  .tuple(fc.constantFrom('', 'user:', 'user:0000', '\u0000\u0000', 'a'), fc.uint8Array({ minLength: 0, maxLength: 30 }).map((a) => a.map((b) => b % 4)))
  .map(([p, tail]) => Buffer.concat([Buffer.from(p, 'latin1'), Buffer.from(tail)]))
  .filter((k) => k.length > 0);

t.test('memtable agrees with a Map model; sorted order is byte order', async (t) => {
  fc.assert(
    fc.property(
      fc.array(fc.array(fc.tuple(keyArb, fc.boolean()), { minLength: 1, maxLength: 20 }), { minLength: 1, maxLength: 60 }),
      fc.integer({ min: 4096, max: 1 << 20 }),
      (groups, sizeHint) => {
        const m = new Memtable(1, sizeHint);
        const model = new Map<string, EngineRecord>();
        let seq = 0;
        for (const g of groups) {
          const records = g.map(([k, del]) => rec(k, ++seq, `v${seq}`, del));
          writeGroup(m, records);
          for (const r of records) model.set(r.key.toString('latin1'), r);
        }
        if (m.size !== model.size) throw new Error(`size ${m.size} != ${model.size}`);
        for (const [k, want] of model) {
          const key = Buffer.from(k, 'latin1');
          const got = m.get(key, bloomHash(key));
          if (!got || got.seq !== want.seq || got.tombstone !== want.tombstone || !got.value.equals(want.value)) {
            throw new Error(`get(${key.toString('hex')}) = seq ${got?.seq}, want ${want.seq}`);
          }
        }
        const wantOrder = [...model.keys()].map((k) => Buffer.from(k, 'latin1')).sort(Buffer.compare);
        const span = new RecordSpan();
        const ids = m.sortedIds();
        const flushed = Array.from(ids, (id) => {
          const buf = m.spanOf(id, span);
          return decodeRecord(buf, { pos: span.start }, { file: 'test', baseOffset: 0 });
        });
        if (flushed.length !== wantOrder.length || flushed.some((r, i) => !r.key.equals(wantOrder[i]!))) {
          throw new Error(`sorted order differs: ${flushed.map((r) => r.key.toString('hex')).join(',')}`);
        }
        if (flushed.some((r) => r.seq !== model.get(r.key.toString('latin1'))!.seq)) throw new Error('flush span is not the newest version');
        const from = wantOrder[Math.floor(wantOrder.length / 3)]!;
        const to = wantOrder[Math.floor((2 * wantOrder.length) / 3)]!;
        const ranged = m.range(from, to).map((r) => r.key.toString('hex'));
        const wantRange = wantOrder.filter((k) => Buffer.compare(k, from) >= 0 && Buffer.compare(k, to) < 0).map((k) => k.toString('hex'));
        if (JSON.stringify(ranged) !== JSON.stringify(wantRange)) throw new Error('range() bounds');
        return true;
      },
    ),
    { numRuns: 300 },
  );
  t.pass('300 random memtables');
});

t.test('a missing key, an empty memtable, and a group larger than an arena chunk', async (t) => {
  const m = new Memtable(1, 4096);
  const k = Buffer.from('nope');
  t.equal(m.get(k, bloomHash(k)), undefined);
  const big = Array.from({ length: 300 }, (_, i) => rec(Buffer.from(`key-${String(i).padStart(4, '0')}`), i + 1, 'x'.repeat(200)));
  writeGroup(m, big);
  t.equal(m.size, 300);
  t.ok(m.bytes > 300 * 200, `bytes ${m.bytes} count the arena`);
  const key = Buffer.from('key-0299');
  t.equal(m.get(key, bloomHash(key))?.seq, 300);
  t.equal(m.get(k, bloomHash(k)), undefined);
});

t.test('the sliced sort of a flush (turns of the event loop between runs) gives the same order', async (t) => {
  await fc.assert(
    fc.asyncProperty(fc.array(keyArb, { minLength: 1, maxLength: 3000 }), async (keys) => {
      const a = new Memtable(1, 1 << 20);
      const b = new Memtable(1, 1 << 20);
      let seq = 0;
      for (let i = 0; i < keys.length; i += 50) {
        const group = keys.slice(i, i + 50).map((k) => rec(k, ++seq, `v${seq}`));
        writeGroup(a, group);
        writeGroup(b, group);
      }
      const sliced = await b.sortedIdsSliced(0);
      const want = a.sortedIds();
      if (sliced.length !== want.length) throw new Error(`${sliced.length} ids, want ${want.length}`);
      // The same groups were written to both, so entry ids match one for one.
      for (let i = 0; i < want.length; i++) if (sliced[i] !== want[i]) throw new Error(`position ${i}: id ${sliced[i]}, want ${want[i]}`);
    }),
    { numRuns: 40 },
  );
  // A large memtable of token-prefixed keys (like the replica store's) is sorted in many slices.
  const m = new Memtable(1, 16 << 20);
  let seq = 0;
  for (let g = 0; g < 400; g++) {
    const group: EngineRecord[] = [];
    for (let i = 0; i < 150; i++) {
      const n = g * 150 + i;
      const k = Buffer.alloc(4 + 12);
      k.writeUInt32BE((n * 2654435761) % 384, 0);
      k.write(`user${String((n * 7919) % 1_000_000).padStart(8, '0')}`, 4, 'latin1');
      group.push(rec(k, ++seq, 'x'));
    }
    writeGroup(m, group);
  }
  let turns = 0;
  const ticker = setInterval(() => turns++, 0);
  const ids = await m.sortedIdsSliced(0);
  clearInterval(ticker);
  t.ok(turns > 0, `the event loop ran timers ${turns} times while ${ids.length} keys were sorted`);
  const span = new RecordSpan();
  let prev: Buffer | undefined;
  let ordered = true;
  for (const id of ids) {
    const buf = m.spanOf(id, span);
    const key = Buffer.from(buf.subarray(span.keyStart, span.keyEnd));
    if (prev && Buffer.compare(prev, key) >= 0) ordered = false;
    prev = key;
  }
  t.ok(ordered, 'strictly ascending keys');
  t.equal(m.sortedIds(), ids, 'the sorted order is cached');
});
