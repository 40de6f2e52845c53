// Convergence of an eventual run after healing: `ringkv repair` then `ringkv repair
// --check` (the real CLI, as an operator runs it) must exit 0, and every replica must hold
// the same value for every key (read from each replica directly with an internal batch
// Get, no SDK merging in between). Sequential; bounded by the CLI timeouts.

import { spawn } from 'node:child_process';
import type { TestCluster } from '../helpers/cluster.js';
import { CLI } from '../helpers/cluster.js';
import type { BatchResponse } from '../../sdk/wire/protocol.js';
import { OpType, PROTOCOL_VERSION, Routes } from '../../sdk/wire/protocol.js';
import type { StoredObject } from '../../sdk/versioning/index.js';
import { liveSiblings } from '../../sdk/versioning/index.js';
import type { Anomaly, CheckResult } from './history.js';

/** Runs the ringkv CLI; resolves with its exit code and output (SIGKILL after `timeoutMs`). */
export function runCli(args: string[], timeoutMs: number): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    p.stdout.on('data', (d: Buffer) => (out += d.toString()));
    p.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const t = setTimeout(() => p.kill('SIGKILL'), timeoutMs);
    p.once('exit', (code, signal) => {
      clearTimeout(t);
      resolve({ code: code ?? (signal ? 128 : 1), out });
    });
  });
}

/** The value a replica's object reads as: the newest live sibling, or null. */
export function replicaValue(obj: StoredObject | null): string | null {
  if (!obj) return null;
  const live = liveSiblings(obj, Date.now());
  if (live.length === 0) return null;
  let best = live[0]!;
  for (const s of live) if (s.ts > best.ts || (s.ts === best.ts && s.writer > best.writer)) best = s;
  return Buffer.from(best.value).toString('utf8');
}

/** Reads `keys` from one node's own replica (one internal batch). */
export async function rawGetMany(c: TestCluster, id: string, keys: string[]): Promise<(StoredObject | null)[]> {
  const res = await c.call<BatchResponse>(id, Routes.batch, { v: PROTOCOL_VERSION, ops: keys.map((k) => ({ t: OpType.Get, key: Buffer.from(k) })) }, 5000);
  return res.results.map((r, i) => {
    if (!r.ok) throw new Error(`${id} ${keys[i]}: ${r.code}: ${r.msg}`);
    return r.obj;
  });
}

export async function checkConvergence(c: TestCluster, keys: string[]): Promise<CheckResult> {
  const anomalies: Anomaly[] = [];
  const seeds = c.addresses.join(',');
  const repair = await runCli(['repair', '--seeds', seeds], 120_000);
  if (repair.code !== 0) anomalies.push({ kind: 'repair-failed', ops: [], message: `ringkv repair exited ${repair.code}: ${oneLine(repair.out)}` });
  const check = await runCli(['repair', '--check', '--seeds', seeds], 60_000);
  if (check.code !== 0) anomalies.push({ kind: 'repair-check-failed', ops: [], message: `ringkv repair --check exited ${check.code}: ${oneLine(check.out)}` });
  // With 3 nodes and N = 3 every node is a replica of every key; with more, ask each key's preference list.
  const views = new Map<string, (string | null)[]>();
  for (const n of c.nodes) views.set(n.id, (await rawGetMany(c, n.id, keys)).map(replicaValue));
  const kv = await c.client<string>({ valueEncoding: 'utf8' });
  for (let i = 0; i < keys.length; i++) {
    const key = keys[i]!;
    const replicas = kv.replicasOf(key).map((addr) => c.nodes.find((n) => n.address === addr || n.id === addr)?.id ?? addr);
    const values = replicas.map((id) => views.get(id)?.[i]);
    if (new Set(values).size > 1) {
      anomalies.push({ kind: 'divergent-replicas', key, ops: [], message: `replicas of ${key} differ after repair: ${replicas.map((id, j) => `${id}=${values[j] ?? 'nothing'}`).join(' ')}` });
    }
  }
  return { checker: 'convergence', valid: anomalies.length === 0, anomalies, checked: keys.length };
}

/** CLI output as one line for an anomaly message: its first and last lines. */
function oneLine(out: string): string {
  const lines = out.trim().split('\n').filter(Boolean);
  return lines.length <= 2 ? lines.join(' / ') : `${lines[0]} / ... / ${lines[lines.length - 1]}`;
}
