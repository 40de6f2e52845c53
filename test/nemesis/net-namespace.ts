// The nemesis runner's private network namespace and its firewall. As root, the runner
// creates `ringkv-nemesis-<pid>`, re-executes itself inside it and deletes it when it exits
// (also on SIGINT/SIGTERM and on failure); inside, servers and clients each bind their own
// loopback address and partitions are iptables rules between those addresses. Nothing here
// ever runs iptables outside that namespace: Firewall checks `ip netns identify` first.
// Single-threaded use: one runner, one firewall, calls awaited one at a time.

import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';

/** Set in the re-executed runner: the name of the namespace it runs in. */
export const NAMESPACE_ENV = 'RINGKV_NEMESIS_NETNS';
const PREFIX = 'ringkv-nemesis-';

/** The loopback address of server `i` (0-based) inside the namespace: 127.0.0.11, .12, … */
export function serverAddress(i: number): string {
  return `127.0.0.${11 + i}`;
}

/** The loopback address of client worker `i` (0-based) inside the namespace: 127.0.0.101, … */
export function clientAddress(i: number): string {
  return `127.0.0.${101 + i}`;
}

function which(cmd: string): boolean {
  return ['/usr/sbin', '/usr/bin', '/sbin', '/bin', '/usr/local/sbin', '/usr/local/bin'].some((d) => fs.existsSync(`${d}/${cmd}`));
}

/** Why a private namespace cannot be made here, or undefined when it can. */
export function namespaceUnavailableReason(): string | undefined {
  if (process.platform !== 'linux') return 'not Linux';
  if (typeof process.getuid !== 'function' || process.getuid() !== 0) return 'needs root for a network namespace';
  if (!which('ip')) return 'the ip command (iproute2) is missing';
  if (!which('iptables') || !which('iptables-restore')) return 'iptables is missing (Debian package iptables)';
  return undefined;
}

/** The name of the namespace this process was re-executed in, after checking that it really runs there. */
export function currentNamespace(): string | undefined {
  const want = process.env[NAMESPACE_ENV];
  if (!want) return undefined;
  const r = spawnSync('ip', ['netns', 'identify', String(process.pid)], { encoding: 'utf8' });
  const got = (r.stdout ?? '').trim().split(/\s+/);
  if (r.status !== 0 || !got.includes(want)) {
    throw new Error(`${NAMESPACE_ENV}=${want} but this process is not in that network namespace (ip netns identify: ${r.stdout}${r.stderr})`);
  }
  return want;
}

function ip(args: string[]): void {
  const r = spawnSync('ip', args, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`ip ${args.join(' ')} failed: ${r.stderr || r.stdout}`);
}

/** Deletes namespaces left by earlier runners that were killed before they could (their pid is gone). */
function deleteStaleNamespaces(): void {
  const r = spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' });
  for (const line of (r.stdout ?? '').split('\n')) {
    const name = line.trim().split(/\s+/)[0] ?? '';
    const m = new RegExp(`^${PREFIX}(\\d+)$`).exec(name);
    if (!m) continue;
    let alive = true;
    try {
      process.kill(Number(m[1]), 0);
    } catch {
      alive = false;
    }
    if (!alive) spawnSync('ip', ['netns', 'delete', name]);
  }
}

/**
 * Runs this same script (same node flags and arguments) inside a fresh namespace and
 * resolves with its exit code; the namespace is deleted afterwards whatever happens.
 * SIGINT and SIGTERM are passed on to the child, which stops its own processes.
 */
export async function reexecInNamespace(): Promise<number> {
  deleteStaleNamespaces();
  const name = `${PREFIX}${process.pid}`;
  ip(['netns', 'add', name]);
  const onSignal = (sig: NodeJS.Signals) => {
    if (child && child.exitCode === null) child.kill(sig);
  };
  let child: ReturnType<typeof spawn> | undefined;
  try {
    ip(['netns', 'exec', name, 'ip', 'link', 'set', 'lo', 'up']);
    child = spawn('ip', ['netns', 'exec', name, process.execPath, ...process.execArgv, process.argv[1]!, ...process.argv.slice(2)], {
      stdio: 'inherit',
      env: { ...process.env, [NAMESPACE_ENV]: name },
    });
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
    const c = child;
    return await new Promise<number>((resolve, reject) => {
      c.once('error', reject);
      c.once('exit', (code, signal) => resolve(code ?? (signal ? 128 + (os.constants.signals[signal] ?? 0) : 1)));
    });
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    if (child && child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    spawnSync('ip', ['netns', 'delete', name]);
  }
}

/**
 * iptables inside the runner's namespace: DROP between pairs of addresses (both directions,
 * INPUT and OUTPUT), and heal by flushing. Refuses to work anywhere but in that namespace.
 */
export class Firewall {
  private constructor(readonly namespace: string) {}

  /** The firewall of the namespace this process runs in; throws when it is not the runner's own. */
  static open(): Firewall {
    const ns = currentNamespace();
    if (!ns) throw new Error('the firewall is only used inside the runner\'s own network namespace');
    return new Firewall(ns);
  }

  /** Replaces every rule with DROPs between each pair (atomically, through iptables-restore). */
  async block(pairs: readonly (readonly [string, string])[]): Promise<void> {
    if (currentNamespace() !== this.namespace) throw new Error('not in the runner\'s namespace');
    const lines = ['*filter', ':INPUT ACCEPT [0:0]', ':FORWARD ACCEPT [0:0]', ':OUTPUT ACCEPT [0:0]'];
    for (const [a, b] of pairs) {
      for (const [s, d] of [
        [a, b],
        [b, a],
      ]) {
        lines.push(`-A INPUT -s ${s}/32 -d ${d}/32 -j DROP`, `-A OUTPUT -s ${s}/32 -d ${d}/32 -j DROP`);
      }
    }
    lines.push('COMMIT', '');
    await restore(lines.join('\n'));
  }

  /** Removes every rule: all addresses see each other again. */
  async heal(): Promise<void> {
    await this.block([]);
  }
}

function restore(rules: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const p = spawn('iptables-restore', [], { stdio: ['pipe', 'ignore', 'pipe'] });
    let err = '';
    p.stderr.on('data', (d: Buffer) => (err += d.toString()));
    p.once('error', reject);
    p.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`iptables-restore exited ${code}: ${err}`))));
    p.stdin.end(rules);
  });
}
