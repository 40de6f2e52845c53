// The engine's memory defaults follow the memory a server may use: the pure sizing, and a
// real `ringkv server` started inside a 128 MiB memory cgroup (root only; skipped with the
// reason otherwise) that logs an 8 MiB block cache and 4 MiB memtables — unless the
// environment sets them, which wins.

import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import t from 'tap';
import { MemoryLimit } from '../../benchmarks/harness/memory-limit.js';
import { availableMemoryBytes, engineMemoryDefaults } from '../../storage-server/memory-budget.js';

const MiB = 1024 * 1024;
const CLI = path.resolve(import.meta.dirname, '../../dist/storage-server/cli/ringkv.js');

t.test('sizing: 1/16 and 1/32 of the memory, between 1 MiB and the fixed defaults', async (t) => {
  t.same(engineMemoryDefaults(128 * MiB), { blockCacheSizeBytes: 8 * MiB, memtableSizeBytes: 4 * MiB });
  t.same(engineMemoryDefaults(64 * MiB), { blockCacheSizeBytes: 4 * MiB, memtableSizeBytes: 2 * MiB });
  t.same(engineMemoryDefaults(512 * MiB), { blockCacheSizeBytes: 32 * MiB, memtableSizeBytes: 8 * MiB });
  t.same(engineMemoryDefaults(1024 * MiB), { blockCacheSizeBytes: 64 * MiB, memtableSizeBytes: 8 * MiB });
  t.same(engineMemoryDefaults(24 * 1024 * MiB), { blockCacheSizeBytes: 64 * MiB, memtableSizeBytes: 8 * MiB }, 'a large host keeps the fixed defaults');
  t.same(engineMemoryDefaults(8 * MiB), { blockCacheSizeBytes: MiB, memtableSizeBytes: MiB });
  t.equal(availableMemoryBytes(128 * MiB, 24 * 1024 * MiB), 128 * MiB, 'a cgroup limit below the host');
  t.equal(availableMemoryBytes(2 ** 63, 24 * 1024 * MiB), 24 * 1024 * MiB, 'no limit: the host');
  t.equal(availableMemoryBytes(0, 1024 * MiB), 1024 * MiB);
  t.equal(availableMemoryBytes(undefined, 1024 * MiB), 1024 * MiB);
});

/** Starts a server in `limit`, returns its 'engine memory' log record, stops it. */
async function engineMemoryOf(limit: MemoryLimit, env: Record<string, string>): Promise<Record<string, number>> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'memory-budget-'));
  const [cmd, ...args] = [...limit.commandPrefix(), process.execPath, CLI, 'server', '--id', 'm1', '--port', '0', '--data', dir, '--log-level', 'info'] as unknown as [string, ...string[]];
  const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
  const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
  try {
    for await (const line of readline.createInterface({ input: child.stdout })) {
      if (line.includes('"engine memory"')) return JSON.parse(line) as Record<string, number>;
    }
    throw new Error('the server exited without logging its engine memory');
  } finally {
    clearTimeout(timer);
    const exited = new Promise((r) => child.once('exit', r));
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    await exited;
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

const why: string[] = [];
const limit = fs.existsSync(CLI) ? MemoryLimit.open(128 * MiB, `ringkv-memory-budget-${process.pid}`, why) : undefined;
const skip = !fs.existsSync(CLI) ? 'dist/ is missing: npm run build' : limit ? false : `no writable memory cgroup here (needs root): ${why.join('; ')}`;

t.test('a real server in a 128 MiB cgroup sizes its engine for it', { skip }, async (t) => {
  if (!limit) return;
  t.teardown(() => limit.release());
  const m = await engineMemoryOf(limit, {});
  t.equal(m.memoryBytes, 128 * MiB, 'the server sees its limit');
  t.equal(m.blockCacheSizeBytes, 8 * MiB);
  t.equal(m.memtableSizeBytes, 4 * MiB);
  const set = await engineMemoryOf(limit, { RINGKV_BLOCK_CACHE_SIZE_BYTES: String(48 * MiB) });
  t.equal(set.blockCacheSizeBytes, 48 * MiB, 'a setting given in the environment wins');
  t.equal(set.memtableSizeBytes, 4 * MiB);
});
