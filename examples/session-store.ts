// session-store.ts — web sessions that expire by themselves, with a sliding expiry.
//
// Shows: JSON values (`valueEncoding: 'json'`), a time to live per write (`ttl`, seconds),
// the expiry a read reports (`expiresAtMs`), renewing a session by writing it again with a
// fresh ttl, and that an expired session simply reads as undefined — no cleanup job: every
// replica stops returning it at its expiry and compaction drops it later.
// The demo uses a 2-second ttl so that it runs in a few seconds; a real store would use 30 min.
//
// Run against `npm start`'s cluster:  npm run build && node dist/examples/session-store.js
// Other seeds:                        RINGKV_SEEDS=host:port node dist/examples/session-store.js

import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { connect } from 'ringkv';
import type { RingkvClient } from 'ringkv';

interface Session {
  userId: string;
  createdAt: string;
  cart?: string[];
}

/** Sessions keyed by a random id, each written with a ttl that every visit renews. */
class SessionStore {
  constructor(
    private readonly kv: RingkvClient<unknown>,
    private readonly ttlSec: number,
  ) {}

  private key(id: string): string {
    return `session:${id}`;
  }

  async create(userId: string): Promise<string> {
    const id = crypto.randomBytes(16).toString('base64url');
    const session: Session = { userId, createdAt: new Date().toISOString() };
    await this.kv.put(this.key(id), session, { ttl: this.ttlSec });
    return id;
  }

  /** The session, or undefined once it has expired (or never existed). */
  async get(id: string): Promise<{ session: Session; expiresAt: Date } | undefined> {
    const r = await this.kv.get(this.key(id));
    if (!r) return undefined;
    return { session: r.value as Session, expiresAt: new Date(r.expiresAtMs!) };
  }

  /** Sliding expiry: a visit writes the session again, with a fresh ttl. */
  async touch(id: string, update: Partial<Session> = {}): Promise<boolean> {
    const current = await this.get(id);
    if (!current) return false;
    await this.kv.put(this.key(id), { ...current.session, ...update }, { ttl: this.ttlSec });
    return true;
  }

  async destroy(id: string): Promise<void> {
    await this.kv.delete(this.key(id));
  }
}

const seeds = (process.env.RINGKV_SEEDS ?? '127.0.0.1:7001').split(',');
const TTL_SEC = 2;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const t0 = Date.now();
const at = () => `t=${((Date.now() - t0) / 1000).toFixed(1)}s`;

const kv = await connect({ seeds, valueEncoding: 'json' });
try {
  const store = new SessionStore(kv, TTL_SEC);

  const alice = await store.create('alice');
  const bob = await store.create('bob');
  const a = await store.get(alice);
  assert.ok(a);
  console.log(`${at()} alice's session ${alice.slice(0, 8)}… for ${a.session.userId}, expires at ${a.expiresAt.toISOString()}`);
  console.log(`${at()} bob's session ${bob.slice(0, 8)}… created; bob then goes idle`);

  // Alice keeps clicking: each visit renews her session before it runs out.
  for (let i = 0; i < 3; i++) {
    await sleep(1000);
    assert.ok(await store.touch(alice, { cart: ['book'] }));
    console.log(`${at()} alice visits again: session renewed for ${TTL_SEC} s`);
  }

  // By now (3 s) bob's 2-second session has expired by itself.
  assert.equal(await store.get(bob), undefined);
  console.log(`${at()} bob's session has expired: get returns undefined`);
  const still = await store.get(alice);
  assert.deepEqual(still?.session.cart, ['book']);
  console.log(`${at()} alice's session is alive, with her cart ${JSON.stringify(still.session.cart)}`);

  // Alice stops clicking; her session ends ttl seconds after her last visit.
  await sleep(TTL_SEC * 1000 + 200);
  assert.equal(await store.get(alice), undefined);
  console.log(`${at()} alice went idle for ${TTL_SEC} s: her session expired too`);

  // Logging out deletes at once rather than waiting for the ttl.
  const carol = await store.create('carol');
  await store.destroy(carol);
  assert.equal(await store.get(carol), undefined);
  console.log(`${at()} carol logged out: her session is gone immediately`);
} finally {
  await kv.close();
}
