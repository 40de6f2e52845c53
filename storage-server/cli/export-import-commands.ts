// `ringkv export` / `ringkv import`: every live key of a cluster to stdout as newline-
// delimited JSON (the format is in export-format.md beside this file), and such a file
// from stdin back into a cluster. Export lists through the SDK's entries() (one replica
// per range, resumable with --cursor); import writes with putMany in chunks. Progress goes
// to stderr, so stdout stays the data.

import readline from 'node:readline';
import type { Command } from 'commander';
import { connect } from '../../sdk/client.js';
import { parseConsistency } from '../../sdk/consistency.js';
import { InvalidArgumentError, MalformedRequestError, RingkvError } from '../../sdk/errors.js';
import type { PutOptions } from '../../sdk/client.js';
import { addTlsOptions, localDcFrom, localDcOption, seedsFrom, tlsFrom, tokenFrom } from './common.js';
import type { TlsFlags } from './common.js';

/** The first line of an export. */
export const EXPORT_HEADER = { format: 'ringkv-export', version: 1 } as const;

/** One key of an export (format version 1). */
export interface ExportLine {
  /** The key as UTF-8 text, when it is valid UTF-8 ... */
  key?: string;
  /** ... else its bytes in base64. */
  keyBase64?: string;
  /** The value's bytes in base64. */
  value: string;
  contentType: string;
  flags: number;
  /** Expiry, ms since the epoch, when the value has a TTL. */
  expiresAtMs?: number;
}

const IMPORT_CHUNK = 500;
const PROGRESS_EVERY = 1000;

export function registerExportImportCommands(program: Command): void {
  addTlsOptions(program.command('export'))
    .description('write every live key to stdout as newline-delimited JSON (progress on stderr)')
    .option('--seeds <list>', 'host:port of any node (env RINGKV_SEEDS)')
    .option('--prefix <prefix>', 'only keys that start with this')
    .option('--cursor <cursor>', 'resume where an interrupted export said it stood')
    .addOption(localDcOption())
    .action(async (o: { seeds?: string; prefix?: string; cursor?: string; localDc?: string } & TlsFlags) => {
      const tls = tlsFrom(o);
      const token = tokenFrom(o);
      const kv = await connect({ seeds: seedsFrom(o.seeds), ...(tls ? { tls } : {}), ...(token ? { auth: { token } } : {}), ...localDcFrom(o) });
      const listing = kv.entries({ ...(o.prefix !== undefined ? { prefix: o.prefix } : {}), ...(o.cursor !== undefined ? { cursor: o.cursor } : {}) });
      let count = 0;
      try {
        if (o.cursor === undefined) await write(`${JSON.stringify(EXPORT_HEADER)}\n`);
        for await (const e of listing) {
          const line: ExportLine = { value: e.value.toString('base64'), contentType: e.contentType, flags: e.flags };
          if (isUtf8(e.keyBytes)) line.key = e.key;
          else line.keyBase64 = e.keyBytes.toString('base64');
          if (e.expiresAtMs !== undefined) line.expiresAtMs = e.expiresAtMs;
          await write(`${JSON.stringify(orderKeysFirst(line))}\n`);
          if (++count % PROGRESS_EVERY === 0) process.stderr.write(`exported ${count} keys\n`);
        }
        process.stderr.write(`exported ${count} keys: done\n`);
      } catch (err) {
        process.stderr.write(`export stopped after ${count} keys; resume with --cursor ${listing.cursor}\n`);
        throw err;
      } finally {
        await kv.close();
      }
    });

  addTlsOptions(program.command('import'))
    .description('write the keys of an export (newline-delimited JSON on stdin) into the cluster (progress on stderr)')
    .option('--seeds <list>', 'host:port of any node (env RINGKV_SEEDS)')
    .option('--consistency <level>', 'linearizable | strong | eventual | all | quorum | localQuorum | localOne | eachQuorum', 'strong')
    .addOption(localDcOption())
    .action(async (o: { seeds?: string; consistency: string; localDc?: string } & TlsFlags) => {
      const consistency = parseConsistency(o.consistency);
      const tls = tlsFrom(o);
      const token = tokenFrom(o);
      const kv = await connect({ seeds: seedsFrom(o.seeds), retry: { attempts: 4, backoffMs: 100 }, ...(tls ? { tls } : {}), ...(token ? { auth: { token } } : {}), ...localDcFrom(o) });
      let imported = 0;
      let failed = 0;
      let expired = 0;
      let lineNo = 0;
      let firstError: RingkvError | undefined;
      let chunk: { key: Buffer; value: Buffer; options: PutOptions }[] = [];
      const flush = async () => {
        if (chunk.length === 0) return;
        const out = await kv.putMany(chunk, { consistency });
        for (const r of out) {
          if (r.ok) imported++;
          else {
            failed++;
            firstError ??= r.error;
          }
        }
        const before = imported + failed - chunk.length;
        if (Math.floor(before / PROGRESS_EVERY) !== Math.floor((imported + failed) / PROGRESS_EVERY)) {
          process.stderr.write(`imported ${imported} keys (${failed} failed)\n`);
        }
        chunk = [];
      };
      try {
        const lines = readline.createInterface({ input: process.stdin, crlfDelay: Infinity });
        for await (const text of lines) {
          lineNo++;
          if (text.trim() === '') continue;
          const parsed = parseLine(text, lineNo);
          if (parsed === 'header') continue;
          const { key, value, options } = parsed;
          if (options.ttl !== undefined && options.ttl <= 0) {
            expired++;
            continue;
          }
          chunk.push({ key, value, options });
          if (chunk.length >= IMPORT_CHUNK) await flush();
        }
        await flush();
      } finally {
        await kv.close();
      }
      process.stderr.write(`imported ${imported} keys (${failed} failed, ${expired} expired before import): done\n`);
      if (firstError) throw firstError;
    });
}

