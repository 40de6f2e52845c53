// The public HTTP API of the data types (counters, sets, registers, maps), coordinated
// through the SDK client the node embeds:
//   GET  /api/v1/dt/{key}[?type=T]  → {"type", "value", "context"}
//   POST /api/v1/dt/{key}           JSON operation → {"type", "value", "context"} after it
// with the `Consistency` (not linearizable) and `X-Ringkv-Timeout-Ms` headers of /api/v1/kv,
// and `X-Ringkv-Op-Id` to make a retried POST apply once. The JSON shapes are documented in
// the README ("Data types"). Bad input gets a 4xx JSON error with a stable code and nothing
// is applied. Stateless; safe for concurrent requests.

import type { IncomingMessage, ServerResponse } from 'node:http';
import crypto from 'node:crypto';
import type { RingkvClient } from '../../sdk/client.js';
import type { Consistency } from '../../sdk/consistency.js';
import { parseConsistency } from '../../sdk/consistency.js';
import { InvalidArgumentError, MalformedRequestError, NotFoundError, RingkvError } from '../../sdk/errors.js';
import type { CrdtOp, CrdtType, FieldKey, FieldType, FieldUpdate, MapOp, NestedOp, SetOp } from '../../sdk/crdt/crdt-state.js';
import { CRDT_TYPES, FIELD_TYPES } from '../../sdk/crdt/crdt-state.js';
import { MAX_MAP_DEPTH } from '../../sdk/crdt/crdt-codec.js';
import { MAX_OP_ID_BYTES } from '../../sdk/crdt/op-window.js';
import { contextOf, dataTypeView, emptyView, registerText } from '../../sdk/data-types.js';
import { checkJsonDepth, keyFromPath } from './public-api.js';
import { discardBody, readBody } from './read-body.js';
import { sendError, sendJson } from './respond.js';

export const DT_PREFIX = '/api/v1/dt/';

/** The header that names an operation for idempotent retries. */
export const OP_ID_HEADER = 'x-ringkv-op-id';

export interface DataTypeApiOptions {
  client: RingkvClient<Buffer>;
  maxJsonBodyBytes: number;
}

/** Handles one request under /api/v1/dt/. */
export async function handleDataType(req: IncomingMessage, res: ServerResponse, url: URL, o: DataTypeApiOptions): Promise<void> {
  try {
    const key = keyFromDtPath(url.pathname);
    switch (req.method) {
      case 'GET':
      case 'HEAD': {
        const typeParam = url.searchParams.get('type');
        const expected = typeParam === null ? undefined : crdtType(typeParam, 'the type parameter');
        const r = await o.client.dataTypeFetch(key, expected, callOptions(req));
        if (!r && expected === undefined) throw new NotFoundError(`key ${JSON.stringify(key.toString('utf8'))} holds no data type`);
        const view = r ? dataTypeView(r.state) : emptyView(expected!);
        return sendView(req, res, view);
      }
      case 'POST': {
        const op = parseOperation(await readJson(req, o.maxJsonBodyBytes), () => o.client.registerStamp());
        const r = await o.client.dataTypeUpdate(key, op, { ...callOptions(req), opId: opIdOf(req) });
        return sendView(req, res, dataTypeView(r.state));
      }
      default:
        res.setHeader('allow', 'GET, HEAD, POST');
        throw new RingkvError('METHOD_NOT_ALLOWED', `method ${req.method} is not allowed on ${DT_PREFIX}{key}`);
    }
  } catch (err) {
    discardBody(req);
    sendError(res, err);
  }
}

/** Decodes the key of a /api/v1/dt/{key} path (percent-encoded UTF-8). */
export function keyFromDtPath(pathname: string): Buffer {
  return keyFromPath(pathname, DT_PREFIX);
}

function sendView(req: IncomingMessage, res: ServerResponse, view: object): void {
  if (req.method === 'HEAD') {
    const text = JSON.stringify(view);
    res.writeHead(200, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text) });
    res.end();
    return;
  }
  sendJson(res, 200, view);
}

function header(req: IncomingMessage, name: string): string | undefined {
  const h = req.headers[name];
  return Array.isArray(h) ? h[0] : h;
}

