// The per-key lock of the replica and hint stores: one key's sequences never interleave and
// run in call order, other keys are not held up, a failure does not block the queue, and
// nothing is kept once a key's queue is empty.

import t from 'tap';
import { KeyLock } from '../../storage-server/key-lock.js';

const tick = () => new Promise<void>((r) => setImmediate(r));

t.test('one key: read-modify-write sequences do not interleave, in call order', async (t) => {
  const lock = new KeyLock();
  let value = 0;
  const order: number[] = [];
  const incr = (i: number) =>
    lock.run(Buffer.from('k'), async () => {
      const read = value;
      await tick();
      await tick();
      value = read + 1;
      order.push(i);
    });
  await Promise.all(Array.from({ length: 50 }, (_, i) => incr(i)));
  t.equal(value, 50, 'no increment lost (without the lock, every read sees 0)');
  t.same(order, Array.from({ length: 50 }, (_, i) => i), 'in call order');
  t.equal(lock.size, 0, 'nothing kept once the queue is empty');
});

t.test('other keys run meanwhile; a rejection passes the lock on', async (t) => {
  const lock = new KeyLock();
  let releaseA!: () => void;
  const a = lock.run(Buffer.from('a'), () => new Promise<void>((r) => (releaseA = r)));
  let bRan = false;
  await lock.run(Buffer.from('b'), async () => {
    bRan = true;
  });
  t.ok(bRan, 'key b was not held up by key a');
  let a2Ran = false;
  const a2 = lock.run(Buffer.from('a'), async () => {
    a2Ran = true;
  });
  await tick();
  t.notOk(a2Ran, 'the second sequence of key a waits for the first');
  t.equal(lock.size, 1);
  releaseA();
  await a;
  await a2;
  t.ok(a2Ran);
  const failed = lock.run(Buffer.from('c'), async () => {
    throw new Error('boom');
  });
  const after = lock.run(Buffer.from('c'), async () => 'next');
  await t.rejects(failed, /boom/, 'the failure reaches its caller');
  t.equal(await after, 'next', 'and the next sequence of the key still runs');
  t.equal(lock.size, 0);
});

t.test('keys are compared by bytes, whatever the view', async (t) => {
  const lock = new KeyLock();
  const big = Buffer.from('xxkeyxx');
  const view = big.subarray(2, 5);
  let inside = 0;
  let overlapped = false;
  const hold = (k: Uint8Array) =>
    lock.run(k, async () => {
      inside++;
      if (inside > 1) overlapped = true;
      await tick();
      inside--;
    });
  await Promise.all([hold(view), hold(new Uint8Array(Buffer.from('key')))]);
  t.notOk(overlapped, 'a subarray and a copy of the same bytes share one lock');
});
