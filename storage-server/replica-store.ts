// A node's replica of the data: applies wire operations (get, merge, coordinated
// vector-clock put) to the engine, keeping per key the last-write-wins winner or the
// concurrent siblings. Read-merge-write of one key is serialized by a per-key lock, so
// two concurrent merges of the same key never lose each other; different keys proceed
// in parallel and their engine writes share group commits.
//
// Engine keys are the key's ring token (4 bytes, big-endian) followed by the key, so that
// the data of a token range is one contiguous engine range: anti-entropy and range
// streaming read ranges with the engine's iterator. Every write also updates the node's
// Merkle leaf hashes (anti-entropy/leaf-hashes.ts). A tombstone without a version is a
// local purge marker (cleanup of ranges this node no longer owns): it reads as absent and
// never travels to other replicas.
//
// Fresh writes (Put, CoordinatedPut) are refused with CLOCK_SKEW when their timestamp
// leads this node's clock by more than maxClockSkewMs; versions that already exist
// elsewhere (Merge: read repair, hints, anti-entropy, streaming) are not. A tombstone's
// grace period counts from when this node stored it, by this node's clock.
//
// Vector-clock writes coordinated here take their dots from the node's DotCounter (its
// actor, node-wide counter); a purge of a key whose copy holds the current actor's dots
// retires that actor first (see ../sdk/versioning/versioning.md).
//
// A key in a quarantined engine block (a checksum failure: engine/README.md, "Corrupt data
// blocks") cannot be vouched for: a Get answers SUSPECT_RANGE (the client asks another
// replica), a Merge or Put writes over it as if the key were absent (its local version is
// unreadable; the incoming one comes from a replica that has it), a CoordinatedPut or a
// DtUpdate is refused (this node could not see the dots it handed out before). The first
// write over a key of a quarantined block retires the actor (once per block): the lost
// copy may have held a data type's events of this actor, which the incoming state may
// lack, and a data type numbers its events from the key's own state. Scans pass over the
// block, so the Merkle leaves covering it differ and anti-entropy repairs exactly that range.
//
// Data types (counter, set, register, map; ../sdk/crdt/): a DtUpdate is applied here as this
// node's actor and its result returned for the client to Merge into the other replicas;
// every merge of a data type joins the states (crdtMerge) and settles the result as this
// node (crdtSettle). A key holds one data type: plain writes (Put, CoordinatedPut) on it,
// and updates of another type, are refused with WRONG_TYPE.

import { ClockSkewError, DeadlineExceededError, InvalidArgumentError, SuspectRangeError, WrongTypeError } from '../sdk/errors.js';
import type { ErrorCode } from '../sdk/errors.js';
import { checkContentType, checkKey, checkNodeId, checkValue } from '../sdk/limits.js';
import type { Sibling, StoredObject, VersionVector } from '../sdk/versioning/index.js';
import { contextCounter, dvvUpdate, fromRecordFields, liveSiblings, maxTs, mergeObjects, nextCounter, objectsEqual, toRecordFields } from '../sdk/versioning/index.js';
import type { WireOp, WireResult } from '../sdk/wire/protocol.js';
import { OpType } from '../sdk/wire/protocol.js';
import type { Clock } from '../sdk/clock.js';
import { hlcToWallMs } from '../sdk/hlc.js';
import type { Engine, EngineRecord, QuarantinedBlock, WriteOp } from './engine/index.js';
import { Ring } from '../sdk/ring.js';
import type { Digest } from './anti-entropy/leaf-hashes.js';
import { entryDigest, LeafHashes } from './anti-entropy/leaf-hashes.js';
import { RateLimiter } from './engine/rate-limiter.js';
import type { DotCounter } from './dot-counter.js';
import { EngineError } from './engine/engine-errors.js';
import { asRingkvError } from './engine-error-map.js';
import type { CrdtOp, CrdtOptions, CrdtState } from '../sdk/crdt/index.js';
import { MAX_OP_ID_BYTES, crdtApply, crdtMerge, crdtSettle, decodeCrdt, encodeCrdt, foldActor } from '../sdk/crdt/index.js';
import { asWireArgumentError, crdtToObject, crdtTypeOf } from '../sdk/crdt/crdt-object.js';
import { TYPE_CODES } from '../sdk/crdt/crdt-state.js';
import { KeyLock } from './key-lock.js';

/** Largest engine key of the replica store: token + the largest user key. */
export const REPLICA_ENGINE_MAX_KEY_BYTES = 4 + 256;

/** The engine key of a user key: its ring token (big-endian) then the key. */
export function engineKeyOf(key: Buffer, token = Ring.tokenOf(key)): Buffer {
  const out = Buffer.allocUnsafe(4 + key.length);
  out.writeUInt32BE(token, 0);
  key.copy(out, 4);
  return out;
}