function callOptions(req: IncomingMessage): { consistency?: Consistency; timeoutMs?: number } {
  const out: { consistency?: Consistency; timeoutMs?: number } = { consistency: 'strong' };
  const c = header(req, 'consistency');
  if (c !== undefined) out.consistency = parseConsistency(c);
  const t = header(req, 'x-ringkv-timeout-ms');
  if (t !== undefined && t !== '') {
    const n = Number(t);
    if (!/^\d+$/.test(t.trim()) || !(n >= 1 && n <= 600_000)) throw new InvalidArgumentError(`X-Ringkv-Timeout-Ms must be an integer from 1 to 600000, got ${JSON.stringify(t)}`);
    out.timeoutMs = n;
  }
  return out;
}

/** The operation id of X-Ringkv-Op-Id (1..64 printable ASCII characters), else 16 random bytes. */
function opIdOf(req: IncomingMessage): Buffer {
  const h = header(req, OP_ID_HEADER);
  if (h === undefined) return crypto.randomBytes(16);
  if (!/^[\x21-\x7e]+$/.test(h) || h.length > MAX_OP_ID_BYTES) {
    throw new InvalidArgumentError(`X-Ringkv-Op-Id must be 1 to ${MAX_OP_ID_BYTES} printable ASCII characters without spaces`);
  }
  return Buffer.from(h, 'latin1');
}

async function readJson(req: IncomingMessage, limitBytes: number): Promise<unknown> {
  const ct = (header(req, 'content-type') ?? 'application/json').toLowerCase();
  if (!ct.startsWith('application/json') && !ct.endsWith('+json')) {
    throw new RingkvError('UNSUPPORTED_MEDIA_TYPE', `a data-type operation is a JSON body (application/json), not ${JSON.stringify(ct)}`);
  }
  const body = await readBody(req, limitBytes);
  const text = body.toString('utf8');
  checkJsonDepth(text);
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    throw new MalformedRequestError(`body is not valid JSON: ${(err as Error).message}`);
  }
}

// ---- the JSON operations ----------------------------------------------------------------
//
//   {"type": "counter", "increment": 5}            or "decrement": 5
//   {"type": "set", "add": ["a"], "remove": ["b"], "context": "..."}
//   {"type": "register", "set": <any JSON value>}
//   {"type": "map", "update": {"name_register": {"set": "Ada"}, "visits_counter": {"increment": 1},
//                              "tags_set": {"add": ["x"]}, "admin_flag": {"enable": true},
//                              "address_map": {"update": {...}, "remove": [...]}},
//                   "remove": ["old_counter"], "context": "..."}
//
// Fields are named `${name}_${type}` (the type is what follows the last underscore), as in
// the map's value. Unknown properties are refused, so a misspelt one cannot pass unnoticed.

/**
 * Parses the JSON body of a POST into an operation, stamping register assignments with
 * `stamp` (the coordinating node's hybrid clock); throws INVALID_ARGUMENT or
 * MALFORMED_REQUEST naming the problem.
 */
export function parseOperation(body: unknown, stamp: () => { ts: number; writer: string }): CrdtOp {
  const o = object(body, 'the body');
  const type = crdtType(o.type, 'type');
  const ctx = o.context === undefined ? undefined : contextOf(stringOf(o.context, 'context'), type);
  switch (type) {
    case 'counter':
      only(o, ['type', 'increment', 'decrement'], 'a counter operation');
      return { type: 'counter', increment: counterAmount(o, 'the counter operation') };
    case 'set': {
      only(o, ['type', 'add', 'remove', 'context'], 'a set operation');
      const op = setOp(o, 'the set operation');
      return ctx === undefined ? op : { ...op, context: ctx };
    }
    case 'register':
      only(o, ['type', 'set'], 'a register operation');
      if (!('set' in o)) throw new InvalidArgumentError('a register operation is {"type": "register", "set": <JSON value>}');
      return { type: 'register', assign: registerText(o.set), ...stamp() };
    case 'map': {
      only(o, ['type', 'update', 'remove', 'context'], 'a map operation');
      const op = mapOp(o, 'the map operation', 0, stamp);
      return ctx === undefined ? op : { ...op, context: ctx };
    }
  }
}

function crdtType(v: unknown, where: string): CrdtType {
  if (typeof v !== 'string' || !(CRDT_TYPES as readonly string[]).includes(v)) {
    throw new InvalidArgumentError(`${where} must be one of ${CRDT_TYPES.join(', ')}, got ${JSON.stringify(v) ?? 'nothing'}`);
  }
  return v as CrdtType;
}

function object(v: unknown, where: string): Record<string, unknown> {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new MalformedRequestError(`${where} must be a JSON object`);
  return v as Record<string, unknown>;
}

