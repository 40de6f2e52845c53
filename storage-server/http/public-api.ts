// The public HTTP API of the design, served by every node and coordinated through the SDK
// client the node embeds:
//   PUT    /api/v1/kv/{key}   JSON {"value", "ttl"?} or a raw body (application/octet-stream)
//   GET    /api/v1/kv/{key}   → JSON {"key", "value", "version", ...} or the raw bytes
//   DELETE /api/v1/kv/{key}   → 204 (a tombstone is written)
// with a `Consistency` header (linearizable | strong | eventual | all | quorum | localQuorum |
// localOne | eachQuorum | r=2,w=1; local levels are the node's own data center) and an
// optional `X-Ringkv-Timeout-Ms`. Bad input gets a 4xx JSON error with a stable code and
// nothing is written. Stateless; safe for concurrent requests.

import type { IncomingMessage, ServerResponse } from 'node:http';
import type { RingkvClient } from '../../sdk/client.js';
import type { Consistency } from '../../sdk/consistency.js';
import { parseConsistency } from '../../sdk/consistency.js';
import {
  InvalidArgumentError,
  KeyEmptyError,
  MalformedRequestError,
  NotFoundError,
  PayloadTooLargeError,
  RingkvError,
  ValueTooLargeError,
} from '../../sdk/errors.js';
import { checkKey, checkTtl, MAX_VALUE_BYTES } from '../../sdk/limits.js';
import { discardBody, readBody } from './read-body.js';
import { sendEmpty, sendError, sendJson } from './respond.js';

export const KV_PREFIX = '/api/v1/kv/';

export interface PublicApiOptions {
  client: RingkvClient<Buffer>;
  maxJsonBodyBytes: number;
}

/**
 * Decodes the key after `prefix` in a path (percent-encoded UTF-8): /api/v1/kv/{key} by
 * default, /api/v1/dt/{key} for data types. Throws KEY_EMPTY, MALFORMED_REQUEST, KEY_TOO_LARGE.
 */
export function keyFromPath(pathname: string, prefix: string = KV_PREFIX): Buffer {
  const raw = pathname.slice(prefix.length);
  if (raw.length === 0) throw new KeyEmptyError();
  let text: string;
  try {
    text = decodeURIComponent(raw);
  } catch {
    throw new MalformedRequestError('the key in the path is not valid percent-encoded UTF-8');
  }
  const key = Buffer.from(text, 'utf8');
  checkKey(key);
  return key;
}

function consistencyOf(req: IncomingMessage): Consistency {
  const h = req.headers['consistency'];
  if (h === undefined) return 'strong';
  return parseConsistency(Array.isArray(h) ? h[0]! : h);
}

/** Most levels of nesting a JSON value may have (deeper values are refused with 400). */
export const MAX_JSON_DEPTH = 512;

/** The ttl of a JSON body: absent, or a JSON number (not a string, boolean or array). */
function ttlFromBody(v: unknown): number | undefined {
  if (v === undefined || v === null) return undefined;
  return checkTtl(v);
}

/** The ttl of a query parameter or header: absent, or a decimal number. */
function ttlFromText(v: string | null | undefined): number | undefined {
  if (v === undefined || v === null || v === '') return undefined;
  if (!/^\d+(\.\d+)?$/.test(v.trim())) throw new InvalidArgumentError(`ttl must be a number of seconds, got ${JSON.stringify(v)}`);
  return checkTtl(Number(v));
}

/**
 * Throws MalformedRequestError when the JSON text nests arrays or objects deeper than
 * MAX_JSON_DEPTH (JSON.stringify, which the API and SDK use, recurses and would overflow
 * the stack). A scan, no recursion: brackets inside strings do not count.
 */
export function checkJsonDepth(text: string): void {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c) i++; // backslash: skip the escaped character
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x5b || c === 0x7b) {
      if (++depth > MAX_JSON_DEPTH) throw new MalformedRequestError(`JSON nests deeper than ${MAX_JSON_DEPTH} levels`);
    } else if (c === 0x5d || c === 0x7d) depth--;
  }
}

/** The per-request timeout from X-Ringkv-Timeout-Ms (1 ms .. 10 min), if given. */
function timeoutOf(req: IncomingMessage): number | undefined {
  const h = headerString(req, 'x-ringkv-timeout-ms');
  if (h === undefined || h === '') return undefined;
  const n = Number(h);
  if (!/^\d+$/.test(h.trim()) || !(n >= 1 && n <= 600_000)) throw new InvalidArgumentError(`X-Ringkv-Timeout-Ms must be an integer from 1 to 600000, got ${JSON.stringify(h)}`);
  return n;
}

/** Consistency and timeout of a request, as call options. */
function callOptions(req: IncomingMessage): { consistency: Consistency; timeoutMs?: number } {
  const timeoutMs = timeoutOf(req);
  return timeoutMs === undefined ? { consistency: consistencyOf(req) } : { consistency: consistencyOf(req), timeoutMs };
}

function isJson(ct: string): boolean {
  return ct.startsWith('application/json') || ct.endsWith('+json');
}

/** Handles one request under /api/v1/kv/. */
export async function handleKv(req: IncomingMessage, res: ServerResponse, url: URL, o: PublicApiOptions): Promise<void> {
  try {
    const key = keyFromPath(url.pathname);
    switch (req.method) {
      case 'GET':
      case 'HEAD':
        return await getKey(req, res, key, o);
      case 'PUT':
      case 'POST':
        return await putKey(req, res, url, key, o);
      case 'DELETE': {
        const context = headerString(req, 'x-ringkv-context');
        await o.client.delete(key, { ...callOptions(req), ...(context ? { context } : {}) });
        return sendEmpty(res, 204);
      }
      default:
        res.setHeader('allow', 'GET, HEAD, PUT, POST, DELETE');
        throw new RingkvError('METHOD_NOT_ALLOWED', `method ${req.method} is not allowed on ${KV_PREFIX}{key}`);
    }
  } catch (err) {
    // Drain what is left of a refused body so the connection can be reused or closed cleanly.
    discardBody(req);
    sendError(res, err);
  }
}