/** Engine key bound for a token: every key with a token >= t sorts at or after it. */
export function tokenBound(t: number): Buffer {
  const b = Buffer.allocUnsafe(4);
  b.writeUInt32BE(t, 0);
  return b;
}

/** One stored entry as anti-entropy and streaming see it. */
export interface StoredEntry {
  key: Buffer;
  token: number;
  /** The encoded version (what the digest covers). */
  version: Buffer;
  digest: Digest;
  record: EngineRecord;
}

/** A quarantined engine block as the replica store sees it: with the token span its keys can have. */
export interface SuspectRange extends QuarantinedBlock {
  /** Tokens [first, last] (inclusive) of the keys the block can hold. */
  tokens: [number, number];
}

/** The token of an engine key (its first 4 bytes, big-endian; a shorter key is padded with zeros). */
function tokenOfEngineKey(k: Buffer): number {
  return (k.length >= 4 ? k : Buffer.concat([k, Buffer.alloc(4 - k.length)])).readUInt32BE(0);
}

export interface ReplicaStoreOptions {
  /** How far a fresh write's timestamp may lead this node's clock. Default 5000 ms. */
  maxClockSkewMs?: number;
  /** This node's vector-clock actor and dot counter (the data directory's ACTOR file). */
  dots: DotCounter;
  /** Options of the data types (the applied-op window); the same on every node. Defaults: sdk/crdt's. */
  crdt?: CrdtOptions;
  /**
   * Told every change of a stored object, inside the key's lock, before the operation that
   * made it is answered: `shipped` when the object came from another data center or moves
   * within this one (a Merge marked shipped, streaming), so it is not queued for the others
   * again (cross-DC replication, ../replication/). A rejection fails the operation.
   */
  onChange?: (key: Buffer, obj: StoredObject, shipped: boolean) => Promise<void> | void;
}

/** Result of applying an operation: the replica's object afterwards, and whether a live value existed before. */
export interface ApplyResult {
  obj: StoredObject | null;
  created: boolean;
  changed: boolean;
  /** A merged data type lost to the other type this replica holds (its updates do not take effect here). */
  lostOnType?: boolean;
}

export class ReplicaStore {
  private readonly locks = new KeyLock();
  /** Operations applied, by type (for metrics). */
  readonly counters = {
    gets: 0,
    merges: 0,
    puts: 0,
    lostPuts: 0,
    skewRefused: 0,
    coordinatedPuts: 0,
    unchangedMerges: 0,
    hints: 0,
    purges: 0,
    /** Gets answered SUSPECT_RANGE (the key is in a quarantined block). */
    suspectGets: 0,
    /** Merges and puts written over a key of a quarantined block (its repair). */
    suspectWrites: 0,
    /** Keys of a quarantined block that no replica holds, purged here (see resolveSuspect). */
    suspectPurges: 0,
    dtUpdates: 0,
    /** Data-type updates whose operation id the state's window held (a retry): not applied again. */
    dtRetries: 0,
    /** Keys whose counter entries of removed nodes were folded into this node. */
    folds: 0,
  };
  private readonly maxClockSkewMs: number;
  private readonly dots: DotCounter;
  private readonly crdtOptions: CrdtOptions;
  /** Quarantined blocks (`file:offset`) written over since the actor was retired for them. */
  private readonly retiredForBlocks = new Set<string>();
  private readonly onChange: ReplicaStoreOptions['onChange'];
  /** Merkle leaf hashes of everything stored here, maintained on every write. */
  readonly leaves = new LeafHashes();
  /**
   * Told every key whose stored version changed here (written or purged), once the new
   * version is readable, under the key's lock: the near cache's invalidations (invalidation-hub.ts).
   */
  onKeyChanged: ((key: Buffer) => void) | undefined;

  constructor(
    readonly engine: Engine,
    /** This node's id (its dots carry its actor, `<id>#<epoch>`, from `opts.dots`). */
    readonly nodeId: string,
    private readonly clock: Clock,
    /** Where merges meant for another node (`hintFor`) go: the hint store. */
    private readonly hintSink: ((target: string, key: Buffer, obj: StoredObject) => Promise<void>) | undefined,
    opts: ReplicaStoreOptions,
  ) {
    this.maxClockSkewMs = opts.maxClockSkewMs ?? 5000;
    this.dots = opts.dots;
    this.crdtOptions = opts.crdt ?? {};
    this.onChange = opts.onChange;
  }

  /** This node's vector-clock actor now (the actor of the data-type updates it coordinates). */
  get actor(): string {
    return this.dots.actor;
  }

