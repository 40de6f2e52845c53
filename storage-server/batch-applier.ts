// Applies batches of replica operations (get, merge, put, coordinated put, data-type update)
// to this node's replica store: from the batch endpoint and from the embedded client's
// local shortcut alike. It refuses writes routed on an older ring (RING_CHANGED, with this
// node's view), reads while the node recovers, and a user's operations its permissions do
// not cover; it counts served keys for the hot-key sketch, tracks near-cache reads, and
// records metrics per batch. Operations of a batch run concurrently; the replica store
// serializes per key.

import type { AuthCaller } from './auth/auth-service.js';
import type { RepairSources } from './auth/batch-authorization.js';
import { authorizeOps, confirmRepairs } from './auth/batch-authorization.js';
import { reachable } from '../sdk/membership.js';
import type { RingStamp } from '../sdk/ring-epoch.js';
import { checkRouted } from '../sdk/ring-epoch.js';
import type { StoredObject } from '../sdk/versioning/index.js';
import type { BatchResponse, MergeOp, WireOp, WireResult } from '../sdk/wire/protocol.js';
import { MESSAGE_VERSION, OpType, Routes } from '../sdk/wire/protocol.js';
import type { NodeParts } from './node-parts.js';

const OP_NAMES: Record<number, string> = { 1: 'get', 2: 'merge', 3: 'coordinated_put', 4: 'put', 5: 'dt_update' };

type Parts = Pick<NodeParts, 'id' | 'config' | 'clock' | 'membership' | 'store' | 'invalidations' | 'hotKeys' | 'metrics' | 'transport' | 'client' | 'admittedWrites'>;

export class BatchApplier {
  /** Write operations refused with RING_CHANGED since start (for metrics and the status). */
  ringRefusals = 0;

  constructor(private readonly n: Parts) {}

  /**
   * Applies a batch of operations concurrently, with metrics counted per batch (one counter
   * update per operation kind and outcome, one latency sample per operation kind) rather
   * than per operation. Writes routed on `ring` are refused with RING_CHANGED when this
   * node knows a newer ring (sdk/ring-epoch.ts) or has not heard the cluster's membership
   * since it started; the answer then carries this node's view. A recovering node answers
   * reads UNAVAILABLE.
   */
  async apply(ops: WireOp[], deadline?: number, ring?: RingStamp): Promise<BatchResponse> {
    const { id, membership, store, metrics } = this.n;
    const started = performance.now();
    let refuse: string | undefined;
    if (ring !== undefined && ops.some(isWriteOp)) {
      const mine = membership.ring;
      if (!membership.synced) refuse = `node ${id} has not heard the cluster's membership since it started`;
      else {
        const verdict = checkRouted(ring, mine);
        if (verdict === 'older') refuse = `node ${id} knows ring epoch ${mine.epoch}; writes routed on epochs below ${mine.floor} are refused (this one: ${ring.epoch})`;
        else if (verdict === 'diverged') refuse = `node ${id} knows another ring at epoch ${mine.epoch}`;
      }
    }
    const recovering = membership.self.state === 'recovering';
    const resultsP = Promise.all(
      ops.map((op): Promise<WireResult> | WireResult => {
        if (refuse !== undefined && isWriteOp(op)) {
          this.ringRefusals++;
          return { ok: false, code: 'RING_CHANGED', msg: refuse };
        }
        if (recovering && (op as { t?: number })?.t === OpType.Get) {
          return { ok: false, code: 'UNAVAILABLE', msg: `node ${id} is recovering from an outage longer than the tombstone grace period: it serves no reads until repaired` };
        }
        this.countKey(op);
        const sid = (op as { track?: unknown }).track;
        if (typeof sid === 'string' && op.t === OpType.Get && op.key instanceof Uint8Array && this.n.invalidations.track(sid, op.key)) {
          // Tracked before it is read: a change from now on is sent on the client's stream.
          return store.apply(op, deadline).then((r) => (r.ok ? { ...r, tracked: true } : r));
        }
        return store.apply(op, deadline);
      }),
    );
    // Writes admitted under a ring: a ring fence waits for them (membership/ring-fence.ts).
    const results = await (ring !== undefined && refuse === undefined && ops.some(isWriteOp) ? this.n.admittedWrites.track(ring.epoch, resultsP) : resultsP);
    const ms = performance.now() - started;
    const counts = new Map<string, number>();
    const kinds = new Set<string>();
    for (let i = 0; i < ops.length; i++) {
      const name = OP_NAMES[(ops[i] as { t?: number })?.t ?? 0] ?? 'unknown';
      const r = results[i]!;
      const k = `${name}\0${r.ok ? 'ok' : r.code}`;
      counts.set(k, (counts.get(k) ?? 0) + 1);
      kinds.add(name);
    }
    for (const [k, n] of counts) {
      const [op, outcome] = k.split('\0') as [string, string];
      metrics.replicaOps.inc({ op, outcome }, n);
    }
    // The batch's duration stands for each kind it carried (operations run concurrently).
    for (const op of kinds) metrics.replicaOpLatency.observe({ op }, ms / 1000);
    const response: BatchResponse = { v: MESSAGE_VERSION.batch, results, now: this.n.clock.nowMs() };
    if (refuse !== undefined) response.view = { ...membership.view(), now: response.now! };
    return response;
  }