function headerString(req: IncomingMessage, name: string): string | undefined {
  const h = req.headers[name];
  return Array.isArray(h) ? h[0] : h;
}

async function getKey(req: IncomingMessage, res: ServerResponse, key: Buffer, o: PublicApiOptions): Promise<void> {
  const r = await o.client.get(key, callOptions(req));
  if (!r) throw new NotFoundError(`key ${JSON.stringify(key.toString('utf8'))} not found`);
  const headers: Record<string, string> = { 'x-ringkv-version': r.version, 'x-ringkv-context': r.context };
  if (r.expiresAtMs) headers['x-ringkv-expires-at'] = new Date(r.expiresAtMs).toISOString();
  const ct = r.contentType || 'application/octet-stream';
  const textual = ct.startsWith('text/') || isJson(ct);
  const accept = headerString(req, 'accept') ?? '';
  if (!textual || accept.startsWith('application/octet-stream')) {
    res.writeHead(200, { 'content-type': ct, 'content-length': r.value.length, ...headers });
    res.end(req.method === 'HEAD' ? undefined : r.value);
    return;
  }
  const body: Record<string, unknown> = { key: key.toString('utf8'), value: decodeText(r.value, ct), version: r.version };
  if (r.expiresAtMs) body.expiresAt = new Date(r.expiresAtMs).toISOString();
  if (r.siblings) body.siblings = r.siblings.map((s) => ({ value: decodeText(s.value, s.contentType), writer: s.writer }));
  if (r.context !== r.version) body.context = r.context;
  try {
    sendJson(res, 200, body, headers);
  } catch (err) {
    // A JSON value nested too deeply to serialize again (written by an SDK client, which
    // the API's depth check does not see): hand it back as its text.
    if (!(err instanceof RangeError)) throw err;
    body.value = r.value.toString('utf8');
    if (r.siblings) body.siblings = r.siblings.map((s) => ({ value: s.value.toString('utf8'), writer: s.writer }));
    sendJson(res, 200, body, headers);
  }
}

function decodeText(v: Buffer, ct: string): unknown {
  const text = v.toString('utf8');
  if (isJson(ct)) {
    try {
      return JSON.parse(text);
    } catch {
      return text;
    }
  }
  return text;
}

async function putKey(req: IncomingMessage, res: ServerResponse, url: URL, key: Buffer, o: PublicApiOptions): Promise<void> {
  const call = callOptions(req);
  const ct = (headerString(req, 'content-type') ?? 'application/json').toLowerCase();
  let value: Buffer;
  let ttl: number | undefined;
  let contentType: string;
  let context = headerString(req, 'x-ringkv-context');
  if (isJson(ct)) {
    let body: Buffer;
    try {
      body = await readBody(req, o.maxJsonBodyBytes);
    } catch (err) {
      if (err instanceof PayloadTooLargeError) throw new ValueTooLargeError(Number(req.headers['content-length'] ?? o.maxJsonBodyBytes + 1), MAX_VALUE_BYTES);
      throw err;
    }
    const text = body.toString('utf8');
    checkJsonDepth(text);
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch (err) {
      throw new MalformedRequestError(`body is not valid JSON: ${(err as Error).message}`);
    }
    if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) throw new MalformedRequestError('body must be a JSON object {"value": ..., "ttl"?: seconds}');
    const p = parsed as { value?: unknown; ttl?: unknown; context?: unknown };
    if (!('value' in p) || p.value === undefined) throw new MalformedRequestError('body needs a "value"');
    if (typeof p.value === 'string') {
      value = Buffer.from(p.value, 'utf8');
      contentType = 'text/plain; charset=utf-8';
    } else {
      value = Buffer.from(JSON.stringify(p.value), 'utf8');
      contentType = 'application/json';
    }
    ttl = p.ttl !== undefined ? ttlFromBody(p.ttl) : ttlFromText(url.searchParams.get('ttl'));
    if (typeof p.context === 'string') context = p.context;
  } else {
    // A raw body is the value itself: refuse it while reading once it passes 1 MiB.
    try {
      value = await readBody(req, MAX_VALUE_BYTES);
    } catch (err) {
      if (err instanceof PayloadTooLargeError) throw new ValueTooLargeError(Number(req.headers['content-length'] ?? MAX_VALUE_BYTES + 1), MAX_VALUE_BYTES);
      throw err;
    }
    contentType = ct.split(';')[0]!.trim() || 'application/octet-stream';
    ttl = ttlFromText(url.searchParams.get('ttl') ?? headerString(req, 'x-ringkv-ttl'));
  }
  if (value.length > MAX_VALUE_BYTES) throw new ValueTooLargeError(value.length, MAX_VALUE_BYTES);
  const r = await o.client.put(key, value, {
    ...call,
    contentType,
    ...(ttl !== undefined ? { ttl } : {}),
    ...(context ? { context } : {}),
  });
  const body: Record<string, unknown> = { key: key.toString('utf8'), version: r.version };
  if (r.context !== r.version) body.context = r.context;
  sendJson(res, r.created ? 201 : 200, body, { 'x-ringkv-version': r.version });
}