  /** Throws ClockSkewError when `ts` leads this node's clock by more than maxClockSkewMs. */
  private checkSkew(ts: number): void {
    const nowMs = this.clock.nowMs();
    const leadMs = hlcToWallMs(ts) - nowMs;
    if (leadMs > this.maxClockSkewMs) {
      this.counters.skewRefused++;
      throw new ClockSkewError(
        `node ${this.nodeId}: the write is stamped ${leadMs} ms ahead of this node's clock (at most ${this.maxClockSkewMs} ms is accepted); check the writer's and this node's clocks`,
        { node: this.nodeId, leadMs, maxClockSkewMs: this.maxClockSkewMs, serverNowMs: nowMs },
      );
    }
  }

  /**
   * Applies one wire operation; never throws (errors become error results). `deadline`
   * (performance.now() ms): an operation not started by then — also one that waited for
   * its key's lock until then — is answered DEADLINE_EXCEEDED and not done.
   */
  async apply(op: WireOp, deadline?: number): Promise<WireResult> {
    try {
      if (!op || typeof op !== 'object') throw new InvalidArgumentError('operation must be an object');
      checkDeadline(deadline);
      const key = asKey(op.key);
      switch (op.t) {
        case OpType.Get:
          this.counters.gets++;
          return { ok: true, obj: await this.get(key) };
        case OpType.Merge: {
          checkObject(op.obj);
          if (op.hintFor !== undefined && op.hintFor !== this.nodeId) return await this.storeHint(op.hintFor, key, op.obj);
          this.counters.merges++;
          const r = await this.merge(key, op.obj, deadline, { shipped: op.shipped === true });
          // The merged object itself is not sent back (it would double a write's bytes):
          // the writer only needs to know the newest timestamp the replica holds.
          const res: WireResult = { ok: true, obj: null, ts: r.obj ? maxTs(r.obj) : 0, created: r.created };
          if (r.lostOnType) res.won = false;
          return res;
        }
        case OpType.Put: {
          checkObject(op.obj);
          if (op.obj.mode !== 'lww') throw new InvalidArgumentError('a Put carries a last-write-wins object');
          this.checkSkew(op.obj.siblings[0]!.ts);
          if (op.hintFor !== undefined && op.hintFor !== this.nodeId) return await this.storeHint(op.hintFor, key, op.obj);
          this.counters.puts++;
          const r = await this.merge(key, op.obj, deadline, { fresh: true });
          const won = r.obj !== null && (r.obj === op.obj || objectsEqual(r.obj, op.obj));
          if (!won) this.counters.lostPuts++;
          return { ok: true, obj: null, ts: r.obj ? maxTs(r.obj) : 0, created: r.created, won };
        }
        case OpType.CoordinatedPut: {
          checkContext(op.ctx);
          checkSibling(op.sib);
          this.checkSkew(op.sib.ts);
          this.counters.coordinatedPuts++;
          const r = await this.coordinatedPut(key, op.ctx, op.sib, deadline);
          return { ok: true, obj: r.obj, created: r.created };
        }
        case OpType.DtUpdate: {
          const id = asOpId(op.id);
          if (!op.op || typeof op.op !== 'object') throw new InvalidArgumentError('a data-type update needs an operation');
          this.counters.dtUpdates++;
          const r = await this.dtUpdate(key, op.op, id, deadline);
          return { ok: true, obj: r.obj, created: r.created };
        }
        default:
          throw new InvalidArgumentError(`unknown operation type ${String((op as { t?: unknown }).t)}`);
      }
    } catch (err) {
      const e = asRingkvError(err);
      return e.details ? { ok: false, code: e.code as ErrorCode, msg: e.message, details: e.details } : { ok: false, code: e.code as ErrorCode, msg: e.message };
    }
  }

  /** Keeps `obj` as a hint for node `target` (this node is not a replica of `key`). */
  private async storeHint(target: unknown, key: Buffer, obj: StoredObject): Promise<WireResult> {
    checkNodeId(target, 'hintFor');
    if (!this.hintSink) throw new InvalidArgumentError('this node does not take hints');
    if (obj.mode === 'crdt') {
      try {
        decodeCrdt(obj.siblings[0]!.value); // a hint is delivered as it is: check it now
      } catch (err) {
        throw asWireArgumentError(err);
      }
    }
    this.counters.hints++;
    await this.hintSink(target, key, obj);
    return { ok: true, obj: null, ts: maxTs(obj), hinted: true };
  }

  /**
   * The stored object of `key` (tombstones and expired siblings included), or null. Throws
   * SuspectRangeError when the key lies in a quarantined block.
   */
  async get(key: Buffer): Promise<StoredObject | null> {
    let rec: EngineRecord | undefined;
    try {
      rec = await this.engine.getRaw(engineKeyOf(key));
    } catch (err) {
      const e = this.suspectError(err);
      if (e instanceof SuspectRangeError) this.counters.suspectGets++;
      throw e;
    }
    return rec && rec.version.length > 0 ? toObject(rec) : null;
  }

