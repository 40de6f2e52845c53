// data-types.ts — a like counter and a tag set updated concurrently by several processes.
//
// Shows the conflict-free data types: three worker processes, each with its own client,
// increment one counter and add tags to one set at the same time (and remove some of their
// own tags with the context of a fetch). No update is lost and there is nothing to resolve:
// replicas merge the states, so once the workers are done every reader sees the sum of all
// increments and every tag that was added and not removed. A retried increment carrying the
// same `opId` counts once, and an operation of the wrong type is refused with WRONG_TYPE.
//
// Run against `npm start`'s cluster:  npm run build && node dist/examples/data-types.js
// Other seeds:                        RINGKV_SEEDS=host:port node dist/examples/data-types.js

import assert from 'node:assert/strict';
import { fork } from 'node:child_process';
import crypto from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { connect } from 'ringkv';
import type { RingkvError } from 'ringkv';

const seeds = (process.env.RINGKV_SEEDS ?? '127.0.0.1:7001').split(',');
const WORKERS = 3;
const LIKES_PER_WORKER = 40;
const TAGS_PER_WORKER = 6;

interface Report {
  likes: number;
  kept: string[];
}

if (process.argv[2] === 'worker') {
  // One worker process: its own client, its share of the likes and tags.
  const [, , , id, likesKey, tagsKey] = process.argv as [string, string, string, string, string, string];
  // The 120 increments of one counter queue on its coordinating replica (one key is applied
  // one update at a time there), so a worker allows them more than the default 2 s.
  const kv = await connect({ seeds, timeoutMs: 15_000 });
  try {
    // Likes arrive concurrently, as from many requests of a web server.
    await Promise.all(Array.from({ length: LIKES_PER_WORKER }, () => kv.counter(likesKey).increment()));
    const mine = Array.from({ length: TAGS_PER_WORKER }, (_, i) => `w${id}-tag${i}`);
    await kv.set(tagsKey).add(...mine);
    // Remove the odd ones: exactly the adds this fetch saw (other workers' concurrent adds are untouched).
    const { context } = await kv.set(tagsKey).fetch();
    const odd = mine.filter((_, i) => i % 2 === 1);
    await kv.set(tagsKey).remove(...odd, { context });
    const report: Report = { likes: LIKES_PER_WORKER, kept: mine.filter((t) => !odd.includes(t)) };
    process.send!(report);
  } finally {
    await kv.close();
  }
} else {
  const run = crypto.randomBytes(4).toString('hex');
  const likesKey = `likes:post-${run}`;
  const tagsKey = `tags:post-${run}`;
  const self = fileURLToPath(import.meta.url);

  // Start the workers at once and collect what each did.
  const reports = await Promise.all(
    Array.from({ length: WORKERS }, (_, i) =>
      new Promise<Report>((resolve, reject) => {
        const child = fork(self, ['worker', String(i), likesKey, tagsKey], { stdio: 'inherit' });
        let report: Report | undefined;
        child.on('message', (m) => (report = m as Report));
        child.on('error', reject);
        child.on('exit', (code) => (code === 0 && report ? resolve(report) : reject(new Error(`worker ${i} exited with ${code}`))));
      }),
    ),
  );

  const kv = await connect({ seeds });
  try {
    const likes = reports.reduce((n, r) => n + r.likes, 0);
    const counter = await kv.counter(likesKey).value({ consistency: 'all' });
    assert.equal(counter, likes);
    console.log(`${WORKERS} processes incremented ${likesKey} ${likes} times concurrently: the counter reads ${counter} on every replica`);

    const tags = await kv.set(tagsKey).members({ consistency: 'all' });
    assert.deepEqual(tags, reports.flatMap((r) => r.kept).sort());
    console.log(`the tag set holds every tag added and not removed: ${JSON.stringify(tags)}`);

    // A retry of an increment whose outcome was unknown (a timeout, say) with the same opId counts once.
    await kv.counter(likesKey).increment(1, { opId: `like-retry-${run}` });
    await kv.counter(likesKey).increment(1, { opId: `like-retry-${run}` });
    assert.equal(await kv.counter(likesKey).value(), likes + 1);
    console.log(`an increment sent twice with the same opId counted once: ${likes + 1}`);

    // A key holds one type: adding to the counter as a set is refused, and nothing changes.
    const err = await kv.set(likesKey).add('oops').catch((e: unknown) => e as RingkvError);
    assert.equal((err as RingkvError).code, 'WRONG_TYPE');
    console.log(`a set add on the counter is refused: ${(err as RingkvError).code}`);
  } finally {
    await kv.close();
  }
}
