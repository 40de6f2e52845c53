// Per-operation decisions of a user's batch (storage-server/auth/batch-authorization.ts),
// without servers: (grants, operation, key) -> allowed / refused / a read repair to confirm,
// with the prefix edges; a write that answers with the value needs read too; an operation
// type the table does not know counts as a write. Read repair confirmation against given
// copies: the union the replicas hold is stored, a version they lack is refused.

import t from 'tap';
import { authorizeOps, confirmRepairs } from '../../../storage-server/auth/batch-authorization.js';
import type { Grant } from '../../../storage-server/auth/permissions.js';
import { Principal } from '../../../storage-server/auth/permissions.js';
import type { StoredObject } from '../../../sdk/versioning/index.js';
import type { WireOp } from '../../../sdk/wire/protocol.js';
import { OpType } from '../../../sdk/wire/protocol.js';

const lww = (value: string, ts: number, writer = 'w'): StoredObject => ({
  mode: 'lww',
  siblings: [{ value: Buffer.from(value), tombstone: false, expiresAtMs: 0, contentType: '', flags: 0, ts, writer }],
  context: {},
});
const sib = lww('x', 1).siblings[0]!;
const k = (s: string) => Buffer.from(s);

const ops = (key: string): [string, WireOp][] => [
  ['Get', { t: OpType.Get, key: k(key) }],
  ['Put', { t: OpType.Put, key: k(key), obj: lww('x', 1) }],
  ['CoordinatedPut', { t: OpType.CoordinatedPut, key: k(key), ctx: {}, sib }],
  ['Merge', { t: OpType.Merge, key: k(key), obj: lww('x', 1) }],
  ['hint', { t: OpType.Merge, key: k(key), obj: lww('x', 1), hintFor: 'n2' }],
  ['unknown', { t: 99, key: k(key) } as unknown as WireOp],
  ['DtUpdate', { t: OpType.DtUpdate, key: k(key), op: { type: 'counter', increment: 1 }, id: Buffer.from('op-1') }],
];

t.test('(grants, operation, key) -> ok / D (refused) / R (read repair to confirm)', async (t) => {
  const cases: [string, Grant[], string, string[]][] = [
    // Get, Put, CoordinatedPut, Merge, hint, unknown type, DtUpdate (answers with the state: read too)
    ['read-write app:', [{ prefix: 'app:', perms: ['read', 'write'] }], 'app:1', ['ok', 'ok', 'ok', 'ok', 'ok', 'ok', 'ok']],
    ['read-write app:, key app2:1', [{ prefix: 'app:', perms: ['read', 'write'] }], 'app2:1', ['D', 'D', 'D', 'D', 'D', 'D', 'D']],
    ['read-write app:, key app', [{ prefix: 'app:', perms: ['read', 'write'] }], 'app', ['D', 'D', 'D', 'D', 'D', 'D', 'D']],
    ['read app:', [{ prefix: 'app:', perms: ['read'] }], 'app:1', ['ok', 'D', 'D', 'R', 'D', 'D', 'D']],
    ['write app: (no read)', [{ prefix: 'app:', perms: ['write'] }], 'app:1', ['D', 'ok', 'D', 'ok', 'ok', 'ok', 'D']],
    ['no grants', [], 'app:1', ['D', 'D', 'D', 'D', 'D', 'D', 'D']],
    ['admin', [{ prefix: '', perms: ['admin'] }], 'anything', ['ok', 'ok', 'ok', 'ok', 'ok', 'ok', 'ok']],
  ];
  for (const [name, grants, key, want] of cases) {
    const list = ops(key);
    const v = authorizeOps(new Principal('u', [], grants), list.map((x) => x[1]));
    const got = list.map((_, i) => (v.repairs.includes(i) ? 'R' : v.refused[i] === undefined ? 'ok' : v.refused[i]!.ok ? '?' : v.refused[i]!.code === 'PERMISSION_DENIED' ? 'D' : v.refused[i]!.code));
    t.same(got, want, `${name} on ${key}: ${list.map((x, i) => `${x[0]} ${got[i]}`).join(', ')}`);
  }
  const bad = authorizeOps(new Principal('u', [], [{ prefix: '', perms: ['admin'] }]), [{ t: OpType.Get } as unknown as WireOp]);
  t.equal(bad.refused[0] && !bad.refused[0].ok && bad.refused[0].code, 'MALFORMED_REQUEST', 'an operation without a key is refused');
});

t.test('read repairs: the union the replicas hold, or refused', async (t) => {
  const held = lww('v2', 2000, 'a');
  const sources = (local: StoredObject | null, peers: (StoredObject | null)[]) => ({
    local: async () => local,
    peers: async (keys: Buffer[]) => keys.map(() => peers),
  });
  const [same] = await confirmRepairs([{ key: k('app:1'), obj: lww('v2', 2000, 'a') }], sources(null, [held]));
  t.same(same?.siblings[0]?.value.toString(), 'v2', 'a version a replica holds: confirmed, and the union is what is stored');
  const [forged] = await confirmRepairs([{ key: k('app:1'), obj: lww('forged', 3000, 'a') }], sources(held, [held]));
  t.equal(forged, undefined, 'a version newer than any replica holds: refused');
  const [none] = await confirmRepairs([{ key: k('app:1'), obj: lww('v2', 2000, 'a') }], sources(null, []));
  t.equal(none, undefined, 'no copy to confirm it with: refused');
});