  /** A quarantined block's CORRUPTION becomes SUSPECT_RANGE ("ask another replica"); other errors pass. */
  private suspectError(err: unknown): unknown {
    if (!(err instanceof EngineError) || err.code !== 'CORRUPTION' || err.details?.quarantined !== true) return err;
    return new SuspectRangeError(`node ${this.nodeId}: ${err.message}; ask another replica`, { node: this.nodeId, file: err.details.file, offset: err.details.offset });
  }

  /**
   * Raw record and token of `key` (undefined when absent or purged); `suspect` when it lies
   * in a quarantined block (then its local version is unknown and `rec` is undefined).
   */
  private async current(key: Buffer): Promise<{ token: number; rec: EngineRecord | undefined; suspect: boolean; block?: string }> {
    const token = Ring.tokenOf(key);
    let rec: EngineRecord | undefined;
    try {
      rec = await this.engine.getRaw(engineKeyOf(key, token));
    } catch (err) {
      const e = this.suspectError(err);
      if (e instanceof SuspectRangeError) return { token, rec: undefined, suspect: true, block: `${String(e.details?.file)}:${String(e.details?.offset)}` };
      throw e;
    }
    return { token, rec: rec && rec.version.length > 0 ? rec : undefined, suspect: false };
  }

  /**
   * Before the first write over a key of quarantined block `block`: retires the actor. The
   * unreadable copy may have held a data type's events of this actor that the incoming
   * state lacks (it comes from a replica that may not have seen them), and crdtApply numbers
   * a node's events of a key from the key's state: the actor would issue those dots again,
   * and replicas that saw them would read the new updates as known. An actor made after the
   * block was lost wrote nothing into it, so once per block is enough (per process: after a
   * restart the first write over the block retires once more, which costs one actor).
   */
  private async retireForSuspect(block: string | undefined): Promise<void> {
    const id = block ?? '?';
    if (this.retiredForBlocks.has(id)) return;
    await this.dots.renewEpoch();
    this.retiredForBlocks.add(id);
  }

  /** The quarantined blocks of the engine, with their token spans (the repaired ones too with `includeRepaired`). */
  suspects(includeRepaired = false): SuspectRange[] {
    if (!this.engine.hasQuarantine) return [];
    return this.engine
      .quarantine()
      .filter((q) => includeRepaired || !q.repaired)
      .map((q) => ({ ...q, tokens: [tokenOfEngineKey(q.first), tokenOfEngineKey(q.last)] as [number, number] }));
  }

  /** Marks a quarantined block repaired (anti-entropy repaired every key of its range). */
  markRepaired(id: string): boolean {
    return this.engine.markRepaired(id);
  }

  /**
   * A key of a quarantined block that no live replica holds: purges it here (a local purge
   * marker), so that no older version the lost record shadowed can come back once the
   * block is dropped; the actor is retired first (the copy may have held its dots).
   * Returns false when the key is not (or no longer) suspect.
   */
  resolveSuspect(key: Buffer): Promise<boolean> {
    return this.withKeyLock(key, async () => {
      const { token, suspect } = await this.current(key);
      if (!suspect) return false;
      // The unreadable copy may have held dots of this node's actor: retire it first, as
      // purge() does for a copy known to hold them (../sdk/versioning/versioning.md).
      await this.dots.renewEpoch();
      await this.engine.write([{ type: 'del', key: engineKeyOf(key, token) }]);
      this.counters.suspectPurges++;
      this.onKeyChanged?.(key);
      return true;
    });
  }

  /** Writes `obj` for `key` over `old` and keeps the leaf hashes in step. */
  private async store(key: Buffer, token: number, old: EngineRecord | undefined, obj: StoredObject): Promise<void> {
    const op = toWriteOp(engineKeyOf(key, token), obj, this.clock.nowMs());
    await this.engine.write([op]);
    if (old) this.leaves.toggle(token, entryDigest(key, old.version));
    this.leaves.toggle(token, entryDigest(key, op.version!));
    this.onKeyChanged?.(key);
  }

