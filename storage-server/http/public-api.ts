// The public HTTP API of the design, served by every node and coordinated through the SDK
// client the node embeds:
//   PUT    /api/v1/kv/{key}   JSON {"value", "ttl"?} or a raw body (application/octet-stream)
//   GET    /api/v1/kv/{key}   → JSON {"key", "value", "version", ...} or the raw bytes
//   DELETE /api/v1/kv/{key}   → 204 (a tombstone is written)
// with a `Consistency: strong | eventual | all` header. Bad input gets a 4xx JSON error
// with a stable code and nothing is written. Stateless; safe for concurrent requests.

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
import { checkKey, MAX_VALUE_BYTES } from '../../sdk/limits.js';
import { discardBody, readBody } from './read-body.js';
import { sendEmpty, sendError, sendJson } from './respond.js';

export const KV_PREFIX = '/api/v1/kv/';

export interface PublicApiOptions {
  client: RingkvClient<Buffer>;
  maxJsonBodyBytes: number;
}

/** Decodes the key of a /api/v1/kv/{key} path (percent-encoded UTF-8). */
export function keyFromPath(pathname: string): Buffer {
  const raw = pathname.slice(KV_PREFIX.length);
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

function ttlOf(v: unknown): number | undefined {
  if (v === undefined || v === null || v === '') return undefined;
  const n = typeof v === 'number' ? v : Number(v);
  if (typeof n !== 'number' || !Number.isFinite(n) || n <= 0) throw new InvalidArgumentError(`ttl must be a positive number of seconds, got ${JSON.stringify(v)}`);
  return n;
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
        const consistency = consistencyOf(req);
        const context = headerString(req, 'x-ringkv-context');
        await o.client.delete(key, { consistency, ...(context ? { context } : {}) });
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
  const r = await o.client.get(key, { consistency: consistencyOf(req) });
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
  sendJson(res, 200, body, headers);
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
  const consistency = consistencyOf(req);
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
    let parsed: unknown;
    try {
      parsed = JSON.parse(body.toString('utf8'));
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
    ttl = ttlOf(p.ttl ?? url.searchParams.get('ttl'));
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
    ttl = ttlOf(url.searchParams.get('ttl') ?? headerString(req, 'x-ringkv-ttl'));
  }
  if (value.length > MAX_VALUE_BYTES) throw new ValueTooLargeError(value.length, MAX_VALUE_BYTES);
  const r = await o.client.put(key, value, {
    consistency,
    contentType,
    ...(ttl !== undefined ? { ttl } : {}),
    ...(context ? { context } : {}),
  });
  const body: Record<string, unknown> = { key: key.toString('utf8'), version: r.version };
  if (r.context !== r.version) body.context = r.context;
  sendJson(res, r.created ? 201 : 200, body, { 'x-ringkv-version': r.version });
}