function only(o: Record<string, unknown>, allowed: string[], what: string): void {
  for (const k of Object.keys(o)) if (!allowed.includes(k)) throw new InvalidArgumentError(`${what} has no property ${JSON.stringify(k)} (allowed: ${allowed.join(', ')})`);
}

function stringOf(v: unknown, where: string): string {
  if (typeof v !== 'string') throw new InvalidArgumentError(`${where} must be a string`);
  return v;
}

function strings(v: unknown, where: string): string[] {
  if (!Array.isArray(v) || !v.every((x) => typeof x === 'string')) throw new InvalidArgumentError(`${where} must be an array of strings`);
  return v as string[];
}

function counterAmount(o: Record<string, unknown>, where: string): number {
  const has = (k: string) => o[k] !== undefined;
  if (has('increment') === has('decrement')) throw new InvalidArgumentError(`${where} has exactly one of "increment" and "decrement"`);
  const v = has('increment') ? o.increment : o.decrement;
  if (typeof v !== 'number' || !Number.isSafeInteger(v)) throw new InvalidArgumentError(`${where}: the amount must be a safe integer, got ${JSON.stringify(v)}`);
  return has('increment') ? v : -v;
}

function setOp(o: Record<string, unknown>, where: string): SetOp {
  const op: { -readonly [K in keyof SetOp]: SetOp[K] } = { type: 'set' };
  if (o.add !== undefined) op.add = strings(o.add, `${where}: "add"`);
  if (o.remove !== undefined) op.remove = strings(o.remove, `${where}: "remove"`);
  if (!op.add?.length && !op.remove?.length) throw new InvalidArgumentError(`${where} adds or removes at least one member`);
  return op;
}

/** `${name}_${type}` → (name, type). */
function fieldOf(k: string, where: string): FieldKey {
  const i = k.lastIndexOf('_');
  const type = k.slice(i + 1);
  if (i <= 0 || !(FIELD_TYPES as readonly string[]).includes(type)) {
    throw new InvalidArgumentError(`${where}: field ${JSON.stringify(k)} is not name_type with a type of ${FIELD_TYPES.join(', ')}`);
  }
  return { name: k.slice(0, i), type: type as FieldType };
}

function mapOp(o: Record<string, unknown>, where: string, depth: number, stamp: () => { ts: number; writer: string }): MapOp {
  if (depth >= MAX_MAP_DEPTH) throw new InvalidArgumentError(`${where}: maps nest at most ${MAX_MAP_DEPTH} deep`);
  const updates: FieldUpdate[] = [];
  if (o.update !== undefined) {
    for (const [k, v] of Object.entries(object(o.update, `${where}: "update"`))) {
      const f = fieldOf(k, where);
      updates.push({ name: f.name, op: fieldOp(f, object(v, `${where}: field ${JSON.stringify(k)}`), `${where}: field ${JSON.stringify(k)}`, depth, stamp) });
    }
  }
  const removes: FieldKey[] = [];
  if (o.remove !== undefined) for (const k of strings(o.remove, `${where}: "remove"`)) removes.push(fieldOf(k, where));
  if (updates.length + removes.length === 0) throw new InvalidArgumentError(`${where} updates or removes at least one field`);
  const op: { -readonly [K in keyof MapOp]: MapOp[K] } = { type: 'map' };
  if (updates.length) op.updates = updates;
  if (removes.length) op.removes = removes;
  return op;
}

function fieldOp(f: FieldKey, o: Record<string, unknown>, where: string, depth: number, stamp: () => { ts: number; writer: string }): NestedOp {
  switch (f.type) {
    case 'counter':
      only(o, ['increment', 'decrement'], where);
      return { type: 'counter', increment: counterAmount(o, where) };
    case 'set':
      only(o, ['add', 'remove'], where);
      return setOp(o, where);
    case 'register':
      only(o, ['set'], where);
      if (!('set' in o)) throw new InvalidArgumentError(`${where} is {"set": <JSON value>}`);
      return { type: 'register', assign: registerText(o.set), ...stamp() };
    case 'flag':
      only(o, ['enable'], where);
      if (typeof o.enable !== 'boolean') throw new InvalidArgumentError(`${where} is {"enable": true} or {"enable": false}`);
      return { type: 'flag', enable: o.enable };
    case 'map':
      only(o, ['update', 'remove'], where);
      return mapOp(o, where, depth + 1, stamp);
  }
}
