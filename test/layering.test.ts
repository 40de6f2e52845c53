// The layering: the SDK imports nothing of the server, and the engine stands alone — its
// files import nothing outside storage-server/engine/, and its
// errors reach clients as the SDK's typed errors with the same code, details and notApplied
// (storage-server/engine-error-map.ts), through the replica store and HTTP alike.

import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { RingkvError, httpStatusForCode } from '../sdk/errors.js';
import { asRingkvError, fromEngineError } from '../storage-server/engine-error-map.js';
import { CorruptionError, EngineError, EngineErrorCodes, LockedError, WriteRefusedError } from '../storage-server/engine/engine-errors.js';
import { Engine, MemoryFileSystem } from '../storage-server/engine/index.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const ENGINE_DIR = path.join(ROOT, 'storage-server/engine');

/** Every module specifier a TypeScript file imports or re-exports (static and dynamic). */
function specifiers(src: string): string[] {
  const out: string[] = [];
  for (const m of src.matchAll(/(?:^|\n)\s*(?:import|export)\b[^'"]*?from\s*['"]([^'"]+)['"]/g)) out.push(m[1]!);
  for (const m of src.matchAll(/(?:^|\n)\s*import\s*['"]([^'"]+)['"]/g)) out.push(m[1]!);
  for (const m of src.matchAll(/\bimport\(\s*['"]([^'"]+)['"]\s*\)/g)) out.push(m[1]!);
  for (const m of src.matchAll(/new URL\(\s*['"]([^'"]+)['"]\s*,\s*import\.meta\.url/g)) out.push(m[1]!);
  return out;
}

t.test('the engine imports only its own folder, Node built-ins and packages', async (t) => {
  const files = fs.readdirSync(ENGINE_DIR).filter((f) => f.endsWith('.ts'));
  t.ok(files.length > 10, `${files.length} engine files read`);
  const outside: string[] = [];
  for (const f of files) {
    for (const s of specifiers(fs.readFileSync(path.join(ENGINE_DIR, f), 'utf8'))) {
      if (!s.startsWith('.')) continue; // node:… and packages
      const target = path.resolve(ENGINE_DIR, s);
      if (!target.startsWith(ENGINE_DIR + path.sep)) outside.push(`${f} -> ${s}`);
    }
  }
  t.same(outside, [], 'no engine file reaches outside storage-server/engine/');
  // The scanner itself finds an import that leaves the folder.
  t.same(specifiers("import { X } from '../sdk/errors.js';\nexport type { Y } from './y.js';"), ['../sdk/errors.js', './y.js']);
});

/** Every .ts file below dir, recursively. */
function tsFiles(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((d) =>
    d.isDirectory() ? tsFiles(path.join(dir, d.name)) : d.name.endsWith('.ts') ? [path.join(dir, d.name)] : [],
  );
}

t.test('the SDK never imports the server', async (t) => {
  const sdkDir = path.join(ROOT, 'sdk');
  const serverDir = path.join(ROOT, 'storage-server');
  const files = tsFiles(sdkDir);
  t.ok(files.length > 20, `${files.length} SDK files read`);
  const bad: string[] = [];
  for (const f of files) {
    for (const s of specifiers(fs.readFileSync(f, 'utf8'))) {
      if (!s.startsWith('.')) continue;
      const target = path.resolve(path.dirname(f), s);
      if (target.startsWith(serverDir + path.sep) || !target.startsWith(sdkDir + path.sep)) bad.push(`${path.relative(ROOT, f)} -> ${s}`);
    }
  }
  t.same(bad, [], 'every relative import of sdk/ stays inside sdk/');
});

t.test('every engine error code is an SDK error code with an HTTP status', async (t) => {
  for (const code of Object.values(EngineErrorCodes)) t.ok(httpStatusForCode[code] !== undefined, `${code} is an SDK code`);
});

t.test('engine errors map to SDK errors by code, keeping details, cause and notApplied', async (t) => {
  const refused = new WriteRefusedError('no space left', new Error('ENOSPC'), { errno: 'ENOSPC' });
  const r = fromEngineError(refused)!;
  t.ok(r instanceof RingkvError, 'a RingkvError');
  t.equal(r.code, 'WRITE_REFUSED');
  t.equal(r.notApplied, true, 'a refused write stays not applied');
  t.equal(r.httpStatus, 503);
  t.same(r.details, { errno: 'ENOSPC' });
  t.equal(r.cause, refused, 'the engine error is the cause');

  const corrupt = asRingkvError(new CorruptionError('bad checksum', { file: '000007.sst', offset: 4096 }));
  t.equal(corrupt.code, 'CORRUPTION');
  t.equal(corrupt.notApplied, false);
  t.match(corrupt.message, /000007\.sst at offset 4096/);
  t.same(corrupt.details, { file: '000007.sst', offset: 4096 });

  t.equal(asRingkvError(new LockedError('/d', 'pid 7')).code, 'LOCKED');
  t.equal(asRingkvError(new Error('boom')).code, 'INTERNAL', 'anything else is INTERNAL');
  t.equal(fromEngineError(new Error('boom')), undefined);
  const sdk = new RingkvError('TIMEOUT', 'slow');
  t.equal(asRingkvError(sdk), sdk, 'an SDK error passes as it is');
});

t.test('the value limit is an engine option', async (t) => {
  const mfs = new MemoryFileSystem();
  await mfs.mkdirp('/db');
  const e = await Engine.open('/db', { fs: mfs, maxValueBytes: 1000 });
  await e.put(Buffer.from('k'), Buffer.alloc(1000));
  const err = await e.put(Buffer.from('k2'), Buffer.alloc(1001)).catch((x: unknown) => x);
  t.ok(err instanceof EngineError, 'an engine error');
  t.equal((err as EngineError).code, 'VALUE_TOO_LARGE');
  t.same((err as EngineError).details, { sizeBytes: 1001, limitBytes: 1000 });
  t.equal(await e.get(Buffer.from('k2')), undefined, 'nothing written');
  await e.close();
  const d = await Engine.open('/db', { fs: mfs });
  const big = await d.put(Buffer.from('k3'), Buffer.alloc(1024 * 1024 + 1)).catch((x: unknown) => x);
  t.equal((big as EngineError).code, 'VALUE_TOO_LARGE', 'default: 1 MiB');
  await d.close();
});
