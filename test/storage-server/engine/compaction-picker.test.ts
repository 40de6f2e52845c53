// The compaction picker: a table of cases (sizes oldest first → the run it picks), and a
// simulation of many flushes that checks write amplification grows like a logarithm of
// the data (not linearly, as the old "merge the newest tables" fallback did) while the
// number of tables stays bounded.

import t from 'tap';
import { pickCompaction } from '../../../storage-server/engine/compaction-picker.js';
import type { PickerOptions } from '../../../storage-server/engine/compaction-picker.js';

const defaults: PickerOptions = { minMergeTables: 4, sizeRatioPercent: 100, maxSizeAmplificationPercent: 200, maxTables: 20 };

// sizes (oldest first) | expected pick: "start-end reason" or "-"
const CASES = `
1                       | -
10 1 1                  | -
10 1 1 1                | -
10 1 1 1 1              | 1-5 size-tier
10 2 1 1 1 1            | 1-6 size-tier
10 3 1 1 1 1            | 2-6 size-tier
100 4 4 4 1 1 1         | -
100 4 4 4 4 1 1 1       | 1-5 size-tier
10 10                   | -
10 10 11                | size-amplification
10 5 5 5 5 1            | 0-6 size-amplification
100 40 20 10 5          | -
`;

for (const line of CASES.trim().split('\n')) {
  const [sizesText, wantText] = line.split('|').map((s) => s.trim());
  const sizes = sizesText!.split(/\s+/).map(Number);
  t.test(`[${sizes.join(', ')}] → ${wantText}`, async (t) => {
    const p = pickCompaction(sizes, defaults);
    if (wantText === '-') t.equal(p, undefined);
    else if (wantText === 'size-amplification') t.same(p, { start: 0, end: sizes.length, reason: 'size-amplification' });
    else {
      const [range, reason] = wantText!.split(' ');
      const [start, end] = range!.split('-').map(Number);
      t.same(p, { start, end, reason });
    }
  });
}

t.test('beyond maxTables, the contiguous run of fewest bytes is merged', async (t) => {
  const o = { ...defaults, maxTables: 5, maxSizeAmplificationPercent: 1_000_000, minMergeTables: 10 };
  t.same(pickCompaction([1000, 300, 90, 30, 9, 3], o), { start: 4, end: 6, reason: 'table-count' });
  t.same(pickCompaction([1000, 300, 2, 3, 90, 30, 20], o), { start: 2, end: 5, reason: 'table-count' }, 'the cheapest window of 3, not the newest');
});

/** Flushes `flushes` equal tables one by one, compacting to quiescence after each. */
function simulate(flushes: number, o: PickerOptions): { writeAmp: number; maxTables: number } {
  let tables: number[] = [];
  let written = 0;
  let maxTables = 0;
  for (let f = 0; f < flushes; f++) {
    tables.push(1);
    for (let p = pickCompaction(tables, o); p; p = pickCompaction(tables, o)) {
      const merged = tables.slice(p.start, p.end).reduce((a, b) => a + b, 0);
      written += merged;
      tables = [...tables.slice(0, p.start), merged, ...tables.slice(p.end)];
    }
    maxTables = Math.max(maxTables, tables.length);
  }
  return { writeAmp: written / flushes, maxTables };
}

t.test('write amplification grows like log(data); tables stay bounded', async (t) => {
  for (const [flushes, bound] of [
    [50, 3],
    [500, 5],
    [5000, 7],
  ] as const) {
    const r = simulate(flushes, defaults);
    t.ok(r.writeAmp <= bound, `${flushes} flushes: compaction rewrote each byte ${r.writeAmp.toFixed(2)} times (<= ${bound})`);
    t.ok(r.maxTables <= defaults.maxTables, `${flushes} flushes: at most ${r.maxTables} tables`);
  }
});
