// typed-json.ts — connect<T>({ valueEncoding: 'json' }): get() and entries() yield T and
// put() takes T, so the compiler checks what the application stores.
//
// Run against `npm start`'s cluster:  npm run build && node dist/examples/typed-json.js

import assert from 'node:assert/strict';
import { connect } from 'ringkv';

interface Profile {
  name: string;
  languages: string[];
  visits: number;
}

const seeds = (process.env.RINGKV_SEEDS ?? '127.0.0.1:7001').split(',');
const profiles = await connect<Profile>({ seeds, valueEncoding: 'json' });
try {
  await profiles.put('example:profile:ada', { name: 'Ada', languages: ['en', 'fr'], visits: 1 });
  // profiles.put('example:profile:bob', { name: 'Bob' }); // does not compile: languages and visits are missing

  const got = await profiles.get('example:profile:ada');
  const ada: Profile | undefined = got?.value; // typed: no cast
  assert.ok(ada);
  await profiles.put('example:profile:ada', { ...ada, visits: ada.visits + 1 });
  const again = await profiles.get('example:profile:ada');
  console.log(`${again?.value.name} speaks ${again?.value.languages.join(' and ')}, ${again?.value.visits} visits`);
  assert.equal(again?.value.visits, 2);
  await profiles.delete('example:profile:ada');
} finally {
  await profiles.close();
}