  /**
   * A batch from a user (authentication on): each operation checked against its key's
   * prefix; the refused ones answered PERMISSION_DENIED and not done; a reader's read repairs
   * confirmed with the key's other replicas and replaced by what they hold.
   */
  async applyForUser(caller: AuthCaller & { kind: 'user' }, ops: WireOp[], deadline: number | undefined, ring: RingStamp | undefined): Promise<BatchResponse> {
    const { refused, repairs } = authorizeOps(caller.principal, ops);
    let todo = ops;
    if (repairs.length > 0) {
      todo = ops.slice();
      const items = repairs.map((i) => {
        const op = ops[i] as MergeOp;
        return { key: Buffer.from(op.key.buffer, op.key.byteOffset, op.key.byteLength), obj: op.obj };
      });
      const unions = await confirmRepairs(items, this.repairSources(deadline));
      repairs.forEach((i, j) => {
        const union = unions[j];
        if (union) todo[i] = { t: OpType.Merge, key: items[j]!.key, obj: union };
        else {
          refused[i] = {
            ok: false,
            code: 'PERMISSION_DENIED',
            msg: `user ${caller.principal.user} may read but not write ${JSON.stringify(items[j]!.key.toString('utf8'))}: its read repair carries a version the key's replicas do not hold`,
          };
        }
      });
    }
    const idx: number[] = [];
    const allowed: WireOp[] = [];
    for (let i = 0; i < todo.length; i++) {
      if (refused[i] === undefined) {
        idx.push(i);
        allowed.push(todo[i]!);
      }
    }
    const denied = todo.length - allowed.length;
    if (denied > 0) this.n.metrics.authRefusals.inc({ code: 'PERMISSION_DENIED', what: 'operation' }, denied);
    if (denied === 0) return this.apply(allowed, deadline, ring);
    const response = allowed.length > 0 ? await this.apply(allowed, deadline, ring) : { v: MESSAGE_VERSION.batch, results: [], now: this.n.clock.nowMs() };
    const results: WireResult[] = refused.map((r) => r!);
    idx.forEach((i, j) => {
      results[i] = response.results[j]!;
    });
    return { ...response, results };
  }

  /**
   * Where a reader's read repair is confirmed (auth/batch-authorization.ts): this node's copy
   * and the copies of the key's other live replicas, fetched by this node over its own
   * (node-certificate) connections.
   */
  private repairSources(deadline: number | undefined): RepairSources {
    const { id, membership, store, transport, config } = this.n;
    return {
      local: async (key) => {
        const r = await store.apply({ t: OpType.Get, key });
        return r.ok ? r.obj : null;
      },
      peers: async (keys) => {
        const out: (StoredObject | null)[][] = keys.map(() => []);
        const byAddress = new Map<string, number[]>();
        const ring = this.n.client!.cluster.ring;
        for (let i = 0; i < keys.length; i++) {
          for (const replica of ring.replicas(keys[i]!)) {
            if (replica === id) continue;
            const m = membership.get(replica);
            if (!m || !reachable(m)) continue;
            const address = membership.addressOf(m);
            const list = byAddress.get(address) ?? [];
            list.push(i);
            byAddress.set(address, list);
          }
        }
        const left = deadline !== undefined ? deadline - performance.now() : config.requestTimeoutMs;
        const timeoutMs = Math.max(1, Math.min(config.requestTimeoutMs, left));
        await Promise.all(
          [...byAddress].map(async ([address, idx]) => {
            try {
              const r = await transport.call<BatchResponse>(address, Routes.batch, { v: MESSAGE_VERSION.batch, from: id, ops: idx.map((i) => ({ t: OpType.Get, key: keys[i]! })), timeoutMs }, { timeoutMs });
              idx.forEach((i, j) => {
                const x = r.results?.[j];
                if (x?.ok) out[i]!.push(x.obj);
              });
            } catch {
              // an unreachable replica confirms nothing
            }
          }),
        );
        return out;
      },
    };
  }

  /** Counts an operation this node serves in the hot-key sketch (hints held for other nodes are not served here). */
  private countKey(op: WireOp): void {
    const o = op as { t?: number; key?: unknown; hintFor?: unknown } | undefined;
    if (!o || !(o.key instanceof Uint8Array)) return;
    if (o.hintFor !== undefined && o.hintFor !== this.n.id) return;
    this.n.hotKeys.record(o.key, o.t !== OpType.Get);
  }
}

/** True for the operations that write (everything but Get). */
function isWriteOp(op: WireOp): boolean {
  const t = (op as { t?: number } | undefined)?.t;
  return t === OpType.Merge || t === OpType.Put || t === OpType.CoordinatedPut || t === OpType.DtUpdate;
}