  /**
   * Removes `key` from this node only (no tombstone travels anywhere): for ranges this node
   * no longer replicates. Skips keys written after `ifVersion` was read. When the copy holds
   * dots of this node's current actor, the actor is retired first (a new epoch): with its
   * history of the key gone, the actor could issue a dot whose context claims those dots.
   */
  purge(key: Buffer, ifVersion?: Buffer): Promise<boolean> {
    return this.withKeyLock(key, async () => {
      const { token, rec, suspect } = await this.current(key);
      if (suspect) {
        // Not owned any more and unreadable: the copy may hold the actor's dots, so the
        // actor is retired as for any such copy; then the purge marker is all that is needed.
        await this.dots.renewEpoch();
        await this.engine.write([{ type: 'del', key: engineKeyOf(key, token) }]);
        this.counters.purges++;
        this.onKeyChanged?.(key);
        return true;
      }
      if (!rec) return false;
      if (ifVersion && !rec.version.equals(ifVersion)) return false;
      if (holdsActor(rec, this.dots.actor)) await this.dots.renewEpoch();
      await this.engine.write([{ type: 'del', key: engineKeyOf(key, token) }]);
      this.leaves.toggle(token, entryDigest(key, rec.version));
      this.counters.purges++;
      this.onKeyChanged?.(key);
      return true;
    });
  }

  /**
   * Stored entries with tokens in [from, to] (inclusive), in token order, tombstones
   * included, purge markers skipped. A snapshot taken at the first next().
   */
  async *scan(from: number, to: number, opts: { limit?: number; afterKey?: Buffer } = {}): AsyncGenerator<StoredEntry> {
    const gte = opts.afterKey ? Buffer.concat([engineKeyOf(opts.afterKey), Buffer.from([0])]) : tokenBound(from);
    // Quarantined blocks are passed over: their keys are missing from this node's view (so
    // its Merkle hashes differ there and repair brings them back), never a failed scan.
    const iterOpts: { gte: Buffer; lt?: Buffer; includeTombstones: true; skipCorrupt: true; limit?: number } = { gte, includeTombstones: true, skipCorrupt: true };
    if (to < 0xffffffff) iterOpts.lt = tokenBound(to + 1);
    let left = opts.limit ?? Infinity;
    for await (const rec of this.engine.iterate(iterOpts)) {
      if (rec.version.length === 0) continue;
      const key = Buffer.from(rec.key.subarray(4));
      yield { key, token: rec.key.readUInt32BE(0), version: rec.version, digest: entryDigest(key, rec.version), record: rec };
      if (--left <= 0) return;
    }
  }

  /**
   * Rebuilds the leaf hashes from a full scan (the safety net), reading at most
   * `rateBytesPerSec` (0 = unlimited); resolves with the entry count.
   */
  rebuildLeaves(rateBytesPerSec = 0): Promise<number> {
    const limiter = new RateLimiter(rateBytesPerSec);
    return this.leaves.rebuild(() => {
      const it = this.scan(0, 0xffffffff);
      let owed = 0;
      return {
        next: async () => {
          const r = await it.next();
          if (r.done) return { done: true, value: undefined };
          owed += r.value.key.length + r.value.record.value.length + r.value.version.length + 16;
          if (owed >= 1024 * 1024) {
            await limiter.consume(owed);
            owed = 0;
          }
          return { done: false, value: { token: r.value.token, digest: r.value.digest } };
        },
      };
    });
  }

  /**
   * Merges `incoming` into the stored object of `key` and stores the result when it changed.
   * `how.fresh`: a new plain write (Put), refused with WRONG_TYPE when the key holds a data
   * type. `how.shipped`: the object came from another data center, or moves within this one
   * (see ReplicaStoreOptions.onChange).
   */
  merge(key: Buffer, incoming: StoredObject, deadline?: number, how: { fresh?: boolean; shipped?: boolean } = {}): Promise<ApplyResult> {
    const shipped = how.shipped === true;
    if (incoming.mode === 'crdt') return this.mergeCrdt(key, incoming, deadline, shipped);
    return this.withKeyLock(key, async () => {
      checkDeadline(deadline);
      const { token, rec, suspect, block } = await this.current(key);
      // A suspect key's local version is unreadable: the incoming one is written over it.
      const cur = rec ? toObject(rec) : null;
      if (how.fresh === true && cur?.mode === 'crdt') throw wrongTypeForPlain(cur, 'put');
      if (suspect) {
        // Whatever the incoming mode: the lost copy may have been a data type's.
        await this.retireForSuspect(block);
        this.counters.suspectWrites++;
      }
      const merged = cur ? mergeAcrossModes(cur, incoming) : incoming;
      const created = !cur || liveSiblings(cur, this.clock.nowMs()).length === 0;
      if (cur && (merged === cur || objectsEqual(merged, cur))) {
        this.counters.unchangedMerges++;
        return { obj: cur, created, changed: false };
      }
      await this.store(key, token, rec, merged);
      if (this.onChange) await this.onChange(key, merged, shipped);
      return { obj: merged, created, changed: true };
    });
  }