function parseLine(text: string, lineNo: number): 'header' | { key: Buffer; value: Buffer; options: PutOptions } {
  let o: Record<string, unknown>;
  try {
    o = JSON.parse(text) as Record<string, unknown>;
  } catch {
    throw new MalformedRequestError(`line ${lineNo}: not JSON`);
  }
  if (!o || typeof o !== 'object') throw new MalformedRequestError(`line ${lineNo}: not an object`);
  if (o.format === EXPORT_HEADER.format) {
    if (o.version !== EXPORT_HEADER.version) throw new InvalidArgumentError(`line ${lineNo}: export format version ${String(o.version)} is not supported (this ringkv reads ${EXPORT_HEADER.version})`);
    return 'header';
  }
  const key = typeof o.key === 'string' ? Buffer.from(o.key, 'utf8') : typeof o.keyBase64 === 'string' ? Buffer.from(o.keyBase64, 'base64') : undefined;
  if (!key) throw new MalformedRequestError(`line ${lineNo}: no key or keyBase64`);
  if (typeof o.value !== 'string') throw new MalformedRequestError(`line ${lineNo}: value must be base64 text`);
  const options: PutOptions = {};
  if (typeof o.contentType === 'string' && o.contentType !== '') options.contentType = o.contentType;
  if (typeof o.flags === 'number') options.flags = o.flags;
  if (typeof o.expiresAtMs === 'number') options.ttl = Math.ceil((o.expiresAtMs - Date.now()) / 1000);
  return { key, value: Buffer.from(o.value, 'base64'), options };
}

function isUtf8(b: Buffer): boolean {
  return Buffer.from(b.toString('utf8'), 'utf8').equals(b);
}

function orderKeysFirst(l: ExportLine): ExportLine {
  return { ...(l.key !== undefined ? { key: l.key } : { keyBase64: l.keyBase64! }), value: l.value, contentType: l.contentType, flags: l.flags, ...(l.expiresAtMs !== undefined ? { expiresAtMs: l.expiresAtMs } : {}) };
}

/** Writes to stdout, waiting when its buffer is full (a slow pipe). */
function write(s: string): Promise<void> {
  return new Promise((resolve, reject) => {
    if (process.stdout.write(s)) resolve();
    else {
      process.stdout.once('drain', resolve);
      process.stdout.once('error', reject);
    }
  });
}
