// A simulator of data-type histories for the tests: replicas (storage nodes) apply random
// operations as coordinators, retry operations (same id) at other replicas, read contexts,
// merge, settle, fold removed nodes and let time pass. Every state it records is one some
// execution produces. Driven by a SeededRandom; one instance per test run, not shared.

import type { CrdtOp, CrdtOptions, CrdtState, CrdtType, FieldKey, FieldType, NestedOp, VersionVector } from '../../../sdk/crdt/index.js';
import { crdtApply, crdtMerge, crdtSettle, foldActor } from '../../../sdk/crdt/index.js';
import type { SeededRandom } from '../seeded-random.js';

export const MEMBERS = ['a', 'b', 'c', 'd', 'é', ''];
const FIELD_NAMES = ['x', 'y'];
const NESTED_TYPES: FieldType[] = ['counter', 'set', 'register', 'flag', 'map'];

/** One applied update, as the oracles need it. */
export interface UpdateEvent {
  replica: number;
  id: string;
  op: CrdtOp;
  /** The event's dot. */
  dot: readonly [string, number];
  /** Its time in the applied-op window. */
  atMs: number;
  /** The context its removes removed: op.context, or the coordinator's context before it. */
  removeContext: VersionVector;
}

export interface HistoryOptions {
  type: CrdtType;
  replicas: number;
  crdt?: CrdtOptions;
  /** Chance that an update is a retry of an earlier operation (same id and operation). */
  retryChance?: number;
  /** Chance that a remove carries a context captured by an earlier read (any replica's). */
  capturedContextChance?: number;
  /** Largest time step in ms. */
  maxStepMs?: number;
}

export class History {
  readonly names: string[];
  readonly states: (CrdtState | undefined)[];
  /** Every state any replica held, in order (the pool the law tests draw from). */
  readonly snapshots: CrdtState[] = [];
  readonly events: UpdateEvent[] = [];
  readonly retired = new Set<number>();
  /** Folds that changed the survivor's state. */
  folds = 0;
  nowMs = 1_000_000;
  #ts = 1;
  #nextId = 1;
  readonly #issued: { id: Buffer; op: CrdtOp }[] = [];
  readonly #contexts: VersionVector[] = [];

  constructor(
    readonly rnd: SeededRandom,
    readonly o: HistoryOptions,
  ) {
    this.names = ['A', 'B', 'C', 'D', 'E', 'F'].slice(0, o.replicas);
    this.states = this.names.map(() => undefined);
  }

  /** One random step: mostly updates, then merges, reads, settles, time. */
  step(): void {
    const r = this.rnd.next();
    if (r < 0.45) this.update(this.liveReplica());
    else if (r < 0.75) this.merge(this.rnd.int(this.names.length), this.rnd.int(this.names.length));
    else if (r < 0.85) this.read(this.rnd.int(this.names.length));
    else if (r < 0.92) this.settle(this.liveReplica());
    else this.advance(this.rnd.int((this.o.maxStepMs ?? 10) + 1));
  }

  liveReplica(): number {
    for (;;) {
      const i = this.rnd.int(this.names.length);
      if (!this.retired.has(i)) return i;
    }
  }

  advance(ms: number): void {
    this.nowMs += ms;
  }