  /**
   * Merges a data type's state into the key's: the join of the two states (a plain value
   * here is replaced; of two types, the greater type code wins whole and the other's
   * updates are reported lost), settled as this node (crdtSettle: duplicates of a retried
   * operation stay uncounted after the window forgets them). Stores it when it changed, and
   * tells onChange (`shipped` as for merge).
   */
  private mergeCrdt(key: Buffer, incoming: StoredObject, deadline: number | undefined, shipped: boolean): Promise<ApplyResult> {
    let theirs: CrdtState;
    try {
      if (incoming.siblings.length !== 1) throw new InvalidArgumentError('a data-type object holds exactly one sibling');
      theirs = decodeCrdt(incoming.siblings[0]!.value);
    } catch (err) {
      return Promise.reject(asWireArgumentError(err));
    }
    return this.withKeyLock(key, async () => {
      checkDeadline(deadline);
      const { token, rec, suspect, block } = await this.current(key);
      if (suspect) {
        // Written over as if absent (see merge); retired before the settle below, which
        // may make an event of this node's actor.
        await this.retireForSuspect(block);
        this.counters.suspectWrites++;
      }
      const cur = rec ? toObject(rec) : null;
      const created = !cur || liveSiblings(cur, this.clock.nowMs()).length === 0;
      let merged: CrdtState;
      let mine: CrdtState | undefined;
      if (cur?.mode === 'crdt') {
        mine = decodeCrdt(cur.siblings[0]!.value);
        if (mine.type !== theirs.type) {
          if (TYPE_CODES[theirs.type] < TYPE_CODES[mine.type]) {
            this.counters.unchangedMerges++;
            return { obj: cur, created, changed: false, lostOnType: true };
          }
          merged = theirs;
        } else merged = crdtMerge(mine, theirs);
      } else merged = theirs;
      // Settled as this node; a settle that would only raise the window's horizon (time
      // passed, no record left the window) is not kept: horizons that follow each replica's
      // clock would make equal states differ, and anti-entropy exchange them forever.
      const settled = crdtSettle(merged, this.dots.actor, this.clock.nowMs(), this.crdtOptions);
      if (settled.store !== merged.store || settled.applied !== merged.applied) merged = settled;
      if (mine !== undefined && merged === mine) {
        this.counters.unchangedMerges++;
        return { obj: cur, created, changed: false };
      }
      const bytes = encodeCrdt(merged);
      if (cur?.mode === 'crdt' && bytes.equals(cur.siblings[0]!.value)) {
        this.counters.unchangedMerges++;
        return { obj: cur, created, changed: false };
      }
      const obj = crdtToObject(merged, bytes);
      await this.store(key, token, rec, obj);
      if (this.onChange) await this.onChange(key, obj, shipped);
      return { obj, created, changed: true };
    });
  }

  /**
   * A data-type update coordinated by this node: applies `op` to the key's state as this
   * node's actor (crdtApply), with operation id `id`, and stores the result. An id the
   * state's window holds is a retry: nothing is written, the current state is returned. A
   * key that holds a plain value (not deleted or expired) or another data type: WRONG_TYPE.
   */
  dtUpdate(key: Buffer, op: CrdtOp, id: Buffer, deadline?: number): Promise<ApplyResult> {
    return this.withKeyLock(key, async () => {
      checkDeadline(deadline);
      const { token, rec, suspect } = await this.current(key);
      // The local state is unreadable: applied to nothing, the update would reuse events of
      // this actor that the lost copy held (and the replicas that saw them drop it).
      if (suspect) throw new SuspectRangeError(`node ${this.nodeId}: the key lies in a quarantined block; coordinate the update on another replica`, { node: this.nodeId });
      const cur = rec ? toObject(rec) : null;
      let state: CrdtState | undefined;
      if (cur?.mode === 'crdt') state = decodeCrdt(cur.siblings[0]!.value);
      else if (cur && liveSiblings(cur, this.clock.nowMs()).length > 0) throw new WrongTypeError('plain value', String((op as { type?: unknown }).type));
      const next = crdtApply(state, op, this.dots.actor, id, this.clock.nowMs(), this.crdtOptions);
      if (state !== undefined && next === state) {
        this.counters.dtRetries++;
        return { obj: cur, created: false, changed: false };
      }
      const obj = crdtToObject(next);
      await this.store(key, token, rec, obj);
      if (this.onChange) await this.onChange(key, obj, false);
      return { obj, created: state === undefined, changed: true };
    });
  }

