// A CPU quota for the processes under test, so that a load generator on the same machine can
// offer them more than they can do: a cgroup with a CFS quota (cgroup v2 `cpu.max`, or v1
// `cpu.cfs_quota_us`) that server processes are moved into, removed again by release().
// Needs root and a writable cgroup file system; open() returns undefined otherwise.

import fs from 'node:fs';
import path from 'node:path';

export class CpuLimit {
  private constructor(
    readonly dir: string,
    readonly cores: number,
  ) {}

  /** A cgroup allowing `cores` CPUs' worth of time (e.g. 0.5), or undefined when not possible. */
  static open(cores: number, name = `ringkv-bench-${process.pid}`): CpuLimit | undefined {
    const periodUs = 100_000;
    const quotaUs = Math.max(1000, Math.round(cores * periodUs));
    const candidates: [string, (dir: string) => void][] = [
      // cgroup v2 (unified hierarchy at /sys/fs/cgroup)
      ['/sys/fs/cgroup', (dir) => fs.writeFileSync(path.join(dir, 'cpu.max'), `${quotaUs} ${periodUs}`)],
      // cgroup v1 cpu controller
      ['/sys/fs/cgroup/cpu', (dir) => {
        fs.writeFileSync(path.join(dir, 'cpu.cfs_period_us'), String(periodUs));
        fs.writeFileSync(path.join(dir, 'cpu.cfs_quota_us'), String(quotaUs));
      }],
    ];
    for (const [root, configure] of candidates) {
      const v2 = root === '/sys/fs/cgroup';
      if (v2 && !fs.existsSync(path.join(root, 'cgroup.controllers'))) continue;
      if (!v2 && !fs.existsSync(path.join(root, 'cpu.cfs_quota_us'))) continue;
      const dir = path.join(root, name);
      try {
        fs.mkdirSync(dir);
        configure(dir);
        return new CpuLimit(dir, cores);
      } catch {
        try {
          fs.rmdirSync(dir);
        } catch {
          /* never made */
        }
      }
    }
    return undefined;
  }

  /** Moves a process (all its threads) into the cgroup. */
  add(pid: number): void {
    fs.writeFileSync(path.join(this.dir, 'cgroup.procs'), String(pid));
  }

  /** Removes the cgroup; call after its processes exited. */
  release(): void {
    try {
      fs.rmdirSync(this.dir);
    } catch {
      /* a process still in it: the kernel keeps the group until it is empty */
    }
  }
}
