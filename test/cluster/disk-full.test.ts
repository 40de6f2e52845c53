// A replica's disk fills up, with real processes: n3's data directory is a small tmpfs
// (with a ballast file taking part of it) and a strong write load fills it. n3's engine
// then refuses writes (WRITE_REFUSED; /health 503, engine degraded-retrying, ENOSPC in
// /metrics and `ringkv status`) while every write keeps succeeding through n1 and n2. The
// ballast is deleted: n3 resumes writes by itself — same process, no restart — and after a
// repair every acknowledged write reads back at `all`. Needs root (mount -t tmpfs); skips
// with a message otherwise.

import { execFile, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import t from 'tap';
import type { RingkvError } from '../../sdk/errors.js';
import { liveSiblings } from '../../sdk/versioning/index.js';
import type { StoredObject } from '../../sdk/versioning/index.js';
import type { BatchResponse } from '../../sdk/wire/protocol.js';
import { OpType, PROTOCOL_VERSION, Routes } from '../../sdk/wire/protocol.js';
import { CLI, metricSum, TestCluster } from '../helpers/cluster.js';

t.setTimeout(300_000);
const exec = promisify(execFile);
const MiB = 1024 * 1024;

/** Mounts a tmpfs of `sizeMiB` at a new directory; undefined (with why) when this machine cannot. */
function mountTmpfs(sizeMiB: number): { dir: string } | { why: string } {
  if (process.platform !== 'linux') return { why: 'tmpfs mounts need Linux' };
  if (process.getuid?.() !== 0) return { why: 'mounting a tmpfs needs root (run as root, or in CI: .ci/run runs as root)' };
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ringkv-tmpfs-'));
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${sizeMiB}m`, 'tmpfs', dir], { stdio: 'pipe' });
    return { dir };
  } catch (err) {
    fs.rmdirSync(dir);
    return { why: `mount -t tmpfs failed (no CAP_SYS_ADMIN in this container?): ${(err as Error).message.split('\n')[0]}` };
  }
}

const mount = mountTmpfs(32);

async function health(address: string): Promise<{ code: number; body: { status: string; engine: string; writesRefused: boolean; engineLastError?: { errno?: string } } }> {
  const res = await fetch(`http://${address}/health`);
  return { code: res.status, body: (await res.json()) as never };
}

t.test('a full disk on one replica: writes go on through the others, it resumes by itself once space is freed, nothing acknowledged is lost', { skip: 'why' in mount ? mount.why : false }, async (t) => {
  const dir = (mount as { dir: string }).dir;
  t.teardown(() => {
    // Lazy: the node's process may still hold files open when this runs.
    execFileSync('umount', ['-l', dir]);
    fs.rmdirSync(dir);
  });
  // 20 MiB of the 32 are taken by a ballast file: n3 has about 12 MiB, then 32 once it is deleted.
  const ballast = path.join(dir, 'ballast');
  fs.writeFileSync(ballast, Buffer.alloc(20 * MiB, 1));
  // The other nodes' data directories: a temporary directory of their own.
  const clusterDir = fs.mkdtempSync(path.join(os.tmpdir(), 'ringkv-disk-full-'));
  t.teardown(() => fs.rmSync(clusterDir, { recursive: true, force: true }));
  const c = await TestCluster.start(t, {
    nodes: 3,
    dataDirOf: (id) => (id === 'n3' ? path.join(dir, 'n3') : path.join(clusterDir, id)),
    // Small memtables, so the load rolls WAL segments and flushes tables while the disk fills;
    // no automatic repair (the test runs one).
    env: { RINGKV_MEMTABLE_SIZE_BYTES: String(MiB), RINGKV_REPAIR_INTERVAL_MS: '0' },
  });
  const n3 = c.node('n3');
  const pid = n3.proc!.child.pid;
  const kv = await c.client<string>({ valueEncoding: 'utf8', timeoutMs: 20_000, readRepair: false });
  const value = (k: string) => `${k}:`.padEnd(2048, 'x');

  // The load: 16 writers at strong until n3 refuses writes, then 300 more writes.
  const acked = new Map<string, string>();
  const failed: string[] = [];
  let refusedAt = -1;
  let stop = false;
  let n = 0;
  const writer = async (w: number): Promise<void> => {
    for (let i = 0; !stop && n < 40_000; i++) {
      const k = `df-${w}-${i}`;
      n++;
      try {
        await kv.put(k, value(k), { consistency: 'strong' });
        acked.set(k, value(k));
        if (refusedAt >= 0 && acked.size >= refusedAt + 300) stop = true;
      } catch (err) {
        failed.push(`${k}: ${(err as RingkvError).code} ${(err as Error).message}`);
      }
    }
  };
  const writers = Promise.all(Array.from({ length: 16 }, (_, w) => writer(w)));
  // What n3 shows is taken while the load still runs: once it stops, a flush or compaction
  // that frees space may let n3 resume by itself before the ballast goes.
  const deadline = Date.now() + 150_000;
  let refusedHealth: Awaited<ReturnType<typeof health>> | undefined;
  let metrics = '';
  let statusOut = '';
  while (refusedAt < 0 && !stop && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 250));
    const h = await health(n3.address).catch(() => undefined);
    if (h?.body.writesRefused) {
      refusedAt = acked.size;
      refusedHealth = h;
      metrics = await c.metrics('n3');
      statusOut = (await exec(process.execPath, [CLI, 'status', '--json', '--seeds', c.addresses.join(',')])).stdout;
    }
  }
  if (refusedAt < 0) stop = true;
  await writers;
  t.ok(refusedAt > 0, `n3 filled up and refused writes after ${refusedAt} writes`);
  t.same(failed.slice(0, 5), [], `every one of the ${acked.size} writes succeeded through the other replicas`);

  t.equal(refusedHealth?.code, 503, '/health: 503 while n3 refuses writes');
  t.equal(refusedHealth?.body.status, 'writes-refused');
  t.equal(refusedHealth?.body.engine, 'degraded-retrying', 'engine: degraded-retrying');
  t.equal(refusedHealth?.body.engineLastError?.errno, 'ENOSPC', 'its last error is ENOSPC');
  t.equal(metricSum(metrics, 'ringkv_engine_state', { state: 'degraded-retrying' }), 1, '/metrics: engine state degraded-retrying');
  t.ok(metricSum(metrics, 'ringkv_engine_errors_total', { errno: 'ENOSPC' }) > 0, '/metrics: ENOSPC errors counted');
  const st = (JSON.parse(statusOut || '{"nodes":[]}') as { nodes: { id: string; engine?: string }[] }).nodes.find((x) => x.id === 'n3');
  t.match(st?.engine ?? '', /^degraded-retrying \(.*ENOSPC/, `ringkv status: ${st?.engine}`);
  // Space is freed: n3 resumes by itself.
  fs.unlinkSync(ballast);
  const resumeBy = Date.now() + 60_000;
  let back = await health(n3.address);
  while ((back.code !== 200 || back.body.writesRefused) && Date.now() < resumeBy) {
    await new Promise((r) => setTimeout(r, 200));
    back = await health(n3.address);
  }
  t.equal(back.code, 200, `n3 takes writes again (engine ${back.body.engine})`);
  t.equal(n3.proc!.child.pid, pid, 'the same process: no restart');
  t.equal(n3.proc!.child.exitCode, null, 'which never exited');
  const after = Array.from({ length: 100 }, (_, i) => `df-after-${i}`);
  await Promise.all(after.map((k) => kv.put(k, value(k), { consistency: 'all' })));
  for (const k of after) acked.set(k, value(k));
  t.pass('writes at all (n3 must acknowledge them) succeed');
  t.ok(metricSum(await c.metrics('n3'), 'ringkv_engine_auto_resumes') >= 1, 'counted as an automatic resume');

  // After a repair, every acknowledged write reads back at all, and from n3's own replica.
  await c.call(n3.id, Routes.admin, { v: PROTOCOL_VERSION, action: 'repair' }, 120_000);
  const keys = [...acked.keys()];
  let wrong = 0;
  for (let at = 0; at < keys.length; at += 200) {
    const got = await Promise.all(keys.slice(at, at + 200).map((k) => kv.get(k, { consistency: 'all' })));
    got.forEach((g, j) => {
      if (g?.value !== acked.get(keys[at + j]!)) wrong++;
    });
  }
  t.equal(wrong, 0, `all ${keys.length} acknowledged writes read back at all`);
  let missingOnN3 = 0;
  for (let at = 0; at < keys.length; at += 500) {
    const chunk = keys.slice(at, at + 500);
    const res = await c.call<BatchResponse>('n3', Routes.batch, { v: PROTOCOL_VERSION, ops: chunk.map((k) => ({ t: OpType.Get, key: Buffer.from(k) })) }, 20_000);
    chunk.forEach((k, j) => {
      const r = res.results[j]!;
      const v = r.ok && r.obj ? liveSiblings(r.obj as StoredObject, Date.now())[0]?.value.toString() : undefined;
      if (v !== acked.get(k)) missingOnN3++;
    });
  }
  t.equal(missingOnN3, 0, "and n3's own replica holds every one of them");
});