  /** Applies a new random operation at replica `i`, or (retryChance) an earlier one again. */
  update(i: number): CrdtState | undefined {
    if (this.retired.has(i)) throw new Error('a retired node does not coordinate');
    let id: Buffer;
    let op: CrdtOp;
    if (this.#issued.length > 0 && this.rnd.chance(this.o.retryChance ?? 0.1)) {
      ({ id, op } = this.rnd.pick(this.#issued));
    } else {
      id = Buffer.alloc(4);
      id.writeUInt32BE(this.#nextId++);
      op = this.randomOp(i);
      this.#issued.push({ id, op });
    }
    return this.apply(i, op, id);
  }

  /** Applies `op` as operation `id` at replica `i`, recording the event when it was applied. */
  apply(i: number, op: CrdtOp, id: Buffer): CrdtState | undefined {
    const before = this.states[i];
    const after = crdtApply(before, op, this.names[i]!, id, this.nowMs, this.o.crdt);
    if (after !== before) {
      const node = this.names[i]!;
      const seq = after.context[node]!;
      const rec = after.applied.find((r) => r.dot[0] === node && r.dot[1] === seq);
      if (rec === undefined) throw new Error('an applied operation is missing from the window');
      this.events.push({
        replica: i,
        id: id.toString('hex'),
        op,
        dot: [node, seq],
        atMs: rec.atMs,
        removeContext: (op as { context?: VersionVector }).context ?? before?.context ?? {},
      });
    }
    this.set(i, after);
    return after;
  }

  merge(into: number, from: number): void {
    const a = this.states[into];
    const b = this.states[from];
    if (b === undefined) return;
    this.set(into, a === undefined ? b : crdtMerge(a, b));
  }

  read(i: number): VersionVector | undefined {
    const s = this.states[i];
    if (s !== undefined) this.#contexts.push(s.context);
    return s?.context;
  }

  settle(i: number): void {
    const s = this.states[i];
    if (s !== undefined) this.set(i, crdtSettle(s, this.names[i]!, this.nowMs, this.o.crdt));
  }

  /** Node `from` leaves: it updates and settles no more; `into` merges every copy (as a repair round would), then folds it. */
  retire(from: number, into: number): void {
    this.retired.add(from);
    for (let i = 0; i < this.names.length; i++) if (i !== into) this.merge(into, i);
    const s = this.states[into];
    if (s === undefined) return;
    const f = foldActor(s, this.names[from]!, this.names[into]!);
    if (f !== s) this.folds++;
    this.set(into, f);
  }

  set(i: number, s: CrdtState | undefined): void {
    this.states[i] = s;
    if (s !== undefined && this.snapshots[this.snapshots.length - 1] !== s) this.snapshots.push(s);
  }

  /** Every replica merges every other's state, twice around: afterwards they are all equal. */
  syncAll(): void {
    for (let round = 0; round < 2; round++) {
      for (let i = 0; i < this.names.length; i++) for (let j = 0; j < this.names.length; j++) if (i !== j) this.merge(i, j);
    }
  }

  // ---- random operations ----------------------------------------------------------------

  randomOp(i: number): CrdtOp {
    const ctx = this.removeContext(i);
    switch (this.o.type) {
      case 'counter':
        return { type: 'counter', increment: this.rnd.int(9) - 3 };
      case 'register':
        return this.registerOp();
      case 'set': {
        const { add, remove } = this.members();
        return ctx === undefined ? { type: 'set', add, remove } : { type: 'set', add, remove, context: ctx };
      }
      case 'map': {
        const m = this.mapOp(0);
        return ctx === undefined ? m : { ...m, context: ctx };
      }
    }
  }

  /** undefined (the coordinator's own), or a context some read captured earlier. */
  removeContext(i: number): VersionVector | undefined {
    if (this.#contexts.length > 0 && this.rnd.chance(this.o.capturedContextChance ?? 0.4)) return this.rnd.pick(this.#contexts);
    return this.rnd.chance(0.2) ? (this.states[i]?.context ?? {}) : undefined;
  }

  registerOp(): CrdtOp & NestedOp {
    if (this.rnd.chance(0.7)) this.#ts++;
    return { type: 'register', assign: this.rnd.pick(['p', 'q', 'r', '']), ts: this.#ts, writer: this.rnd.pick(['w1', 'w2']) };
  }

  members(): { add: string[]; remove: string[] } {
    const add: string[] = [];
    const remove: string[] = [];
    for (const m of MEMBERS) {
      const r = this.rnd.next();
      if (r < 0.2) add.push(m);
      else if (r < 0.35) remove.push(m);
    }
    if (add.length + remove.length === 0) add.push(this.rnd.pick(MEMBERS));
    return { add, remove };
  }

  mapOp(depth: number): CrdtOp & NestedOp & { type: 'map' } {
    const updates: { name: string; op: NestedOp }[] = [];
    const removes: FieldKey[] = [];
    for (const name of FIELD_NAMES) {
      for (const type of NESTED_TYPES) {
        if (type === 'map' && depth >= 1) continue;
        const r = this.rnd.next();
        if (r < 0.12) updates.push({ name, op: this.nestedOp(type, depth) });
        else if (r < 0.17) removes.push({ name, type });
      }
    }
    if (updates.length + removes.length === 0) updates.push({ name: this.rnd.pick(FIELD_NAMES), op: this.nestedOp('counter', depth) });
    return { type: 'map', updates, removes };
  }

  nestedOp(type: FieldType, depth: number): NestedOp {
    switch (type) {
      case 'counter':
        return { type: 'counter', increment: this.rnd.int(9) - 3 };
      case 'set':
        return { type: 'set', ...this.members() };
      case 'register':
        return this.registerOp();
      case 'flag':
        return { type: 'flag', enable: this.rnd.chance(0.6) };
      case 'map':
        return this.mapOp(depth + 1);
    }
  }
}
