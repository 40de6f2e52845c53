// The processes a benchmark or a test starts (storage servers, Redis, etcd), kept in one
// group so that every one of them is stopped: on a normal end (stopAll, or a test's
// teardown), on SIGINT/SIGTERM, and (with SIGKILL, synchronously) when the process exits
// anyway. Also free ports, the lookup of executables on PATH, and polling. Single-threaded.

import { spawn } from 'node:child_process';
import type { ChildProcess, SpawnOptions } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';

/** The repository root (found from this file, in benchmarks/ or in dist/benchmarks/). */
export const REPO_ROOT = (() => {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  while (!fs.existsSync(path.join(dir, 'package.json'))) {
    const up = path.dirname(dir);
    if (up === dir) throw new Error('cannot find the repository root');
    dir = up;
  }
  return dir;
})();

export interface Started {
  child: ChildProcess;
  label: string;
  /** Last lines the process wrote, for error messages. */
  log: string[];
}

export interface ProcessGroupOptions {
  /** Echo every line the processes write to stderr, prefixed with their label. Default: when RINGKV_BENCH_LOGS is set. */
  echoLogs?: boolean;
}

export class ProcessGroup {
  private readonly live = new Set<Started>();
  private readonly echoLogs: boolean;
  /** Every pid this group started, in order (the smoke test checks they are all gone). */
  readonly pids: number[] = [];

  constructor(o: ProcessGroupOptions = {}) {
    this.echoLogs = o.echoLogs ?? !!process.env.RINGKV_BENCH_LOGS;
  }

  /** Starts `command`; stdout and stderr are kept (last 200 lines), printed only with `echoLogs`. */
  spawn(label: string, command: string, args: string[], opts: SpawnOptions = {}): Started {
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'], ...opts });
    const s: Started = { child, label, log: [] };
    if (child.pid !== undefined) this.pids.push(child.pid);
    this.live.add(s);
    for (const stream of [child.stdout, child.stderr]) {
      if (!stream) continue;
      readline.createInterface({ input: stream }).on('line', (line) => {
        s.log.push(line);
        if (s.log.length > 200) s.log.shift();
        if (this.echoLogs) process.stderr.write(`${label} | ${line}\n`);
      });
    }
    child.once('exit', () => this.live.delete(s));
    child.once('error', () => this.live.delete(s));
    return s;
  }

  /** Sends `signal` and waits for the exit; SIGKILL after `timeoutMs`. */
  async stop(s: Started, signal: NodeJS.Signals = 'SIGTERM', timeoutMs = 15_000): Promise<void> {
    const c = s.child;
    if (c.exitCode !== null || c.signalCode !== null) return;
    const exited = new Promise<void>((r) => c.once('exit', () => r()));
    c.kill('SIGCONT');
    c.kill(signal);
    const t = setTimeout(() => c.kill('SIGKILL'), timeoutMs);
    await exited;
    clearTimeout(t);
  }

  /** Stops every live process (SIGTERM, then SIGKILL after `timeoutMs`). */
  async stopAll(timeoutMs = 15_000): Promise<void> {
    await Promise.all([...this.live].map((s) => this.stop(s, 'SIGTERM', timeoutMs)));
  }

  /** SIGKILLs every live process without waiting (for process 'exit'). */
  killAllSync(): void {
    for (const s of this.live) {
      try {
        s.child.kill('SIGKILL');
      } catch {
        // already gone
      }
    }
  }

  /**
   * Stops the group when the benchmark is interrupted, and kills what is left when it
   * exits. Returns a function that removes the handlers.
   */
  installCleanup(onInterrupt?: () => Promise<void>): () => void {
    const onSignal = (sig: NodeJS.Signals) => {
      process.stderr.write(`\n${sig}: stopping the processes this benchmark started\n`);
      void (async () => {
        await onInterrupt?.().catch(() => undefined);
        await this.stopAll(5000).catch(() => undefined);
        process.exit(130);
      })();
    };
    const onExit = () => this.killAllSync();
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);
    process.on('exit', onExit);
    return () => {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
      process.off('exit', onExit);
    };
  }
}

/**
 * The kernel's ephemeral port range (Linux), from which it also picks the source ports of
 * outgoing connections; undefined when unknown.
 */
function ephemeralRange(): [number, number] | undefined {
  try {
    const [lo, hi] = fs.readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/).map(Number);
    return lo !== undefined && hi !== undefined && lo > 0 ? [lo, hi] : undefined;
  } catch {
    return undefined;
  }
}

/** Listens on `port` (0: any) of `host` and closes again; resolves with the port, or undefined when it is taken. */
function tryListen(port: number, host: string): Promise<number | undefined> {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.once('error', () => resolve(undefined));
    s.listen(port, host, () => {
      const got = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(got));
    });
  });
}

/**
 * A port free on `host` (default 127.0.0.1) now, for a server to listen on next. Picked at
 * random below the kernel's ephemeral range: a port from bind(0) comes from that range, where
 * any outgoing connection of the processes running beside this one (thousands per cluster
 * test) can take it between this check and the server's listen — which failed cluster tests
 * with EADDRINUSE on a busy machine. Falls back to bind(0) when the range is unknown or
 * leaves no room.
 */
export async function freePort(host = '127.0.0.1'): Promise<number> {
  const range = ephemeralRange();
  const lowest = 20_000;
  if (range && range[0] - lowest >= 2048) {
    for (let attempt = 0; attempt < 50; attempt++) {
      const port = lowest + Math.floor(Math.random() * (range[0] - lowest));
      const got = await tryListen(port, host);
      if (got !== undefined) return got;
    }
  }
  const got = await tryListen(0, host);
  if (got === undefined) throw new Error(`no free port on ${host}`);
  return got;
}

/** The full path of `name` on PATH (also /usr/sbin and /usr/bin), or undefined. */
export function findExecutable(name: string): string | undefined {
  const dirs = [...(process.env.PATH ?? '').split(path.delimiter), '/usr/bin', '/usr/sbin', '/usr/local/bin'];
  for (const d of dirs) {
    if (!d) continue;
    const p = path.join(d, name);
    try {
      fs.accessSync(p, fs.constants.X_OK);
      return p;
    } catch {
      // not here
    }
  }
  return undefined;
}

/** Polls `check` every `intervalMs` until it returns true; throws with the last error after `timeoutMs`. */
export async function waitUntil(what: string, check: () => Promise<boolean>, timeoutMs: number, intervalMs = 100): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  while (Date.now() < deadline) {
    try {
      if (await check()) return;
    } catch (err) {
      last = (err as Error).message;
    }
    await sleep(intervalMs);
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${last}` : ''}`);
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
