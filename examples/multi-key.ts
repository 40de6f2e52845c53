// multi-key.ts — putMany, getMany and deleteMany: many keys in one call, batched per node,
// with one outcome per key; a bad key fails alone with its own typed error.
//
// Run against `npm start`'s cluster:  npm run build && node dist/examples/multi-key.js

import assert from 'node:assert/strict';
import { connect } from 'ringkv';

const seeds = (process.env.RINGKV_SEEDS ?? '127.0.0.1:7001').split(',');
const kv = await connect({ seeds, valueEncoding: 'utf8' });
try {
  const keys = Array.from({ length: 100 }, (_, i) => `example:many:${i}`);
  const before = kv.batchCounters.batches;
  const put = await kv.putMany([...keys.map((key) => ({ key, value: `value ${key}` })), { key: 'x'.repeat(300), value: 'a key too long' }]);
  const failed = put.filter((o) => !o.ok);
  assert.equal(failed.length, 1);
  console.log(`putMany: ${put.length - failed.length} keys written in ${kv.batchCounters.batches - before} batch requests; the long key failed alone with ${failed[0]!.ok ? '' : failed[0]!.error.code}`);

  const got = await kv.getMany([...keys.slice(0, 3), 'example:many:missing']);
  for (const o of got) console.log(`  getMany ${String(o.key)}: ${o.ok ? (o.result?.value ?? '(missing)') : o.error.code}`);
  assert.equal(got[0]!.ok && got[0]!.result?.value, 'value example:many:0');

  const del = await kv.deleteMany(keys);
  assert.ok(del.every((o) => o.ok));
  const after = await kv.getMany(keys);
  assert.ok(after.every((o) => o.ok && o.result === undefined));
  console.log(`deleteMany: all ${keys.length} keys deleted; getMany now reads them all as missing`);
} finally {
  await kv.close();
}