  /**
   * Folds the counter entries of the actors `gone` names (nodes that left the cluster) into
   * this node's actor (foldActor), and stores the result when it changed. REQUIRES: this
   * node is the one survivor that folds the key, and has merged every copy of the key that
   * holds those actors' entries (see FoldPass). Resolves with the folded object, or null
   * when there was nothing to fold.
   */
  foldGone(key: Buffer, gone: (actor: string) => boolean): Promise<StoredObject | null> {
    return this.withKeyLock(key, async () => {
      // A suspect key reads as absent here (nothing to fold until a merge has repaired it).
      const { token, rec } = await this.current(key);
      const cur = rec ? toObject(rec) : null;
      if (cur?.mode !== 'crdt') return null;
      const start = decodeCrdt(cur.siblings[0]!.value);
      // Settled first: records older than the window are forgotten, so their entries fold.
      const settled = crdtSettle(start, this.dots.actor, this.clock.nowMs(), this.crdtOptions);
      let s = settled;
      for (const actor of Object.keys(start.context)) if (gone(actor)) s = foldActor(s, actor, this.dots.actor);
      if (s === settled) return null;
      const obj = crdtToObject(s);
      await this.store(key, token, rec, obj);
      if (this.onChange) await this.onChange(key, obj, false);
      this.counters.folds++;
      return obj;
    });
  }

  /** A vector-clock write coordinated by this node: assigns the next dot of this node's actor. */
  coordinatedPut(key: Buffer, ctx: VersionVector, sib: Omit<Sibling, 'dot'>, deadline?: number): Promise<ApplyResult> {
    return this.withKeyLock(key, async () => {
      checkDeadline(deadline);
      const { token, rec, suspect } = await this.current(key);
      // Without the local object this node could hand out a dot it already gave another
      // version: refused (not applied), the client coordinates on another replica.
      if (suspect) throw new SuspectRangeError(`node ${this.nodeId}: the key lies in a quarantined block; coordinate the write on another replica`, { node: this.nodeId });
      let cur = rec ? toObject(rec) : null;
      if (cur?.mode === 'crdt') throw wrongTypeForPlain(cur, 'put');
      if (cur && cur.mode !== 'dvv') cur = null; // a vector-clock write replaces a last-write-wins value
      const created = !cur || liveSiblings(cur, this.clock.nowMs()).length === 0;
      const [actor, counter] = await this.dots.issue((a) => nextCounter(cur?.context ?? {}, ctx, a));
      const next = dvvUpdate(cur ?? undefined, ctx, actor, sib, counter);
      await this.store(key, token, rec, next);
      if (this.onChange) await this.onChange(key, next, false);
      return { obj: next, created, changed: true };
    });
  }

  /** Runs `fn` with the key's lock held. */
  private async withKeyLock<T>(key: Buffer, fn: () => Promise<T>): Promise<T> {
    return this.locks.run(key, fn);
  }
}

/** The stored object of an engine record. */
export function toObject(rec: EngineRecord): StoredObject {
  return fromRecordFields({
    value: rec.value,
    tombstone: rec.tombstone,
    expiresAtMs: rec.expiresAtMs,
    contentType: rec.contentType,
    flags: rec.flags,
    version: rec.version,
  });
}

/** True when the record's context (a data type's: its state's) has an entry of `actor` (an undecodable one: assumed so). */
function holdsActor(rec: EngineRecord, actor: string): boolean {
  try {
    const obj = toObject(rec);
    if (obj.mode === 'crdt') return contextCounter(decodeCrdt(obj.siblings[0]!.value).context, actor) > 0;
    return contextCounter(obj.context, actor) > 0;
  } catch {
    return true;
  }
}

/** The WRONG_TYPE of a plain write (or read) of a key that holds a data type. */
export function wrongTypeForPlain(cur: StoredObject, what: string): WrongTypeError {
  let type = 'data type';
  try {
    type = crdtTypeOf(cur.siblings[0]!.value);
  } catch {
    // an undecodable state: named generically
  }
  return new WrongTypeError(type, 'plain value', what);
}

/**
 * The engine write that stores `obj` under `key`. A tombstone is dated `storedAtMs` (the
 * storing node's clock), not by the writer's timestamp: a client whose clock lags must not
 * shorten how long its delete is kept.
 */
export function toWriteOp(key: Buffer, obj: StoredObject, storedAtMs: number): WriteOp {
  const f = toRecordFields(obj);
  if (f.tombstone) return { type: 'del', key, version: f.version, deletedAtMs: Math.max(1, Math.floor(storedAtMs)) };
  return { type: 'put', key, value: f.value, version: f.version, expiresAtMs: f.expiresAtMs, contentType: f.contentType, flags: f.flags };
}

/**
 * Merge that tolerates objects written in different conflict modes (a cluster whose
 * clients changed mode): the side with the newest write wins whole. A data type wins over
 * a plain value, and two data types merge (mergeObjects).
 */
