// Dotted version vectors (Preguiça et al.; the scheme of Riak 2.0): how a coordinating
// replica stamps a write, and how two replicas' states of one key merge. Pure functions on
// immutable inputs; safe to call from anywhere. The rules, with examples, are in ./versioning.md.

import { InvalidArgumentError } from '../errors.js';
import { lwwCompare } from './lww.js';
import type { Dot, Sibling, StoredObject, VersionVector } from './stored-object.js';

const EMPTY_CONTEXT: VersionVector = Object.freeze({});

/** The counter of `actor` in `ctx`; 0 when absent. Only own properties count. */
export function contextCounter(ctx: VersionVector, actor: string): number {
  return Object.hasOwn(ctx, actor) ? ctx[actor]! : 0;
}

/** True when the context has seen the event `dot`: ctx[dot actor] >= dot counter. */
export function contextCovers(ctx: VersionVector, dot: Dot): boolean {
  return contextCounter(ctx, dot[0]) >= dot[1];
}

/**
 * The pointwise maximum of two contexts, with its keys sorted. Returns `a` itself when it
 * already covers `b` (and `b` when it covers `a`), so joining something already seen allocates nothing.
 */
export function joinContext(a: VersionVector, b: VersionVector): VersionVector {
  if (covers(a, b)) return a;
  if (covers(b, a)) return b;
  const merged = new Map<string, number>();
  for (const k of Object.keys(a)) merged.set(k, a[k]!);
  for (const k of Object.keys(b)) {
    const v = b[k]!;
    if (v > (merged.get(k) ?? 0)) merged.set(k, v);
  }
  const keys = [...merged.keys()].sort(compareStrings);
  return Object.fromEntries(keys.map((k) => [k, merged.get(k)!]));
}

/** True when the contexts hold the same positive counters. */
export function contextsEqual(a: VersionVector, b: VersionVector): boolean {
  return a === b || (covers(a, b) && covers(b, a));
}

/** Canonical sibling order of a 'dvv' object: by dot actor (code-unit order), then counter. */
export function compareDots(a: Dot, b: Dot): number {
  if (a[0] !== b[0]) return a[0] < b[0] ? -1 : 1;
  return a[1] - b[1];
}

/**
 * A write coordinated by a storage node acting as `actor` (`<node id>#<epoch>`, see
 * versioning.md; any non-empty string to this function). The new event gets the dot
 * (actor, max(counterFloor, local.context[actor] + 1, clientContext[actor] + 1)); the
 * siblings of `local` covered by `clientContext` are discarded (the client saw them, so its
 * write supersedes them); the others stay as concurrent siblings. The new context is
 * join(local.context, clientContext, {actor: counter}). A write with an empty context thus
 * becomes a sibling of everything stored.
 *
 * `counterFloor` is the coordinating node's next counter of `actor` across all keys
 * (storage-server/dot-counter.ts): with it, a node that lost its copy of the key (purged,
 * tombstone collected) never issues a dot that another replica's context already covers.
 *
 * Throws InvalidArgumentError for an empty `actor`, a floor that is not a positive safe
 * integer, a counter past Number.MAX_SAFE_INTEGER, or when `local` is not a 'dvv' object.
 */
export function dvvUpdate(
  local: StoredObject | undefined,
  clientContext: VersionVector,
  actor: string,
  sibling: Omit<Sibling, 'dot'>,
  counterFloor = 1,
): StoredObject {
  if (typeof actor !== 'string' || actor.length === 0) throw new InvalidArgumentError('dvvUpdate: the coordinating actor must be a non-empty string');
  if (!Number.isSafeInteger(counterFloor) || counterFloor < 1) throw new InvalidArgumentError(`dvvUpdate: the counter floor must be a positive safe integer, got ${counterFloor}`);
  if (local !== undefined) checkDvv(local, 'dvvUpdate');
  const localContext = local?.context ?? EMPTY_CONTEXT;
  const counter = nextCounter(localContext, clientContext, actor, counterFloor);
  const siblings: Sibling[] = [];
  if (local !== undefined) {
    for (const s of local.siblings) {
      if (!contextCovers(clientContext, dotOf(s))) siblings.push(s);
    }
  }
  const dot: Dot = [actor, counter];
  siblings.push({ ...sibling, dot });
  siblings.sort(compareSiblings);
  const context = joinContext(joinContext(localContext, clientContext), { [actor]: counter });
  return { mode: 'dvv', siblings, context };
}

/**
 * The counter {@link dvvUpdate} gives the next event of `actor`:
 * max(counterFloor, localContext[actor] + 1, clientContext[actor] + 1). Throws
 * InvalidArgumentError when that is past Number.MAX_SAFE_INTEGER.
 */
