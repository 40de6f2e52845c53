// basic.ts — put, get and delete at each consistency level, and a typed error.
//
// Shows: connecting with seeds; the named levels (strong: R = W = 2 of N = 3; eventual:
// 1 of 3; all: 3 of 3) and an explicit {r, w}; what put and get return (version, created,
// expiry); that a deleted key reads as undefined; that at `eventual` a read right after a
// write may miss it, until the other replicas catch up; matching an error on its `code`.
//
// Run against `npm start`'s cluster:  npm run build && node dist/examples/basic.js
// Other seeds:                        RINGKV_SEEDS=host:port,host:port node dist/examples/basic.js

import assert from 'node:assert/strict';
import { connect, quorumFor, RingkvError } from 'ringkv';
import type { Consistency } from 'ringkv';

const seeds = (process.env.RINGKV_SEEDS ?? '127.0.0.1:7001').split(',');

const kv = await connect({ seeds, valueEncoding: 'utf8' });
try {
  // Which three nodes hold a key is decided by the client from the ring, not by a server.
  console.log(`key "example:greeting" lives on ${kv.replicasOf('example:greeting').join(', ')}`);

  const levels: Consistency[] = ['strong', 'eventual', 'all', { r: 1, w: 3 }];
  for (const consistency of levels) {
    const name = typeof consistency === 'string' ? consistency : `r${consistency.r}-w${consistency.w}`;
    const key = `example:greeting:${name}`;
    // R + W > N means every read quorum overlaps every write quorum: reads see the last write.
    const { r, w } = quorumFor(consistency, 3);
    const overlapping = r + w > 3;
    console.log(`\n${name}: R=${r} W=${w}${overlapping ? '' : ' (R + W <= N: a read may miss the latest write)'}`);

    // put resolves once W replicas have the write durably (fsynced).
    const put = await kv.put(key, `hello at ${name}`, { consistency });
    console.log(`  put ${key}: created=${put.created} version=${put.version}`);

    // get waits for R replicas and returns the newest of their answers.
    const got = await kv.get(key, { consistency });
    console.log(`  get ${key}: ${JSON.stringify(got?.value)}`);
    if (overlapping) assert.equal(got?.value, `hello at ${name}`);

    // delete writes a tombstone; afterwards the key reads as undefined.
    await kv.delete(key, { consistency });
    const after = await kv.get(key, { consistency });
    console.log(`  delete ${key}: then get gives ${JSON.stringify(after?.value)}`);
    if (overlapping) assert.equal(after, undefined);
  }

  // At eventual, the delete reached one replica before it returned; the others follow
  // within moments, and then a strong read (which asks two replicas) sees it too.
  const started = Date.now();
  while ((await kv.get('example:greeting:eventual', { consistency: 'all' })) !== undefined) {
    assert.ok(Date.now() - started < 5000, 'the replicas should converge within 5 s');
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  console.log(`\nall three replicas have the eventual delete (seen within ${Date.now() - started} ms)\n`);

  // A value with a time to live carries its expiry.
  const withTtl = await kv.put('example:short-lived', 'bye soon', { ttl: 60 });
  const read = await kv.get('example:short-lived');
  console.log(`put with ttl 60 s: created=${withTtl.created}, expires at ${new Date(read!.expiresAtMs!).toISOString()}`);

  // Errors are typed: match on the stable `code`, never on the message.
  try {
    await kv.put('k'.repeat(300), 'too long a key');
    assert.fail('a 300-byte key should be refused');
  } catch (err) {
    if (!(err instanceof RingkvError) || err.code !== 'KEY_TOO_LARGE') throw err;
    console.log(`a 300-byte key is refused: ${err.code} (${err.message})`);
  }
} finally {
  await kv.close();
}