export function mergeAcrossModes(a: StoredObject, b: StoredObject): StoredObject {
  if (a.mode === b.mode || a.mode === 'crdt' || b.mode === 'crdt') return mergeObjects(a, b);
  return maxTs(b) > maxTs(a) ? b : a;
}

/** Throws DeadlineExceededError when `deadline` (performance.now() ms) has passed. */
function checkDeadline(deadline: number | undefined): void {
  if (deadline !== undefined && performance.now() > deadline) {
    throw new DeadlineExceededError('the sender stopped waiting before this replica started the operation; it was not done');
  }
}

function asKey(k: unknown): Buffer {
  if (!(k instanceof Uint8Array)) throw new InvalidArgumentError('operation key must be bytes');
  const b = Buffer.isBuffer(k) ? k : Buffer.from(k.buffer, k.byteOffset, k.byteLength);
  checkKey(b);
  return b;
}

function isSafeNonNeg(n: unknown): boolean {
  return typeof n === 'number' && Number.isSafeInteger(n) && n >= 0;
}

function checkSibling(s: unknown, needDot = false): asserts s is Sibling {
  const x = s as Sibling;
  if (!x || typeof x !== 'object') throw new InvalidArgumentError('sibling must be an object');
  if (!(x.value instanceof Uint8Array)) throw new InvalidArgumentError('sibling value must be bytes');
  if (!Buffer.isBuffer(x.value)) (x as { value: Buffer }).value = Buffer.from(x.value);
  checkValue(x.value);
  if (typeof x.tombstone !== 'boolean') throw new InvalidArgumentError('sibling tombstone must be a boolean');
  if (!isSafeNonNeg(x.expiresAtMs) || !isSafeNonNeg(x.flags) || !isSafeNonNeg(x.ts)) {
    throw new InvalidArgumentError('sibling expiresAtMs, flags and ts must be non-negative integers');
  }
  if (typeof x.contentType !== 'string') throw new InvalidArgumentError('sibling contentType must be a string');
  if (x.contentType) checkContentType(x.contentType);
  if (typeof x.writer !== 'string' || x.writer.length > 256) throw new InvalidArgumentError('sibling writer must be a short string');
  if (needDot) {
    const d = x.dot;
    if (!Array.isArray(d) || d.length !== 2 || typeof d[0] !== 'string' || !isSafeNonNeg(d[1])) {
      throw new InvalidArgumentError('vector-clock sibling needs a dot [node, counter]');
    }
  }
}

function checkContext(ctx: unknown): asserts ctx is VersionVector {
  if (!ctx || typeof ctx !== 'object' || Array.isArray(ctx)) throw new InvalidArgumentError('context must be a map of node to counter');
  const entries = Object.entries(ctx as Record<string, unknown>);
  if (entries.length > 1024) throw new InvalidArgumentError('context has too many entries');
  for (const [, v] of entries) if (!isSafeNonNeg(v)) throw new InvalidArgumentError('context counters must be non-negative integers');
}

/** An operation id of a data-type update: 1..64 bytes. */
function asOpId(v: unknown): Buffer {
  if (!(v instanceof Uint8Array) || v.length === 0 || v.length > MAX_OP_ID_BYTES) throw new InvalidArgumentError(`an operation id is 1 to ${MAX_OP_ID_BYTES} bytes`);
  return Buffer.isBuffer(v) ? v : Buffer.from(v.buffer, v.byteOffset, v.byteLength);
}

function checkObject(obj: unknown): asserts obj is StoredObject {
  const o = obj as StoredObject;
  if (!o || typeof o !== 'object') throw new InvalidArgumentError('object must be a map');
  if (o.mode === 'crdt') {
    // The state itself is decoded (and checked) by the merge; a state may pass the value
    // limit (merges of concurrent updates never refuse: replicas must converge).
    if (!Array.isArray(o.siblings) || o.siblings.length !== 1 || !(o.siblings[0]?.value instanceof Uint8Array)) {
      throw new InvalidArgumentError('a data-type object holds exactly one sibling with the encoded state');
    }
    const s = o.siblings[0];
    if (!Buffer.isBuffer(s.value)) (s as { value: Buffer }).value = Buffer.from(s.value);
    return;
  }
  if (o.mode !== 'lww' && o.mode !== 'dvv') throw new InvalidArgumentError('object mode must be lww, dvv or crdt');
  if (!Array.isArray(o.siblings) || o.siblings.length === 0 || o.siblings.length > 1024) {
    throw new InvalidArgumentError('object needs 1..1024 siblings');
  }
  if (o.mode === 'lww' && o.siblings.length !== 1) throw new InvalidArgumentError('a last-write-wins object has exactly one sibling');
  for (const s of o.siblings) checkSibling(s, o.mode === 'dvv');
  checkContext(o.context ?? {});
}