export function nextCounter(localContext: VersionVector, clientContext: VersionVector, actor: string, counterFloor = 1): number {
  const counter = Math.max(counterFloor, contextCounter(localContext, actor) + 1, contextCounter(clientContext, actor) + 1);
  if (!Number.isSafeInteger(counter)) throw new InvalidArgumentError(`the next counter of ${JSON.stringify(actor)} is past the safe integers`);
  return counter;
}

/**
 * Merges two replicas' states of one key. A sibling of `a` survives when `b` holds it too or
 * `b`'s context has not seen its dot (b never heard of it, so it cannot have superseded it);
 * symmetrically for `b`. Siblings are deduplicated by dot; the context is the join.
 * Commutative, associative and idempotent. Returns `a` itself when the merge adds nothing to
 * it (and `b` itself when it adds nothing to `b`), so `merged === local` means "nothing changed".
 *
 * Throws InvalidArgumentError when either object is not a 'dvv' object.
 */
export function dvvSync(a: StoredObject, b: StoredObject): StoredObject {
  checkDvv(a, 'dvvSync');
  checkDvv(b, 'dvvSync');
  if (a === b) return a;
  const siblings: Sibling[] = [];
  for (const sa of a.siblings) {
    const da = dotOf(sa);
    const sb = findDot(b.siblings, da);
    if (sb !== undefined) {
      // The same event on both sides: the same data. Pick deterministically all the same.
      siblings.push(sa === sb || lwwCompare(sa, sb) >= 0 ? sa : sb);
    } else if (!contextCovers(b.context, da)) {
      siblings.push(sa);
    }
  }
  for (const sb of b.siblings) {
    const db = dotOf(sb);
    if (findDot(a.siblings, db) === undefined && !contextCovers(a.context, db)) siblings.push(sb);
  }
  siblings.sort(compareSiblings);
  const context = joinContext(a.context, b.context);
  if (sameSiblings(siblings, a.siblings) && contextsEqual(context, a.context)) return a;
  if (sameSiblings(siblings, b.siblings) && contextsEqual(context, b.context)) return b;
  return { mode: 'dvv', siblings, context };
}

/** True when `a` has seen everything `b` has: dvvSync(a, b) equals `a`. */
export function dvvDescends(a: StoredObject, b: StoredObject): boolean {
  return objectsEqual(dvvSync(a, b), a);
}

/**
 * True when two objects (of either mode) are the same version: same mode, same context,
 * and the same siblings in the same order — compared by dot when both carry one (a dot
 * names exactly one event), otherwise by every field {@link lwwCompare} looks at.
 */
export function objectsEqual(a: StoredObject, b: StoredObject): boolean {
  if (a === b) return true;
  if (a.mode !== b.mode || a.siblings.length !== b.siblings.length) return false;
  if (!contextsEqual(a.context, b.context)) return false;
  for (let i = 0; i < a.siblings.length; i++) {
    const sa = a.siblings[i]!;
    const sb = b.siblings[i]!;
    if (sa.dot !== undefined && sb.dot !== undefined) {
      if (compareDots(sa.dot, sb.dot) !== 0) return false;
    } else if (sa.dot !== undefined || sb.dot !== undefined || lwwCompare(sa, sb) !== 0) {
      return false;
    }
  }
  return true;
}

/** True when every positive counter of `b` is <= the one of `a`. */
function covers(a: VersionVector, b: VersionVector): boolean {
  for (const k of Object.keys(b)) {
    if (b[k]! > contextCounter(a, k)) return false;
  }
  return true;
}

function compareSiblings(a: Sibling, b: Sibling): number {
  return compareDots(a.dot!, b.dot!);
}

function findDot(siblings: readonly Sibling[], dot: Dot): Sibling | undefined {
  for (const s of siblings) {
    const d = s.dot!;
    if (d[1] === dot[1] && d[0] === dot[0]) return s;
  }
  return undefined;
}

function sameSiblings(x: readonly Sibling[], y: readonly Sibling[]): boolean {
  if (x.length !== y.length) return false;
  for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return false;
  return true;
}

function dotOf(s: Sibling): Dot {
  if (s.dot === undefined) throw new InvalidArgumentError("a sibling of a 'dvv' object has no dot");
  return s.dot;
}

function checkDvv(obj: StoredObject, op: string): void {
  if (obj.mode !== 'dvv') throw new InvalidArgumentError(`${op}: expected a 'dvv' object, got mode ${JSON.stringify(obj.mode)}`);
  for (const s of obj.siblings) dotOf(s);
}

function compareStrings(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
