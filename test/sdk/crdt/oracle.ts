// The value a data type must show after a history, computed from the history's update events
// alone — not from any state — as the semantics in sdk/crdt/README.md state them: an add,
// enable, assignment or field update survives unless a remove whose context covers its dot
// removed it; each operation id counts once in counters (its first application). Assumes the
// applied-op window forgot nothing. Pure; for tests only.

import type { CrdtType, CrdtValue, FieldType, NestedOp, VersionVector } from '../../../sdk/crdt/index.js';
import type { UpdateEvent } from './history.js';

type Dot = readonly [string, number];
type Atom =
  | { kind: 'touch'; path: string[]; dot: Dot }
  | { kind: 'count'; path: string[]; dot: Dot; n: number; winner: boolean }
  | { kind: 'add'; path: string[]; member: string; dot: Dot }
  | { kind: 'unadd'; path: string[]; member: string; ctx: VersionVector }
  | { kind: 'enable'; path: string[]; dot: Dot }
  | { kind: 'disable'; path: string[]; ctx: VersionVector }
  | { kind: 'assign'; path: string[]; dot: Dot; ts: number; writer: string; value: string }
  | { kind: 'drop'; path: string[]; ctx: VersionVector };

const covers = (ctx: VersionVector, d: Dot): boolean => (Object.hasOwn(ctx, d[0]) ? ctx[d[0]]! : 0) >= d[1];
const seg = (name: string, type: FieldType): string => `${name}_${type}`;

/** The expected value view of a key of `type` after `events` (in the order they were applied). */
export function expectedValue(type: CrdtType, events: readonly UpdateEvent[]): CrdtValue {
  // Of the applications of one id, the earliest (atMs, then dot) is the one that counts.
  const first = new Map<string, UpdateEvent>();
  for (const e of events) {
    const f = first.get(e.id);
    if (f === undefined || e.atMs < f.atMs || (e.atMs === f.atMs && (e.dot[0] < f.dot[0] || (e.dot[0] === f.dot[0] && e.dot[1] < f.dot[1])))) first.set(e.id, e);
  }
  const atoms: Atom[] = [];
  for (const e of events) flatten(e.op as NestedOp, [], e, first.get(e.id) === e, atoms);
  return valueAt(type, [], atoms);
}

function flatten(op: NestedOp, path: string[], e: UpdateEvent, winner: boolean, out: Atom[]): void {
  switch (op.type) {
    case 'counter':
      if (op.increment !== 0) out.push({ kind: 'count', path, dot: e.dot, n: op.increment, winner });
      return;
    case 'set':
      for (const m of op.remove ?? []) out.push({ kind: 'unadd', path, member: m, ctx: e.removeContext });
      for (const m of op.add ?? []) out.push({ kind: 'add', path, member: m, dot: e.dot });
      return;
    case 'register':
      out.push({ kind: 'assign', path, dot: e.dot, ts: op.ts, writer: op.writer, value: op.assign });
      return;
    case 'flag':
      out.push(op.enable ? { kind: 'enable', path, dot: e.dot } : { kind: 'disable', path, ctx: e.removeContext });
      return;
    case 'map':
      for (const k of op.removes ?? []) out.push({ kind: 'drop', path: [...path, seg(k.name, k.type)], ctx: e.removeContext });
      for (const u of op.updates ?? []) {
        const p = [...path, seg(u.name, u.op.type)];
        out.push({ kind: 'touch', path: p, dot: e.dot });
        flatten(u.op, p, e, winner, out);
      }
  }
}

const samePath = (a: string[], b: string[]): boolean => a.length === b.length && a.every((s, i) => s === b[i]);
const isPrefix = (p: string[], of: string[]): boolean => p.length <= of.length && p.every((s, i) => s === of[i]);

/** True when a field remove of `path` or of a map above it covered `dot`. */
function dropped(atoms: readonly Atom[], path: string[], dot: Dot): boolean {
  return atoms.some((a) => a.kind === 'drop' && isPrefix(a.path, path) && covers(a.ctx, dot));
}

function valueAt(type: FieldType, path: string[], atoms: readonly Atom[]): CrdtValue {
  const here = atoms.filter((a) => samePath(a.path, path));
  switch (type) {
    case 'counter': {
      let v = 0;
      for (const a of here) if (a.kind === 'count' && a.winner && !dropped(atoms, path, a.dot)) v += a.n;
      return v;
    }
    case 'set': {
      const members = new Set<string>();
      for (const a of here) {
        if (a.kind !== 'add' || dropped(atoms, path, a.dot)) continue;
        if (here.some((r) => r.kind === 'unadd' && r.member === a.member && covers(r.ctx, a.dot))) continue;
        members.add(a.member);
      }
      return [...members].sort((x, y) => (x < y ? -1 : x > y ? 1 : 0));
    }
    case 'register': {
      let best: Extract<Atom, { kind: 'assign' }> | undefined;
      for (const a of here) {
        if (a.kind !== 'assign' || dropped(atoms, path, a.dot)) continue;
        if (best === undefined || a.ts > best.ts || (a.ts === best.ts && (a.writer > best.writer || (a.writer === best.writer && a.value > best.value)))) best = a;
      }
      return best?.value ?? null;
    }
    case 'flag':
      return here.some(
        (a) => a.kind === 'enable' && !dropped(atoms, path, a.dot) && !here.some((d) => d.kind === 'disable' && covers(d.ctx, a.dot)),
      );
    case 'map': {
      const fields = new Map<string, FieldType>();
      for (const a of atoms) {
        if (a.kind !== 'touch' || a.path.length !== path.length + 1 || !isPrefix(path, a.path)) continue;
        if (dropped(atoms, a.path, a.dot)) continue;
        const last = a.path[a.path.length - 1]!;
        fields.set(last, last.slice(last.lastIndexOf('_') + 1) as FieldType);
      }
      const order: FieldType[] = ['counter', 'set', 'register', 'map', 'flag'];
      const keys = [...fields.keys()].sort((x, y) => {
        const nx = x.slice(0, x.lastIndexOf('_'));
        const ny = y.slice(0, y.lastIndexOf('_'));
        return nx < ny ? -1 : nx > ny ? 1 : order.indexOf(fields.get(x)!) - order.indexOf(fields.get(y)!);
      });
      const out: { [k: string]: CrdtValue } = {};
      for (const k of keys) out[k] = valueAt(fields.get(k)!, [...path, k], atoms);
      return out;
    }
  }
}
