// shopping-cart.ts — concurrent updates kept as siblings by vector clocks, merged by the reader.
//
// Shows the Dynamo shopping cart: with `conflictMode: 'vector-clock'`, two clients (Alice's
// phone and her laptop) that both read the cart and then both add an item write concurrent
// versions. Neither overwrites the other: the next read returns both as `siblings`; a
// `resolver` merges them (here: the union of the items) into `value`; writing the merged
// cart back with that read's `context` replaces the siblings with one version.
// (With the default 'lww' mode, the later of the two writes would silently win and one
// item would be lost.) Union merges cannot express removals: a removed item comes back if
// a concurrent version still has it — carts in the Dynamo paper had the same trait.
//
// Run against `npm start`'s cluster:  npm run build && node dist/examples/shopping-cart.js
// Other seeds:                        RINGKV_SEEDS=host:port node dist/examples/shopping-cart.js

import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { connect } from 'ringkv';
import type { SiblingValue } from 'ringkv';

interface Cart {
  items: string[];
}

/** Merges concurrent carts: every item that any version has. */
function mergeCarts(siblings: SiblingValue<unknown>[]): Cart {
  const items = new Set<string>();
  for (const s of siblings) for (const item of (s.value as Cart).items) items.add(item);
  return { items: [...items].sort() };
}

const seeds = (process.env.RINGKV_SEEDS ?? '127.0.0.1:7001').split(',');
const key = `cart:alice:${crypto.randomBytes(4).toString('hex')}`;

// Two devices of the same user, each with its own client (as two app servers would have).
const phone = await connect({ seeds, valueEncoding: 'json', conflictMode: 'vector-clock', clientId: 'phone' });
const laptop = await connect({ seeds, valueEncoding: 'json', conflictMode: 'vector-clock', clientId: 'laptop' });
// The checkout service reads with a resolver that merges what it finds.
const checkout = await connect({ seeds, valueEncoding: 'json', conflictMode: 'vector-clock', resolver: mergeCarts });
try {
  await phone.put(key, { items: ['milk'] } satisfies Cart);
  console.log(`phone:    cart ${key} = ["milk"]`);

  // Both devices read the same version of the cart...
  const onPhone = await phone.get(key);
  const onLaptop = await laptop.get(key);
  assert.ok(onPhone && onLaptop);
  assert.equal(onPhone.context, onLaptop.context);

  // ...and each adds an item at the same moment, passing the context of what it read.
  await Promise.all([
    phone.put(key, { items: [...(onPhone.value as Cart).items, 'eggs'] }, { context: onPhone.context }),
    laptop.put(key, { items: [...(onLaptop.value as Cart).items, 'bread'] }, { context: onLaptop.context }),
  ]);
  console.log('phone:    adds "eggs"   (concurrently)');
  console.log('laptop:   adds "bread"  (concurrently)');

  // Neither write descends from the other: the cart now has two siblings.
  const seen = await checkout.get(key);
  assert.ok(seen?.siblings);
  assert.equal(seen.siblings.length, 2);
  for (const s of seen.siblings) console.log(`checkout: sibling from ${s.writer.padEnd(6)} ${JSON.stringify((s.value as Cart).items)}`);
  console.log(`checkout: resolver merges them into ${JSON.stringify((seen.value as Cart).items)}`);
  assert.deepEqual(seen.value, { items: ['bread', 'eggs', 'milk'] });

  // Writing the merge with the read's context supersedes both siblings.
  await checkout.put(key, seen.value, { context: seen.context });
  const after = await phone.get(key);
  assert.equal(after?.siblings, undefined);
  assert.deepEqual(after?.value, { items: ['bread', 'eggs', 'milk'] });
  console.log(`phone:    reads one version again: ${JSON.stringify((after.value as Cart).items)}`);

  await checkout.delete(key);
} finally {
  await Promise.all([phone.close(), laptop.close(), checkout.close()]);
}
