// Runs the compiled `ringkv` command (dist/, built by `npm run build`) as a child process
// and collects its exit code, stdout and stderr; a command that runs past its bound is
// killed (SIGKILL) and reported with code -1. Each call is its own process.

import { spawn } from 'node:child_process';
import { CLI } from './cluster.js';

export interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
}

export interface CliRunOptions {
  /** Added to this process's environment. */
  env?: Record<string, string>;
  /** Written to the command's stdin, which is then closed (default: nothing). */
  input?: Buffer | string;
  /** Bound on the command's run time. Default 30 s. */
  timeoutMs?: number;
  /** How stdout is decoded; 'latin1' keeps binary values byte for byte. Default utf8. */
  stdoutEncoding?: BufferEncoding;
}

export function runRingkv(args: string[], opts: CliRunOptions = {}): Promise<CliRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], { env: { ...process.env, ...opts.env }, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString(opts.stdoutEncoding ?? 'utf8')));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 30_000);
    child.on('error', reject);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code: code ?? -1, stdout, stderr });
    });
    child.stdin.on('error', () => undefined); // a command that exits without reading stdin
    child.stdin.end(opts.input ?? '');
  });
}
