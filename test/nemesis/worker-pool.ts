// The runner's side of its client workers: spawns each as its own Node process (through
// tsx, as tap runs tests), hands it its WorkerConfig, collects the operations it reports,
// moves its clock, and stops it. stopAll() always ends every process it started (SIGKILL
// after a bounded wait). Used from the runner's single event loop.

import { fork } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { HistoryOp } from './history.js';
import type { FromWorker, ToWorker, WorkerConfig } from './workloads.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const WORKER = path.join(here, 'client-worker.ts');
/** The repository root: where `--import=tsx` resolves from. */
const ROOT = path.resolve(here, '../..');

interface Handle {
  cfg: WorkerConfig;
  child: ChildProcess;
  ready: Promise<void>;
  exited: Promise<void>;
  stderr: string[];
}

export class WorkerPool {
  readonly ops: HistoryOp[] = [];
  /** Fatal errors workers reported (e.g. INVALID_CONSISTENCY at connect). */
  readonly fatal: { worker: number; code: string; message: string }[] = [];
  private readonly handles: Handle[] = [];

  /** Spawns one worker per config and waits until each is connected (or failed). */
  async start(cfgs: WorkerConfig[], timeoutMs = 30_000): Promise<void> {
    for (const cfg of cfgs) this.handles.push(this.spawn(cfg));
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`client workers did not connect in ${timeoutMs} ms`)), timeoutMs);
    });
    try {
      await Promise.race([Promise.all(this.handles.map((h) => h.ready)), deadline]);
    } finally {
      clearTimeout(timer);
    }
  }

  private spawn(cfg: WorkerConfig): Handle {
    const child = fork(WORKER, [], {
      execArgv: ['--import=tsx'],
      cwd: ROOT,
      stdio: ['ignore', 'inherit', 'pipe', 'ipc'],
    });
    const stderr: string[] = [];
    child.stderr!.on('data', (d: Buffer) => {
      stderr.push(d.toString());
      if (stderr.length > 50) stderr.shift();
    });
    const exited = new Promise<void>((r) => child.once('exit', () => r()));
    const ready = new Promise<void>((resolve, reject) => {
      child.on('message', (m: FromWorker) => {
        if (m.type === 'ready') resolve();
        else if (m.type === 'op') this.ops.push(m.op);
        else if (m.type === 'fatal') {
          this.fatal.push({ worker: cfg.worker, code: m.code, message: m.message });
          resolve(); // connected or not, it is settled; the runner reads `fatal`
        }
      });
      void exited.then(() => reject(new Error(`client worker ${cfg.worker} exited before it was ready: ${stderr.join('').slice(-2000)}`)));
    });
    ready.catch(() => undefined);
    child.send({ type: 'start', cfg } satisfies ToWorker);
    return { cfg, child, ready, exited, stderr };
  }

  private send(h: Handle, m: ToWorker): void {
    if (h.child.connected) h.child.send(m);
  }

  /** Starts every worker's loops at once. */
  go(): void {
    for (const h of this.handles) this.send(h, { type: 'go' });
  }

  /** Sets the SDK clock skew of worker `i`. */
  skew(i: number, ms: number): void {
    const h = this.handles[i];
    if (h) this.send(h, { type: 'skew', ms });
  }

  /** Tells every worker to finish its current operations and exit; kills those still running after `graceMs`. */
  async stopAll(graceMs = 15_000): Promise<void> {
    for (const h of this.handles) this.send(h, { type: 'stop' });
    await Promise.all(
      this.handles.map(async (h) => {
        if (h.child.exitCode !== null || h.child.signalCode !== null) return;
        const t = setTimeout(() => h.child.kill('SIGKILL'), graceMs);
        await h.exited;
        clearTimeout(t);
      }),
    );
  }
}
