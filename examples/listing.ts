// listing.ts — kv.keys() and kv.entries(): every live key (with a prefix) as an async
// iterator over the ring's ranges, one replica per range, and resuming from a cursor.
//
// Run against `npm start`'s cluster:  npm run build && node dist/examples/listing.js

import assert from 'node:assert/strict';
import { connect } from 'ringkv';

const seeds = (process.env.RINGKV_SEEDS ?? '127.0.0.1:7001').split(',');
const kv = await connect({ seeds, valueEncoding: 'utf8' });
try {
  const run = Date.now().toString(36);
  const prefix = `example:list:${run}:`;
  await kv.putMany(Array.from({ length: 60 }, (_, i) => ({ key: `${prefix}${i}`, value: `item ${i}` })), { consistency: 'all' });
  await kv.delete(`${prefix}0`, { consistency: 'all' });

  // The first 25 keys, then stop — as a job that is interrupted would.
  const first = kv.keys({ prefix, pageSize: 10 });
  const seen: string[] = [];
  for await (const key of first) {
    seen.push(key);
    if (seen.length === 25) break;
  }
  const cursor = first.cursor;
  console.log(`listed ${seen.length} keys, then stopped at cursor ${cursor}`);

  // Later (or in another process): the rest, with their values.
  let values = 0;
  for await (const e of kv.entries({ prefix, cursor })) {
    seen.push(e.key);
    if (e.value === `item ${e.key.slice(prefix.length)}`) values++;
  }
  assert.equal(seen.length, 59);
  assert.equal(new Set(seen).size, 59);
  console.log(`resumed from the cursor: ${seen.length} keys in all, none twice, the deleted one left out; ${values} values read with entries()`);
  await kv.deleteMany(seen);
} finally {
  await kv.close();
}
